"""Which files exist per kernel profile, their modes and the defaults of fresh directories."""

from __future__ import annotations

import os
import stat

import pytest

from tests.emulator.profiles import Profile
from tests.unit.emulator.helpers import PROFILES

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

C0 = "kdamonds/0/contexts/0"
S0 = C0 + "/schemes/0"
HOST_ADMIN = "/sys/kernel/mm/damon/admin"


def stage_one_of_everything(m):
    """nr_kdamonds=1, then every nr_* file reading 0 becomes 1 (like tests/vm/probe_sysfs.py)."""
    m.must("kdamonds/nr_kdamonds", 1)
    changed = True
    while changed:
        changed = False
        for dirpath, _dirs, files in os.walk(m.admin):
            if "/stats" in dirpath or "tried_regions" in dirpath:
                continue
            for name in files:
                if name.startswith("nr_") and open(os.path.join(dirpath, name)).read().strip() == "0":
                    m.must(os.path.join(dirpath, name), 1)
                    changed = True


def tree(root):
    """{relative path: (mode, is_dir)} below ``root``."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            out[os.path.relpath(full, root)] = (stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode))
    return out


# (logical feature, path relative to admin after staging, first kernel)
FEATURE_PATHS = [
    ("refresh_ms", "kdamonds/0/refresh_ms", (6, 17)),
    ("addr_unit", C0 + "/addr_unit", (6, 18)),
    ("pause", C0 + "/pause", (7, 2)),
    ("intervals_goal", C0 + "/monitoring_attrs/intervals/intervals_goal/access_bp", (6, 15)),
    ("probes", C0 + "/monitoring_attrs/probes/nr_probes", (7, 2)),
    ("obsolete_target", C0 + "/targets/0/obsolete_target", (6, 19)),
    ("apply_interval_us", S0 + "/apply_interval_us", (6, 7)),
    ("target_nid", S0 + "/target_nid", (6, 11)),
    ("core_filters", S0 + "/core_filters/nr_filters", (6, 15)),
    ("dests", S0 + "/dests/nr_dests", (6, 17)),
    ("goals", S0 + "/quotas/goals/nr_goals", (6, 8)),
    ("target_metric", S0 + "/quotas/goals/0/target_metric", (6, 9)),
    ("goal nid", S0 + "/quotas/goals/0/nid", (6, 16)),
    ("goal path", S0 + "/quotas/goals/0/path", (6, 19)),
    ("effective_bytes", S0 + "/quotas/effective_bytes", (6, 9)),
    ("goal_tuner", S0 + "/quotas/goal_tuner", (7, 1)),
    ("fail_charge", S0 + "/quotas/fail_charge_denom", (7, 2)),
    ("filter addr", S0 + "/filters/0/addr_start", (6, 6)),
    ("filter allow", S0 + "/filters/0/allow", (6, 14)),
    ("filter min", S0 + "/filters/0/min", (6, 15)),
    ("sz_ops_filter_passed", S0 + "/stats/sz_ops_filter_passed", (6, 14)),
    ("nr_snapshots", S0 + "/stats/nr_snapshots", (7, 0)),
    ("max_nr_snapshots", S0 + "/stats/max_nr_snapshots", (7, 0)),
    ("total_bytes", S0 + "/tried_regions/total_bytes", (6, 6)),
]


@pytest.mark.parametrize("kernel", PROFILES)
def test_files_per_profile(mount, kernel):
    m = mount(kernel)
    stage_one_of_everything(m)
    version = Profile.for_kernel(kernel).version
    for feature, rel, since in FEATURE_PATHS:
        assert m.exists(rel) == (version >= since), "%s (%s) on %s" % (feature, rel, kernel)


@pytest.mark.parametrize("kernel", PROFILES)
def test_modes(mount, kernel):
    m = mount(kernel)
    stage_one_of_everything(m)
    read_only = {"pid", "avail_operations", "effective_bytes", "nr_tried", "sz_tried", "nr_applied",
                 "sz_applied", "sz_ops_filter_passed", "qt_exceeds", "nr_snapshots", "total_bytes"}
    for rel, (mode, is_dir) in tree(m.admin).items():
        name = os.path.basename(rel)
        if is_dir:
            assert mode == 0o755, rel
        else:
            assert mode == (0o400 if name in read_only else 0o600), rel


def test_fresh_defaults_73(mount):
    m = mount("7.3")
    stage_one_of_everything(m)
    expect = {
        "kdamonds/0/state": "off", "kdamonds/0/pid": "-1", "kdamonds/0/refresh_ms": "0",
        C0 + "/operations": "vaddr", C0 + "/addr_unit": "1", C0 + "/pause": "N",
        C0 + "/avail_operations": "vaddr\nfvaddr\npaddr",
        C0 + "/monitoring_attrs/intervals/sample_us": "5000",
        C0 + "/monitoring_attrs/intervals/aggr_us": "100000",
        C0 + "/monitoring_attrs/intervals/update_us": "60000000",
        C0 + "/monitoring_attrs/nr_regions/min": "10",
        C0 + "/monitoring_attrs/nr_regions/max": "1000",
        C0 + "/targets/0/pid_target": "0", C0 + "/targets/0/obsolete_target": "N",
        S0 + "/action": "stat", S0 + "/apply_interval_us": "0", S0 + "/target_nid": "-1",
        S0 + "/access_pattern/sz/max": "0", S0 + "/access_pattern/nr_accesses/max": "0",
        S0 + "/access_pattern/age/max": "0",
        S0 + "/quotas/goal_tuner": "consist", S0 + "/quotas/goals/0/target_metric": "user_input",
        S0 + "/watermarks/metric": "none",
        S0 + "/core_filters/0/type": "anon", S0 + "/filters/0/matching": "N",
        S0 + "/tried_regions/total_bytes": "0", S0 + "/stats/nr_tried": "0",
    }
    for rel, value in expect.items():
        assert m.read(rel) == value, rel


def test_no_damon_on_debian_61(mount):
    m = mount("6.1")
    assert not os.path.exists(os.path.join(m.root, "kernel/mm/damon"))
    assert not os.path.exists(os.path.join(m.root, "module"))
    assert m.read(os.path.join(m.root, "kernel/mm/transparent_hugepage/enabled")) == "always [madvise] never"


@pytest.mark.parametrize("kernel,modules", [
    ("6.6", ["damon_lru_sort", "damon_reclaim"]),
    ("6.18", ["damon_lru_sort", "damon_reclaim", "damon_stat"]),
])
def test_module_dirs(mount, kernel, modules):
    m = mount(kernel)
    assert sorted(os.listdir(os.path.join(m.root, "module"))) == modules
    assert m.read(os.path.join(m.root, "module/damon_reclaim/parameters/enabled")) == "N"
    assert m.read(os.path.join(m.root, "module/damon_reclaim/parameters/kdamond_pid")) == "-1"


@pytest.mark.skipif(not os.path.isdir(HOST_ADMIN + "/kdamonds/0/contexts/0/schemes/0"),
                    reason="the host has no configured kdamond 0 to compare against")
def test_same_files_as_the_host_kernel(mount):
    """The host (6.18 on the development machines) is a read-only oracle: build a kdamond
    shaped like its kdamond 0 (same nr_* counts) and compare names and modes."""
    release = os.uname().release
    m = mount(release)
    host = tree(HOST_ADMIN)
    # Recreate the same shape: every nr_* file gets the host's value, top-down.
    nr_files = [r for r, (mode, is_dir) in host.items()
                if os.path.basename(r).startswith("nr_") and not is_dir and mode & 0o200]
    for rel in sorted(nr_files, key=lambda r: r.count("/")):
        with open(os.path.join(HOST_ADMIN, rel)) as f:
            m.must(rel, f.read().strip())
    ignore = ("tried_regions/",)  # depend on the host's last update_schemes_tried_regions
    ours = {r: v for r, v in tree(m.admin).items() if not any(i in r for i in ignore)}
    theirs = {r: v for r, v in host.items() if not any(i in r for i in ignore)}
    assert ours == theirs
