# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kill-point sweep: a run stopped at any sysfs write leaves a host the next run converges from.

For each representative plan, the module code runs against the FUSE emulator and is
stopped at write index k (an exception that nothing catches, like SIGKILL: no
final save, the host lock dropped with the process' hold on it), for every k in
turn. After each stop, the same task runs again and must converge: the tree is
what was asked, a third run writes nothing, every record entry agrees with the
live tree, owned slots of other tasks keep their configuration, and the foreign
kdamond is untouched. tests/integration/test_host_state.py does the same with a
real SIGKILL of ansible-playbook at chosen writes.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _damon_sysfs
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import apply_plan, plan_kdamond
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import locked_record
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import digest, read_kdamonds
from ansible_collections.linux_mm.damon.plugins.module_utils._hugepage import Step
from tests.emulator import EmulatedSysfs
from tests.helpers.host_state import record_agrees

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(900)]

KERNEL = "6.12.0"
ATTRS = {"sample_us": 5000, "aggr_us": 100000, "min_nr_regions": 10, "max_nr_regions": 1000}


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the module catches it."""


def context(pid, min_nr_accesses=5, schemes=True):
    scheme = {"action": "stat", "access_pattern": {"min_size": 2097152, "min_nr_accesses": min_nr_accesses}}
    return {"operations": "vaddr", "monitoring_attrs": {"min_nr_regions": min_nr_accesses}, "targets": [{"pid": pid}],
            "schemes": [scheme] if schemes else []}


class Host(object):
    """One emulated host and its record; runs module code in-process, optionally killed at write k."""

    def __init__(self, emu, record):
        self.emu, self.record = emu, record
        self.features = detect(emu.root, KERNEL)
        self.writes = 0
        self.kill_at = None

    def write_text(self, path, value):
        if self.kill_at is not None and self.writes == self.kill_at:
            raise Killed(path)
        self.writes += 1
        return _ORIGINAL_WRITE(path, value)

    def kdamond(self, name, state, ctx=None, pool_size=1):
        with locked_record(self.record, "kdamond", 5) as own:
            p = plan_kdamond(self.emu.root, self.features, own, name, state, ctx, pool_size=pool_size)
            apply_plan(self.emu.root, self.features, own, p, [])
            return p.writes

    def step(self, apps, pool_size=2):
        with locked_record(self.record, "hugepage_step", 5) as own:
            step = Step(self.emu.root, self.features, own, "user_collapse", ATTRS, 0, "fail", pool_size, False)
            step.configure(apps, 21, prune=True)
            return step.writes

    def run(self, task, kill_at=None):
        self.writes, self.kill_at = 0, kill_at
        try:
            return task(self)
        finally:
            self.kill_at = None

    def reset(self):
        """An empty host: every kdamond off, no slots, no record."""
        admin = os.path.join(self.emu.root, "kernel/mm/damon/admin/kdamonds")
        for kd in read_kdamonds(self.emu.root, self.features):
            if kd.running:
                _ORIGINAL_WRITE(kd.path + "/state", "off")
        _ORIGINAL_WRITE(admin + "/nr_kdamonds", "0")
        for path in (self.record, self.record + ".lock"):
            if os.path.exists(path):
                os.unlink(path)

    def take_slot_as_foreign(self, index, pid):
        """Someone else configures our idle slot by hand and starts it."""
        base = os.path.join(self.emu.root, "kernel/mm/damon/admin/kdamonds", str(index))
        for rel, value in (("contexts/nr_contexts", "1"), ("contexts/0/operations", "vaddr"),
                           ("contexts/0/targets/nr_targets", "1"), ("contexts/0/targets/0/pid_target", str(pid)),
                           ("contexts/0/schemes/nr_schemes", "1"), ("contexts/0/schemes/0/action", "pageout"),
                           ("state", "on")):
            _ORIGINAL_WRITE(os.path.join(base, rel), value)

    def snapshot(self, kds=None):
        kds = read_kdamonds(self.emu.root, self.features) if kds is None else kds
        return [(kd.state, kd.pid, digest(kd.tree)) for kd in kds]

    def check_record_agrees(self):
        """The record agrees with the live tree: its slots, and a snapshot of that same tree (one read)."""
        slots, kds = record_agrees(self.emu.root, self.features, self.record)
        return slots, self.snapshot(kds), kds


_ORIGINAL_WRITE = _damon_sysfs.write_text


@pytest.fixture
def host(tmp_path, monkeypatch):
    record_dir = tmp_path / "rec"
    record_dir.mkdir(mode=0o700)
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        h = Host(emu, str(record_dir / "own.json"))
        monkeypatch.setattr(_damon_sysfs, "write_text", h.write_text)
        yield h


def sweep(host, setup, task, check):
    """Kill ``task`` at every write index after ``setup``; re-run; ``check`` the converged host."""
    host.reset()
    context_before = setup(host)
    total = len(host.run(task))
    assert total > 0
    for k in range(total):
        host.reset()
        context_before = setup(host)
        with pytest.raises(Killed):
            host.run(task, kill_at=k)
        host.run(task)  # the re-run converges ...
        assert host.run(task) == [], "kill at write %d: a third run still writes" % k
        check(host, context_before, k)
    return total


def test_sweep_new_kdamond_on_an_empty_host(host, target_pids):
    def task(h):
        return h.kdamond("a", "running", context(target_pids[0]), pool_size=3)

    def check(h, unused, k):
        slots, unused, kds = h.check_record_agrees()
        assert len(kds) == 3 and kds[0].running, k
        assert [s["name"] for unused, s in sorted(slots.items())] == ["a", None, None], (k, slots)

    assert sweep(host, lambda h: None, task, check) > 10


def test_sweep_growing_nr_kdamonds_past_owned_stopped_slots(host, target_pids):
    def setup(h):  # scheme-less slots keep the sweep short; the rewrite path is the same
        h.kdamond("a", "stopped", context(target_pids[0], 3, schemes=False))
        h.kdamond("b", "stopped", context(target_pids[1], 4, schemes=False))
        return h.snapshot()

    def task(h):
        return h.kdamond("c", "running", context(target_pids[0], 6))

    def check(h, before, k):
        slots, snapshot, unused = h.check_record_agrees()
        assert {s["name"] for s in slots.values()} == {"a", "b", "c"}, (k, slots)
        assert snapshot[:2] == before, "kill at write %d: an owned stopped slot lost its configuration" % k

    assert sweep(host, setup, task, check) > 30


def _with_foreign(h, pid):
    h.kdamond("a", "running", context(pid, 3), pool_size=2)
    h.take_slot_as_foreign(1, pid)
    return h.snapshot()


def test_sweep_commit_of_a_running_kdamond_beside_a_foreign_one(host, target_pids):
    def task(h):
        return h.kdamond("a", "running", context(target_pids[0], 9))

    def check(h, before, k):
        after = h.check_record_agrees()[1]
        assert after[1] == before[1], "kill at write %d touched the foreign kdamond" % k
        assert after[0][:2] == before[0][:2], "kill at write %d restarted kdamond a" % k

    sweep(host, lambda h: _with_foreign(h, target_pids[0]), task, check)


def test_sweep_absent_beside_a_foreign_one(host, target_pids):
    def task(h):
        return h.kdamond("a", "absent")

    def check(h, before, k):
        slots, after, unused = h.check_record_agrees()
        assert after[1] == before[1], "kill at write %d touched the foreign kdamond" % k
        assert after[0][0] == "off" and slots["0"]["name"] is None, (k, slots)

    sweep(host, lambda h: _with_foreign(h, target_pids[0]), task, check)


def test_sweep_hugepage_step_configure(host, target_pids):
    apps = [{"name": "db", "pid": target_pids[0], "threshold": 8}]

    def task(h):
        return h.step(apps)

    def check(h, unused, k):
        slots, unused, kds = h.check_record_agrees()
        assert [s["name"] for unused, s in sorted(slots.items())] == ["hugepage:db", None], (k, slots)
        assert kds[0].running and not kds[1].running, k

    sweep(host, lambda h: None, task, check)
