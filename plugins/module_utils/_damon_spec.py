# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of a kdamond spec against the kernel's rules, before anything is written.

Each check raises SpecError with the option path (``schemes[0].action``) and
the reason, so a bad spec never leaves a half-written kdamond behind.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import (
    ACTIONS_SINCE, FILTER_TYPES_SINCE, GOAL_METRICS_SINCE, OPERATIONS_SINCE,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError

COLLAPSE_FALLBACK = ("use action 'stat' and collapse its tried regions from user space with "
                     "linux_mm.damon.collapse (Linux 6.2+), or action 'hugepage' and let khugepaged collapse")


def _keyword(where, value, table, features, what):
    if value not in table:
        raise SpecError("%s: %r is not a DAMON %s; known: %s" % (where, value, what, ", ".join(sorted(table))))
    feature = table[value]
    if not features.has(feature):
        msg = "%s: %s %r needs %s; this kernel is %s" % (where, what, value, features.since_text(feature), features.release)
        if value == "collapse":
            msg += "; " + COLLAPSE_FALLBACK
        raise SpecError(msg)


def _range(where, low_key, high_key, spec):
    low, high = spec.get(low_key), spec.get(high_key)
    if low is not None and high is not None and low > high:
        raise SpecError("%s: %s (%d) is greater than %s (%d)" % (where, low_key, low, high_key, high))


def _non_negative(where, spec):
    for key, value in (spec or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value < 0 and key not in ("target_nid",):
            raise SpecError("%s.%s: must not be negative (got %d)" % (where, key, value))
        if isinstance(value, dict):
            _non_negative("%s.%s" % (where, key), value)


def pid_alive(pid, proc_root="/proc"):
    return os.path.isdir(os.path.join(proc_root, str(pid)))


def validate_context(ctx, features, warnings):
    """Check a context spec (operations, monitoring_attrs, targets, schemes)."""
    ops = ctx.get("operations", "vaddr")
    _keyword("operations", ops, OPERATIONS_SINCE, features, "operations set")
    attrs = ctx.get("monitoring_attrs") or {}
    _non_negative("monitoring_attrs", attrs)
    sample, aggr = attrs.get("sample_us", 5000), attrs.get("aggr_us", 100000)
    if sample <= 0 or aggr < sample:
        raise SpecError("monitoring_attrs: sample_us (%d) must be positive and not above aggr_us (%d)" % (sample, aggr))
    if attrs.get("min_nr_regions", 10) < 3:
        raise SpecError("monitoring_attrs.min_nr_regions: DAMON needs at least 3 (got %d)" % attrs["min_nr_regions"])
    _range("monitoring_attrs", "min_nr_regions", "max_nr_regions", dict({"min_nr_regions": 10, "max_nr_regions": 1000}, **attrs))
    max_accesses = aggr // sample

    targets = ctx.get("targets") or []
    if ops == "paddr" and len(targets) > 1:
        raise SpecError("targets: the paddr operations set monitors one physical address space; got %d targets" % len(targets))
    for i, target in enumerate(targets):
        where = "targets[%d]" % i
        if ops in ("vaddr", "fvaddr"):
            pid = target.get("pid")
            if not pid or pid <= 0:
                raise SpecError("%s.pid: the %s operations set needs the PID of a process" % (where, ops))
            if not pid_alive(pid):
                raise SpecError("%s.pid: no process with PID %d exists" % (where, pid))
        regions = sorted((r.get("start", 0), r.get("end", 0)) for r in target.get("regions") or [])
        if ops in ("fvaddr", "paddr") and not regions:
            raise SpecError("%s.regions: the %s operations set needs at least one region" % (where, ops))
        for j, (start, end) in enumerate(regions):
            if start < 0 or end <= start:
                raise SpecError("%s.regions: region [%d, %d) is empty or negative" % (where, start, end))
            if j and start < regions[j - 1][1]:
                raise SpecError("%s.regions: regions [%d, %d) and [%d, %d) overlap" % (
                    where, regions[j - 1][0], regions[j - 1][1], start, end))

    for i, scheme in enumerate(ctx.get("schemes") or []):
        where = "schemes[%d]" % i
        _keyword(where + ".action", scheme.get("action"), ACTIONS_SINCE, features, "action")
        pattern = scheme.get("access_pattern") or {}
        _non_negative(where + ".access_pattern", pattern)
        for low, high in (("min_size", "max_size"), ("min_nr_accesses", "max_nr_accesses"), ("min_age", "max_age")):
            _range(where + ".access_pattern", low, high, pattern)
        if pattern.get("min_nr_accesses", 0) > max_accesses:
            warnings.append("%s.access_pattern.min_nr_accesses (%d) is above the largest possible nr_accesses, "
                            "aggr_us/sample_us = %d: the scheme can never match" % (where, pattern["min_nr_accesses"], max_accesses))
        quotas = scheme.get("quotas") or {}
        _non_negative(where + ".quotas", quotas)
        for j, goal in enumerate(quotas.get("goals") or []):
            _keyword("%s.quotas.goals[%d].metric" % (where, j), goal.get("metric", "user_input"),
                     GOAL_METRICS_SINCE, features, "quota goal metric")
        marks = scheme.get("watermarks") or {}
        if marks.get("metric", "none") != "none" and not (marks.get("high", 0) >= marks.get("mid", 0) >= marks.get("low", 0)):
            raise SpecError("%s.watermarks: high >= mid >= low is required" % where)
        for j, flt in enumerate(scheme.get("filters") or []):
            _keyword("%s.filters[%d].type" % (where, j), flt.get("type"), FILTER_TYPES_SINCE, features, "filter type")
            if flt.get("type") != "addr" and (flt.get("addr_start") or flt.get("addr_end")):
                raise SpecError("%s.filters[%d]: addr_start/addr_end only apply to type addr" % (where, j))
            if flt.get("type") == "addr" and flt.get("addr_end", 0) <= flt.get("addr_start", 0):
                raise SpecError("%s.filters[%d]: addr_end must be above addr_start" % (where, j))
            if flt.get("type") == "memcg" and not flt.get("memcg_path"):
                raise SpecError("%s.filters[%d]: type memcg needs memcg_path" % (where, j))
