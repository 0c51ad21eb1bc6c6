# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of a kdamond spec against the kernel's rules, before anything is written.

Each check raises SpecError with the option path (``schemes[0].action``) and
the reason, so a bad spec never leaves a half-written kdamond behind.
"""

from __future__ import annotations

import math
import os

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import (
    ACTIONS_SINCE, FILTER_TYPES_SINCE, GOAL_METRICS_SINCE, OPERATIONS_SINCE,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import (
    CONTEXT, KDAMOND, UINT, ULONG, SpecError, check_int, check_ranges,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._options import (
    AGGR_US, MAX_NR_REGIONS, MIN_NR_REGIONS, SAMPLE_US, max_nr_accesses,
)

# More slots than this is a typo, not a pool: every later plan reads and compares every slot.
POOL_SIZE_MAX = 64

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


def pid_alive(pid, proc_root="/proc"):
    return os.path.isdir(os.path.join(proc_root, str(pid)))


def check_finite(where, value, low=None, high=None, positive=False):
    """SpecError unless ``value`` is a finite number in [low, high] (and > 0 with ``positive``).

    NaN compares false with everything, so a plain ``value <= 0`` check lets it
    through (a NaN deadline never expires); infinity never ends a wait either.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError("%s: %r is not a number" % (where, value))
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError("%s: %r is not a finite number" % (where, value))
    if positive and not value > 0:
        raise SpecError("%s: must be positive, got %r" % (where, value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise SpecError("%s: %r is outside %s..%s" % (where, value, low if low is not None else "",
                                                      high if high is not None else ""))


def check_pool_size(value, where="pool_size"):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= POOL_SIZE_MAX:
        raise SpecError("%s: %r is outside 1..%d (kdamond slots created at once)" % (where, value, POOL_SIZE_MAX))


def check_pid(where, pid):
    """SpecError unless ``pid`` can be a process id (1 .. PID_MAX_LIMIT - 1)."""
    problem = _procfs.bad_pid(pid)
    if problem:
        raise SpecError("%s: %s" % (where, problem))


def check_target_process(where, pid, warnings, proc_root="/proc"):
    """Refuse kernel threads (no user address space to monitor or collapse); warn about PID 1.

    A kernel thread has PF_KTHREAD in its stat flags; on kernels that do not show
    it, kthreadd (PID 2) and its children with an empty command line are kernel
    threads too. A process that cannot be read is left to the later checks.
    """
    check_pid(where, pid)
    identity = _procfs.read_identity(pid, proc_root)
    if identity is None:
        return
    comm, kernel_thread = identity
    if kernel_thread:
        raise SpecError("%s: PID %d (%s) is a kernel thread; it has no user address space to monitor or "
                        "collapse" % (where, pid, comm))
    if pid == 1:
        warnings.append("%s: PID 1 (%s) is the init process, which the whole system depends on; make sure "
                        "it is meant as a target" % (where, comm))


def _check_single_line_path(where, value):
    if value and (not value.startswith("/") or "\n" in value or "\r" in value or "\0" in value):
        raise SpecError("%s: %r must be an absolute path on one line (e.g. /system.slice/app.service)" % (
            where, value))


def validate_monitoring_attrs(attrs, where="monitoring_attrs"):
    """sample_us >= 1, aggr_us >= sample_us, 3 <= min_nr_regions <= max_nr_regions, goal ordering."""
    attrs = attrs or {}
    check_ranges([m for m in CONTEXT if m.key == "monitoring_attrs"][0].members, attrs, where)
    sample, aggr = attrs.get("sample_us", SAMPLE_US), attrs.get("aggr_us", AGGR_US)
    if sample < 1 or aggr < sample:
        raise SpecError("%s: sample_us (%d) must be at least 1 and not above aggr_us (%d)" % (where, sample, aggr))
    if attrs.get("min_nr_regions", MIN_NR_REGIONS) < 3:
        raise SpecError("%s.min_nr_regions: DAMON needs at least 3 (got %d)" % (where, attrs["min_nr_regions"]))
    _range(where, "min_nr_regions", "max_nr_regions", dict({"min_nr_regions": MIN_NR_REGIONS, "max_nr_regions": MAX_NR_REGIONS}, **attrs))
    goal = attrs.get("intervals_goal") or {}
    _range(where + ".intervals_goal", "min_sample_us", "max_sample_us", goal)
    return max_nr_accesses(sample, aggr)


def validate_kdamond(name, refresh_ms, pool_size):
    """The options of a kdamond task outside its context: a name, refresh_ms, pool_size."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError("name: %r is empty; give the kdamond a name (it keys the ownership record)" % (name,))
    if "\n" in name or "\0" in name:
        raise SpecError("name: %r must be one line" % (name,))
    check_ranges(KDAMOND, {"refresh_ms": refresh_ms})
    check_pool_size(pool_size)


def validate_context(ctx, features, warnings):
    """Check a context spec (operations, monitoring_attrs, targets, schemes)."""
    ops = ctx.get("operations", "vaddr")
    for i, target in enumerate(ctx.get("targets") or []):  # before the type walk: a PID has its own range
        if ops in ("vaddr", "fvaddr") and target.get("pid") is not None:
            check_pid("targets[%d].pid" % i, target["pid"])
    check_ranges(CONTEXT, ctx)  # every integer fits its sysfs file's C type
    _keyword("operations", ops, OPERATIONS_SINCE, features, "operations set")
    max_accesses = validate_monitoring_attrs(ctx.get("monitoring_attrs"))
    if ctx.get("addr_unit") == 0:
        raise SpecError("addr_unit: must be at least 1 (the kernel refuses 0 with EINVAL)")

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
            check_target_process(where + ".pid", pid, warnings)
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
        for low, high in (("min_size", "max_size"), ("min_nr_accesses", "max_nr_accesses"), ("min_age", "max_age")):
            _range(where + ".access_pattern", low, high, pattern)
        if pattern.get("min_nr_accesses", 0) > max_accesses:
            warnings.append("%s.access_pattern.min_nr_accesses (%d) is above the largest possible nr_accesses, "
                            "aggr_us/sample_us = %d: the scheme can never match" % (where, pattern["min_nr_accesses"], max_accesses))
        quotas = scheme.get("quotas") or {}
        for j, goal in enumerate(quotas.get("goals") or []):
            _keyword("%s.quotas.goals[%d].metric" % (where, j), goal.get("metric", "user_input"),
                     GOAL_METRICS_SINCE, features, "quota goal metric")
            _check_single_line_path("%s.quotas.goals[%d].path" % (where, j), goal.get("path"))
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
            _check_single_line_path("%s.filters[%d].memcg_path" % (where, j), flt.get("memcg_path"))
            _range("%s.filters[%d]" % (where, j), "min", "max", flt)


def _check_chunk_access(where, runs):
    """hugepage_step's chunk_access as given back to the next step: sorted, disjoint, non-empty ranges."""
    end = 0
    for j, r in enumerate(runs or []):
        label = "%s[%d]" % (where, j)
        for key in ("start", "end", "access_bp"):
            check_int("%s.%s" % (label, key), r.get(key), ULONG)
        if r.get("confirmed_bp") is not None:
            check_int(label + ".confirmed_bp", r["confirmed_bp"], ULONG)
            if r["confirmed_bp"] > r["access_bp"]:
                raise SpecError("%s.confirmed_bp: %d is above access_bp %d; it is the lower of two snapshots' "
                                "shares, the later of which is access_bp" % (label, r["confirmed_bp"], r["access_bp"]))
        if r["end"] <= r["start"] or r["start"] < end:
            raise SpecError("%s: ranges must be non-empty, sorted and disjoint (the chunk_access of the "
                            "application's previous step), got %d-%d after one ending at %d"
                            % (label, r["start"], r["end"], end))
        end = r["end"]


def validate_hugepage_args(args, warnings, on_target=True, proc_root="/proc"):
    """Options of hugepage_step (``on_target``) or of the hugepage_tune action; returns ``warnings``.

    The controller cannot see the host's processes; the step refuses kernel threads
    there. Applications that do not exist are left alone: the step reports them as
    dropped.
    """
    apps = args.get("apps") or []
    seen = {}
    for i, app in enumerate(apps):
        name = app.get("name")
        where = "apps[%d]" % i
        if not isinstance(name, str) or not name.strip():
            raise SpecError("%s.name: %r is empty; every application needs a name" % (where, name))
        if name in seen:
            raise SpecError("apps: application names must be unique; %r is given as apps[%d] and apps[%d]"
                            % (name, seen[name], i))
        seen[name] = i
        where = "apps[%d] (%s)" % (i, name)
        if on_target:
            check_target_process(where + ".pid", app.get("pid"), warnings, proc_root)
        else:
            check_pid(where + ".pid", app.get("pid"))
        if app.get("threshold") is not None:
            check_int(where + ".threshold", app["threshold"], UINT)  # access_pattern/nr_accesses/min
        if app.get("threshold_bp") is not None:
            check_int(where + ".threshold_bp", app["threshold_bp"], UINT)
        if app.get("budget_bytes") is not None:
            check_int(where + ".budget_bytes", app["budget_bytes"], ULONG)
        if app.get("min_sample_us") is not None:
            check_int(where + ".min_sample_us", app["min_sample_us"], ULONG)
        _check_chunk_access(where + ".previous_chunk_access", app.get("previous_chunk_access"))
        own_intervals = dict((k, app[k]) for k in ("sample_us", "aggr_us") if app.get(k) is not None)
        if own_intervals:  # per-application intervals, as monitoring_attrs
            validate_monitoring_attrs(own_intervals, where)
    if args.get("initial_threshold") is not None:
        check_int("initial_threshold", args["initial_threshold"], UINT)
    validate_monitoring_attrs(args.get("monitoring_attrs"))
    for name in ("quota_bytes", "host_budget_bytes"):
        if args.get(name) is not None:
            check_int(name, args[name], ULONG)
    if args.get("pool_size") is not None:
        check_pool_size(args["pool_size"])
    if args.get("interval_s") is not None:
        check_finite("interval_s", args["interval_s"], low=0, positive=not on_target)
    if args.get("timeout_s") is not None:
        check_finite("timeout_s", args["timeout_s"], positive=True)
    if args.get("max_iterations") is not None and (
            isinstance(args["max_iterations"], bool) or not isinstance(args["max_iterations"], int)
            or args["max_iterations"] < 1):
        raise SpecError("max_iterations: must be a positive integer, got %r" % (args["max_iterations"],))
    return warnings
