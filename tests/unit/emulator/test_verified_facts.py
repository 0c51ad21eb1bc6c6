"""Kernel behaviour verified on a real 7.3.4 guest (tests/emulator/README.md lists it), emulated."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.unit.emulator.helpers import stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

K0 = "kdamonds/0"
C0 = K0 + "/contexts/0"
S0 = C0 + "/schemes/0"
MiB = 1 << 20
HOT = 0x7F0000000000
NO_STAT = {"modules": {"damon_stat": False}}


def hot_scenario(pid):
    return dict(NO_STAT, targets=[{"pid": pid, "regions": [
        {"start": HOT, "size": 32 * MiB, "rate": 0.9}, {"start": HOT + 32 * MiB, "size": 64 * MiB, "rate": 0.0}]}])


def update_stats(m, scheme=0):
    m.must(K0 + "/state", "update_schemes_stats")
    base = C0 + "/schemes/%d/stats/" % scheme
    return {n: int(m.read(base + n)) for n in ("nr_tried", "nr_applied", "nr_snapshots")}


def tried(m, scheme=0):
    return [n for n in m.listdir(C0 + "/schemes/%d/tried_regions" % scheme) if n.isdigit()]


def test_zombie_target_keeps_the_kdamond_running_until_reaped(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", hot_scenario(proc.pid))
    stage_vaddr(m, proc.pid, "collapse")
    m.must(K0 + "/state", "on")
    os.kill(proc.pid, signal.SIGKILL)
    # not waited for: a zombie. get_pid_task() still finds it, so the kdamond goes on,
    # trying regions but applying nothing (no mm) and seeing no accesses.
    for unused in range(500):  # wait for the exit without reaping it
        with open("/proc/%d/stat" % proc.pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    before = update_stats(m)
    m.advance(3)
    assert m.read(K0 + "/state") == "on"
    after = update_stats(m)
    assert after["nr_tried"] > before["nr_tried"]
    assert after["nr_applied"] == before["nr_applied"]
    regions = m.status()["kdamonds"][0]["targets"][0]["regions"]
    assert all(nr == 0 for _s, _e, nr, _age in regions)
    proc.wait()  # reaped: the target's task is gone
    assert m.read(K0 + "/state") == "off"
    assert m.status()["kdamonds"][0]["stopped_reason"] == "all target processes exited"


def test_schemes_apply_every_sample_at_their_own_interval(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", hot_scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", nr_schemes=2)
    m.must(S0 + "/apply_interval_us", 5000)  # every sample (5 ms)
    m.must(C0 + "/schemes/1/apply_interval_us", 0)  # every aggregation (100 ms)
    m.must(K0 + "/state", "on")
    m.advance(1)
    fast, slow = update_stats(m, 0), update_stats(m, 1)
    assert fast["nr_snapshots"] == 200 and slow["nr_snapshots"] == 10
    assert fast["nr_tried"] >= 15 * slow["nr_tried"] > 0


def test_apply_interval_shorter_than_a_sample_is_one_sample(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", hot_scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", apply_interval_us=1000)
    m.must(K0 + "/state", "on")
    m.advance(1)
    assert update_stats(m)["nr_snapshots"] == 200


def test_tried_regions_right_after_on_and_after_a_commit_adding_a_scheme(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", hot_scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", apply_interval_us=5000)
    m.must(C0 + "/monitoring_attrs/intervals/aggr_us", 2000000)
    m.must(K0 + "/state", "on")
    m.must(K0 + "/state", "update_schemes_tried_regions")  # waits for one apply pass
    assert tried(m)
    m.must(C0 + "/schemes/nr_schemes", 2)  # recreates both: write them again
    for i in range(2):
        base = C0 + "/schemes/%d" % i
        m.must(base + "/action", "stat")
        m.must(base + "/access_pattern/sz/max", 2**63)
        m.must(base + "/access_pattern/nr_accesses/max", 2**32)
        m.must(base + "/access_pattern/age/max", 2**32)
    m.must(K0 + "/state", "commit")
    m.must(K0 + "/state", "update_schemes_tried_regions")
    assert tried(m, 0) and tried(m, 1)


def test_commit_with_obsolete_target_beyond_the_running_ones_is_einval(mount, sleeper):
    first, second = sleeper(), sleeper()
    m = mount("7.3", NO_STAT)
    stage_vaddr(m, first.pid)
    m.must(K0 + "/state", "on")
    m.must(C0 + "/targets/nr_targets", 2)
    m.must(C0 + "/targets/0/pid_target", first.pid)
    m.must(C0 + "/targets/1/pid_target", second.pid)
    m.must(C0 + "/targets/1/obsolete_target", "Y")
    assert m.write(K0 + "/state", "commit") == "EINVAL"
    assert m.read(K0 + "/state") == "on"
    assert [t["pid"] for t in m.status()["kdamonds"][0]["targets"]] == [first.pid]
    # an obsolete target the running ctx has is dropped
    m.must(C0 + "/targets/1/obsolete_target", "N")
    m.must(K0 + "/state", "commit")
    m.must(C0 + "/targets/0/obsolete_target", "Y")
    m.must(K0 + "/state", "commit")
    assert [t["pid"] for t in m.status()["kdamonds"][0]["targets"]] == [second.pid]


def stage_paddr(m):
    m.must("kdamonds/nr_kdamonds", 1)
    m.must(K0 + "/contexts/nr_contexts", 1)
    m.must(C0 + "/operations", "paddr")
    m.must(C0 + "/targets/nr_targets", 1)
    m.must(C0 + "/targets/0/regions/nr_regions", 1)
    m.must(C0 + "/targets/0/regions/0/start", 1 << 32)
    m.must(C0 + "/targets/0/regions/0/end", 1 << 33)


@pytest.mark.parametrize("addr_unit,result", [(1, "ok"), (3, "EINVAL"), (1024, "ok"), (1000, "ok"), (5, "EINVAL"),
                                              (4096, "ok"), (8192, "ok")])
def test_paddr_min_region_size_must_be_a_power_of_two_on(mount, addr_unit, result):
    m = mount("7.3", NO_STAT)
    stage_paddr(m)
    m.must(C0 + "/addr_unit", addr_unit)
    assert m.write(K0 + "/state", "on") == result


def test_paddr_min_region_size_must_be_a_power_of_two_commit(mount):
    m = mount("7.3", NO_STAT)
    stage_paddr(m)
    m.must(K0 + "/state", "on")
    m.must(C0 + "/addr_unit", 3)
    assert m.write(K0 + "/state", "commit") == "EINVAL"
    assert m.read(K0 + "/state") == "on"
    m.must(C0 + "/addr_unit", 2)
    m.must(K0 + "/state", "commit")


def test_vaddr_ignores_the_paddr_min_region_rule(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", NO_STAT)
    stage_vaddr(m, proc.pid)
    m.must(C0 + "/addr_unit", 1)
    m.must(K0 + "/state", "on")


STAT_PARAMS = ("aggr_interval_us", "estimated_memory_bandwidth", "memory_idle_ms_percentiles")


def stat_params(m):
    base = os.path.join(m.root, "module/damon_stat/parameters/")
    return {name: m.read(base + name) for name in STAT_PARAMS}


def test_damon_stat_parameters_refresh_every_5s_while_it_runs(mount):
    m = mount("7.3", {"targets": [{"index": 0, "regions": [
        {"start": 1 << 32, "size": 64 * MiB, "rate": 0.5},
        {"start": (1 << 32) + 64 * MiB, "size": 1024 * MiB, "rate": 0.0}]}]})
    assert m.read(os.path.join(m.root, "module/damon_stat/parameters/enabled")) == "Y"
    booted = stat_params(m)
    assert booted["aggr_interval_us"] == booted["estimated_memory_bandwidth"] == "0"
    m.advance(0.01)  # the first sample after boot refreshes
    first = stat_params(m)
    assert int(first["aggr_interval_us"]) > 0 and int(first["estimated_memory_bandwidth"]) > 0
    percentiles = [int(v) for v in first["memory_idle_ms_percentiles"].split(",")]
    assert len(percentiles) == 101 and percentiles == sorted(percentiles)
    assert percentiles[0] < 0 < percentiles[-1]  # accessed memory first (negative idle time)
    m.advance(4.9)
    assert stat_params(m) == first  # at most once per 5 s
    m.advance(0.3)
    second = stat_params(m)
    assert second != first  # idle times grew and the intervals were tuned
    m.advance(4.5)
    assert stat_params(m) == second
    m.must(os.path.join(m.root, "module/damon_stat/parameters/enabled"), "N")
    m.advance(30)
    assert stat_params(m) == second  # stopped: the last values stay


def test_damon_stat_refreshes_at_once_when_restarted_after_5s(mount):
    m = mount("7.3")
    enabled = os.path.join(m.root, "module/damon_stat/parameters/enabled")
    m.advance(6)  # two refreshes: at the first sample and after 5 s (tuned intervals by then)
    m.must(enabled, "N")
    stopped = stat_params(m)
    assert stopped["aggr_interval_us"] != "100000"
    m.advance(10)
    m.must(enabled, "Y")
    assert stat_params(m) == stopped  # no sample has run yet
    m.advance(0.01)
    restarted = stat_params(m)
    assert restarted != stopped and restarted["aggr_interval_us"] == "100000"  # fresh ctx: 5 ms x 20
