# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input is refused before any write, with the option path and the allowed range (issue 8, item 5).

Covers the kernel C type of every integer field (one table, plugins/module_utils/_damon_layout.py),
ordered min/max pairs, names, paths, PIDs, finite floats, pool sizes, budgets, duplicate
application names, the collapse planner's bounded memory, bounded regex matching, the
up-front root check and the report of a sysfs root that is gone.
"""

from __future__ import annotations

import copy
import math
import os
import re
import tracemalloc
from array import array

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse as collapse
from ansible_collections.linux_mm.damon.plugins.module_utils import _hot_processes as hot
from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect, from_table
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import (
    CONTEXT, KDAMOND, Field, SpecError, to_tree,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import (
    check_finite, check_pool_size, validate_context, validate_hugepage_args, validate_kdamond,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import (
    CAP_SYS_NICE, effective_caps, needs_root,
)
from ansible_collections.linux_mm.damon.plugins.plugin_utils._policy import split_host_budget
from tests.helpers.fake_proc import FakeProc
from tests.helpers.pagemap import HUGE, PAGE, FakeKpf, present


class Flags(object):
    """Features of a kernel with everything (the checks here do not depend on features)."""

    release = "7.3.4"

    def has(self, feature):
        return True

    def since_text(self, feature):
        return "Linux 7.3"


K73 = Flags()
ME = os.getpid()
BASE = {"operations": "vaddr", "targets": [{"pid": ME}], "schemes": [{"action": "stat"}]}


def ctx(**change):
    spec = copy.deepcopy(BASE)
    for path, value in change.items():
        node = spec
        keys = path.split("__")
        for key in keys[:-1]:
            if key.isdigit():
                node = node[int(key)]
            else:
                node = node.setdefault(key, [{}] if key in ("filters", "goals") else {})
        node[keys[-1]] = value
    return spec


def refused(spec, message):
    with pytest.raises(SpecError) as e:
        validate_context(spec, K73, [])
    assert message in str(e.value), str(e.value)
    return str(e.value)


# --- kernel C types, one table -------------------------------------------------------------

def _fields(members):
    for m in members:
        if isinstance(m, Field):
            yield m
        else:
            yield from _fields(m.members)


def test_every_integer_field_of_the_table_has_its_kernel_type():
    ints = [f for f in _fields(KDAMOND + CONTEXT) if f.kind is int]
    assert len(ints) > 30
    assert all(f.ctype is not None for f in ints)
    by_path = dict((f.path, f.ctype[0]) for f in ints)
    # what mm/damon/sysfs.c and sysfs-schemes.c parse them with
    assert by_path["refresh_ms"] == "unsigned int"  # kstrtouint
    assert by_path["pid_target"] == "int"  # kstrtoint
    assert by_path["target_nid"] == "int"
    assert by_path["monitoring_attrs/intervals/aggr_us"] == "unsigned long"
    assert by_path["access_pattern/nr_accesses/max"] == "unsigned int"  # struct damos_access_pattern
    assert by_path["quotas/weights/sz_permil"] == "unsigned int"
    with pytest.raises(ValueError, match="needs the C type"):
        Field("x", "x", int, 0)


@pytest.mark.parametrize("change, message", [
    ({"monitoring_attrs__aggr_us": 2 ** 70},
     "monitoring_attrs.aggr_us: 1180591620717411303424 is out of range for unsigned long (0..18446744073709551615)"),
    ({"schemes__0__apply_interval_us": -1},
     "schemes[0].apply_interval_us: -1 is out of range for unsigned long (0..18446744073709551615)"),
    ({"schemes__0__access_pattern": {"max_nr_accesses": 2 ** 32}},
     "schemes[0].access_pattern.max_nr_accesses: 4294967296 is out of range for unsigned int (0..4294967295)"),
    ({"schemes__0__target_nid": 2 ** 31}, "schemes[0].target_nid: 2147483648 is out of range for int"),
    ({"schemes__0__quotas": {"weights": {"sz_permil": 2 ** 32}}},
     "schemes[0].quotas.weights.sz_permil: 4294967296 is out of range for unsigned int"),
    ({"schemes__0__filters": [{"type": "addr", "addr_start": 0, "addr_end": 2 ** 64}]},
     "schemes[0].filters[0].addr_end: 18446744073709551616 is out of range for unsigned long"),
    ({"schemes__0__quotas": {"goals": [{"target_value": -5}]}},
     "schemes[0].quotas.goals[0].target_value: -5 is out of range for unsigned long"),
    ({"targets": [{"pid": ME, "regions": [{"start": 0, "end": 2 ** 65}]}]},
     "targets[0].regions[0].end: 36893488147419103232 is out of range for unsigned long"),
    ({"schemes__0__quotas": {"bytes": "lots"}}, "schemes[0].quotas.bytes: 'lots' is not an integer"),
])
def test_integers_beyond_the_kernel_type_are_refused_with_path_and_range(change, message):
    spec = copy.deepcopy(BASE)
    for key, value in change.items():
        if key == "targets":
            spec["targets"] = value
            continue
        node, keys = spec, key.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
        node[keys[-1]] = value
    first = refused(spec, message)
    assert refused(spec, message) == first  # the same input fails the same way


def test_refresh_ms_name_and_pool_size_outside_the_context():
    with pytest.raises(SpecError, match=re.escape("refresh_ms: 18446744073709551616 is out of range for unsigned int "
                                                  "(0..4294967295)")):
        validate_kdamond("hot", 2 ** 64, 1)
    with pytest.raises(SpecError, match=r"name: '' is empty"):
        validate_kdamond("", 0, 1)
    with pytest.raises(SpecError, match=r"name: '  ' is empty"):
        validate_kdamond("  ", 0, 1)
    with pytest.raises(SpecError, match=r"must be one line"):
        validate_kdamond("a\nb", 0, 1)
    for bad in (-1, 0, 65, 2000):
        with pytest.raises(SpecError, match=r"pool_size: %d is outside 1\.\.64" % bad):
            validate_kdamond("hot", 0, bad)
    validate_kdamond("hot", 2 ** 32 - 1, 64)
    check_pool_size(1)


def test_to_tree_never_renders_a_value_the_kernel_refuses():
    """A safety net behind the checks: the tree of file values is built from checked values only."""
    spec = {"refresh_ms": 0, "contexts": [dict(BASE, monitoring_attrs={"sample_us": -1})]}
    with pytest.raises(SpecError, match=r"contexts\[0\]\.monitoring_attrs\.sample_us: -1 is out of range"):
        to_tree(KDAMOND, spec, from_table("7.3.4"))


# --- ordered pairs, names, paths ------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"monitoring_attrs__intervals_goal": {"min_sample_us": 10000, "max_sample_us": 5000}},
     "monitoring_attrs.intervals_goal: min_sample_us (10000) is greater than max_sample_us (5000)"),
    ({"schemes__0__filters": [{"type": "hugepage_size", "min": 4 << 20, "max": 2 << 20}]},
     "schemes[0].filters[0]: min (4194304) is greater than max (2097152)"),
    ({"schemes__0__filters": [{"type": "addr", "addr_start": 8192, "addr_end": 4096}]},
     "schemes[0].filters[0]: addr_end must be above addr_start"),
    ({"schemes__0__access_pattern": {"min_nr_accesses": 9, "max_nr_accesses": 3}},
     "min_nr_accesses (9) is greater than max_nr_accesses (3)"),
    ({"schemes__0__filters": [{"type": "memcg", "memcg_path": "system.slice"}]},
     "schemes[0].filters[0].memcg_path: 'system.slice' must be an absolute path on one line"),
    ({"schemes__0__filters": [{"type": "memcg", "memcg_path": "/a\n/b"}]},
     "schemes[0].filters[0].memcg_path: '/a\\n/b' must be an absolute path on one line"),
    ({"monitoring_attrs__sample_us": 0}, "monitoring_attrs: sample_us (0) must be at least 1"),
    ({"addr_unit": 0}, "addr_unit: must be at least 1"),
])
def test_pairs_are_ordered_and_paths_absolute(change, message):
    refused(ctx(**change), message)


def test_sample_us_zero_never_divides_by_zero_in_the_hugepage_options():
    for on_target in (True, False):
        with pytest.raises(SpecError, match=r"sample_us \(0\) must be at least 1"):
            validate_hugepage_args({"apps": [], "monitoring_attrs": {"sample_us": 0, "aggr_us": 100000}}, [],
                                   on_target=on_target)


@pytest.mark.parametrize("runs", [
    [{"start": 4, "end": 2, "access_bp": 1}],
    [{"start": 0, "end": 8, "access_bp": 1}, {"start": 6, "end": 9, "access_bp": 1}],
])
def test_the_previous_chunk_access_must_be_sorted_disjoint_ranges(runs):
    with pytest.raises(SpecError, match=r"apps\[0\] \(db\)\.previous_chunk_access\[\d\]: ranges must be non-empty, "
                       "sorted and disjoint"):
        validate_hugepage_args({"apps": [{"name": "db", "pid": 1234, "previous_chunk_access": runs}]}, [],
                               on_target=False)


def test_a_confirmed_share_above_the_latest_one_is_refused():
    """confirmed_bp is the lower of two snapshots' shares, the later of which is access_bp."""
    runs = [{"start": 0, "end": 2 << 20, "access_bp": 1500, "confirmed_bp": 2000}]
    with pytest.raises(SpecError, match=r"previous_chunk_access\[0\]\.confirmed_bp: 2000 is above access_bp 1500"):
        validate_hugepage_args({"apps": [{"name": "db", "pid": 1234, "previous_chunk_access": runs}]}, [],
                               on_target=False)


# --- PIDs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pid", [0, -1, 4194304, 2 ** 70])
def test_pids_beyond_pid_max_limit_are_refused_not_overflowing(pid):
    refused(ctx(targets=[{"pid": pid}]), "targets[0].pid: %d is not a valid PID (1..4194303" % pid)
    with pytest.raises(SpecError, match=r"apps\[0\] \(web\)\.pid: %d is not a valid PID" % pid):
        validate_hugepage_args({"apps": [{"name": "web", "pid": pid}]}, [], on_target=False)
    with pytest.raises(collapse.CollapseError, match=r"pid: %d is not a valid PID" % pid):
        collapse.collapse(pid, [{"start": 0, "end": 2 << 20}], kernel=object())


def test_kernel_threads_are_refused_and_pid_1_is_warned():
    kthread = procfs.read_stat(2)
    assert procfs.is_kernel_thread(kthread), "PID 2 is kthreadd on Linux"
    refused(ctx(targets=[{"pid": 2}]), "targets[0].pid: PID 2 (kthreadd) is a kernel thread")
    with pytest.raises(SpecError, match=r"apps\[0\] \(k\)\.pid: PID 2 \(kthreadd\) is a kernel thread"):
        validate_hugepage_args({"apps": [{"name": "k", "pid": 2}]}, [])
    with pytest.raises(collapse.CollapseError, match=r"PID 2 \(kthreadd\) is a kernel thread"):
        collapse.collapse(2, [{"start": 0, "end": 2 << 20}], kernel=object())
    warnings = []
    validate_context(ctx(targets=[{"pid": 1}]), K73, warnings)
    assert any("targets[0].pid: PID 1" in w and "init process" in w for w in warnings), warnings


def test_kernel_thread_without_pf_kthread_flag_is_recognised(tmp_path):
    """Children of kthreadd with an empty command line, on a fake /proc."""
    d = tmp_path / "77"
    d.mkdir()
    fields = ["S", 2, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, 5, 0, 0]
    (d / "stat").write_text("77 (kworker/u8:1) %s\n" % " ".join(str(f) for f in fields))
    (d / "cmdline").write_bytes(b"")
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import check_target_process
    with pytest.raises(SpecError, match=r"kernel thread"):
        check_target_process("apps[0].pid", 77, [], proc_root=str(tmp_path))


# --- floats, budgets, duplicate names --------------------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_no_nan_or_infinity_in_float_options(value):
    for name in ("timeout_s", "interval_s"):
        with pytest.raises(SpecError, match=r"%s: .* is not a finite number" % name):
            validate_hugepage_args({"apps": [], name: value}, [], on_target=False)
    with pytest.raises(SpecError, match="not a finite number"):
        check_finite("x", value)
    assert not math.isfinite(value)


def test_a_negative_app_budget_blames_the_app_not_the_host():
    with pytest.raises(SpecError, match=r"apps\[1\] \(db\)\.budget_bytes: -5 is out of range for unsigned long"):
        validate_hugepage_args({"apps": [{"name": "web", "pid": 1000, "budget_bytes": 0},
                                         {"name": "db", "pid": 1001, "budget_bytes": -5}],
                                "host_budget_bytes": 1 << 30}, [], on_target=False)
    with pytest.raises(ValueError) as e:
        split_host_budget(1 << 30, {"web": 0, "db": -5})
    assert str(e.value).startswith("apps[db].budget_bytes: -5 is negative") and "host_budget_bytes" not in str(e.value)
    with pytest.raises(ValueError, match=r"^host_budget_bytes: -1 is negative"):
        split_host_budget(-1, {"web": 0})
    with pytest.raises(ValueError, match=r"^host_budget_bytes: 1 bytes cannot be split among 2"):
        split_host_budget(1, {"web": 0, "db": 0})


def test_duplicate_application_names_are_refused_not_merged():
    apps = [{"name": "web", "pid": 1000}, {"name": "db", "pid": 1001}, {"name": "web", "pid": 1002}]
    with pytest.raises(SpecError, match=r"apps: application names must be unique; 'web' is given as apps\[0\] and "
                                        r"apps\[2\]"):
        validate_hugepage_args({"apps": apps}, [], on_target=False)
    with pytest.raises(SpecError, match=r"apps\[0\]\.name: '' is empty"):
        validate_hugepage_args({"apps": [{"name": "", "pid": 1000}]}, [], on_target=False)


def test_pool_size_and_per_app_values_in_the_hugepage_options():
    for bad in (-3, 0, 2000):
        with pytest.raises(SpecError, match=r"pool_size: %d is outside 1\.\.64" % bad):
            validate_hugepage_args({"apps": [], "pool_size": bad}, [], on_target=False)
    with pytest.raises(SpecError, match=r"apps\[0\] \(web\)\.threshold: 4294967296 is out of range for unsigned int"):
        validate_hugepage_args({"apps": [{"name": "web", "pid": 1000, "threshold": 2 ** 32}]}, [], on_target=False)
    with pytest.raises(SpecError, match=r"apps\[0\] \(web\): sample_us \(0\) must be at least 1"):
        validate_hugepage_args({"apps": [{"name": "web", "pid": 1000, "sample_us": 0, "aggr_us": 100}]}, [],
                               on_target=False)
    with pytest.raises(SpecError, match=r"max_iterations: must be a positive integer"):
        validate_hugepage_args({"apps": [], "max_iterations": 0}, [], on_target=False)


# --- collapse: bounded by the mappings, not by the range -------------------------------------

BASE_ADDR = 0x7F0000000000  # 2 MiB aligned


class Mem(object):
    """Pagemap in which every page read is present."""

    def __init__(self):
        self.reads = []

    def read_entries(self, start, end):
        self.reads.append((start, end))
        return array("Q", [present()] * ((end - start) // PAGE))


def _vma(start, end, rss=None):
    fields = {"AnonHugePages": 0}
    if rss is not None:
        fields["Rss"] = rss
    return procfs.Vma(start, end, "rw-p", fields=fields, vm_flags=frozenset(("rd", "wr", "mr", "mw", "me")))


def test_collapse_plan_of_a_huge_range_is_bounded_by_the_mappings():
    """[0, 2**40) is 524288 chunks. The old planner made a list entry and a Chunk for every one of
    them (hundreds of MB here); this one keeps one run per gap and one Chunk per mapped chunk."""
    mem = Mem()
    low = 1 << 30
    vmas = [_vma(low - 64 * HUGE, low - 60 * HUGE, rss=0),  # reserved, nothing resident: not even read
            _vma(low, low + 4 * HUGE)]
    ranges = [(0, 2 ** 40), (low, low + 2 ** 40)]
    tracemalloc.start()
    try:
        planned = collapse.plan(ranges, vmas, mem.read_entries, FakeKpf(available=False), 0.5, 0, HUGE, PAGE)
        unused, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    objects = sum(len(r["chunks"]) for r in planned)
    assert objects == 10, [(c.state, c.count) for r in planned for c in r["chunks"]]
    assert peak < 2 << 20, peak
    summary = collapse.summarize(planned, HUGE)
    chunks = summary["chunks"]
    assert chunks["tried"] == 4 and chunks["skipped_sparse"] == 4
    assert summary["ranges"][1]["duplicate"] == (2 ** 40 - low) // HUGE  # planned by range 0 already
    assert chunks["skipped_unmapped"] == 2 ** 40 // HUGE - 8 + low // HUGE  # every chunk counted once
    assert mem.reads == [(low, low + 4 * HUGE)]


def test_collapse_plan_of_the_whole_address_space_reads_pagemap_in_bounded_batches():
    mem = Mem()
    big = 1000 * HUGE
    vmas = [_vma(BASE_ADDR, BASE_ADDR + big)]
    planned = collapse.plan([(0, 2 ** 64 - 1)], vmas, mem.read_entries, FakeKpf(available=False), 0.5, 8 * HUGE, HUGE, PAGE)
    assert max(end - start for start, end in mem.reads) <= collapse.READ_BATCH_CHUNKS * HUGE
    states = [(c.state, c.count) for c in planned[0]["chunks"]]
    assert states[0] == ("skipped_unmapped", BASE_ADDR // HUGE)
    assert states[1:9] == [("collapse", 1)] * 8
    assert states[9] == ("skipped_quota", 1000 - 8)  # one run, not 992 objects
    assert states[10][0] == "skipped_unmapped" and len(states) == 11


def test_collapse_check_mode_over_the_whole_user_address_space_of_a_real_process():
    """This test process, [0, 2**47): finishes with a bounded number of chunk objects and memory."""
    tracemalloc.start()
    try:
        result = collapse.collapse(ME, [{"start": 0, "end": 2 ** 47}], check_mode=True)
        unused, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    counts = result["chunks"]
    assert counts["skipped_unmapped"] > 2 ** 47 // HUGE // 2  # mostly unmapped
    assert counts["collapsed"] == 0
    assert peak < 64 << 20, peak


# --- regular expressions ---------------------------------------------------------------------

def test_patterns_see_at_most_4096_characters():
    regex = re.compile(r"x$")
    assert hot.bounded_search(regex, "a" * 4095 + "x", "cmdline_pattern", 7)
    assert not hot.bounded_search(regex, "a" * 5000 + "x", "cmdline_pattern", 7)


def test_a_catastrophic_pattern_fails_with_its_option_instead_of_running_for_ever():
    regex = re.compile(r"(a+)+$")
    with pytest.raises(hot.HotProcessError, match=r"cmdline_pattern: '\(a\+\)\+\$' took more than 0\.2 s .*PID 7"):
        hot.bounded_search(regex, "a" * 40 + "!", "cmdline_pattern", 7, limit_s=0.2)
    assert hot.bounded_search(regex, "aaa", "cmdline_pattern", 7)  # the timer is gone afterwards


def test_hot_process_scan_truncates_long_command_lines(tmp_path):
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, comm="init", ppid=0, ticks=20, starttime=100, cmdline=["/sbin/init"], cgroup="0::/\n")
    proc.add(100, comm="java", ticks=20, starttime=100, cmdline=["java"] + ["-Dx=1"] * 2000 + ["end"], cgroup="0::/\n")
    root = proc.root
    found, unused = hot.find_hot_processes(window_s=0, top=0, cmdline_pattern=r"java", proc_root=str(root),
                                           self_pid=999, huge=HUGE, sleep=lambda s: None)
    assert [p["pid"] for p in found] == [100]
    found, unused = hot.find_hot_processes(window_s=0, top=0, cmdline_pattern=r"end$", proc_root=str(root),
                                           self_pid=999, huge=HUGE, sleep=lambda s: None)
    assert found == []  # "end" is beyond the first 4096 characters


# --- root, sysfs root ------------------------------------------------------------------------

def test_needs_root_is_said_up_front_with_an_injected_euid():
    msg = needs_root("kdamond", "write DAMON sysfs files", euid=1000)
    assert msg == ("linux_mm.damon.kdamond needs root (become: true) to write DAMON sysfs files; it runs as "
                   "uid 1000; nothing was changed")
    assert needs_root("kdamond", "write", euid=0) is None
    assert needs_root("collapse", "collapse", euid=1000, caps=1 << CAP_SYS_NICE, enough_cap=CAP_SYS_NICE) is None
    assert "without CAP_SYS_NICE" in needs_root("collapse", "collapse", euid=1000, caps=0, enough_cap=CAP_SYS_NICE)
    assert effective_caps("/nonexistent") == 0


def test_a_vanished_sysfs_root_is_not_blamed_on_the_kernel_config(tmp_path):
    gone = tmp_path / "gone"
    assert detect(str(gone), "6.12.0").reason == "sysfs root %s does not exist" % gone
    empty = tmp_path / "empty"  # e.g. the mount point of an emulator that went away
    empty.mkdir()
    reason = detect(str(empty), "6.12.0").reason
    assert reason.startswith("sysfs root %s does not exist as a sysfs" % empty) and "CONFIG_DAMON" not in reason
    (tmp_path / "sys" / "kernel" / "mm").mkdir(parents=True)
    assert "CONFIG_DAMON_SYSFS is not set" in detect(str(tmp_path / "sys"), "6.12.0").reason
