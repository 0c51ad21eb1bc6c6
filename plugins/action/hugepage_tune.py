# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of linux_mm.damon.hugepage_tune: the loop runs here, the host does one step per iteration.

It imports controller code only: the shared option specs (``_options``), the input checks
(``_damon_spec``) and the loop and policies (``plugin_utils``); never the host-side step
(``_hugepage``, ``_collapse`` with ctypes). ``tests/unit/plugins/test_import_graph.py`` checks it.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import validate_hugepage_args
from ansible_collections.linux_mm.damon.plugins.module_utils._options import HUGEPAGE_LOOP_OPTIONS
from ansible_collections.linux_mm.damon.plugins.plugin_utils._policy import POLICIES
from ansible_collections.linux_mm.damon.plugins.plugin_utils._progress import iteration_line
from ansible_collections.linux_mm.damon.plugins.plugin_utils._tune_loop import StepFailed, run_loop

display = Display()

STEP_MODULE = "linux_mm.damon.hugepage_step"

ARGUMENT_SPEC = dict(
    apps=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True), pid=dict(type="int", required=True),
        budget_bytes=dict(type="int", default=0), application=dict(type="str"))),
    policy=dict(type="str", choices=list(POLICIES), default="adaptive"),
    max_iterations=dict(type="int", default=10),
    timeout_s=dict(type="float", default=600.0),
    host_budget_bytes=dict(type="int", default=0),
    prune=dict(type="bool", default=False),
    **HUGEPAGE_LOOP_OPTIONS
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:  # before the first remote call: unique names, PIDs, kernel types, sample_us >= 1, finite floats
            for warning in validate_hugepage_args(args, [], on_target=False):
                display.warning(warning)
        except SpecError as e:
            raise AnsibleActionFail(str(e))
        host = task_vars.get("inventory_hostname")
        step_args = dict((k, args[k]) for k in HUGEPAGE_LOOP_OPTIONS if args.get(k) is not None)
        step_args["prune"] = args["prune"]
        facts = {}

        def call_step(module_args):
            # a fresh dict per call: _execute_module adds internal keys to the one it gets
            res = self._execute_module(module_name=STEP_MODULE, module_args=dict(module_args), task_vars=task_vars)
            facts.update(res.pop("ansible_facts", {}) or {})
            if res.get("failed") or res.get("unreachable"):
                raise StepFailed(res.get("msg", "%s failed" % STEP_MODULE), res)
            display.vv("hugepage_tune: %s" % ", ".join(
                "%s threshold %s" % (a["name"], a.get("threshold")) for a in res.get("apps", [])), host=host)
            return res

        def on_iteration(entry):
            # one line per iteration at default verbosity (a loop may run for timeout_s); the reasons at -v
            display.display(iteration_line(entry, host, args["max_iterations"]))
            for name, app in sorted((entry.get("apps") or {}).items()):
                if app.get("reason"):
                    display.v("hugepage_tune: %s: %s" % (name, app["reason"]), host=host)

        try:
            loop = run_loop(call_step, args["apps"], args["policy"], step_args, args["max_iterations"],
                            args["timeout_s"], args["host_budget_bytes"], check_mode=self._task.check_mode,
                            on_iteration=on_iteration)
        except ValueError as e:  # a host budget that cannot be split; the message names the option
            raise AnsibleActionFail(str(e))
        except StepFailed as e:
            result.update(failed=True, msg="hugepage step failed: %s" % e, step_result=e.result,
                          lock_busy=bool(e.result.get("lock_busy")))
            return result
        except AnsibleConnectionFailure as e:
            result.update(failed=True, unreachable=True,
                          msg="host became unreachable during the loop (%s); its kdamonds keep the last "
                              "thresholds committed before that" % e)
            return result
        result.update(loop)
        result["changed"] = loop["changed"]
        for message in loop["messages"]:
            display.v("hugepage_tune: %s" % message, host=host)
        if facts:
            result["ansible_facts"] = facts
        result["ansible_stats"] = {
            "data": {"hugepage_tune_iterations": loop["iterations"],
                     "hugepage_tune_converged_hosts": 1 if loop["converged"] else 0,
                     "hugepage_tune_nothing_hot_hosts": 1 if loop["stopped"] == "nothing_hot" else 0},
            "per_host": False, "aggregate": True,
        }
        return result
