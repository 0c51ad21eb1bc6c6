# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs and defaults that more than one plugin takes: one definition each.

Imported by host-side modules and by the controller-side hugepage_tune action
alike, so it imports nothing: the controller must not load host code (ctypes,
/proc and sysfs readers) to learn an option's type. The modules' DOCUMENTATION
repeats these defaults (mostly through ``plugins/doc_fragments/_common.py``); ansible-test's
validate-modules checks that documentation and argument spec agree.
"""

from __future__ import annotations

# DAMON's own defaults for a new context (mm/damon/core.c, damon_new_ctx()); a kdamond written
# without monitoring_attrs gets them, and so does every spec that leaves them out.
SAMPLE_US = 5000
AGGR_US = 100000
UPDATE_US = 1000000
MIN_NR_REGIONS = 10
MAX_NR_REGIONS = 1000

OWNERSHIP_FILE = "/run/linux_mm_damon/ownership.json"
LOCK_TIMEOUT_S = 120.0

# Options of every module that reads DAMON sysfs (the action group linux_mm.damon.damon).
SYSFS_OPTIONS = dict(
    sysfs_root=dict(type="path", default="/sys"),
    kernel_release=dict(type="str"),
)
OWNERSHIP_OPTIONS = dict(ownership_file=dict(type="path", default=OWNERSHIP_FILE))
LOCK_OPTIONS = dict(lock_timeout_s=dict(type="float", default=LOCK_TIMEOUT_S))
EXCLUSIVE_OPTIONS = dict(exclusive_modules=dict(type="str", choices=["fail", "stop"], default="fail"))

# The hugepage loop: collapse paths and who widens the monitoring intervals.
PATHS = ("auto", "damos_collapse", "user_collapse", "khugepaged")
INTERVAL_MODES = ("auto", "kernel", "controller", "off")
GOAL_ACCESS_BP = 400
GOAL_AGGRS = 3
MAX_SAMPLE_US = 1000000

# Options of hugepage_step that the hugepage_tune action passes through unchanged.
HUGEPAGE_LOOP_OPTIONS = dict(
    path=dict(type="str", choices=list(PATHS), default="auto"),
    interval_s=dict(type="float", default=5.0),
    monitoring_attrs=dict(type="dict", default={}, options=dict(
        sample_us=dict(type="int", default=SAMPLE_US), aggr_us=dict(type="int", default=AGGR_US),
        min_nr_regions=dict(type="int", default=MIN_NR_REGIONS),
        max_nr_regions=dict(type="int", default=MAX_NR_REGIONS))),
    auto_intervals=dict(type="dict", default={}, options=dict(
        mode=dict(type="str", choices=list(INTERVAL_MODES), default="auto"),
        access_bp=dict(type="int", default=GOAL_ACCESS_BP),
        aggrs=dict(type="int", default=GOAL_AGGRS),
        max_sample_us=dict(type="int", default=MAX_SAMPLE_US))),
    quota_bytes=dict(type="int", default=134217728),
    pool_size=dict(type="int", default=4),
    learned_file=dict(type="path"),
    between_runs=dict(type="str", choices=["auto", "none", "hugepage"], default="auto"),
    **dict(EXCLUSIVE_OPTIONS, **OWNERSHIP_OPTIONS, **LOCK_OPTIONS, **SYSFS_OPTIONS)
)


# Thresholds travel as a share of the samples of one aggregation interval, in basis points, so they
# mean the same after the intervals changed; above BP collapses nothing.
BP = 10000
NOTHING_BP = BP + 1


def to_bp(threshold, max_nr):
    """A ``min_nr_accesses`` as basis points of ``max_nr`` samples; above the max: :data:`NOTHING_BP`."""
    top = max(1, int(max_nr))
    if threshold > top:
        return NOTHING_BP
    return max(0, int(threshold)) * BP // top


def from_bp(threshold_bp, max_nr):
    """The ``min_nr_accesses`` selecting at least ``threshold_bp`` of ``max_nr`` samples (inverse of :func:`to_bp`)."""
    top = max(1, int(max_nr))
    if threshold_bp > BP:
        return top + 1
    return -(-max(0, int(threshold_bp)) * top // BP)


def max_nr_accesses(sample_us, aggr_us):
    """The largest ``nr_accesses`` a region can reach: samples per aggregation interval."""
    return aggr_us // max(sample_us, 1)


# Noise floor, in samples of one aggregation interval: DAMON shows 1-2 accessed
# samples for memory that is not in use (a one-off touch sets the accessed bit
# once; a region boundary that moved next to hot memory samples a hot page), so
# nothing is hot below 3 accessed samples. It is a count, not a share: 3 of 20
# samples (15 %) with 5 ms / 100 ms, 3 of 400 (0.75 %) with 5 ms / 2 s, so more
# samples per aggregation let rarely accessed memory count as hot.
NOISE_SAMPLES = 3


def noise_floor(max_nr_accesses):
    """Lowest threshold the adaptive policy ever chooses: :data:`NOISE_SAMPLES`, or
    every sample when an aggregation has fewer. At it hugepage_step collapses a
    chunk only when three snapshots in a row agree (two elsewhere)."""
    return min(NOISE_SAMPLES, max(1, int(max_nr_accesses)))
