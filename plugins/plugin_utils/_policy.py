# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hotness-threshold policies of the ``hugepage_tune`` feedback loop.

Pure, deterministic, standard library only (runs on Python 3.9). The action
plugin calls, per application::

    t = initial_threshold(policy, max_nr_accesses)
    loop: apply t remotely -> Observation obs; d = decide(policy, obs, history)
          history.append(obs); stop if d.converged; t = d.threshold

A threshold is a DAMOS ``min_nr_accesses``: regions whose ``nr_accesses`` is
``>= threshold`` get collapsed. ``max_nr_accesses + 1`` means *collapse
nothing* (no region can reach it); it is the largest value returned. Between
iterations the loop keeps thresholds as a share of samples in basis points
(``_options.to_bp``, ``_options.from_bp``), which survives interval changes: the kernel
rescales regions' ``nr_accesses`` when intervals change (``damon_set_attrs``)
but not a scheme's ``min_nr_accesses``.

``stepdown`` is the RFC's step-down (``mm/damon/hugepage.c``), with the start
clamped to ``max_nr_accesses``. ``adaptive`` (default) reads the access
distribution of the application's 2 MiB chunks (what can become a huge page;
``Observation.chunks``, else the region histogram) and picks the threshold that
separates the application's hot memory from its own cold memory (see
:func:`choose_threshold`), then applies the bloat and budget rules. When no
chunk stands out it says so (``Decision.nothing_hot``): the loop then widens the
monitoring intervals or reports that there is nothing hot to collapse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction

from ansible_collections.linux_mm.damon.plugins.module_utils._options import noise_floor

POLICIES = ("stepdown", "adaptive")
DEFAULT_POLICY = "adaptive"

# The RFC's constants (HIGHEST_MIN_ACCESS, HIGH/MID/LOW_ACC_THRESHOLD).
RFC_START = 90
RFC_STEPS = ((50, 10), (15, 5), (2, 1))  # (lower only while above, by)
# adaptive keeps a threshold whose hot memory is at least this much huge pages
# while no cold memory became huge: on real kernels the histogram drifts once hot
# memory is PMD-mapped, and a good outcome must not be re-tuned (idempotence).
SETTLED_COVERAGE = 0.9


@dataclass
class Observation:
    """What one interval showed for one application (see the module doc of hugepage_tune)."""

    threshold: int = 0
    max_nr_accesses: int = 20
    histogram: list = field(default_factory=list)  # [(nr_accesses, bytes)] of DAMON regions
    chunks: list = field(default_factory=list)  # [(nr_accesses level, bytes)] of 2 MiB chunks
    chunks_huge: list = field(default_factory=list)  # [(level, bytes)] of those chunks already in huge pages
    nr_applied: int = 0
    sz_applied: int = 0
    nr_applied_delta: int = 0
    sz_applied_delta: int = 0
    huge_bytes: int = 0
    huge_bytes_cold: int = 0
    budget_bytes: int = 0
    # the step caps the huge-page bytes it collapses by budget_bytes, hottest first (user_collapse); the kernel
    # paths cannot, so there the threshold rises until the bytes it selects fit
    budget_capped: bool = False
    hot_bytes: int = 0  # bytes of the 2 MiB chunks at or above the threshold
    huge_bytes_hot: int = 0  # huge-page bytes inside them

    @classmethod
    def from_dict(cls, data):
        """Build from a module result dict; unknown keys are ignored, missing ones default."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Decision:
    """The next threshold, whether the loop may stop, and why (for the trace)."""

    threshold: int
    converged: bool
    reason: str
    nothing_hot: bool = False  # converged because nothing stands out at these intervals


def _check_policy(policy):
    if policy not in POLICIES:
        raise ValueError("unknown policy %r; expected one of: %s" % (policy, ", ".join(POLICIES)))


def _top(max_nr_accesses):
    return max(1, int(max_nr_accesses))


def initial_threshold(policy, max_nr_accesses):
    """First threshold. stepdown: ``min(90, max)`` like the RFC, clamped to the
    real maximum. adaptive: ``max + 1`` (collapse nothing): the first interval
    only observes, so nothing is collapsed before the distribution is known."""
    _check_policy(policy)
    top = _top(max_nr_accesses)
    return min(RFC_START, top) if policy == "stepdown" else top + 1


def levels(histogram, max_nr_accesses):
    """Bytes per ``nr_accesses`` level 0..max (values outside are clamped)."""
    top = _top(max_nr_accesses)
    out = [0] * (top + 1)
    for nr, size in histogram or ():
        out[min(top, max(0, int(nr)))] += max(0, int(size))
    return out


def bytes_at_or_above(histogram, threshold, max_nr_accesses):
    """Bytes of the histogram a scheme with ``min_nr_accesses=threshold`` selects."""
    return sum(levels(histogram, max_nr_accesses)[max(0, threshold):])


def _otsu(lv):
    """Otsu's split: the range [lo, hi] of thresholds maximising the bytes-weighted
    between-class variance (a plateau when the classes are apart), or None when
    there is no split or the classes lack contrast (lower mean > half the upper)."""
    total, moment = sum(lv), sum(i * b for i, b in enumerate(lv))
    best, plateau, w0, s0 = None, [], 0, 0
    for t in range(1, len(lv)):
        w0, s0 = w0 + lv[t - 1], s0 + (t - 1) * lv[t - 1]
        w1 = total - w0
        if not w0 or not w1:
            continue
        var = Fraction((s0 * total - moment * w0) ** 2, w0 * w1)  # exact: no float ties
        if best is None or var > best:
            best, plateau = var, [t]
        elif var == best and plateau[-1] == t - 1:
            plateau.append(t)
    if best is None:
        return None
    lo, hi = plateau[0], plateau[-1]
    w0, s0 = sum(lv[:lo]), sum(i * b for i, b in enumerate(lv[:lo]))
    if 2 * s0 * (total - w0) > (moment - s0) * w0:  # 2 * mean0 > mean1
        return None
    return lo, hi


def _cold_edge(lv, split, floor):
    """Move an Otsu split down to the upper edge of the coldest class.

    With a large cold mass and a hot class spread over many levels (a real
    application under kernel-tuned intervals: redis's hot keys at 5..20 of 20
    next to 460 MiB at 0), Otsu's between-class variance favours the dense top
    and splits inside the hot class. While the lower class itself splits with
    contrast and the gap above its cold part reaches the noise floor, the upper
    part is warm memory, not cold: take the lower split."""
    while True:
        inner = _otsu(lv[:split[0]])
        if inner is None or inner[1] < floor:
            return split
        split = inner


def choose_threshold(lv, current):
    """Threshold separating hot from cold in the level histogram ``lv``.

    Rule: Otsu's method over ``nr_accesses`` weighted by bytes, i.e. relative to
    the application's own distribution: a large cold mass at 0 plus a little
    sampling noise at 1-2 stays in the cold class while a clear mode above it
    forms the hot class, however low that mode is in absolute terms ("accessed
    in 3 % of samples" next to "never"); the largest-gap rule instead would split
    at any empty level inside a noisy mode. The hot class must have at least
    twice the mean of the cold class (contrast). Otsu favours the dense top of a
    hot class spread over many levels, so the split is then moved down to the
    edge of the coldest class (:func:`_cold_edge`): all memory that stands out
    above the noise is hot, and the budget rule trims from the coldest end.
    Among the equally good
    thresholds (the empty gap between the classes) take the middle, which leaves
    a margin for the jitter of ``nr_accesses`` on both sides; keep ``current``
    while it still lies in the gap (hysteresis: a re-run or a collapse that
    changes the hot set's nr_accesses must not move a threshold that still
    separates). When the hot set moves so that ``current`` would select what is
    now the colder class, the threshold is re-centred. Without contrast (one
    mode) everything is one class: hot if its mean reaches :func:`noise_floor`,
    else cold. Never below the noise floor; ``max + 1`` (collapse nothing) when
    no byte would be selected. Returns ``(threshold, reason, nothing_hot)``.
    """
    top, floor = len(lv) - 1, noise_floor(len(lv) - 1)
    total = sum(lv)
    split = _otsu(lv)
    if split is None:
        lowest = next(i for i, b in enumerate(lv) if b)
        if sum(i * b for i, b in enumerate(lv)) < floor * total:
            return top + 1, "all memory cold (mean below the noise floor of %d of %d samples): collapse nothing" % (
                floor, top), True
        split, what = (1, lowest), "one hot mode from %d" % lowest
    else:
        split = _cold_edge(lv, split, floor)
        what = "hot/cold split between %d and %d" % (split[0] - 1, split[1])
    lo, hi = max(split[0], floor), split[1]
    if lo <= current <= hi:
        return current, what + ": current threshold still separates", False
    t = max((lo + hi) // 2, floor)
    if not any(lv[t:]):
        return top + 1, "nothing at or above the noise floor of %d of %d samples: collapse nothing" % (
            floor, top), True
    return t, what, False


def _stepdown(obs):
    cur = obs.threshold
    if obs.nr_applied > 0:
        return Decision(cur, True, "nr_applied=%d > 0: RFC step-down stops" % obs.nr_applied)
    for above, by in RFC_STEPS:
        if cur > above:
            return Decision(cur - by, False, "nothing applied: lower %d -> %d" % (cur, cur - by))
    return Decision(cur, True, "nothing applied at the floor %d" % cur)


def _adaptive(obs, history):
    """In order: the separating threshold of the chunk distribution
    (:func:`choose_threshold`); one step up when cold huge-page bytes grew at an
    unchanged or lowered threshold while this interval collapsed something and
    the distribution still agrees with the current threshold (a changed
    distribution, e.g. a moved hot set, is left to it: raising would not split
    old huge pages); then, unless the step caps the bytes it collapses itself
    (``budget_capped``), up until the selected bytes fit ``budget_bytes``.
    Converged when the threshold stays and nothing was collapsed this interval,
    or the huge-page bytes outside cold memory cover every selected byte, or it
    stayed for two decisions in a row; converged with ``nothing_hot`` when no
    memory stands out."""
    top = _top(obs.max_nr_accesses)
    cur, lv = obs.threshold, levels(obs.chunks or obs.histogram, top)
    if not sum(lv):
        return Decision(cur, False, "no access histogram: keep %d" % cur)
    prev = history[-1] if history else None
    cold_grew = prev is not None and obs.huge_bytes_cold > prev.huge_bytes_cold
    capped = obs.budget_capped and obs.budget_bytes > 0
    wanted = min(obs.hot_bytes, obs.budget_bytes) if capped else obs.hot_bytes  # a capped budget may end short
    if (wanted and obs.huge_bytes_hot >= SETTLED_COVERAGE * wanted and not cold_grew
            and (capped or not (obs.budget_bytes and obs.huge_bytes_hot > obs.budget_bytes))):
        return Decision(cur, True, "settled: %d of %d hot bytes at %d are huge pages, cold ones are not growing"
                        % (obs.huge_bytes_hot, obs.hot_bytes, cur))
    t, why, nothing = choose_threshold(lv, cur)
    huge = levels(obs.chunks_huge, top) if obs.chunks else [0] * len(lv)
    if not nothing and 0 <= cur < t <= top and sum(huge[t:]) >= SETTLED_COVERAGE * sum(lv[t:]):
        # the class above the proposed threshold is huge already: a huge chunk reads through one PMD accessed
        # bit, so one access anywhere in its 2 MiB puts it at the top, above the hot chunks still on base pages
        # (redis on 7.3: 3 -> 12 of 20, then three steps back). Split over the chunks not huge yet instead.
        t, why, nothing = choose_threshold([a - min(a, b) for a, b in zip(lv, huge)], cur)
        why = "over the chunks not in huge pages yet, " + why
        if nothing:
            return Decision(cur, True, "the chunks not in huge pages yet read cold: keep %d" % cur)
    if nothing:
        return Decision(t, True, why, nothing_hot=True)
    if 0 <= cur <= top and t > cur and any(lv[cur:t]):
        why += "; %d B below the hot class were selected at %d: raise" % (sum(lv[cur:t]), cur)
    grew = obs.huge_bytes_cold - prev.huge_bytes_cold if prev else 0
    if grew > 0 and obs.sz_applied_delta > 0 and cur <= prev.threshold and t == cur <= top:
        t, why = cur + 1, "cold huge-page bytes grew by %d at %d: raise one step" % (grew, cur)
    if obs.budget_bytes > 0 and not obs.budget_capped and t <= top and sum(lv[t:]) > obs.budget_bytes:
        start = t
        while t <= top and sum(lv[t:]) > obs.budget_bytes:
            t += 1
        why += "; budget %d B: raise %d -> %d" % (obs.budget_bytes, start, t)
    if t != cur:
        return Decision(t, False, "%s: %d -> %d" % (why, cur, t))
    if obs.sz_applied_delta == 0:
        return Decision(t, True, why + "; nothing left to collapse")
    if obs.huge_bytes - obs.huge_bytes_cold >= sum(lv[t:]):
        return Decision(t, True, why + "; all %d selected bytes are huge pages" % sum(lv[t:]))
    if prev is not None and prev.threshold == cur:
        return Decision(t, True, why + "; threshold stable for two decisions")
    return Decision(t, False, why + "; still collapsing")


def decide(policy, obs, history=()):
    """Next threshold for one application from its latest observation and the
    previous ones (oldest first). See the module doc and :func:`choose_threshold`."""
    _check_policy(policy)
    if policy == "stepdown":
        return _stepdown(obs)
    return _adaptive(obs, list(history))


def access_rate(level, max_nr_accesses, sample_us):
    """Estimated accesses per second of memory seen accessed in ``level`` of ``max_nr_accesses`` samples
    taken every ``sample_us``: with accesses as a Poisson process of rate r, a sample sees one with
    probability 1 - exp(-r * sample_s), so r = -ln(1 - share) / sample_s. Unlike a share of samples, it
    compares kdamonds whose intervals differ (each kdamond's are tuned to its own application). A chunk
    seen in every sample is taken as seen in all but half of one (a finite rate)."""
    top = _top(max_nr_accesses)
    share = min(max(0, level), top - 0.5) / float(top)
    return -math.log(1.0 - share) * 1e6 / max(1, sample_us)


def _fill_equally(result, room, left):
    """Add ``left`` bytes to ``result`` in equal shares, none beyond its ``room`` (water-filling)."""
    apps = [a for a in sorted(result, key=str) if room[a] > 0]
    while apps and left >= len(apps):
        share = left // len(apps)
        capped = [a for a in apps if room[a] <= share]
        for a in capped or apps:
            give = room[a] if capped else share
            result[a], room[a], left = result[a] + give, room[a] - give, left - give
        apps = [a for a in apps if room[a] > 0]
        if not capped:
            break


def split_host_budget(host_budget_bytes, app_budgets, demand=None):
    """Per-application budgets under a per-host cap (0 = unlimited everywhere).

    Rule: with a host cap, every application gets 1 byte (a budget no huge page
    fits in, since 0 would mean unlimited); then, when ``demand`` gives every
    application's ``[(accesses per second, bytes), ...]`` (:func:`access_rate`
    of its hot chunks, and its huge pages at an infinite rate: they hold budget
    whatever their rate), the hottest bytes of all applications first; what is
    left goes in equal shares (water-filling). No result exceeds the
    application's own non-zero budget and the sum never exceeds the host cap.
    A cap smaller than the number of applications cannot be split: ValueError.
    """
    host = int(host_budget_bytes)
    # Each message names the option that is wrong: the user fixes that one.
    if host < 0:
        raise ValueError("host_budget_bytes: %d is negative; budgets are >= 0 bytes (0 = unlimited)" % host)
    for app in sorted(app_budgets, key=str):
        if int(app_budgets[app]) < 0:
            raise ValueError("apps[%s].budget_bytes: %d is negative; budgets are >= 0 bytes (0 = unlimited)"
                             % (app, int(app_budgets[app])))
    if host == 0 or not app_budgets:
        return {a: int(b) for a, b in app_budgets.items()}
    if host < len(app_budgets):
        raise ValueError("host_budget_bytes: %d bytes cannot be split among %d applications (each needs at least "
                         "1 byte)" % (host, len(app_budgets)))
    result = dict.fromkeys(app_budgets, 1)
    room = {a: int(b) - 1 if int(b) else host for a, b in app_budgets.items()}
    left = host - len(app_budgets)
    if demand is not None and all(a in demand for a in app_budgets):
        wants = sorted(((-rate, str(a), a, int(size)) for a in app_budgets for rate, size in demand[a] if size > 0),
                       key=lambda w: w[:2])
        held = dict.fromkeys(app_budgets, 1)  # the byte every application has covers a byte of its demand
        for unused, unused_name, a, size in wants:
            give = min(size - min(size, held[a]), room[a], left)
            held[a] -= min(size, held[a])
            result[a], room[a], left = result[a] + give, room[a] - give, left - give
    _fill_equally(result, room, left)
    return result
