"""Stats, tried regions, quotas and huge pages driven by the synthetic access model."""

from __future__ import annotations

import os

import pytest

from tests.unit.emulator.helpers import stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

K0 = "kdamonds/0"
C0 = K0 + "/contexts/0"
S0 = C0 + "/schemes/0"
MiB = 1 << 20
HOT = 0x7F0000000000            # 32 MiB, accessed in 90% of samples
COLD = HOT + 32 * MiB           # 64 MiB, never accessed
WARMING = COLD + 64 * MiB       # 16 MiB, idle for 5 s then hot


def scenario(pid, **extra):
    data = {"speed": 0, "modules": {"damon_stat": False},
            "targets": [{"pid": pid, "regions": [
                {"start": HOT, "size": 32 * MiB, "rate": 0.9},
                {"start": COLD, "size": 64 * MiB, "rate": 0.0},
                {"start": WARMING, "size": 16 * MiB,
                 "phases": [{"start": 0, "end": 5, "rate": 0.0}, {"start": 5, "rate": 0.8}]},
            ]}]}
    data.update(extra)
    return data


def stats(m, scheme=0):
    m.must(K0 + "/state", "update_schemes_stats")
    base = C0 + "/schemes/%d/stats/" % scheme
    return {name: int(m.read(base + name)) for name in ("nr_tried", "sz_tried", "nr_applied",
                                                        "sz_applied", "qt_exceeds")}


def tried_regions(m, scheme=0):
    base = C0 + "/schemes/%d/tried_regions" % scheme
    out = []
    for name in sorted((n for n in m.listdir(base) if n.isdigit()), key=int):
        r = base + "/" + name
        out.append({f: int(m.read(r + "/" + f)) for f in ("start", "end", "nr_accesses", "age")})
    return out


def huge_bytes(m, start):
    for target in m.status()["targets"]:
        for r in target["ranges"]:
            if r["start"] == start:
                return r["huge_bytes"]
    raise KeyError(hex(start))


def test_stats_follow_the_model_and_change_only_on_update(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10)
    m.must(K0 + "/state", "on")
    m.advance(2)
    assert m.read(S0 + "/stats/nr_tried") == "0"  # not refreshed yet
    s = stats(m)
    assert s["nr_tried"] > 0
    assert s["sz_tried"] % (32 * MiB) == 0  # only the hot range qualifies before t=5s
    assert s["nr_applied"] == s["sz_applied"] == 0  # `stat` never counts as applied
    m.advance(2)
    assert int(m.read(S0 + "/stats/nr_tried")) == s["nr_tried"]
    assert stats(m)["nr_tried"] > s["nr_tried"]


def test_tried_regions_and_clear(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10)
    m.must(K0 + "/state", "on")
    m.advance(1)
    t0 = m.time()
    m.must(K0 + "/state", "update_schemes_tried_regions")
    assert m.time() - t0 <= 0.1 + 1e-6  # the writer "waited" one apply interval
    regions = tried_regions(m)
    assert regions and all(HOT <= r["start"] < r["end"] <= HOT + 32 * MiB for r in regions)
    assert sum(r["end"] - r["start"] for r in regions) == 32 * MiB
    assert {r["nr_accesses"] for r in regions} == {18}  # round(0.9 * 100ms / 5ms)
    assert int(m.read(S0 + "/tried_regions/total_bytes")) == 32 * MiB
    assert m.exists(S0 + "/tried_regions/0/sz_filter_passed")
    m.must(K0 + "/state", "clear_schemes_tried_regions")
    assert m.listdir(S0 + "/tried_regions") == ["total_bytes"]
    assert m.read(S0 + "/tried_regions/total_bytes") == "0"
    m.must(K0 + "/state", "update_schemes_tried_bytes")
    assert m.listdir(S0 + "/tried_regions") == ["total_bytes"]
    assert int(m.read(S0 + "/tried_regions/total_bytes")) == 32 * MiB


def test_ages_and_phases(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10,
                access_pattern__age__min=20)
    m.must(K0 + "/state", "on")
    m.advance(1)  # 10 aggregations: the hot range is not old enough
    m.must(K0 + "/state", "update_schemes_tried_regions")
    assert tried_regions(m) == []
    m.advance(2)
    m.must(K0 + "/state", "update_schemes_tried_regions")
    assert {r["start"] >= HOT and r["end"] <= COLD for r in tried_regions(m)} == {True}
    m.advance(5)  # t > 5 s + 2 s of ageing: the warming range is hot and old enough
    m.must(K0 + "/state", "update_schemes_tried_regions")
    regions = tried_regions(m)
    assert any(r["start"] >= WARMING for r in regions)
    assert {r["nr_accesses"] for r in regions if r["start"] >= WARMING} == {16}


def test_collapse_makes_the_hot_set_huge(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "collapse", access_pattern__nr_accesses__min=10,
                access_pattern__sz__min=2 * MiB)
    m.must(K0 + "/state", "on")
    m.advance(3)
    assert huge_bytes(m, HOT) == 32 * MiB
    assert huge_bytes(m, COLD) == 0
    s = stats(m)
    assert s["sz_applied"] >= 32 * MiB and s["nr_applied"] > 0
    # A low threshold collapses cold memory too: the bloat the feedback loop must avoid.
    m.must(S0 + "/access_pattern/nr_accesses/min", 0)
    m.must(K0 + "/state", "commit")
    m.advance(1)
    assert huge_bytes(m, COLD) == 64 * MiB


def test_quota_limits_and_counts_exceeds(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "collapse", access_pattern__nr_accesses__min=0,
                quotas__bytes=4 * MiB, quotas__reset_interval_ms=1000)
    m.must(K0 + "/state", "on")
    m.advance(5.05)
    s = stats(m)
    assert 4 * 4 * MiB <= s["sz_applied"] <= 6 * 4 * MiB
    assert s["qt_exceeds"] >= 4
    m.must(K0 + "/state", "update_schemes_effective_quotas")
    assert m.read(S0 + "/quotas/effective_bytes") == str(4 * MiB)
    total_huge = huge_bytes(m, HOT) + huge_bytes(m, COLD) + huge_bytes(m, WARMING)
    assert total_huge == s["sz_applied"]  # 2 MiB aligned chunks, applied in address order


def test_time_quota_is_converted_to_bytes(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid, action_costs_us_per_mib={"collapse": 1000.0}))
    stage_vaddr(m, proc.pid, "collapse", access_pattern__nr_accesses__min=0,
                quotas__ms=2, quotas__reset_interval_ms=1000)
    m.must(K0 + "/state", "on")
    m.advance(10.05)
    s = stats(m)
    # 1 ms per MiB: after the first window the kernel's throughput estimate gives ~2 MiB/s.
    assert s["sz_applied"] < 64 * MiB
    assert s["qt_exceeds"] > 0


def test_hugepage_action_waits_for_khugepaged(mount, sleeper):
    proc = sleeper()
    m = mount("6.12", scenario(proc.pid, thp={"enabled": "madvise"}))
    stage_vaddr(m, proc.pid, "hugepage", access_pattern__nr_accesses__min=10)
    m.must(K0 + "/state", "on")
    m.advance(1)
    status = m.status()
    hot = next(r for t in status["targets"] for r in t["ranges"] if r["start"] == HOT)
    assert hot["advised_bytes"] == 32 * MiB and hot["huge_bytes"] == 0
    m.advance(10)  # one khugepaged pass: 4096 pages = 16 MiB
    assert huge_bytes(m, HOT) == 16 * MiB
    m.advance(10)
    assert huge_bytes(m, HOT) == 32 * MiB
    assert int(m.read(os.path.join(m.root, "kernel/mm/transparent_hugepage/khugepaged/pages_collapsed"))) == 16


def test_refresh_ms_updates_stats_without_commands(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10)
    m.must(K0 + "/refresh_ms", 100)
    m.must(K0 + "/state", "on")
    m.advance(1)
    assert int(m.read(S0 + "/stats/nr_tried")) > 0


def test_apply_interval(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", scenario(proc.pid))
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10, apply_interval_us=1000000)
    m.must(K0 + "/state", "on")
    m.advance(0.95)
    assert stats(m)["nr_tried"] == 0
    m.advance(0.1)
    assert stats(m)["nr_tried"] > 0


def test_deterministic(mount, sleeper):
    proc = sleeper()
    results = []
    for unused in range(2):
        m = mount("7.3", scenario(proc.pid))
        stage_vaddr(m, proc.pid, "collapse", access_pattern__nr_accesses__min=5,
                    quotas__bytes=8 * MiB, quotas__reset_interval_ms=500)
        m.must(K0 + "/state", "on")
        m.advance(3.3)
        m.must(K0 + "/state", "update_schemes_tried_regions")
        results.append((stats(m), tried_regions(m), m.status()["targets"]))
    assert results[0] == results[1]


def test_model_by_comm_and_replacement(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", {"speed": 0, "modules": {"damon_stat": False},
                      "targets": [{"comm": "sleep", "regions": [{"start": HOT, "size": 8 * MiB, "rate": 1.0}]}]})
    stage_vaddr(m, proc.pid, "stat", access_pattern__nr_accesses__min=10)
    m.must(K0 + "/state", "on")
    m.advance(0.5)
    assert stats(m)["sz_tried"] > 0
    m.set_model([{"pid": proc.pid, "regions": [{"start": HOT, "size": 8 * MiB, "rate": 0.0}]}])
    before = stats(m)["sz_tried"]
    m.advance(1)
    assert stats(m)["sz_tried"] == before
    assert m.status()["targets"][0]["match"] == {"pid": proc.pid}


def test_unmodelled_process_uses_its_mappings(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", {"speed": 0, "modules": {"damon_stat": False}})
    stage_vaddr(m, proc.pid, "stat")
    m.must(K0 + "/state", "on")
    m.advance(0.5)
    m.must(K0 + "/state", "update_schemes_tried_regions")
    regions = tried_regions(m)
    assert len(regions) >= 10  # split up to min_nr_regions
    assert {r["nr_accesses"] for r in regions} == {0}


def test_speed_runs_the_clock(mount):
    m = mount("7.3", {"speed": 50})
    t0 = m.time()
    import time
    time.sleep(0.2)
    assert m.time() - t0 >= 5
