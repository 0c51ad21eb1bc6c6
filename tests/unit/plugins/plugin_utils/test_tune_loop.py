# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The feedback loop and the hugepage_tune action without a host: a fake step stands in for the module."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.linux_mm.damon.plugins.action.hugepage_tune import ActionModule
from ansible_collections.linux_mm.damon.plugins.plugin_utils._tune_loop import StepFailed, run_loop

MIB = 1 << 20


class FakeHost(object):
    """A host whose one app has 32 MiB at nr_accesses 8 and 64 MiB at 0; collapses at/above the threshold."""

    def __init__(self, exit_after=None):
        self.calls = []
        self.threshold = None
        self.applied = 0
        self.exit_after = exit_after

    def __call__(self, args):
        self.calls.append(args)
        app = args["apps"][0]
        self.threshold = app["threshold"] if app["threshold"] is not None else (self.threshold or args["initial_threshold"])
        if self.exit_after is not None and len(self.calls) > self.exit_after:
            return {"changed": False, "path": "damos_collapse", "apps": [{"name": app["name"], "exited": True}]}
        if self.threshold <= 8:
            self.applied += 16
        return {"changed": True, "path": "damos_collapse", "apps": [{
            "name": app["name"], "pid": app["pid"], "exited": False, "threshold": self.threshold, "max_nr_accesses": 20,
            "histogram": [[0, 64 * MIB], [8, 32 * MIB]], "hot_bytes": 32 * MIB if self.threshold <= 8 else 0,
            "scheme_stats": {"nr_applied": self.applied, "sz_applied": self.applied * 2 * MIB},
            "huge_bytes": min(self.applied * 2 * MIB, 32 * MIB), "huge_bytes_cold": 0}]}


APPS = [{"name": "db", "pid": 42}]


@pytest.mark.parametrize("policy", ["adaptive", "stepdown"])
def test_one_step_call_per_iteration_until_converged(policy):
    host = FakeHost()
    out = run_loop(host, APPS, policy, {}, max_iterations=30, timeout_s=60)
    assert out["converged"] and out["stopped"] == "converged"
    assert out["iterations"] == len(host.calls) == len(out["trace"])
    assert out["thresholds"]["db"] <= 8
    assert host.calls[0]["apps"][0]["threshold"] is None  # first call keeps a running kdamond's threshold


def test_adaptive_needs_far_fewer_iterations_than_stepdown():
    counts = dict((p, run_loop(FakeHost(), APPS, p, {}, 30, 60)["iterations"]) for p in ("adaptive", "stepdown"))
    assert counts["adaptive"] * 3 <= counts["stepdown"], counts


def test_exited_app_is_dropped_and_the_loop_ends():
    out = run_loop(FakeHost(exit_after=1), APPS, "stepdown", {}, 30, 60)
    assert out["dropped"] == ["db"] and out["thresholds"] == {} and out["iterations"] == 2


def test_deadline_and_iteration_bounds():
    ticks = iter(range(0, 1000, 10))
    out = run_loop(FakeHost(), APPS, "stepdown", {}, 30, timeout_s=25, clock=lambda: next(ticks))
    assert out["stopped"] == "deadline" and not out["converged"]
    out = run_loop(FakeHost(), APPS, "stepdown", {}, max_iterations=2, timeout_s=60)
    assert out["stopped"] == "max_iterations" and out["iterations"] == 2


def test_check_mode_runs_one_iteration_and_predicts():
    out = run_loop(FakeHost(), APPS, "adaptive", {}, 30, 60, check_mode=True)
    assert out["iterations"] == 1 and out["stopped"] == "check_mode" and out["changed"]


def action(args, check_mode=False):
    task = MagicMock(args=args, async_val=0, check_mode=check_mode, diff=False)
    task.get_validated_value.return_value = None
    plugin = ActionModule(task=task, connection=MagicMock(), play_context=MagicMock(check_mode=check_mode),
                          loader=MagicMock(), templar=MagicMock(), shared_loader_obj=MagicMock())
    return plugin


def test_unreachable_host_mid_loop_is_reported_not_a_traceback():
    plugin = action({"apps": APPS, "interval_s": 1.0, "policy": "stepdown"})
    host = FakeHost()

    def execute(module_name, module_args, task_vars):
        if len(host.calls) == 2:
            raise AnsibleConnectionFailure("ssh: connect to host db1 port 22: Connection refused")
        return host(module_args)

    plugin._execute_module = execute
    result = plugin.run(task_vars={"inventory_hostname": "db1"})
    assert result["failed"] and result["unreachable"]
    assert "host became unreachable during the loop" in result["msg"] and "Connection refused" in result["msg"]


def test_failed_step_and_bad_arguments():
    plugin = action({"apps": APPS})
    plugin._execute_module = lambda **kw: {"failed": True, "msg": "kdamond 0 was created ... changed"}
    result = plugin.run(task_vars={"inventory_hostname": "h"})
    assert result["failed"] and "hugepage step failed: kdamond 0" in result["msg"]

    def failing_step(args):
        raise StepFailed("x", args)

    with pytest.raises(StepFailed):
        run_loop(failing_step, APPS, "adaptive", {}, 3, 60)
