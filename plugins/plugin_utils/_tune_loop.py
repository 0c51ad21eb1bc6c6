# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bounded feedback loop of hugepage_tune, without Ansible in it.

``run_loop`` calls ``call_step(module_args)`` — one remote hugepage_step call —
once per iteration: the call applies the previous decision and returns fresh
statistics, the policy turns them into the next thresholds.

Thresholds travel as a share of samples (``threshold_bp``) so that they mean the
same after the intervals changed. When the policy finds nothing hot, the
intervals are widened before anyone calls it "nothing to do": by the kernel
(``intervals_goal``, the step reports the tuned values; the loop waits while they
still move) or by this loop (``controller`` mode: sampling interval x4 per
iteration, aggregation interval in proportion, up to ``max_sample_us`` and to
what still fits the deadline). An application that shows nothing hot at the
widest intervals ends with status ``nothing_hot`` and a sentence saying so; the
loop does not call that converged.
"""

from __future__ import annotations

import time

from ansible_collections.linux_mm.damon.plugins.module_utils._options import (
    AGGR_US, MAX_SAMPLE_US, SAMPLE_US, from_bp, max_nr_accesses, to_bp,
)
from ansible_collections.linux_mm.damon.plugins.plugin_utils._policy import (
    Observation, access_rate, decide, initial_threshold, levels, noise_floor, split_host_budget,
)

WIDEN_FACTOR = 4
# An aggregation interval may take at most this share of the time left: the
# observation after a widening needs one full new aggregation interval.
DEADLINE_SHARE = 4
# The kernel's tuned sampling interval counts as moving when it changed by more than this ratio, and as
# settled once it has not for a full adaptation period: the kernel adapts once every ``aggrs``
# aggregation intervals, so two observations a few seconds apart often see the same values mid-tuning
# (a real 7.3 guest: redis reported "nothing hot" at 273 ms while the kernel went on to 507 ms).
SETTLED_RATIO = 1.25
DEFAULT_GOAL_AGGRS = 3
# controller mode widens further while the memory below the noise floor (but not at 0) is at least a
# tenth of what the threshold selects
UNRESOLVED_SHARE_INV = 10
MIB = 1 << 20
# user-space path: a converged application stays pending while its hot chunks wait for a second hot snapshot
# (a third at the noise floor; hugepage_step's collapsed.unconfirmed_bytes), for at most this many steps in a
# row that collapse nothing
# (a chunk near the threshold reads below it in one aggregation in five; the 6.12 guest's redis run stopped
# at 0.57 of its hot memory when the loop ended at the first step that collapsed nothing)
CONFIRM_STEPS = 3


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
        self.threshold_bp = None  # None: keep the running kdamond's threshold (or the initial one)
        self.intervals = None  # (sample_us, aggr_us) the controller asks for; None: keep the running ones
        self.floor = None  # kernel mode: the shortest sample_us the kernel may tune to; None: keep the running one
        self.seen_intervals = None  # (sample_us, aggr_us) in force at the last observation
        self.intervals_moved_at = None  # clock() when the kernel's tuned intervals last moved
        self.decision = None
        self.unconfirmed = 0  # user-space path: hot bytes of the last step not collapsed for want of confirmation
        self.idle_steps = 0  # user-space path: steps in a row whose hot chunks waited and that collapsed nothing
        self.chunk_access = None  # user-space path: the last step's snapshot, which the next step confirms against
        self.status = "pending"  # converged | nothing_hot | blocked | exited
        self.message = None


def _observe(app, state, path):
    if path == "user_collapse":  # we collapse, so we count
        collapsed = app.get("collapsed") or {}
        nr, sz = state.nr_applied + collapsed.get("chunks", 0), state.sz_applied + collapsed.get("bytes", 0)
        state.nr_applied, state.sz_applied = nr, sz
        state.unconfirmed = collapsed.get("unconfirmed_bytes", 0)
        waited = state.unconfirmed and not collapsed.get("bytes")
        state.idle_steps = state.idle_steps + 1 if waited else 0
        state.chunk_access = app.get("chunk_access")
    else:  # the kernel counts, cumulatively
        stats = app.get("scheme_stats") or {}
        nr, sz = stats.get("nr_applied", 0), stats.get("sz_applied", 0)
    prev = state.history[-1] if state.history else None
    # what was applied during this step: the step's own before/after counters where it has them (a run's first
    # step would otherwise count everything the kdamond applied since it started, maybe hours ago)
    before = app.get("scheme_stats_before")
    if before is not None and path != "user_collapse":
        base_nr, base_sz = before.get("nr_applied", 0), before.get("sz_applied", 0)
    else:
        base_nr, base_sz = (prev.nr_applied, prev.sz_applied) if prev else (0, 0)
    return Observation(
        threshold=app["threshold"], max_nr_accesses=app["max_nr_accesses"],
        histogram=[tuple(x) for x in app.get("histogram") or []],
        chunks=[tuple(x) for x in app.get("chunk_histogram") or []],
        chunks_huge=[tuple(x) for x in app.get("chunk_huge_histogram") or []],
        nr_applied=nr, sz_applied=sz,
        nr_applied_delta=nr - base_nr, sz_applied_delta=sz - base_sz,
        huge_bytes=app.get("huge_bytes") or 0, huge_bytes_cold=app.get("huge_bytes_cold") or 0,
        hot_bytes=app.get("hot_bytes") or 0, huge_bytes_hot=app.get("huge_bytes_hot") or 0,
        budget_bytes=state.budget, budget_capped=path == "user_collapse")


def _prior(learned, obs):
    """The decision an earlier run left (hugepage_step's ``learned``, from its learned_file) as the observation
    before this run's first one, so the policy sees "threshold unchanged since the last run" instead of starting
    from scratch. Its cold huge-page bytes are this run's: cold huge pages that appeared between runs are
    mostly a moved hot set's old huge pages, not something the threshold collapsed, and taking them as the
    policy's "cold grew: raise" raised the threshold a step at every move (seen in bench/follow.py)."""
    return Observation(
        threshold=from_bp(learned["threshold_bp"], obs.max_nr_accesses), max_nr_accesses=obs.max_nr_accesses,
        nr_applied=obs.nr_applied - obs.nr_applied_delta, sz_applied=obs.sz_applied - obs.sz_applied_delta,
        huge_bytes_cold=obs.huge_bytes_cold, hot_bytes=learned.get("hot_bytes") or 0,
        huge_bytes_hot=learned.get("huge_bytes_hot") or 0, budget_bytes=obs.budget_bytes,
        budget_capped=obs.budget_capped)


def human_us(us):
    if us >= 1000000:
        return "%g s" % round(us / 1e6, 2)
    return "%g ms" % round(us / 1e3, 2)


def nothing_hot_message(name, obs, intervals, why):
    """"NAME: no memory touched in more than X % of samples over Y" from the chunk distribution."""
    top = max(1, obs.max_nr_accesses)
    seen = [lv for lv, size in (obs.chunks or obs.histogram) if size >= 2 * MIB and lv > 0]
    highest = min(top, max(seen)) if seen else 0
    sample_us, aggr_us = intervals
    return ("%s: no memory touched in more than %.1f %% of samples (%d of %d, the noise floor is %d) over %s "
            "aggregation intervals sampled every %s (%s): nothing hot enough to collapse" % (
                name, 100.0 * highest / top, highest, top, noise_floor(top), human_us(aggr_us), human_us(sample_us),
                why))


def _widen(state, obs, app, auto, ratio, time_left_s):
    """Next (sample_us, aggr_us) for the controller, or None when already at the widest allowed."""
    sample_us, aggr_us = state.seen_intervals
    ratio = max(1, max_nr_accesses(sample_us, aggr_us)) if aggr_us else ratio
    widest = min(auto.get("max_sample_us", MAX_SAMPLE_US), int(time_left_s * 1e6 / DEADLINE_SHARE / ratio))
    new = min(sample_us * WIDEN_FACTOR, widest)
    if new <= sample_us:
        return None
    return new, new * ratio


def run_loop(call_step, apps, policy, step_args, max_iterations, timeout_s, host_budget_bytes=0,
             check_mode=False, clock=time.monotonic, on_iteration=None):
    """Iterate until every application converged or has nothing hot, the iteration bound or the deadline.

    Returns a dict with ``changed``, ``converged``, ``iterations``, ``stopped`` (why the
    loop ended: converged, nothing_hot, blocked, finished, no_apps, max_iterations,
    deadline, check_mode), per application ``status``, ``thresholds`` (min_nr_accesses),
    ``thresholds_bp``, ``intervals`` and ``messages``, ``dropped``/``pruned``, ``blocked``
    (applications with THP disabled: not tuned, not retried) and ``blockers`` (what keeps
    part of an application out of huge pages) by name, and the per-iteration ``trace``.
    ``on_iteration(entry)``, when given, is called with each trace entry as soon as it is built (progress output).
    """
    attrs = step_args.get("monitoring_attrs") or {}
    sample_us = attrs.get("sample_us", SAMPLE_US)
    ratio = max(1, max_nr_accesses(sample_us, attrs.get("aggr_us", AGGR_US)))
    # the kernel's goal and the controller stop widening where an aggregation interval
    # would take more than a share of the run's time budget
    auto = dict(step_args.get("auto_intervals") or {})
    auto["max_sample_us"] = max(sample_us, min(auto.get("max_sample_us", MAX_SAMPLE_US),
                                               int(timeout_s * 1e6 / DEADLINE_SHARE / ratio)))
    step_args = dict(step_args, auto_intervals=auto)
    own_budgets = dict((a["name"], a.get("budget_bytes") or 0) for a in apps)
    budgets = split_host_budget(host_budget_bytes, own_budgets)
    states = dict((a["name"], _AppState(budgets.get(a["name"], 0))) for a in apps)
    pids = dict((a["name"], a["pid"]) for a in apps)
    deadline = clock() + timeout_s
    started = clock()
    out = dict(changed=False, converged=False, iterations=0, stopped="max_iterations", trace=[], dropped=[],
               pruned=[], messages=[], blocked={}, blockers={})
    finished = {}
    for iteration in range(max_iterations):
        if clock() > deadline:
            out["stopped"] = "deadline"
            break
        step_apps = []
        for n, s in states.items():
            item = dict(name=n, pid=pids[n], threshold_bp=s.threshold_bp, budget_bytes=s.budget)
            if s.intervals:
                item.update(sample_us=s.intervals[0], aggr_us=s.intervals[1])
            if s.floor:
                item.update(min_sample_us=s.floor)
            if s.chunk_access is not None:
                item.update(previous_chunk_access=s.chunk_access)
            step_apps.append(item)
        args = dict(step_args, initial_threshold=initial_threshold(policy, ratio), apps=step_apps)
        result = call_step(args)
        out["iterations"] += 1
        out["changed"] = out["changed"] or bool(result.get("changed"))
        out["interval_mode"] = result.get("interval_mode")
        for pruned in result.get("pruned") or []:
            out["pruned"].append(pruned)
            if pruned["name"] not in out["dropped"]:
                out["dropped"].append(pruned["name"])
        entry = {"iteration": iteration, "elapsed_s": round(clock() - started, 3), "apps": {}}
        for app in result.get("apps", []):
            state = states.get(app["name"])
            if state is None:
                continue
            if app.get("exited"):
                if app["name"] not in out["dropped"]:
                    out["dropped"].append(app["name"])
                state.status = "exited"
                state.message = "%s: process %s exited; its kdamond was removed" % (app["name"], app.get("pid"))
                finished[app["name"]] = states.pop(app["name"])
                entry["apps"][app["name"]] = {"exited": True}
                continue
            if app.get("blocked"):  # THP disabled for the whole process: nothing any threshold can do
                blocked = app["blocked"]
                state.status = "blocked"
                state.message = "%s: not tuned, no huge page is possible (%s, %s: %d MiB resident); to lift it: %s" % (
                    app["name"], blocked.get("reason"), blocked.get("detail"), (blocked.get("bytes") or 0) // MIB,
                    blocked.get("fix"))
                out["blocked"][app["name"]] = blocked
                finished[app["name"]] = states.pop(app["name"])
                entry["apps"][app["name"]] = {"blocked": blocked.get("reason")}
                continue
            if app.get("blockers") and app["name"] not in out["blockers"]:
                out["blockers"][app["name"]] = app["blockers"]
                # a sentence only for what holds a huge page's worth (redis's idle thread stacks hold KiB)
                worth = [b for b in app["blockers"] if (b.get("bytes") or 0) >= 2 * MIB]
                if worth:
                    out["messages"].append("%s: tuned, but %s" % (app["name"], "; ".join(
                        "%d MiB cannot become huge pages (%s: %s; to lift it: %s)" % (
                            (b.get("bytes") or 0) // MIB, b.get("reason"), b.get("detail"), b.get("fix"))
                        for b in worth)))
            if "max_nr_accesses" not in app:  # check mode before its kdamond exists: nothing observed yet
                entry["apps"][app["name"]] = {"threshold": app.get("threshold"), "observed": False}
                continue
            entry["apps"][app["name"]] = _decide_one(app, state, result, policy, auto, ratio, clock(), deadline)
        if host_budget_bytes:
            _rebudget(states, host_budget_bytes, own_budgets, entry)
        out["trace"].append(entry)
        if on_iteration is not None:
            on_iteration(entry)
        # on the user-space path we do the collapsing: not done while it still collapses, or while hot chunks
        # wait for confirmation (a bounded number of steps)
        pending = [n for n, s in states.items() if s.status == "pending" or (
            s.status == "converged" and result.get("path") == "user_collapse" and (
                s.history[-1].sz_applied_delta > 0 or (s.unconfirmed and s.idle_steps < CONFIRM_STEPS)))]
        if check_mode:
            out["stopped"] = "check_mode"
            out["changed"] = out["changed"] or bool(pending)
            break
        if not pending:
            break
    everyone = dict(finished, **states)
    statuses = dict((n, s.status) for n, s in everyone.items())
    if out["stopped"] not in ("check_mode", "deadline") and not [n for n, s in states.items() if s.status == "pending"]:
        live = [s for s in statuses.values() if s != "exited"]
        if not live:
            out["stopped"] = "no_apps"
        elif all(s == "converged" for s in live):
            out["stopped"], out["converged"] = "converged", True
        elif all(s == "nothing_hot" for s in live):
            out["stopped"] = "nothing_hot"
        elif all(s == "blocked" for s in live):
            out["stopped"] = "blocked"
        else:
            out["stopped"] = "finished"
    for n, s in sorted(everyone.items()):
        if s.status == "pending":
            s.message = "%s: not settled when the loop stopped (%s) at threshold %s" % (
                n, out["stopped"], _share(s.threshold_bp))
        if s.message:
            out["messages"].append(s.message)
    if not apps:
        out["messages"].append("no applications to tune")
    out["status"] = statuses
    out["thresholds"] = dict((n, s.history[-1].threshold if s.history else None) for n, s in states.items())
    out["thresholds_bp"] = dict((n, s.threshold_bp) for n, s in states.items())
    out["intervals"] = dict((n, {"sample_us": s.seen_intervals[0], "aggr_us": s.seen_intervals[1],
                                 "mode": out.get("interval_mode")}) for n, s in states.items() if s.seen_intervals)
    out["msg"] = "; ".join(out["messages"])
    return out


def _demand(state):
    """What an application asks of the host budget (split_host_budget's ``demand``): its huge pages, then its
    chunks at or above the threshold it goes on with that are not huge yet, at their estimated access rate;
    None before it was observed."""
    if not state.history or state.decision is None or not state.seen_intervals:
        return None
    obs, top = state.history[-1], max(1, state.history[-1].max_nr_accesses)
    lv, huge = levels(obs.chunks or obs.histogram, top), levels(obs.chunks_huge, top)
    return [(float("inf"), obs.huge_bytes)] + [
        (access_rate(level, top, state.seen_intervals[0]), lv[level] - min(lv[level], huge[level]))
        for level in range(max(0, state.decision.threshold), top + 1)]


def _rebudget(states, host_budget_bytes, own_budgets, entry):
    """Split the host budget again over the applications still tuned, hottest memory first, once every one of
    them was observed (until then the equal split of the start stands); the trace shows each new budget."""
    demand = dict((n, _demand(s)) for n, s in states.items())
    if not demand or None in demand.values():
        return
    budgets = split_host_budget(host_budget_bytes, dict((n, own_budgets[n]) for n in states), demand)
    for name, budget in budgets.items():
        states[name].budget = budget
        if name in entry["apps"]:
            entry["apps"][name]["budget_bytes"] = budget


def _unresolved(obs, decision):
    """Bytes seen in 1..noise floor-1 samples when they are a tenth or more of what the threshold selects:
    warm memory that wider intervals would lift above the floor (noise stays at 1-2 samples)."""
    top = max(1, obs.max_nr_accesses)
    if decision.threshold > top:
        return 0
    lv = levels(obs.chunks or obs.histogram, top)
    band, hot = sum(lv[1:noise_floor(top)]), sum(lv[decision.threshold:])
    return band if band * UNRESOLVED_SHARE_INV >= hot else 0


def _share(bp):
    if bp is None:
        return "unchanged"
    return "none (collapse nothing)" if bp > 10000 else "%.2f %% of samples" % (bp / 100.0)


def _kernel_still_tuning(state, now, prev, auto, at_s):
    """Whether the kernel's intervals_goal may still widen the intervals: they moved by more than
    SETTLED_RATIO within the last adaptation period (``aggrs`` + 1 aggregation intervals) and are
    below max_sample_us."""
    if prev is None or max(now[0], prev[0]) > SETTLED_RATIO * min(now[0], prev[0]):
        state.intervals_moved_at = at_s
    if now[0] >= auto.get("max_sample_us", MAX_SAMPLE_US):
        return False
    period_s = (auto.get("aggrs") or DEFAULT_GOAL_AGGRS) + 1
    return at_s - state.intervals_moved_at < period_s * now[1] / 1e6


def _decide_one(app, state, result, policy, auto, ratio, at_s, deadline):
    """Observe, decide and (when nothing is hot) widen for one application; returns its trace entry."""
    name = app["name"]
    time_left_s = deadline - at_s
    intervals = app.get("intervals") or {}
    now = (intervals.get("sample_us"), intervals.get("aggr_us"))
    prev_intervals = state.seen_intervals
    state.seen_intervals = now if all(now) else None
    mode = intervals.get("mode") or result.get("interval_mode")
    tuning = mode == "kernel" and state.seen_intervals and _kernel_still_tuning(
        state, now, prev_intervals, auto, at_s)
    obs = _observe(app, state, result.get("path"))
    if not state.history and app.get("learned"):
        state.history.append(_prior(app["learned"], obs))
    decision = decide(policy, obs, state.history)
    state.history.append(obs)
    state.decision = decision
    next_bp = to_bp(decision.threshold, obs.max_nr_accesses)
    reason, status = decision.reason, "converged" if decision.converged else "pending"
    if decision.nothing_hot and state.seen_intervals:
        if mode == "controller":
            wider = _widen(state, obs, app, auto, ratio, time_left_s)
            if wider:
                reason += "; widen the intervals %s/%s -> %s/%s" % (
                    human_us(now[0]), human_us(now[1]), human_us(wider[0]), human_us(wider[1]))
                state.intervals, status = wider, "pending"
            else:
                why = "the widest allowed within max_sample_us and the deadline"
                state.message = nothing_hot_message(name, obs, now, why)
                status = "nothing_hot"
        elif mode == "kernel":
            wider = None if tuning else _widen(state, obs, app, auto, ratio, time_left_s)
            if tuning:
                reason += "; the kernel is still tuning the intervals (now %s/%s): wait" % (
                    human_us(now[0]), human_us(now[1]))
                status = "pending"
            elif wider:
                reason += "; the kernel settled at %s/%s: raise its minimum to %s" % (
                    human_us(now[0]), human_us(now[1]), human_us(wider[0]))
                state.floor, status = wider[0], "pending"
            else:
                why = "tuned by the kernel's intervals_goal, the widest allowed within max_sample_us and the deadline"
                state.message = nothing_hot_message(name, obs, now, why)
                status = "nothing_hot"
        else:
            state.message = nothing_hot_message(name, obs, now, "fixed intervals")
            status = "nothing_hot"
    elif mode in ("controller", "kernel") and state.seen_intervals and _unresolved(obs, decision):
        unresolved = ("; %d MiB seen in fewer samples than the noise floor may be hot memory the intervals do not "
                      "resolve yet" % (_unresolved(obs, decision) // MIB))
        wider = None if tuning else _widen(state, obs, app, auto, ratio, time_left_s)
        if wider and mode == "controller":
            reason += unresolved + ": widen %s/%s -> %s/%s" % (
                human_us(now[0]), human_us(now[1]), human_us(wider[0]), human_us(wider[1]))
            state.intervals, status = wider, "pending"
        elif wider:
            reason += unresolved + ": the kernel settled at %s/%s, raise its minimum to %s" % (
                human_us(now[0]), human_us(now[1]), human_us(wider[0]))
            state.floor, status = wider[0], "pending"
        elif tuning:
            reason += unresolved + ": the kernel is still tuning the intervals (now %s/%s): wait" % (
                human_us(now[0]), human_us(now[1]))
            status = "pending"
    if state.unconfirmed:  # user-space path: "nothing left to collapse" is not all of it
        reason += "; %d MiB hot wait for another agreeing snapshot" % (state.unconfirmed // MIB)
    if status == "converged":
        state.message = "%s: threshold %s (%d of %d samples per %s): %d MiB hot in 2 MiB chunks, %d MiB of them huge" % (
            name, _share(next_bp), from_bp(next_bp, obs.max_nr_accesses), obs.max_nr_accesses,
            human_us(now[1]) if now[1] else "aggregation", obs.hot_bytes // MIB, obs.huge_bytes_hot // MIB)
    state.threshold_bp = next_bp
    state.status = status
    return {
        "threshold": obs.threshold, "next_threshold": from_bp(next_bp, obs.max_nr_accesses),
        "threshold_bp": to_bp(obs.threshold, obs.max_nr_accesses), "next_threshold_bp": next_bp,
        "max_nr_accesses": obs.max_nr_accesses, "intervals": dict(intervals) or None,
        "nr_applied_delta": obs.nr_applied_delta, "sz_applied_delta": obs.sz_applied_delta,
        "hot_bytes": app.get("hot_bytes"), "huge_bytes": obs.huge_bytes,
        "huge_bytes_hot": app.get("huge_bytes_hot"),
        "huge_bytes_cold": obs.huge_bytes_cold, "converged": status == "converged", "status": status,
        "reason": reason,
    }
