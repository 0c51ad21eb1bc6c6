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

- ``damos_collapse`` (Linux 7.2+): a ``collapse`` scheme at the threshold;
- ``user_collapse`` (6.2+): a second ``stat`` scheme at the threshold (it keeps
  the threshold in sysfs and counts what is at or above it); the step collapses
  those regions itself with process_madvise(MADV_COLLAPSE);
- ``khugepaged``: a ``hugepage`` scheme; khugepaged collapses later, slowly.
"""

from __future__ import annotations

import os
import time

from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse, _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import apply_plan, plan_kdamond
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import ARGUMENT_SPEC as OWNERSHIP_SPEC, LOCK_ARGUMENT_SPEC
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import COLLAPSE_FALLBACK, pid_alive
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import (
    command, read_kdamonds, read_stats, read_tried_regions,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError

PATHS = ("auto", "damos_collapse", "user_collapse", "khugepaged")
# Options of hugepage_step that the hugepage_tune action passes through unchanged.
LOOP_ARGUMENT_SPEC = dict(
    path=dict(type="str", choices=list(PATHS), default="auto"),
    interval_s=dict(type="float", default=5.0),
    monitoring_attrs=dict(type="dict", default={}, options=dict(
        sample_us=dict(type="int", default=5000), aggr_us=dict(type="int", default=100000),
        min_nr_regions=dict(type="int", default=10), max_nr_regions=dict(type="int", default=1000))),
    quota_bytes=dict(type="int", default=134217728),
    pool_size=dict(type="int", default=4),
    exclusive_modules=dict(type="str", choices=["fail", "stop"], default="fail"),
    ownership_file=OWNERSHIP_SPEC["ownership_file"],
    lock_timeout_s=LOCK_ARGUMENT_SPEC["lock_timeout_s"],
    sysfs_root=dict(type="path", default="/sys"),
    kernel_release=dict(type="str"),
)
NAME_PREFIX = "hugepage:"
HUGE = 2 * 1024 * 1024
ACTION_OF_PATH = {"damos_collapse": "collapse", "user_collapse": "stat", "khugepaged": "hugepage"}


def choose_path(features, requested):
    """The collapse path for this kernel; SpecError when the requested one cannot work."""
    if requested == "auto":
        if features.has("collapse_action"):
            return "damos_collapse"
        return "user_collapse" if features.has("tried_regions") else "khugepaged"
    if requested == "damos_collapse" and not features.has("collapse_action"):
        raise SpecError("path: damos_collapse needs the DAMOS collapse action of %s; this kernel is %s; %s" % (
            features.since_text("collapse_action"), features.release, COLLAPSE_FALLBACK))
    if requested == "user_collapse" and not features.has("tried_regions"):
        raise SpecError("path: user_collapse reads DAMON tried regions, which need %s; this kernel is %s" % (
            features.since_text("tried_regions"), features.release))
    return requested


def context_for(app, path, attrs, quota_bytes):
    """The kdamond context of one application at its threshold."""
    max_nr = attrs["aggr_us"] // attrs["sample_us"]
    threshold = app["threshold"]
    schemes = [{"action": "stat"}, {
        "action": ACTION_OF_PATH[path],
        # a threshold above the largest possible nr_accesses collapses nothing
        "access_pattern": {"min_size": HUGE, "min_nr_accesses": threshold,
                           "max_nr_accesses": max(max_nr, threshold)},
        "quotas": {"bytes": quota_bytes, "reset_interval_ms": 1000 if quota_bytes else 0,
                   "weights": {"nr_accesses_permil": 1000}},
    }]
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


class Step(object):
    """Configure, observe and (user-space path) collapse for a set of applications."""

    def __init__(self, sysfs_root, features, own, path, attrs, quota_bytes, exclusive, pool_size, check_mode):
        self.root, self.features, self.own = sysfs_root, features, own
        self.path, self.attrs, self.quota_bytes = path, attrs, quota_bytes
        self.exclusive, self.pool_size, self.check_mode = exclusive, pool_size, check_mode
        self.writes, self.applied = [], []

    def _ensure(self, name, state, context):
        plan = plan_kdamond(self.root, self.features, self.own, NAME_PREFIX + name, state, context,
                            exclusive=self.exclusive, pool_size=self.pool_size)
        self.writes.extend(dict(path=p, value=v) for p, v in plan.writes)
        if plan.writes and not self.check_mode:
            apply_plan(self.root, self.features, self.own, plan, self.applied)
        return plan

    def watched(self):
        """{name, pid, threshold} of every application this loop manages now."""
        kds = read_kdamonds(self.root, self.features)
        apps = []
        for name, index in sorted(owned_apps(self.own).items()):
            targets = (kds[index].context or {}).get("targets") or [{}]
            apps.append({"name": name, "pid": targets[0].get("pid"), "threshold": current_threshold(kds[index])})
        return apps

    def configure(self, apps, initial_threshold, prune):
        """Bring each application's kdamond to its threshold; drop the ones that left or exited."""
        kds = read_kdamonds(self.root, self.features)
        owned = owned_apps(self.own)
        result = {}
        for app in apps:
            entry = result[app["name"]] = {"name": app["name"], "pid": app["pid"], "exited": False}
            if not pid_alive(app["pid"]):
                entry["exited"] = True
                continue
            threshold = app.get("threshold")
            if threshold is None and app["name"] in owned:
                threshold = current_threshold(kds[owned[app["name"]]])
            app = dict(app, threshold=initial_threshold if threshold is None else threshold)
            entry["threshold"] = app["threshold"]
            plan = self._ensure(app["name"], "running", context_for(app, self.path, self.attrs, self.quota_bytes))
            entry["kdamond"] = plan.index
        gone = [n for n in owned if n not in result or result[n]["exited"]] if prune else [
            n for n in owned if n in result and result[n]["exited"]]
        for name in gone:
            self._ensure(name, "absent", None)
        return result, gone

    def observe(self, entries, apps, collapse=True):
        """Stats, access histogram and huge-page bytes per application (and user-space collapse)."""
        owned = owned_apps(self.own)
        max_nr = self.attrs["aggr_us"] // self.attrs["sample_us"]
        by_name = dict((a["name"], a) for a in apps)
        for name, entry in entries.items():
            if entry["exited"] or name not in owned:
                continue
            path = os.path.join(self.root, "kernel/mm/damon/admin/kdamonds", str(owned[name]))
            try:
                if not self.check_mode:  # check mode reads what the kernel last published
                    command(path, "update_schemes_stats")
                    if self.features.has("tried_regions"):
                        command(path, "update_schemes_tried_regions")
            except SysfsError:
                if not pid_alive(entry["pid"]):  # DAMON stops a vaddr kdamond whose target exited
                    entry["exited"] = True
                    continue
                raise
            stats = read_stats(path)
            regions = read_tried_regions(path)[0] if self.features.has("tried_regions") else []
            threshold = entry["threshold"]
            histogram = {}
            for r in regions:
                histogram[r["nr_accesses"]] = histogram.get(r["nr_accesses"], 0) + r["end"] - r["start"]
            hot = [(r["start"], r["end"]) for r in regions if r["nr_accesses"] >= threshold and r["end"] - r["start"] >= HUGE]
            cold = [(r["start"], r["end"]) for r in regions if r["nr_accesses"] < threshold]
            entry.update(max_nr_accesses=max_nr, histogram=sorted(histogram.items()),
                         hot_bytes=sum(e - s for s, e in hot),
                         scheme_stats=stats[1] if len(stats) > 1 else None, collapsed=None)
            if self.path == "user_collapse" and hot and collapse:
                entry["collapsed"] = self._collapse(entry, hot, by_name[name])
            entry.update(self._huge_bytes(entry["pid"], hot, cold))

    def _collapse(self, entry, hot, app):
        budget = app.get("budget_bytes") or 0
        quota = self.quota_bytes if not budget else min(self.quota_bytes or budget, budget)
        try:
            done = _collapse.collapse(entry["pid"], [{"start": s, "end": e} for s, e in hot],
                                      quota_bytes=quota, check_mode=self.check_mode)
        except _collapse.CollapseError as e:
            if e.details.get("process_gone"):
                entry["exited"] = True
                return None
            raise
        return {"bytes": done["bytes_collapsed"], "chunks": done["chunks"]["collapsed"]}

    @staticmethod
    def _huge_bytes(pid, hot, cold):
        """AnonHugePages of the process, and the huge-page bytes inside its hot and its cold regions."""
        try:
            return {"huge_bytes": _procfs.anon_huge_bytes(pid),
                    "huge_bytes_hot": sum(_procfs.range_huge_bytes(pid, s, e) or 0 for s, e in hot),
                    "huge_bytes_cold": sum(_procfs.range_huge_bytes(pid, s, e) or 0 for s, e in cold)}
        except _procfs.ProcError:
            return {"huge_bytes": None, "huge_bytes_hot": None, "huge_bytes_cold": None}


def wait(seconds, started):
    """Sleep what is left of the observation interval."""
    left = seconds - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
