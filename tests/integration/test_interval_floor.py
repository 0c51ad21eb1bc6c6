# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hugepage_step's floor for the kernel's interval tuning (apps[].min_sample_us), on the emulated 7.3 kernel,
which refuses a commit whose sample_us lies outside [min_sample_us, max_sample_us] like the real one
(damon_valid_intervals_goal())."""

from __future__ import annotations

import contextlib

import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]

ATTRS = {"sample_us": 5000, "aggr_us": 100000, "min_nr_regions": 10, "max_nr_regions": 1000}
MIB = 1 << 20
GOAL = "contexts/0/monitoring_attrs/intervals/intervals_goal/min_sample_us"


def new_step(emu, tmp_path):
    from ansible_collections.linux_mm.damon.plugins.module_utils import _hugepage
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import Ownership

    own = Ownership.load(str(tmp_path / "own.json"))
    return _hugepage.Step(emu.root, detect(emu.root, "7.3.4"), own, "damos_collapse", ATTRS, 0, "fail", 4, False,
                          auto_intervals={"mode": "kernel", "max_sample_us": 500000})


def kernel_intervals(emu):
    kd = [k for k in emu.status()["kdamonds"] if k["state"] == "on"][0]
    return kd["sample_us"], kd["aggr_us"]


def test_a_raised_floor_is_committed_and_kept_until_the_caller_moves_it(tmp_path):
    with HotCold(hot_mb=8, cold_mb=16) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "modules": {"damon_stat": False}, "targets": [
            {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.8}]}]}) as emu:
        app = {"name": "db", "pid": w.pid, "threshold": 10}
        entries = new_step(emu, tmp_path).configure([app], 21)[0]
        kd = emu.path("kernel/mm/damon/admin/kdamonds", str(entries["db"]["kdamond"]))
        assert open("%s/%s" % (kd, GOAL)).read().strip() == "5000"
        # the hot range is accessed in 80 % of samples, far above the 4 % goal: the kernel keeps 5 ms
        assert kernel_intervals(emu) == (5000, 100000)

        # raised above what the kernel runs: sample_us goes up with it (aggr_us keeps the ratio), or the
        # kernel would refuse the commit
        new_step(emu, tmp_path).configure([dict(app, min_sample_us=200000)], 21)
        assert open("%s/%s" % (kd, GOAL)).read().strip() == "200000"
        assert kernel_intervals(emu) == (200000, 4000000)

        # a later run that does not name a floor keeps the running one; one above max_sample_us is capped
        step = new_step(emu, tmp_path)
        step.configure([app], 21)
        assert open("%s/%s" % (kd, GOAL)).read().strip() == "200000" and step.writes == []
        new_step(emu, tmp_path).configure([dict(app, min_sample_us=10 ** 9)], 21)
        assert open("%s/%s" % (kd, GOAL)).read().strip() == "500000"
        assert kernel_intervals(emu) == (500000, 10000000)


def test_a_new_kdamond_starts_at_its_floor(tmp_path):
    with HotCold(hot_mb=8, cold_mb=16) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "modules": {"damon_stat": False}, "targets": [
            {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.8}]}]}) as emu:
        new_step(emu, tmp_path).configure([{"name": "db", "pid": w.pid, "threshold": 10, "min_sample_us": 40000}], 21)
        assert kernel_intervals(emu) == (40000, 800000)


def test_a_run_with_a_shorter_deadline_fits_the_tuned_intervals_under_its_maximum(tmp_path):
    """Seen in the 7.3 guest: each run of a periodic controller had less time left, so a lower max_sample_us,
    and the kernel refused the commit (EINVAL) while its tuned sample_us was above the new maximum."""
    from ansible_collections.linux_mm.damon.plugins.module_utils import _hugepage

    with HotCold(hot_mb=8, cold_mb=16) as w, EmulatedSysfs(kernel="7.3", scenario={
            "speed": 20, "modules": {"damon_stat": False}, "targets": [
                {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.8}]}]}) as emu:
        app = {"name": "db", "pid": w.pid, "threshold": 10}
        new_step(emu, tmp_path).configure([dict(app, min_sample_us=400000)], 21)
        assert kernel_intervals(emu) == (400000, 8000000)
        own = new_step(emu, tmp_path).own
        step = _hugepage.Step(emu.root, new_step(emu, tmp_path).features, own, "damos_collapse", ATTRS, 0, "fail", 4,
                              False, auto_intervals={"mode": "kernel", "max_sample_us": 100000})
        step.configure([app], 21)
        assert kernel_intervals(emu) == (100000, 2000000)


def test_a_failed_commit_is_committed_again_by_the_next_run(tmp_path):
    """The files of a failed commit stay written; the next run sees nothing to change in sysfs, so it must
    commit again or the kernel would keep running the old values."""
    with HotCold(hot_mb=8, cold_mb=16) as w, EmulatedSysfs(kernel="7.3", scenario={
            "speed": 20, "modules": {"damon_stat": False}, "targets": [
                {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.8}]}]}) as emu:
        app = {"name": "db", "pid": w.pid, "threshold": 10}
        new_step(emu, tmp_path).configure([app], 21)
        emu.inject("kernel/mm/damon/admin/kdamonds/*/state", "EINVAL", count=1, value="commit")
        with pytest.raises(Exception, match="EINVAL"):
            new_step(emu, tmp_path).configure([dict(app, min_sample_us=200000)], 21)
        assert kernel_intervals(emu) == (5000, 100000)  # the kernel kept the old attributes
        new_step(emu, tmp_path).configure([dict(app, min_sample_us=200000)], 21)
        assert kernel_intervals(emu) == (200000, 4000000)


def user_step(emu, tmp_path, mode):
    from ansible_collections.linux_mm.damon.plugins.module_utils import _hugepage
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import Ownership

    return _hugepage.Step(emu.root, detect(emu.root, "7.3.4"), Ownership.load(str(tmp_path / "own.json")),
                          "user_collapse", ATTRS, 0, "fail", 4, False,
                          auto_intervals={"mode": mode, "max_sample_us": 1000000})


def one_step(step, app, advance, emu):
    """configure, the first tried-regions snapshot, ``advance`` virtual seconds, observe (and collapse)."""
    entries = step.configure([app], 21)[0]
    step.stats_before(entries)
    emu.advance(advance)
    step.observe(entries, [app])
    return entries[app["name"]]


def test_the_step_that_finds_hot_memory_keeps_the_kernel_from_shortening_the_intervals_below_it(tmp_path):
    """The 7.3 guest: a loop that converged in the step where hot memory first showed left the kernel free to go
    back to 5 ms until the next run (the loop's own floor only reached the kernel with its next step call)."""
    with HotCold(hot_mb=8, cold_mb=56, idle=True) as w, EmulatedSysfs(kernel="7.3", scenario={
            "speed": 0, "modules": {"damon_stat": False}, "targets": [{"pid": w.pid, "regions": [
                {"start": w.hot[0], "end": w.hot[1], "rate": 0.01, "rate_sample_us": 5000},
                {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}]}) as emu:
        app = {"name": "db", "pid": w.pid, "threshold": 3}
        step = user_step(emu, tmp_path, "kernel")
        entry = one_step(step, app, 600, emu)
        sample_us = entry["intervals"]["sample_us"]
        assert entry["hot_bytes"] == 8 * MIB and sample_us > 4 * 5000, entry  # widened by the kernel, then hot
        kd = emu.path("kernel/mm/damon/admin/kdamonds", str(entry["kdamond"]))
        assert open("%s/%s" % (kd, GOAL)).read().strip() == str(sample_us)
        assert any(write["path"].endswith("intervals_goal/min_sample_us") for write in step.applied)
        # the next run sees hot memory at about the same intervals: nothing to write (changed=false)
        again = user_step(emu, tmp_path, "kernel")
        assert one_step(again, app, 30, emu)["hot_bytes"] == 8 * MIB and again.writes == []


@contextlib.contextmanager
def steady_and_late():
    """8 MiB hot: the first 4 MiB from the start, the last 4 MiB only after 5 virtual seconds."""
    with HotCold(hot_mb=8, cold_mb=16, idle=True) as w:
        steady, late = (w.hot[0], w.hot[0] + 4 * MIB), (w.hot[0] + 4 * MIB, w.hot[1])
        hot_after_5s = [{"start": 0, "end": 5, "rate": 0.0}, {"start": 5, "rate": 0.9}]
        with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "modules": {"damon_stat": False}, "targets": [
                {"pid": w.pid, "regions": [{"start": steady[0], "end": steady[1], "rate": 0.9},
                                           {"start": late[0], "end": late[1], "phases": hot_after_5s}]}]}) as emu:
            yield w, emu, steady, late


def test_only_chunks_hot_in_both_snapshots_of_a_step_are_collapsed(tmp_path):
    """A chunk that reads hot once (it shared a DAMON region with hot memory in one aggregation, or it just got
    hot) waits for the next step; one hot in both is collapsed."""
    from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap

    with steady_and_late() as (w, emu, steady, late):
        app = {"name": "db", "pid": w.pid, "threshold": 10}
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["hot_bytes"] == 8 * MIB, entry
        assert entry["collapsed"] == {"bytes": 4 * MIB, "chunks": 2, "unconfirmed_bytes": 4 * MIB}, entry
        assert _pagemap.range_huge_bytes(w.pid, *steady) == 4 * MIB
        assert _pagemap.range_huge_bytes(w.pid, *late) == 0
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)  # hot in both now
        assert entry["collapsed"]["unconfirmed_bytes"] == 0 and _pagemap.range_huge_bytes(w.pid, *late) == 4 * MIB


def test_a_step_given_the_previous_steps_snapshot_confirms_against_it_instead_of_its_own(tmp_path):
    """The loop hands each step the chunk access of the step before (previous_chunk_access): the step takes no
    first snapshot of its own (which waits up to an aggregation interval), and a chunk is collapsed when it is
    hot now and was then."""
    from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap

    with steady_and_late() as (w, emu, steady, late):
        # the previous step saw only the late half accessed, at half the samples
        before = [{"start": late[0], "end": late[1], "access_bp": 5000}]
        app = {"name": "db", "pid": w.pid, "threshold": 10, "previous_chunk_access": before}
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["collapsed"] == {"bytes": 4 * MIB, "chunks": 2, "unconfirmed_bytes": 4 * MIB}, entry
        assert _pagemap.range_huge_bytes(w.pid, *late) == 4 * MIB  # cold in this step's first second
        assert _pagemap.range_huge_bytes(w.pid, *steady) == 0  # hot now, but not in the previous snapshot
        access = dict(((r["start"], r["end"]), r["access_bp"]) for r in entry["chunk_access"])
        assert sum(e - s for s, e in access) == 8 * MIB and min(access.values()) >= 4500, entry["chunk_access"]
        # given back, it confirms the rest
        app = dict(app, previous_chunk_access=entry["chunk_access"])
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["collapsed"]["unconfirmed_bytes"] == 0 and _pagemap.range_huge_bytes(w.pid, *steady) == 4 * MIB


def test_at_the_noise_floor_a_chunk_must_be_hot_in_three_snapshots_in_a_row(tmp_path):
    """At 3 of 20 samples a cold chunk sharing a DAMON region with hot memory read hot in two snapshots in a
    row (7.3, redis: 84 MiB of cold values collapsed); there the step also wants the snapshot before those
    (the previous step's confirmed_bp), so the late half, hot from the first step's second snapshot on, is
    collapsed one step later than above the noise floor, and a step without that snapshot collapses nothing."""
    from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap

    with steady_and_late() as (w, emu, steady, late):
        app = {"name": "db", "pid": w.pid, "threshold": 3}
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["collapsed"] == {"bytes": 0, "chunks": 0, "unconfirmed_bytes": 8 * MIB}, entry
        lower = dict(((r["start"], r["end"]), r["confirmed_bp"]) for r in entry["chunk_access"])
        assert lower == {steady: lower[steady], late: 0} and lower[steady] >= 4500, entry["chunk_access"]
        app = dict(app, previous_chunk_access=entry["chunk_access"])
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["collapsed"] == {"bytes": 4 * MIB, "chunks": 2, "unconfirmed_bytes": 4 * MIB}, entry
        assert _pagemap.range_huge_bytes(w.pid, *steady) == 4 * MIB and _pagemap.range_huge_bytes(w.pid, *late) == 0
        app = dict(app, previous_chunk_access=entry["chunk_access"])
        entry = one_step(user_step(emu, tmp_path, "off"), app, 10, emu)
        assert entry["collapsed"]["unconfirmed_bytes"] == 0 and _pagemap.range_huge_bytes(w.pid, *late) == 4 * MIB
