"""Monitoring-interval auto-tuning (``intervals_goal``, Linux 6.15+) and interval-dependent access rates.

Kernel behaviour reproduced (mm/damon/core.c, ``kdamond_tune_intervals()``):

* every ``aggrs`` aggregation intervals, the score is the observed access events
  (bytes x ``nr_accesses``) against the goal (``access_bp`` of bytes x ``aggr_samples``);
* the sample interval is scaled by ``damon_feed_loop_next_input(100000000, score) / 10000``
  basis points (a reduction is softened to 5000..10000 bp) and clamped to
  ``[min_sample_us, max_sample_us]``;
* the aggregation interval becomes ``sample_us * aggr_samples``: the ratio set at
  ``on``/``commit`` is kept, so the largest ``nr_accesses`` never changes while tuning;
* scheme apply times are re-armed (``damon_set_attrs()`` -> ``damos_set_next_apply_sis()``).

The sysfs ``sample_us``/``aggr_us`` files change only on ``update_tuned_intervals``
(``copy_tuned_intervals`` in emulator.py).

Access rates: a model range's ``rate`` is the share of sampling intervals in which it
was accessed. Real pages are touched at some frequency, so the share grows with the
sampling interval; a range with ``rate_sample_us: 5000`` states its rate at 5 ms
sampling and is scaled as a Poisson process (``1 - (1 - rate) ** (sample_us / 5000)``).
Without ``rate_sample_us`` the rate does not depend on the interval (older scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass

ULONG_MAX = 2**64 - 1


@dataclass
class IntervalsGoal:
    access_bp: int
    aggrs: int
    min_sample_us: int
    max_sample_us: int


def feed_loop_next_input(last_input: int, score: int) -> int:
    """damon_feed_loop_next_input(): proportional step towards score 10000."""
    goal, min_input = 10000, 10000
    if score == goal:
        return last_input
    if score >= goal * 2:
        return min_input
    diff = score - goal if score > goal else goal - score
    compensation = last_input * diff // goal
    if score > goal:
        return max(last_input - compensation, min_input)
    return min(last_input + compensation, ULONG_MAX)


def adaptation_bp(ctx) -> int:
    """damon_get_intervals_adaptation_bp() over the ctx's current segments."""
    goal = ctx.intervals_goal
    max_events = events = 0
    for target in ctx.targets:
        for seg in target.segments:
            size = seg.end - seg.start
            max_events += size * ctx.aggr_samples
            events += size * seg.nr
    target_events = max_events * goal.access_bp // 10000 or 1
    score = events * 10000 // target_events
    bp = feed_loop_next_input(100000000, score) // 10000
    return 5000 + bp // 2 if bp <= 10000 else bp


def after_aggregation(ctx, t_us: int) -> bool:
    """Count one aggregation; every ``aggrs`` of them tune the intervals. True when they changed."""
    goal = ctx.intervals_goal
    if goal is None or not goal.aggrs:
        return False
    ctx.aggrs_since_tune += 1
    if ctx.aggrs_since_tune < goal.aggrs:
        return False
    ctx.aggrs_since_tune = 0
    bp = adaptation_bp(ctx)
    if bp == 10000:
        return False
    sample = min(goal.max_sample_us, ctx.sample_us * bp // 10000)
    sample = max(goal.min_sample_us, sample)
    if sample == ctx.sample_us:
        return False
    ctx.sample_us, ctx.aggr_us = sample, max(1, sample * ctx.aggr_samples)
    for s in ctx.schemes:
        s.next_apply_us = t_us + ctx.apply_period(s)
    return True


def goal_of(iv) -> "IntervalsGoal | None":
    """The runtime goal of a sysfs ``intervals`` dir (None: the kernel lacks it or aggrs is 0)."""
    goal = getattr(iv, "intervals_goal", None)
    if goal is None or not goal.aggrs:
        return None
    return IntervalsGoal(goal.access_bp, goal.aggrs, goal.min_sample_us, goal.max_sample_us)


def effective_rate(model_range, t_sec: float, sample_us: int) -> float:
    """Share of sampling intervals of ``sample_us`` in which the range is accessed."""
    rate = model_range.rate_at(t_sec)
    base = getattr(model_range, "rate_sample_us", None)
    if not base or rate in (0.0, 1.0):
        return rate
    return 1.0 - (1.0 - rate) ** (max(1, sample_us) / float(base))
