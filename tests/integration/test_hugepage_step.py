# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.hugepage_step on the emulator, with a real hot/cold workload process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(300)]

MIB = 1 << 20


def scenario(workload, speed=20):
    return {"speed": speed, "targets": [{"pid": workload.pid, "regions": [
        {"start": workload.hot[0], "end": workload.hot[1], "rate": 0.8},
        {"start": workload.cold[0], "end": workload.cold[1], "rate": 0.0}]}]}


def step(emu, own, kernel, apps, **options):
    args = dict(apps=apps, sysfs_root=emu.root, kernel_release=kernel, ownership_file=str(own), interval_s=0.5,
                exclusive_modules="stop")
    args.update(options)
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "step", "linux_mm.damon.hugepage_step": args}]}]


# A child that disables THP for itself (prctl PR_SET_THP_DISABLE = 41) or marks 4 MiB of touched anonymous
# memory MADV_NOHUGEPAGE (15), then says "ready" and sleeps.
THP_CHILD = r"""
import ctypes, mmap, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "prctl":
    assert libc.prctl(41, 1, 0, 0, 0) == 0
else:
    m = mmap.mmap(-1, 4 << 20)
    m.write(b"x" * (4 << 20))
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.madvise(addr, 4 << 20, 15) == 0
print("ready", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def thp_child(mode):
    """A live process with THP disabled (``prctl``) or with a MADV_NOHUGEPAGE mapping (``nohugepage``)."""
    proc = subprocess.Popen([sys.executable, "-c", THP_CHILD, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def ranges_by_start(emu):
    return dict((r["start"], r) for r in emu.status()["targets"][0]["ranges"])


def test_native_collapse_path_collapses_the_hot_range_only(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(hot_mb=32, cold_mb=64, idle=True) as w, EmulatedSysfs(kernel="7.3", scenario=scenario(w)) as emu:
        apps = [{"name": "hotcold", "pid": w.pid, "threshold": 10}]
        first = run_playbook(step(emu, own, "7.3.4", apps, path="damos_collapse"))
        assert first.rc == 0, first.explain()
        app = first[0]["apps"][0]
        assert first[0]["path"] == "damos_collapse" and first[0]["changed"]
        assert app["threshold"] == 10 and app["max_nr_accesses"] == 20
        assert dict(map(tuple, app["histogram"])).get(16, 0) >= 30 * MIB  # the hot range at 0.8 * 20
        assert app["scheme_stats"]["sz_applied"] > 0
        ranges = ranges_by_start(emu)
        assert ranges[w.hot[0]]["huge_bytes"] == 32 * MIB and ranges[w.cold[0]]["huge_bytes"] == 0
        slots = json.loads(own.read_text())["slots"]
        assert [s["name"] for s in slots.values()].count("hugepage:hotcold") == 1 and len(slots) == 4  # the pool

        again = run_playbook(step(emu, own, "7.3.4", [{"name": "hotcold", "pid": w.pid}], path="damos_collapse"),
                             diff=True)
        assert again.rc == 0 and again[0]["writes"] == [] and not again[0]["changed"], again.explain()
        assert again[0]["apps"][0]["threshold"] == 10  # kept from the running kdamond
        diff = again[0]["diff"]
        assert diff["before"] == diff["after"] and diff["after"]["hotcold"]["threshold"] == 10, diff

        lower = [{"name": "hotcold", "pid": w.pid, "threshold": 6}]
        preview = run_playbook(step(emu, own, "7.3.4", lower, path="damos_collapse"), check=True, diff=True)
        assert preview.rc == 0 and preview[0]["changed"], preview.explain()
        diff = preview[0]["diff"]
        assert (diff["before"]["hotcold"]["threshold"], diff["after"]["hotcold"]["threshold"]) == (10, 6), diff
        assert diff["before"]["hotcold"]["state"] == diff["after"]["hotcold"]["state"] == "on"
        assert diff["after"]["hotcold"]["pid"] == w.pid

        gone = run_playbook(step(emu, own, "7.3.4", [], state="absent"))
        assert gone.rc == 0 and gone[0]["dropped"] == ["hotcold"], gone.explain()
        assert emu.status()["modules"]["damon_stat"] is True


def test_user_space_path_collapses_real_memory_on_6_12(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(hot_mb=32, cold_mb=64, idle=True) as w, EmulatedSysfs(kernel="6.12", scenario=scenario(w)) as emu:
        # A kdamond's pid show fails with EBUSY while a kdamond holds DAMON's sysfs lock (CI, real 6.12 guest)
        emu.inject_read("kernel/mm/damon/admin/kdamonds/*/pid", "EBUSY", count=3, after=2)
        run = run_playbook(step(emu, own, "6.12.117", [{"name": "hotcold", "pid": w.pid, "threshold": 10}]))
        assert run.rc == 0, run.explain()
        assert emu.faults()["read_rules"][0]["fired"] == 3
        app = run[0]["apps"][0]
        assert run[0]["path"] == "user_collapse" and app["scheme_stats"]["nr_applied"] == 0  # a stat scheme
        assert app["scheme_stats"]["sz_tried"] >= 32 * MIB  # what is at or above the threshold
        assert app["collapsed"]["bytes"] == 32 * MIB, app
        assert app["huge_bytes_cold"] == 0 and app["huge_bytes"] >= 32 * MIB
        observed = run_playbook(step(emu, own, "6.12.117", [], state="observed"))
        assert observed.rc == 0 and not observed[0]["changed"], observed.explain()
        seen = observed[0]["apps"][0]
        assert (seen["name"], seen["pid"], seen["threshold"]) == ("hotcold", w.pid, 10)
        assert seen["huge_bytes_hot"] == 32 * MIB and seen["collapsed"] is None


def test_observed_reports_the_path_and_interval_mode_the_kdamonds_run_with(run_playbook, tmp_path):
    """The report play observes with default options; on 7.3 a run asked for user_collapse and controller
    widening was reported as damos_collapse (seen on a real 7.3 guest)."""
    own = tmp_path / "own.json"
    with HotCold(hot_mb=8, cold_mb=16, idle=True) as w, EmulatedSysfs(kernel="7.3", scenario=scenario(w)) as emu:
        apps = [{"name": "hotcold", "pid": w.pid, "threshold": 10}]
        run = run_playbook(step(emu, own, "7.3.4", apps, path="user_collapse", auto_intervals={"mode": "controller"}))
        assert run.rc == 0 and run[0]["path"] == "user_collapse", run.explain()
        observed = run_playbook(step(emu, own, "7.3.4", [], state="observed"))
        assert observed.rc == 0 and not observed[0]["changed"], observed.explain()
        assert observed[0]["path"] == "user_collapse"
        assert observed[0]["apps"][0]["intervals"]["mode"] == "controller"
        assert set(observed[0]["apps"][0]) >= {"name", "pid", "threshold", "exited"}


def test_exited_application_is_dropped_and_collapse_on_6_12_is_refused(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as w, EmulatedSysfs(kernel="6.12", scenario=scenario(w)) as emu:
        made = run_playbook(step(emu, own, "6.12.117", [{"name": "a", "pid": w.pid, "threshold": 10}], path="khugepaged"))
        assert made.rc == 0, made.explain()
        w.stop()
        dropped = run_playbook(step(emu, own, "6.12.117", [{"name": "a", "pid": w.pid}], path="khugepaged"))
        assert dropped.rc == 0, dropped.explain()
        assert dropped[0]["apps"][0]["exited"] and dropped[0]["dropped"] == ["a"]
        refused = run_playbook(step(emu, own, "6.12.117", [], path="damos_collapse"))
        assert refused[0]["_status"] == "failed"
        assert "damos_collapse needs the DAMOS collapse action of Linux 7.2" in refused[0]["msg"]


def test_changing_the_set_of_apps_keeps_the_monitoring_of_those_that_stay(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as a, HotCold(idle=True) as b, EmulatedSysfs(kernel="6.12", scenario={
            "speed": 20, "targets": scenario(a)["targets"] + scenario(b)["targets"]}) as emu:
        apps = [{"name": "a", "pid": a.pid, "threshold": 10}, {"name": "b", "pid": b.pid, "threshold": 10}]
        both = run_playbook(step(emu, own, "6.12.117", apps))
        assert both.rc == 0, both.explain()
        index_a = both[0]["apps"][0]["kdamond"]
        kdamond_pid = emu.status()["kdamonds"][index_a]["pid"]

        # another task's application (b) is left alone unless pruning is asked for
        other = run_playbook(step(emu, own, "6.12.117", [{"name": "a", "pid": a.pid, "threshold": 10}]))
        assert other.rc == 0 and other[0]["dropped"] == [] and other[0]["pruned"] == [], other.explain()
        only_a = run_playbook(step(emu, own, "6.12.117", [{"name": "a", "pid": a.pid, "threshold": 10}], prune=True))
        assert only_a.rc == 0 and only_a[0]["dropped"] == ["b"], only_a.explain()
        assert only_a[0]["pruned"] == [{"name": "b", "reason": "unlisted", "kdamond": 1 - index_a}]
        # a's kdamond was neither restarted nor committed: same slot, same kdamond, no write under it
        assert only_a[0]["apps"][0]["kdamond"] == index_a
        assert emu.status()["kdamonds"][index_a]["pid"] == kdamond_pid
        assert not [w for w in only_a[0]["writes"] if "/kdamonds/%d/" % index_a in w["path"]]


def test_an_unlisted_application_that_exited_is_removed_and_reported(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as a, HotCold(idle=True) as b, EmulatedSysfs(kernel="6.12", scenario={
            "speed": 20, "targets": scenario(a)["targets"] + scenario(b)["targets"]}) as emu:
        first = run_playbook(step(emu, own, "6.12.117", [{"name": "b", "pid": b.pid, "threshold": 10}],
                                  path="khugepaged"))
        assert first.rc == 0, first.explain()
        b.stop()
        # a task for another application: b's kdamond is not its own, but b's process is gone
        run = run_playbook(step(emu, own, "6.12.117", [{"name": "a", "pid": a.pid, "threshold": 10}],
                                path="khugepaged"))
        assert run.rc == 0, run.explain()
        assert run[0]["pruned"] == [{"name": "b", "reason": "exited", "kdamond": first[0]["apps"][0]["kdamond"]}]
        assert run[0]["dropped"] == ["b"]


@pytest.mark.parametrize("exits_before", ["on", "planning"])
def test_target_exiting_between_the_liveness_check_and_on_is_dropped(tmp_path, monkeypatch, exits_before):
    """Issue 8 item 9: EINVAL at 'on' for a target that just exited used to fail the whole step."""
    from ansible_collections.linux_mm.damon.plugins.module_utils import _damon_spec, _hugepage
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import Ownership

    with HotCold(idle=True) as stays, HotCold(idle=True) as leaves, EmulatedSysfs(kernel="7.3", scenario={
            "speed": 20, "modules": {"damon_stat": False},
            "targets": scenario(stays)["targets"] + scenario(leaves)["targets"]}) as emu:
        gone = leaves.pid
        leaves.stop()
        checks = []

        def alive(pid, proc_root="/proc"):
            if pid == gone:  # alive at the first check, gone when asked again after the failed 'on'
                checks.append(pid)
                return len(checks) == 1
            return True

        monkeypatch.setattr(_hugepage, "pid_alive", alive)
        monkeypatch.setattr(_hugepage.Step, "_blockers", lambda self, pid: [])  # still there when its THP state was read
        if exits_before == "on":  # the plan's own check still saw it: the kernel refuses 'on' (EINVAL)
            monkeypatch.setattr(_damon_spec, "pid_alive", lambda pid, proc_root="/proc": True)
        features = detect(emu.root, "7.3.4")
        own = Ownership.load(str(tmp_path / "own.json"))
        step = _hugepage.Step(emu.root, features, own, "damos_collapse", {"sample_us": 5000, "aggr_us": 100000,
                              "min_nr_regions": 10, "max_nr_regions": 1000}, 0, "fail", 4, False)
        entries, removed = step.configure([{"name": "leaves", "pid": gone, "threshold": 10},
                                           {"name": "stays", "pid": stays.pid, "threshold": 10}], 21)
        assert entries["leaves"]["exited"] and not entries["stays"]["exited"]
        # a half-configured slot (intent recorded, 'on' refused) is removed again; none when planning refused it
        assert removed == ([{"name": "leaves", "reason": "exited", "kdamond": 0}] if exits_before == "on" else [])
        running = [k for k in emu.status()["kdamonds"] if k["state"] == "on"]
        assert len(running) == 1 and _hugepage.owned_apps(own) == {"stays": entries["stays"]["kdamond"]}


def test_collapse_of_an_exited_process_marks_it_exited(monkeypatch):
    from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse, _hugepage

    def gone(*args, **kwargs):
        raise _collapse.CollapseError("process 4242 does not exist", errno=3, process_gone=True)

    monkeypatch.setattr(_collapse, "collapse", gone)
    step = _hugepage.Step.__new__(_hugepage.Step)
    step.quota_bytes, step.check_mode, step.huge = 0, False, 2 << 20
    entry = {"pid": 4242, "exited": False}
    assert step._collapse(entry, [(0, 2 << 20)], {}) is None and entry["exited"]


@pytest.mark.parametrize("kernel, release", [("7.3", "7.3.4"), ("6.12", "6.12.117")])
def test_process_with_thp_disabled_is_blocked_not_configured(run_playbook, tmp_path, kernel, release):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as w, thp_child("prctl") as off, EmulatedSysfs(kernel=kernel, scenario=scenario(w)) as emu:
        apps = [{"name": "hotcold", "pid": w.pid, "threshold": 10}, {"name": "nothp", "pid": off.pid}]
        run = run_playbook(step(emu, own, release, apps))
        assert run.rc == 0, run.explain()
        tuned, blocked = run[0]["apps"]
        assert tuned["blocked"] is None and tuned["kdamond"] is not None and "max_nr_accesses" in tuned
        assert blocked["blocked"]["reason"] == "process_thp_disabled", blocked
        assert "THP_enabled: 0" in blocked["blocked"]["detail"] and "restart" in blocked["blocked"]["fix"]
        assert "kdamond" not in blocked and "max_nr_accesses" not in blocked  # neither configured nor observed
        names = [s["name"] for s in json.loads(own.read_text())["slots"].values()]
        assert "hugepage:hotcold" in names and "hugepage:nothp" not in names


def test_partial_blockers_are_reported_and_the_app_is_tuned(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with thp_child("nohugepage") as nh, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "targets": [
            {"pid": nh.pid, "regions": []}]}) as emu:
        run = run_playbook(step(emu, own, "7.3.4", [{"name": "nh", "pid": nh.pid, "threshold": 10}]))
        assert run.rc == 0, run.explain()
        app = run[0]["apps"][0]
        assert app["blocked"] is None and app["kdamond"] is not None
        (found,) = [b for b in app["blockers"] if b["reason"] == "vma_nohugepage"]
        assert found["bytes"] >= 4 * MIB and "restart" in found["fix"] and found["mappings"]
