"""Kernel write semantics: nr_* recreation, errnos, state words per version, exclusivity."""

from __future__ import annotations

import os

import pytest

from tests.emulator import FOREIGN_PADDR_KDAMOND
from tests.unit.emulator.helpers import PROFILES, stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

K0 = "kdamonds/0"
C0 = K0 + "/contexts/0"
S0 = C0 + "/schemes/0"
NO_STAT = {"modules": {"damon_stat": False}}


def test_nr_write_recreates_children_even_with_same_value(mount):
    m = mount("7.3")
    m.must("kdamonds/nr_kdamonds", 1)
    m.must(K0 + "/contexts/nr_contexts", 1)
    m.must(C0 + "/schemes/nr_schemes", 1)
    m.must(S0 + "/action", "pageout")
    m.must(C0 + "/monitoring_attrs/intervals/sample_us", 12345)
    m.must(C0 + "/schemes/nr_schemes", 1)
    assert m.read(S0 + "/action") == "stat"  # recreated with defaults
    assert m.read(C0 + "/monitoring_attrs/intervals/sample_us") == "12345"  # sibling untouched
    m.must("kdamonds/nr_kdamonds", 1)
    assert m.read(K0 + "/contexts/nr_contexts") == "0"
    m.must("kdamonds/nr_kdamonds", 2)
    assert m.listdir("kdamonds") == ["0", "1", "nr_kdamonds"]
    m.must("kdamonds/nr_kdamonds", 0)
    assert m.listdir("kdamonds") == ["nr_kdamonds"]


def test_a_removed_directory_is_gone_at_once_though_the_kernel_keeps_its_entries(mount):
    """fs.py mounts with an entry timeout: a path looked up before its directory went must still fail."""
    m = mount("7.3")
    m.must("kdamonds/nr_kdamonds", 2)
    m.must("kdamonds/1/contexts/nr_contexts", 1)
    assert m.read("kdamonds/1/contexts/0/operations") and m.exists("kdamonds/1/contexts/0")  # entries cached
    m.must("kdamonds/nr_kdamonds", 1)
    assert not m.exists("kdamonds/1") and not m.exists("kdamonds/1/contexts/0/operations")
    for call in (lambda: m.read("kdamonds/1/contexts/0/operations"), lambda: m.listdir("kdamonds/1/contexts")):
        with pytest.raises(FileNotFoundError):
            call()
    assert m.write("kdamonds/1/state", "on") == "open:ENOENT"
    m.must("kdamonds/nr_kdamonds", 2)  # back, with fresh defaults
    assert m.read("kdamonds/1/contexts/nr_contexts") == "0" and not m.exists("kdamonds/1/contexts/0")


@pytest.mark.parametrize("value,errno_name", [("-1", "EINVAL"), ("abc", "EINVAL"), ("1 2", "EINVAL"),
                                              ("99999999999", "ERANGE")])
def test_nr_rejects_bad_numbers(mount, value, errno_name):
    m = mount("7.3")
    assert m.write("kdamonds/nr_kdamonds", value) == errno_name
    assert m.read("kdamonds/nr_kdamonds") == "0"


def test_value_files_reject_bad_input(mount):
    m = mount("7.3")
    stage_vaddr(m, os.getpid())
    assert m.write(K0 + "/contexts/nr_contexts", 2) == "EINVAL"
    assert m.write(C0 + "/monitoring_attrs/intervals/sample_us", "-1") == "EINVAL"
    assert m.write(C0 + "/monitoring_attrs/intervals/sample_us", "99999999999999999999999") == "ERANGE"
    assert m.write(C0 + "/targets/0/pid_target", "abc") == "EINVAL"
    assert m.write(C0 + "/targets/0/pid_target", "-5") == "ok"  # checked only at `on`
    assert m.write(S0 + "/quotas/ms", "abc") == "EINVAL"
    assert m.write(C0 + "/operations", "bogus") == "EINVAL"
    assert m.write(C0 + "/addr_unit", "0") == "EINVAL"
    assert m.write(S0 + "/action", "bogus") == "EINVAL"
    assert m.write(K0 + "/pid", "1") == "open:EACCES"
    assert m.write(S0 + "/stats/nr_tried", "1") == "open:EACCES"
    assert m.write(S0 + "/action", "stat\n") == "ok"  # one trailing newline is fine


@pytest.mark.parametrize("kernel,accepted", [("6.12", False), ("7.3", True)])
def test_collapse_only_from_72(mount, kernel, accepted):
    m = mount(kernel)
    stage_vaddr(m, os.getpid())
    assert m.write(S0 + "/action", "collapse") == ("ok" if accepted else "EINVAL")


def test_filter_types_per_layer_and_version(mount):
    m = mount("7.3")
    stage_vaddr(m, os.getpid())
    for d in ("filters", "core_filters", "ops_filters"):
        m.must(S0 + "/%s/nr_filters" % d, 1)
    assert m.write(S0 + "/core_filters/0/type", "anon") == "EINVAL"
    assert m.write(S0 + "/core_filters/0/type", "addr") == "ok"
    assert m.write(S0 + "/ops_filters/0/type", "addr") == "EINVAL"
    assert m.write(S0 + "/ops_filters/0/type", "hugepage_size") == "ok"
    assert m.write(S0 + "/filters/0/type", "target") == "ok"
    assert m.write(S0 + "/filters/0/type", "bogus") == "EINVAL"
    old = mount("6.12")
    stage_vaddr(old, os.getpid())
    old.must(S0 + "/filters/nr_filters", 1)
    assert old.write(S0 + "/filters/0/type", "young") == "ok"
    assert old.write(S0 + "/filters/0/type", "unmapped") == "EINVAL"


STATE_WORDS = ("on", "off", "commit", "commit_schemes_quota_goals", "update_schemes_stats",
               "update_schemes_tried_bytes", "update_schemes_tried_regions",
               "clear_schemes_tried_regions", "update_schemes_effective_quotas", "update_tuned_intervals")
SINCE = {"update_schemes_tried_bytes": (6, 6), "commit_schemes_quota_goals": (6, 8),
         "update_schemes_effective_quotas": (6, 9), "update_tuned_intervals": (6, 15)}


@pytest.mark.parametrize("kernel", PROFILES)
def test_state_words_per_version(mount, kernel, sleeper):
    m = mount(kernel, NO_STAT)
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    version = tuple(int(x) for x in kernel.split("."))
    m.must(K0 + "/state", "on")
    assert m.read(K0 + "/state") == "on"
    for word in STATE_WORDS[2:]:
        expected = "ok" if version >= SINCE.get(word, (0, 0)) else "EINVAL"
        assert m.write(K0 + "/state", word) == expected, word
    assert m.write(K0 + "/state", "bogus") == "EINVAL"
    assert m.write(K0 + "/state", " commit") == "EINVAL"
    m.must(K0 + "/state", "off")
    assert m.read(K0 + "/state") == "off"


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_on_off_errors(mount, kernel, sleeper):
    """Checked against each kernel's sysfs.c (and the guests' probe fixtures)."""
    new = kernel == "7.3"
    m = mount(kernel, NO_STAT)
    m.must("kdamonds/nr_kdamonds", 1)
    assert m.write(K0 + "/state", "on") == "EINVAL"  # nr_contexts 0
    assert m.write(K0 + "/state", "off") == "EINVAL"  # never started
    assert m.write(K0 + "/state", "commit") == "EINVAL"
    assert m.write(K0 + "/state", "clear_schemes_tried_regions") == "EINVAL"  # no context
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    assert m.write(K0 + "/state", "clear_schemes_tried_regions") == ("ok" if new else "EINVAL")
    assert m.read(K0 + "/pid") == "-1"
    m.must(K0 + "/state", "on")
    pid = int(m.read(K0 + "/pid"))
    assert pid >= 40000
    assert m.write(K0 + "/state", "on") == "EBUSY"
    assert m.write("kdamonds/nr_kdamonds", 1) == "EBUSY"
    assert m.write("kdamonds/nr_kdamonds", 2) == "EBUSY"
    m.must(K0 + "/state", "off")
    assert m.read(K0 + "/pid") == "-1"
    assert m.write(K0 + "/state", "off") == ("ok" if new else "EPERM")
    assert m.write(K0 + "/state", "update_schemes_stats") == ("ECANCELED" if new else "EINVAL")
    m.must(K0 + "/state", "on")
    assert int(m.read(K0 + "/pid")) != pid  # a new kdamond thread
    m.must(K0 + "/state", "off")
    m.must("kdamonds/nr_kdamonds", 1)  # allowed again once nothing runs


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_on_rejects_bad_inputs(mount, kernel, sleeper):
    m = mount(kernel, NO_STAT)
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    regions = C0 + "/targets/0/regions"

    def on():
        result = m.write(K0 + "/state", "on")
        if result == "ok":
            m.must(K0 + "/state", "off")
        return result

    m.must(C0 + "/targets/0/pid_target", 0)
    assert on() == "EINVAL"  # no such process
    m.must(C0 + "/targets/0/pid_target", 2**22 + 7)
    assert on() == "EINVAL"
    m.must(C0 + "/targets/0/pid_target", proc.pid)
    m.must(regions + "/nr_regions", 2)
    for i, (start, end) in enumerate([(0x10000, 0x30000), (0x20000, 0x40000)]):
        m.must(regions + "/%d/start" % i, start)
        m.must(regions + "/%d/end" % i, end)
    assert on() == "EINVAL"  # overlapping
    m.must(regions + "/1/start", 0x30000)
    assert on() == "ok"
    m.must(regions + "/0/end", 0x10000)
    assert on() == "EINVAL"  # empty region
    m.must(regions + "/nr_regions", 0)
    m.must(C0 + "/monitoring_attrs/nr_regions/min", 2)
    assert on() == "EINVAL"  # min_nr_regions < 3
    m.must(C0 + "/monitoring_attrs/nr_regions/min", 10)
    m.must(C0 + "/monitoring_attrs/intervals/sample_us", 200000)
    assert on() == "EINVAL"  # sample > aggr
    m.must(C0 + "/monitoring_attrs/intervals/sample_us", 5000)
    m.must(C0 + "/operations", "paddr")
    m.must(C0 + "/targets/nr_targets", 2)
    assert on() == "EINVAL"  # paddr takes one target
    m.must(C0 + "/targets/nr_targets", 1)
    m.must(regions.replace("/0/", "/0/") + "/nr_regions", 1)
    m.must(regions + "/0/start", 4096)
    m.must(regions + "/0/end", 1 << 30)
    assert on() == "ok"  # pid_target is ignored for paddr
    m.must(K0 + "/contexts/nr_contexts", 0)
    assert m.write(K0 + "/state", "on") == "EINVAL"


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_commit(mount, kernel, sleeper):
    m = mount(kernel, NO_STAT)
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    m.must(K0 + "/state", "on")
    m.must(S0 + "/access_pattern/nr_accesses/min", 5)
    m.must(K0 + "/state", "commit")
    assert m.read(K0 + "/state") == "on"
    m.must(C0 + "/targets/0/pid_target", 0)  # invalid input
    if kernel == "7.3":
        assert m.write(K0 + "/state", "commit") == "EINVAL"
        assert m.read(K0 + "/state") == "on"  # damon_call(): kdamond keeps running
    else:
        assert m.write(K0 + "/state", "commit") == "ok"
        assert m.read(K0 + "/state") == "off"  # 6.12: the callback error stops kdamond


@pytest.mark.parametrize("kernel", ["6.18", "7.3"])
def test_exclusive_modules(mount, kernel, sleeper):
    m = mount(kernel)  # profile default: damon_stat enabled (Debian)
    stat_enabled = os.path.join(m.root, "module/damon_stat/parameters/enabled")
    assert m.read(stat_enabled) == "Y"
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    assert m.write(K0 + "/state", "on") == "EBUSY"
    m.must(stat_enabled, "N")
    m.must(K0 + "/state", "on")
    assert m.write(stat_enabled, "Y") == "EBUSY"
    assert m.read(stat_enabled) == "N"
    reclaim = os.path.join(m.root, "module/damon_reclaim/parameters/enabled")
    assert m.write(reclaim, "Y") == "EBUSY"
    assert m.write(reclaim, "maybe") == "EINVAL"
    m.must(K0 + "/state", "off")
    m.must(reclaim, "Y")
    assert int(m.read(os.path.join(m.root, "module/damon_reclaim/parameters/kdamond_pid"))) > 0
    assert m.write(stat_enabled, "Y") == "EBUSY"  # one exclusive module at a time


def test_exclusive_flag_on_the_command_line(mount):
    m = mount("7.3", exclusive={"damon_stat": False, "damon_lru_sort": True})
    assert m.read(os.path.join(m.root, "module/damon_stat/parameters/enabled")) == "N"
    assert m.read(os.path.join(m.root, "module/damon_lru_sort/parameters/enabled")) == "Y"


def test_foreign_kdamond_from_scenario(mount):
    m = mount("6.18", {"kdamonds": [FOREIGN_PADDR_KDAMOND], "modules": {"damon_stat": False}})
    assert m.read(K0 + "/state") == "on"
    assert m.read(C0 + "/operations") == "paddr"
    assert m.read(S0 + "/action") == "pageout"
    assert m.write("kdamonds/nr_kdamonds", 2) == "EBUSY"


def test_bool_words(mount):
    m = mount("7.3")
    stage_vaddr(m, os.getpid())
    for word, value in (("Y", "Y"), ("0", "N"), ("yes", "Y"), ("off", "N"), ("on", "Y"), ("false", "N")):
        m.must(C0 + "/pause", word)
        assert m.read(C0 + "/pause") == value
    assert m.write(C0 + "/pause", "maybe") == "EINVAL"
