# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bounded feedback loop of hugepage_tune, without Ansible in it.

``run_loop`` calls ``call_step(module_args)`` — one remote hugepage_step call —
once per iteration: the call applies the previous decision and returns fresh
statistics, the policy turns them into the next thresholds.
"""

from __future__ import annotations

import time

from ansible_collections.linux_mm.damon.plugins.plugin_utils._policy import (
    Observation, decide, initial_threshold, split_host_budget,
)


class StepFailed(Exception):
    """The remote step failed; ``result`` is its module result."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


class _AppState(object):
    def __init__(self, budget):
        self.budget = budget
        self.history = []
        self.nr_applied = 0  # cumulative, for the user-space path (the kernel counts for the others)
        self.sz_applied = 0
        self.threshold = None  # None: keep the running kdamond's threshold (or the initial one)
        self.decision = None


def _observe(app, state, path):
    if path == "user_collapse":  # we collapse, so we count
        collapsed = app.get("collapsed") or {}
        nr, sz = state.nr_applied + collapsed.get("chunks", 0), state.sz_applied + collapsed.get("bytes", 0)
        state.nr_applied, state.sz_applied = nr, sz
    else:  # the kernel counts, cumulatively
        stats = app.get("scheme_stats") or {}
        nr, sz = stats.get("nr_applied", 0), stats.get("sz_applied", 0)
    prev = state.history[-1] if state.history else None
    return Observation(
        threshold=app["threshold"], max_nr_accesses=app["max_nr_accesses"],
        histogram=[tuple(x) for x in app.get("histogram") or []],
        nr_applied=nr, sz_applied=sz,
        nr_applied_delta=nr - (prev.nr_applied if prev else 0), sz_applied_delta=sz - (prev.sz_applied if prev else 0),
        huge_bytes=app.get("huge_bytes") or 0, huge_bytes_cold=app.get("huge_bytes_cold") or 0,
        hot_bytes=app.get("hot_bytes") or 0, huge_bytes_hot=app.get("huge_bytes_hot") or 0,
        budget_bytes=state.budget)


def run_loop(call_step, apps, policy, step_args, max_iterations, timeout_s, host_budget_bytes=0,
             check_mode=False, clock=time.monotonic):
    """Iterate until every application converged, the iteration bound or the deadline.

    Returns a dict with ``changed``, ``converged``, ``iterations``, ``stopped`` (why the
    loop ended), ``thresholds``, ``dropped`` and the per-iteration ``trace``.
    """
    attrs = step_args.get("monitoring_attrs") or {}
    max_nr = attrs.get("aggr_us", 100000) // attrs.get("sample_us", 5000)
    budgets = split_host_budget(host_budget_bytes, dict((a["name"], a.get("budget_bytes") or 0) for a in apps))
    states = dict((a["name"], _AppState(budgets.get(a["name"], 0))) for a in apps)
    pids = dict((a["name"], a["pid"]) for a in apps)
    deadline = clock() + timeout_s
    started = clock()
    out = dict(changed=False, converged=False, iterations=0, stopped="max_iterations", trace=[], dropped=[])
    for iteration in range(max_iterations):
        if clock() > deadline:
            out["stopped"] = "deadline"
            break
        args = dict(step_args, initial_threshold=initial_threshold(policy, max_nr), apps=[
            dict(name=n, pid=pids[n], threshold=s.threshold, budget_bytes=s.budget) for n, s in states.items()])
        result = call_step(args)
        out["iterations"] += 1
        out["changed"] = out["changed"] or bool(result.get("changed"))
        entry = {"iteration": iteration, "elapsed_s": round(clock() - started, 3), "apps": {}}
        for app in result.get("apps", []):
            state = states.get(app["name"])
            if state is None:
                continue
            if app.get("exited"):
                out["dropped"].append(app["name"])
                del states[app["name"]]
                entry["apps"][app["name"]] = {"exited": True}
                continue
            if "max_nr_accesses" not in app:  # check mode before its kdamond exists: nothing observed yet
                entry["apps"][app["name"]] = {"threshold": app.get("threshold"), "observed": False}
                continue
            obs = _observe(app, state, result.get("path"))
            state.decision = decide(policy, obs, state.history)
            state.history.append(obs)
            state.threshold = state.decision.threshold
            entry["apps"][app["name"]] = {
                "threshold": obs.threshold, "next_threshold": state.decision.threshold,
                "nr_applied_delta": obs.nr_applied_delta, "sz_applied_delta": obs.sz_applied_delta,
                "hot_bytes": app.get("hot_bytes"), "huge_bytes": obs.huge_bytes,
                "huge_bytes_hot": app.get("huge_bytes_hot"),
                "huge_bytes_cold": obs.huge_bytes_cold, "converged": state.decision.converged,
                "reason": state.decision.reason,
            }
        out["trace"].append(entry)
        # on the user-space path we do the collapsing: not done while it still collapses
        pending = [n for n, s in states.items() if s.decision is None or not s.decision.converged
                   or s.decision.threshold != s.history[-1].threshold
                   or (result.get("path") == "user_collapse" and s.history[-1].sz_applied_delta > 0)]
        if check_mode:
            out["stopped"] = "check_mode"
            out["changed"] = out["changed"] or bool(pending)
            break
        if not pending:
            out["converged"] = True
            out["stopped"] = "converged"
            break
    out["thresholds"] = dict((n, s.threshold) for n, s in states.items())
    return out
