# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One step of the huge-page feedback loop on a host, for each hot application.

Each application gets its own kdamond from a pool of slots we own (like the
RFC's module): changing the set of applications then never restarts, renumbers
or resets the monitoring of the applications that stay, on any kernel. (One
kdamond with a target per application would renumber targets when one leaves,
and before Linux 6.19 a commit would hand one application's regions to another.)

Every kdamond has a ``stat`` scheme over all memory, whose tried regions give
the access distribution, and, depending on the collapse path:

- ``user_collapse`` (6.2+, the default): a second ``stat`` scheme at the threshold
  (it keeps the threshold in sysfs and counts what is at or above it); the step
  collapses the hot huge-page-sized chunks itself with process_madvise(MADV_COLLAPSE),
  hottest first;
- ``damos_collapse`` (Linux 7.2+, on request): a ``collapse`` scheme at the threshold.
  The kernel keeps collapsing between runs, but DAMOS acts on whole DAMON regions:
  a region that is partly hot reads above the threshold and every chunk in it
  becomes huge, cold ones included; the huge chunks then read as the hot class and
  the policy raises the threshold above the hot memory not collapsed yet (measured
  in the 7.3 guest on redis and the benchmark's ``behind`` workload, see
  docs/real-applications.md), so it is not the default;
- ``khugepaged``: a ``hugepage`` scheme; khugepaged collapses later, slowly.

Monitoring intervals fit each application: real applications touch a hot page
far less often than every 5 ms, so at 5 ms / 100 ms their hot memory looks
cold. With ``auto_intervals`` mode ``kernel`` (Linux 6.15+) the kdamond gets an
``intervals_goal`` and the kernel tunes ``sample_us``/``aggr_us`` itself, keeping
their ratio (``kdamond_tune_intervals()``); we read them back with
``update_tuned_intervals``. In mode ``controller`` the caller (hugepage_tune)
passes wider intervals per application.

The access distribution is reported per PMD-aligned chunk (2 MiB on x86-64; the size is read from
SYSFS_ROOT/kernel/mm/transparent_hugepage/hpage_pmd_size), i.e. per possible
huge page: a chunk's level is the highest ``nr_accesses`` that covers at least
half of it, whatever the DAMON regions that cover it. Tiny very hot regions in
an otherwise cold chunk leave the chunk cold; they can never become a huge page.
"""

from __future__ import annotations

import os
import time

from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse, _pagemap, _procfs, _thp_eligibility
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import apply_plan, plan_kdamond
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import UINT_MAX, ULONG_MAX, SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import COLLAPSE_FALLBACK, pid_alive
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import (
    apply as apply_writes, command, read_kdamonds, read_stats, read_tried_regions,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._options import (
    BP, GOAL_ACCESS_BP, GOAL_AGGRS, MAX_SAMPLE_US, from_bp, max_nr_accesses, noise_floor, to_bp,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, read_optional

NAME_PREFIX = "hugepage:"
ACTION_OF_PATH = {"damos_collapse": "collapse", "user_collapse": "stat", "khugepaged": "hugepage"}
PATH_OF_ACTION = dict((action, path) for path, action in ACTION_OF_PATH.items())
# _thp_eligibility's paths: khugepaged works through MADV_HUGEPAGE, the others through MADV_COLLAPSE
ELIGIBILITY_PATH = {"damos_collapse": "collapse", "user_collapse": "collapse", "khugepaged": "hugepage"}
INTERVALS = "contexts/0/monitoring_attrs/intervals"
BETWEEN_RUNS = ("auto", "none", "hugepage")
# the floor of the kernel's interval tuning is raised to where hot memory was found when that is more than this
# many times the floor, not at every widening the kernel makes afterwards (re-runs stay changed=false)
FLOOR_SLACK = 2
# between_runs hugepage: a region not accessed for this long loses its huge-page mark (MADV_NOHUGEPAGE)
COLD_MARK_S = 300


def choose_path(features, requested):
    """The collapse path for this kernel; SpecError when the requested one cannot work."""
    if requested == "auto":  # per 2 MiB chunk from user space wherever tried regions exist (see the module doc)
        return "user_collapse" if features.has("tried_regions") else "khugepaged"
    if requested == "damos_collapse" and not features.has("collapse_action"):
        raise SpecError("path: damos_collapse needs the DAMOS collapse action of %s; this kernel is %s; %s" % (
            features.since_text("collapse_action"), features.release, COLLAPSE_FALLBACK))
    if requested == "user_collapse" and not features.has("tried_regions"):
        raise SpecError("path: user_collapse reads DAMON tried regions, which need %s; this kernel is %s" % (
            features.since_text("tried_regions"), features.release))
    return requested


def choose_interval_mode(features, requested):
    """Who widens the monitoring intervals: the kernel (intervals_goal), the controller, or nobody."""
    if requested == "auto":
        return "kernel" if features.has("intervals_goal") else "controller"
    if requested == "kernel" and not features.has("intervals_goal"):
        raise SpecError("auto_intervals.mode: kernel needs monitoring_attrs/intervals/intervals_goal of %s; this "
                        "kernel is %s; use mode controller (hugepage_tune widens the intervals itself)" % (
                            features.since_text("intervals_goal"), features.release))
    return requested


def choose_between_runs(path, requested):
    """What keeps collapsing when no run is in progress: on the damos_collapse and khugepaged paths their own
    scheme always does (any value changes nothing there, so one setting serves a fleet of mixed kernels); on
    user_collapse nothing (``none``, also for ``auto``) or khugepaged over the regions a ``hugepage`` scheme marks."""
    return requested if path == "user_collapse" and requested == "hugepage" else "none"


def check_loop_options(apps, auto):
    """SpecError for per-application intervals/thresholds and auto_intervals the kernel cannot take."""
    for app in apps:
        where = "apps[%s]" % app.get("name")
        sample, aggr = app.get("sample_us"), app.get("aggr_us")
        if (sample is None) != (aggr is None):
            raise SpecError("%s: sample_us and aggr_us go together (got %s and %s)" % (where, sample, aggr))
        if sample is not None and not 1 <= sample <= aggr <= ULONG_MAX:
            raise SpecError("%s: need 1 <= sample_us (%d) <= aggr_us (%d)" % (where, sample, aggr))
        if app.get("threshold_bp") is not None and not 0 <= app["threshold_bp"] <= BP + 1:
            raise SpecError("%s.threshold_bp: %d is not within 0..%d (a share of samples in basis points; %d "
                            "collapses nothing)" % (where, app["threshold_bp"], BP + 1, BP + 1))
    for name, low, high in (("access_bp", 1, BP), ("aggrs", 1, UINT_MAX), ("max_sample_us", 1, ULONG_MAX)):
        value = (auto or {}).get(name)
        if value is not None and not low <= value <= high:
            raise SpecError("auto_intervals.%s: %d is not within %d..%d" % (name, value, low, high))


def threshold_of(app, max_nr):
    """min_nr_accesses from apps[].threshold (a count) or apps[].threshold_bp (a share of samples)."""
    if app.get("threshold") is not None:
        return app["threshold"]
    bp = app.get("threshold_bp")
    if bp is None:
        return None
    return from_bp(bp, max_nr)


def context_for(app, path, attrs, quota_bytes, huge, goal=None, between_runs="none"):
    """The kdamond context of one application at its threshold (``attrs`` hold its intervals;
    ``huge``: the PMD size, the smallest region worth collapsing).

    ``between_runs`` ``hugepage`` (user-space path only) adds what keeps working when no run is in progress: a
    ``hugepage`` scheme at the threshold (khugepaged then collapses the hot regions it marks) and a
    ``nohugepage`` scheme for regions not accessed for COLD_MARK_S, so memory that went cold does not stay
    marked (existing huge pages are not split; a region that gets hot again is marked again first)."""
    max_nr = max_nr_accesses(attrs["sample_us"], attrs["aggr_us"])
    threshold = app["threshold"]
    attrs = dict(attrs)
    if goal:
        attrs["intervals_goal"] = goal
    at_threshold = {"min_size": huge, "min_nr_accesses": threshold, "max_nr_accesses": max(max_nr, threshold)}
    quotas = {"bytes": quota_bytes, "reset_interval_ms": 1000 if quota_bytes else 0,
              "weights": {"nr_accesses_permil": 1000}}
    # a threshold above the largest possible nr_accesses collapses nothing
    schemes = [{"action": "stat"}, {"action": ACTION_OF_PATH[path], "access_pattern": at_threshold, "quotas": quotas}]
    if between_runs == "hugepage" and path == "user_collapse":
        cold_age = max(1, COLD_MARK_S * 1000000 // attrs["aggr_us"])
        schemes += [{"action": "hugepage", "access_pattern": at_threshold},
                    {"action": "nohugepage", "access_pattern": {"min_size": huge, "min_nr_accesses": 0,
                                                                "max_nr_accesses": 0, "min_age": cold_age}}]
    return {"operations": "vaddr", "monitoring_attrs": attrs, "targets": [{"pid": app["pid"]}], "schemes": schemes}


def owned_apps(own):
    """{application name: slot index} of the kdamonds this loop created."""
    return dict((slot["name"][len(NAME_PREFIX):], index) for index, slot in own.slots.items()
                if (slot.get("name") or "").startswith(NAME_PREFIX))


def current_threshold(kdamond):
    schemes = (kdamond.context or {}).get("schemes") or []
    if len(schemes) > 1:
        return schemes[1].get("access_pattern", {}).get("min_nr_accesses")
    return None


def app_view(config):
    """{state, pid, threshold, sample_us, aggr_us} of one application's kdamond config (a plan's before/after)."""
    ctx = config.get("context") or {}
    schemes = ctx.get("schemes") or []
    attrs = ctx.get("monitoring_attrs") or {}
    return {"state": config.get("state"), "pid": ((ctx.get("targets") or [{}])[0]).get("pid"),
            "threshold": schemes[1].get("access_pattern", {}).get("min_nr_accesses") if len(schemes) > 1 else None,
            "sample_us": attrs.get("sample_us"), "aggr_us": attrs.get("aggr_us")}


def running_path_and_mode(kdamond):
    """(collapse path, interval mode) a kdamond of ours was configured with: the action of its
    second scheme, and ``kernel`` when it has an intervals_goal (else ``controller``)."""
    ctx = kdamond.context or {}
    schemes = ctx.get("schemes") or []
    path = PATH_OF_ACTION.get(schemes[1].get("action")) if len(schemes) > 1 else None
    goal = (ctx.get("monitoring_attrs") or {}).get("intervals_goal") or {}
    return path, "kernel" if goal.get("access_bp") else "controller"


def target_pid(kdamond):
    targets = (kdamond.context or {}).get("targets") or [{}]
    return targets[0].get("pid")


def live_intervals(kdamond_path):
    """(sample_us, aggr_us) as sysfs shows them (tuned ones after update_tuned_intervals)."""
    base = os.path.join(kdamond_path, INTERVALS)
    values = [read_optional(os.path.join(base, name)) for name in ("sample_us", "aggr_us")]
    return tuple(int(v) for v in values) if all(values) else None


def floor_of(app, kdamond):
    """The shortest sampling interval the kernel's intervals_goal may tune an application's kdamond to: the
    higher of the caller's ``min_sample_us`` and the one its running kdamond has (raised by the step that
    found hot memory, see Step.keep_floor). Once hot memory is huge, one access bit covers 2 MiB, the
    measured access ratio rises past the goal and the kernel would shorten the intervals until the hot
    memory not yet collapsed looks cold again."""
    goal = ((kdamond.context or {}).get("monitoring_attrs") or {}).get("intervals_goal") or {} if kdamond else {}
    return max(app.get("min_sample_us") or 0, goal.get("min_sample_us") or 0) or None


def at_least(attrs, floor):
    """``attrs`` with sample_us raised to ``floor`` (aggr_us keeps its ratio to it)."""
    if attrs["sample_us"] >= floor:
        return attrs
    return dict(attrs, sample_us=floor, aggr_us=floor * max(1, max_nr_accesses(attrs["sample_us"], attrs["aggr_us"])))


def hottest_first(runs, threshold):
    """The (start, end) of the chunk runs at or above ``threshold``, hottest first (then by address):
    collapse spends a quota or budget in this order, so it goes to the memory that gains most."""
    return [(s, e) for s, e, level in sorted((r for r in runs if r[2] >= threshold), key=lambda r: (-r[2], r[0]))]


def chunk_runs(regions, huge):
    """Sorted (start, end, level) runs of ``huge``-aligned chunks (the PMD size) from DAMON regions.

    A chunk wholly inside one region has that region's nr_accesses; a chunk that
    regions share gets the highest level covering at least half of it. Work and
    memory grow with the number of regions, not with the size of the address space.
    """
    runs, edges = [], {}
    for r in regions:
        start, end, level = r["start"], r["end"], r.get("nr_accesses", 0)
        first, last = -(-start // huge) * huge, end // huge * huge
        if first < last:
            runs.append((first, last, level))
        for lo, hi in ((start, min(end, first)), (max(start, last), end)) if first < last else ((start, end),):
            c = lo // huge * huge
            while lo < hi:
                part = min(hi, c + huge) - lo
                edges.setdefault(c, {})
                edges[c][level] = edges[c].get(level, 0) + part
                lo, c = lo + part, c + huge
    for c, cover in edges.items():
        covered, level = 0, 0
        for lv in sorted(cover, reverse=True):
            covered += cover[lv]
            if 2 * covered >= huge:
                level = lv
                break
        runs.append((c, c + huge, level))
    return _disjoint(sorted(runs))


def _disjoint(runs):
    """Sorted runs made disjoint where they overlap, at the lowest level covering each part. The tried regions
    of one update can overlap (seen on 7.3 with redis: 18 MiB listed twice), presumably
    regions of two aggregation passes; a chunk counts as hot only as far as every listing agrees."""
    if all(a[1] <= b[0] for a, b in zip(runs, runs[1:])):
        return runs
    points = sorted(set(p for s, e, unused in runs for p in (s, e)))
    out, active, i = [], [], 0
    for lo, hi in zip(points, points[1:]):
        while i < len(runs) and runs[i][0] <= lo:
            active.append(runs[i])
            i += 1
        active = [r for r in active if r[1] > lo]
        if active:
            level = min(r[2] for r in active)
            if out and out[-1][1] == lo and out[-1][2] == level:
                out[-1] = (out[-1][0], hi, level)
            else:
                out.append((lo, hi, level))
    return out


def confirmed(first, second):
    """The chunk runs hot in both of two snapshots (sorted (start, end, level) runs of chunk_runs), each at the
    lower of its two levels. DAMON splits and merges regions every aggregation interval, so a cold chunk that
    read hot because it shared a region with hot memory rarely does so twice; a hot chunk does."""
    out, i, j = [], 0, 0
    while i < len(first) and j < len(second):
        (s1, e1, l1), (s2, e2, l2) = first[i], second[j]
        start, end = max(s1, s2), min(e1, e2)
        if start < end:
            out.append((start, end, min(l1, l2)))
        if e1 <= e2:
            i += 1
        else:
            j += 1
    return out


def with_confirmed(latest, pair):
    """The sorted (start, end, level) runs ``latest``, each part with the level the runs ``pair`` give it
    (0 where they give none): (start, end, level, confirmed level), adjacent equal parts joined."""
    out, j = [], 0
    for s, e, level in latest:
        while j < len(pair) and pair[j][1] <= s:
            j += 1
        k = j
        while s < e:
            ps, pe, pl = pair[k] if k < len(pair) and pair[k][0] < e else (e, e, 0)
            if ps > s:  # a gap in pair
                part = (s, ps, level, 0)
            else:
                part = (s, min(pe, e), level, pl)
                k += 1
            if out and out[-1][1] == part[0] and out[-1][2:] == part[2:]:
                out[-1] = (out[-1][0],) + part[1:]
            else:
                out.append(part)
            s = part[1]
    return out


def _minus(ranges, cut):
    """The parts of sorted disjoint ``ranges`` outside sorted disjoint ``cut``."""
    out, j = [], 0
    for s, e in ranges:
        while j < len(cut) and cut[j][1] <= s:
            j += 1
        k = j
        while s < e and k < len(cut) and cut[k][0] < e:
            if cut[k][0] > s:
                out.append((s, cut[k][0]))
            s = max(s, cut[k][1])
            k += 1
        if s < e:
            out.append((s, e))
    return out


def _merge_levels(runs):
    """Sorted (start, end, level) runs with adjacent runs of one level joined."""
    out = []
    for s, e, level in runs:
        if out and out[-1][1] == s and out[-1][2] == level:
            out[-1] = (out[-1][0], e, level)
        else:
            out.append((s, e, level))
    return out


def _merge(ranges):
    out = []
    for s, e in ranges:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


class Step(object):
    """Configure, observe and (user-space path) collapse for a set of applications."""

    def __init__(self, sysfs_root, features, own, path, attrs, quota_bytes, exclusive, pool_size, check_mode,
                 auto_intervals=None, learned=None, between_runs="none"):
        self.root, self.features, self.own, self.learned = sysfs_root, features, own, learned
        self.between_runs = choose_between_runs(path, between_runs)
        self.path, self.attrs, self.quota_bytes = path, attrs, quota_bytes
        self.exclusive, self.pool_size, self.check_mode = exclusive, pool_size, check_mode
        self.auto = dict(auto_intervals or {})
        self.huge = _pagemap.pmd_size(sysfs_root)
        check_loop_options([], self.auto)
        self.interval_mode = choose_interval_mode(features, self.auto.get("mode", "auto"))
        self.writes, self.applied = [], []
        self.diff = {"before": {}, "after": {}}  # per application, the kdamond as it was and as planned
        self.running_modes = {}  # per application, the interval mode its kdamond runs with (set by watched())
        self.configured = {}  # per application, (app with its threshold, attrs, goal) configure() planned
        self.first_runs = {}  # per application, the chunk runs of the snapshot before the observation interval
        self.previous = {}  # per application, (start, end, access_bp, confirmed_bp) of its previous step's chunk_access

    def _kdamond_path(self, index):
        return os.path.join(self.root, "kernel/mm/damon/admin/kdamonds", str(index))

    def _ensure(self, name, state, context):
        plan = plan_kdamond(self.root, self.features, self.own, NAME_PREFIX + name, state, context,
                            exclusive=self.exclusive, pool_size=self.pool_size)
        self.writes.extend(dict(path=p, value=v) for p, v in plan.writes)
        self._record_diff(name, plan)
        if plan.writes and not self.check_mode:
            apply_plan(self.root, self.features, self.own, plan, self.applied)
        return plan

    def _record_diff(self, name, plan):
        before = app_view(plan.before) if plan.before else None
        if before:
            self.diff["before"][name] = before
        if plan.after:
            after = app_view(plan.after)
            if self.interval_mode == "kernel" and before:  # the kernel tunes them; a commit leaves them alone
                after.update(sample_us=before["sample_us"], aggr_us=before["aggr_us"])
            self.diff["after"][name] = after
        else:
            self.diff["after"].pop(name, None)

    def _highest(self, attrs):
        return max(attrs["sample_us"], self.auto.get("max_sample_us", MAX_SAMPLE_US))

    def _floor(self, app, kd, attrs):
        """The application's floor for the kernel's tuning (floor_of), never above max_sample_us."""
        floor = floor_of(app, kd) if self.interval_mode == "kernel" else None
        return min(floor, self._highest(attrs)) if floor else None

    def _goal(self, attrs, floor=None):
        if self.interval_mode != "kernel":
            return None
        # the kernel may go back down to the configured sampling interval from a learned, wider one,
        # but not below the application's floor
        low = min(attrs["sample_us"], self.attrs["sample_us"])
        return {"access_bp": self.auto.get("access_bp", GOAL_ACCESS_BP), "aggrs": self.auto.get("aggrs", GOAL_AGGRS),
                "min_sample_us": max(low, floor or 0), "max_sample_us": self._highest(attrs)}

    def _fit_live(self, kd, goal):
        """Write a running kdamond's tuned sample_us/aggr_us (same ratio) into the goal's [min, max] before the
        commit: the kernel refuses a commit whose sample_us lies outside them (damon_valid_intervals_goal(),
        EINVAL). A raised floor moves them up; a run with a shorter deadline than the one before (a lower
        max_sample_us) moves them down."""
        live = live_intervals(kd.path) if goal else None
        if not live:
            return
        fitted = min(max(live[0], goal["min_sample_us"]), goal["max_sample_us"])
        if fitted == live[0]:
            return
        base = os.path.join(kd.path, INTERVALS)
        writes = [(os.path.join(base, "sample_us"), str(fitted)),
                  (os.path.join(base, "aggr_us"), str(fitted * max(1, max_nr_accesses(*live))))]
        self.writes.extend(dict(path=p, value=v) for p, v in writes)
        if not self.check_mode:
            apply_writes(writes, self.applied)

    def _refresh_tuned(self, owned, kds):
        """Copy the kernel's tuned intervals to sysfs before planning: a commit re-reads sample_us/aggr_us."""
        if self.interval_mode != "kernel" or self.check_mode:
            return kds
        touched = False
        for index in owned.values():
            if index < len(kds) and kds[index].running:
                try:
                    command(kds[index].path, "update_tuned_intervals")
                    touched = True
                except SysfsError:
                    pass  # it stopped meanwhile (target exited): planned like any stopped kdamond
        return read_kdamonds(self.root, self.features) if touched else kds

    def watched(self):
        """({name, pid, threshold} of every application this loop manages now, the set of collapse
        paths their kdamonds were configured with). Observing reports the interval mode each kdamond
        runs with, not this call's options."""
        kds = read_kdamonds(self.root, self.features)
        apps, paths = [], set()
        for name, index in sorted(owned_apps(self.own).items()):
            path, self.running_modes[name] = running_path_and_mode(kds[index])
            paths.add(path or self.path)
            apps.append({"name": name, "pid": target_pid(kds[index]), "threshold": current_threshold(kds[index])})
        return apps, paths

    def _attrs_for(self, app, kd, warm):
        """Monitoring attributes of one application: its own intervals, else the running ones, else the
        learned ones (``warm``, for a new kdamond), else the defaults."""
        attrs = dict(self.attrs)
        if app.get("sample_us") and app.get("aggr_us"):
            attrs.update(sample_us=app["sample_us"], aggr_us=app["aggr_us"])
        elif kd is not None and self.interval_mode == "controller":
            live = live_intervals(kd.path)
            if live and live[0] > 0 and live[1] >= live[0]:
                attrs.update(sample_us=live[0], aggr_us=live[1])  # widened by an earlier run: keep them
        elif kd is None and warm and warm.get("sample_us") and self.interval_mode != "off":
            attrs.update(sample_us=warm["sample_us"], aggr_us=warm["aggr_us"])
        return attrs

    def configure(self, apps, initial_threshold, prune=False, remove_all=False):
        """Bring each application's kdamond to its threshold; remove what may be removed.

        Removed: the kdamonds of listed applications that exited (also when the
        target exits between the liveness check and ``on``), of unlisted ones
        whose process is gone, and with ``prune`` of every unlisted one (all
        with ``remove_all``), and of applications whose process has THP disabled
        (prctl PR_SET_THP_DISABLE: every collapse is refused), which get no kdamond
        and an entry ``blocked`` ({reason, detail, fix, bytes}); what keeps only
        part of an application out of huge pages is listed in ``blockers``.
        Returns (entries by name, [{name, reason, kdamond}]).
        """
        check_loop_options(apps, None)
        kds = read_kdamonds(self.root, self.features)
        owned = owned_apps(self.own)
        kds = self._refresh_tuned(owned, kds)
        result = {}
        for app in apps:
            entry = result[app["name"]] = {"name": app["name"], "pid": app["pid"], "exited": False}
            if app.get("previous_chunk_access") is not None:
                self.previous[app["name"]] = [(r["start"], r["end"], r["access_bp"], r.get("confirmed_bp"))
                                              for r in app["previous_chunk_access"]]
            if not pid_alive(app["pid"]):
                entry["exited"] = True
                continue
            found = self._blockers(app["pid"])
            if found is None:
                entry["exited"] = True
                continue
            entry["blocked"] = next((dict(b) for b in found if b["reason"] == _thp_eligibility.PROCESS_DISABLED), None)
            entry["blockers"] = [b for b in found if b["reason"] != _thp_eligibility.PROCESS_DISABLED]
            if entry["blocked"]:
                continue  # no huge page is possible: no kdamond (an earlier one is removed below)
            kd = kds[owned[app["name"]]] if owned.get(app["name"], len(kds)) < len(kds) else None
            known = self.learned.recall(app["name"]) if self.learned else None
            if known and known["path"] == self.path and known["decisions"]:
                last = known["decisions"][-1]  # the loop's previous decision, from an earlier run
                entry["learned"] = dict((k, last.get(k)) for k in ("hot_bytes", "huge_bytes_hot", "huge_bytes_cold"))
                entry["learned"].update(threshold_bp=known["threshold_bp"], since=known["since"])
            # a new kdamond for an application seen before starts where the last one was
            warm = known if kd is None else None
            attrs = self._attrs_for(app, kd, warm)
            max_nr = max_nr_accesses(attrs["sample_us"], attrs["aggr_us"])
            threshold = threshold_of(app, max_nr)
            if threshold is None and kd is not None:
                threshold = current_threshold(kd)
            if threshold is None and warm:
                threshold = threshold_of({"threshold_bp": warm["threshold_bp"]}, max_nr)
                entry["warm"] = {"threshold_bp": warm["threshold_bp"], "since": warm["since"]}
            app = dict(app, threshold=initial_threshold if threshold is None else threshold)
            entry["threshold"] = app["threshold"]
            floor = self._floor(app, kd, attrs)
            if floor and kd is None:
                attrs = at_least(attrs, floor)
            goal = self._goal(attrs, floor)
            try:
                if kd is not None and kd.running:
                    self._fit_live(kd, goal)
                plan = self._ensure(app["name"], "running", context_for(
                    app, self.path, attrs, self.quota_bytes, self.huge, goal, self.between_runs))
            except (SysfsError, SpecError):
                if pid_alive(app["pid"]):
                    raise
                # it exited mid-configuration: "no process" at planning, EINVAL at 'on'; removed below
                entry["exited"] = True
                continue
            entry["kdamond"] = plan.index
            self.configured[app["name"]] = (app, attrs, goal)
            owned = owned_apps(self.own)
        removed = []
        for name, index in sorted(owned.items()):
            if name in result:
                reason = "exited" if result[name]["exited"] else ("blocked" if result[name].get("blocked") else None)
            elif remove_all:
                reason = "absent"
            elif index >= len(kds) or not pid_alive(target_pid(kds[index]) or 0):
                reason = "exited"  # another task's application whose process is gone
            else:
                reason = "unlisted" if prune else None
            if reason:
                self._ensure(name, "absent", None)
                removed.append({"name": name, "reason": reason, "kdamond": index})
        return result, removed

    def _blockers(self, pid):
        """What keeps the process out of huge pages (_thp_eligibility.blockers), [] when it cannot be read,
        None when it is gone."""
        try:
            return _thp_eligibility.blockers(pid, sysfs_root=self.root, path=ELIGIBILITY_PATH[self.path])
        except _procfs.ProcessGone:
            return None
        except _procfs.ProcError:
            return []  # not readable (not root, hidepid): nothing known against it

    def stats_before(self, entries):
        """Scheme statistics of each configured kdamond before the observation interval, so the step can say
        what the kernel applied during it (the counters are cumulative since the kdamond started)."""
        if self.check_mode:
            return
        owned = owned_apps(self.own)
        for name, entry in entries.items():
            if entry["exited"] or entry.get("blocked") or name not in owned:
                continue
            path = self._kdamond_path(owned[name])
            try:
                command(path, "update_schemes_stats")
            except SysfsError:
                continue  # not running (its target exited): observe() says so
            stats = read_stats(path)
            entry["scheme_stats_before"] = stats[1] if len(stats) > 1 else None
            if self.path == "user_collapse" and self.features.has("tried_regions") and name not in self.previous:
                try:  # the first of the two snapshots a chunk must be hot in (confirmed()); one aggregation
                    command(path, "update_schemes_tried_regions")
                except SysfsError:
                    continue
                self.first_runs[name] = chunk_runs(read_tried_regions(path)[0], self.huge)

    def observe(self, entries, apps, collapse=True):
        """Intervals, stats, chunk distribution and huge-page bytes per application (and user-space collapse)."""
        owned = owned_apps(self.own)
        by_name = dict((a["name"], a) for a in apps)
        for name, entry in entries.items():
            if entry["exited"] or entry.get("blocked") or name not in owned:
                continue
            path = self._kdamond_path(owned[name])
            try:
                if not self.check_mode:  # check mode reads what the kernel last published
                    command(path, "update_schemes_stats")
                    if self.features.has("tried_regions"):
                        command(path, "update_schemes_tried_regions")
                    if self.interval_mode == "kernel":
                        command(path, "update_tuned_intervals")
            except SysfsError:
                if not pid_alive(entry["pid"]):  # DAMON stops a vaddr kdamond whose target exited
                    entry["exited"] = True
                    continue
                raise
            self._observe_one(entry, path, by_name.get(name, {}), collapse)

    def _observe_one(self, entry, path, app, collapse):
        sample_us, aggr_us = live_intervals(path) or (self.attrs["sample_us"], self.attrs["aggr_us"])
        max_nr = max_nr_accesses(sample_us, aggr_us)
        stats = read_stats(path)
        regions = read_tried_regions(path)[0] if self.features.has("tried_regions") else []
        threshold = entry["threshold"]
        histogram, chunks = {}, {}
        for r in regions:
            histogram[r["nr_accesses"]] = histogram.get(r["nr_accesses"], 0) + r["end"] - r["start"]
        runs = chunk_runs(regions, self.huge)
        joined = _merge_levels(runs)  # the same runs, adjacent ones of one level joined
        for s, e, level in runs:
            chunks[level] = chunks.get(level, 0) + e - s
        hot = _merge([(s, e) for s, e, level in runs if level >= threshold])
        entry.update(max_nr_accesses=max_nr, histogram=sorted(histogram.items()), chunk_histogram=sorted(chunks.items()),
                     hot_bytes=sum(e - s for s, e in hot), regions=len(regions),
                     intervals={"sample_us": sample_us, "aggr_us": aggr_us,
                                "mode": self.running_modes.get(entry["name"], self.interval_mode)},
                     scheme_stats=stats[1] if len(stats) > 1 else None, collapsed=None)
        if self.path == "user_collapse" and collapse:
            first, basis = self._confirm_against(entry["name"], threshold, max_nr)
            pair = None if first is None else confirmed(first, runs)
            # what the next step confirms against (previous_chunk_access): this snapshot, and where it agreed with
            # the one before, the lower of the two levels
            entry["chunk_access"] = [dict({"start": s, "end": e, "access_bp": to_bp(level, max_nr)},
                                          **({} if pair is None else {"confirmed_bp": to_bp(both, max_nr)}))
                                     for s, e, level, both in with_confirmed(joined, pair or [])
                                     if level or not threshold]
            if hot:
                agreed = pair if basis is first else confirmed(basis, runs)  # off the noise floor: the pair above
                sure = hottest_first(runs if basis is None else agreed, threshold)  # None: check mode
                entry["collapsed"] = self._collapse(entry, sure, app) if sure else {"bytes": 0, "chunks": 0}
                if entry["collapsed"] is not None:
                    waiting = _minus(hot, _merge(sorted(sure)))  # already huge ones are not waiting (idle re-runs)
                    entry["collapsed"]["unconfirmed_bytes"] = self._not_huge(entry["pid"], waiting)
        if collapse and hot and not entry["exited"]:
            self.keep_floor(entry["name"], sample_us)
        entry.update(self._huge_bytes(entry["pid"], joined, threshold, self.huge))
        if entry["huge_bytes"] is None and not pid_alive(entry["pid"]):
            entry["exited"] = True
        elif self.learned is not None:
            self.learned.remember(entry["name"], to_bp(threshold, max_nr), (sample_us, aggr_us), self.path, entry)

    def _confirm_against(self, name, threshold, max_nr):
        """(the snapshot before this step's, the chunk runs a chunk must be hot in to be collapsed now), as
        (start, end, level) runs; None in check mode, which takes no snapshot of its own.

        The snapshot before is the previous step's last (previous_chunk_access) or the one stats_before took.
        At the noise floor a cold chunk that shares a DAMON region with hot memory reads hot in two snapshots
        in a row too often (7.3, redis at 3 of 20: 84 MiB of cold values collapsed after the hot chunks
        doubled for two snapshots), so there a chunk must also have been hot in the one before those
        (the previous step's confirmed_bp); a step without it collapses nothing there."""
        previous = self.previous.get(name)
        if previous is None:
            first = self.first_runs.get(name)
            strict = None if first is None else []
        else:
            first = [(s, e, from_bp(bp, max_nr)) for s, e, bp, unused in previous]
            strict = [(s, e, from_bp(c, max_nr)) for s, e, unused, c in previous if c]
        return first, (strict if threshold <= noise_floor(max_nr) else first)

    def keep_floor(self, name, sample_us):
        """Raise the floor of an application's intervals_goal to the sampling interval its hot memory was found
        at (floor_of says why), in the step that found it: the loop may stop with this step, and until the next
        run the kernel would shorten the intervals again."""
        if name not in self.configured or self.check_mode:
            return
        app, attrs, goal = self.configured[name]
        if not goal:  # the controller or nobody tunes the intervals
            return
        raised = self._goal(attrs, min(sample_us, self._highest(attrs)))
        if raised["min_sample_us"] > FLOOR_SLACK * goal["min_sample_us"]:
            self.configured[name] = (app, attrs, raised)
            self._ensure(name, "running", context_for(
                app, self.path, attrs, self.quota_bytes, self.huge, raised, self.between_runs))

    def _collapse(self, entry, hot, app):
        """Collapse the chunk runs ``hot`` (hottest first) within the step's quota and what is left of the
        application's budget: a cap on its huge-page bytes, whoever made them."""
        quota, budget, spent = self.quota_bytes, app.get("budget_bytes") or 0, {}
        try:
            if budget:
                left = max(0, budget - _procfs.anon_huge_bytes(entry["pid"]))
                spent = {"budget_left_bytes": left}
                if left < self.huge:
                    return dict(spent, bytes=0, chunks=0)
                quota = min(quota or left, left)
            done = _collapse.collapse(entry["pid"], [{"start": s, "end": e} for s, e in hot],
                                      quota_bytes=quota, check_mode=self.check_mode, huge=self.huge)
        except (_collapse.CollapseError, _procfs.ProcError) as e:
            if getattr(e, "process_gone", False) or not pid_alive(entry["pid"]):
                entry["exited"] = True
                return None
            raise
        return dict(spent, bytes=done["bytes_collapsed"], chunks=done["chunks"]["collapsed"])

    def _not_huge(self, pid, ranges):
        """Bytes of ``ranges`` not in huge pages (all of them when that cannot be read)."""
        try:
            return sum(e - s - (_pagemap.range_huge_bytes(pid, s, e, self.huge) or 0) for s, e in ranges)
        except _procfs.ProcError:
            return sum(e - s for s, e in ranges)

    @staticmethod
    def _huge_bytes(pid, runs, threshold, huge):
        """AnonHugePages of the process, the huge-page bytes inside its hot and its cold chunks, and per access
        level (``chunk_huge_histogram``: a huge chunk reads through one PMD accessed bit, so the policy must not
        raise the threshold over chunks it already made huge)."""
        try:
            per_level = {}
            for s, e, level in runs:
                got = _pagemap.range_huge_bytes(pid, s, e, huge) or 0
                if got:
                    per_level[level] = per_level.get(level, 0) + got
            return {"huge_bytes": _procfs.anon_huge_bytes(pid),
                    "huge_bytes_hot": sum(b for level, b in per_level.items() if level >= threshold),
                    "huge_bytes_cold": sum(b for level, b in per_level.items() if level < threshold),
                    "chunk_huge_histogram": sorted(per_level.items())}
        except _procfs.ProcError:
            return {"huge_bytes": None, "huge_bytes_hot": None, "huge_bytes_cold": None, "chunk_huge_histogram": None}


def wait(seconds, started):
    """Sleep what is left of the observation interval."""
    left = seconds - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
