"""The ``kernel/mm/damon/admin`` tree: one class per kernel kobject type.

Each class holds the values its files show (the kernel's ``struct damon_sysfs_*``)
with the defaults the kernel allocates, and creates only the files its kernel
profile has. Behaviour that needs the running kdamond (``state``, ``pid``,
``nr_kdamonds`` while running) is delegated to ``kernel`` (see commands.py).
"""

from __future__ import annotations

import errno

from . import kernel_input as ki
from .profiles import (FILTER_TYPES, GOAL_TUNERS, OPERATIONS, PROBE_FILTER_TYPES,
                       WATERMARK_METRICS, Profile)
from .tree import RO, NrDir, Node, ULRange

NUMA_NO_NODE = -1
DAMON_MAX_PROBES = 4


def _einval_on_error(parse):
    """Some stores map every parse error to -EINVAL (pid_target, quotas/*)."""

    def wrapped(text):
        try:
            return parse(text)
        except OSError:
            ki.fail(errno.EINVAL)

    return wrapped


# --- admin / kdamonds / kdamond -------------------------------------------

class Admin(Node):
    def __init__(self, kernel):
        super().__init__()
        self.kdamonds = self.add_dir("kdamonds", Kdamonds(kernel))


class Kdamonds(NrDir):
    nr_name = "nr_kdamonds"

    def __init__(self, kernel):
        self.kernel = kernel
        super().__init__()

    def new_child(self, index):
        return Kdamond(self.kernel, index)

    def may_recreate(self):
        if any(k.running for k in self.children):
            ki.fail(errno.EBUSY)

    def recreate(self, nr):
        for kdamond in self.children:
            kdamond.ctx = None  # the kernel frees the kept (stopped) ctx here
        super().recreate(nr)


class Kdamond(Node):
    def __init__(self, kernel, index):
        super().__init__()
        p: Profile = kernel.profile
        self.kernel = kernel
        self.index = index
        self.ctx = None  # engine.RuntimeCtx once turned on; kept after off
        self.refresh_ms = 0
        self.attr("state", lambda: "on\n" if self.running else "off\n",
                  lambda text: kernel.commands.state_store(self, text))
        self.attr("pid", lambda: "%d\n" % (self.ctx.pid if self.running else -1), mode=RO)
        if p.has("kdamond/refresh_ms"):
            self.uint("refresh_ms")
        self.contexts = self.add_dir("contexts", Contexts(p))

    @property
    def running(self) -> bool:
        return self.ctx is not None and self.ctx.running


class Contexts(NrDir):
    nr_name = "nr_contexts"
    max_nr = 1  # "TODO: support multiple contexts per kdamond"

    def __init__(self, p):
        self.p = p
        super().__init__()

    def new_child(self, index):
        return Context(self.p)


class Context(Node):
    def __init__(self, p: Profile):
        super().__init__()
        self.operations = "vaddr"
        self.addr_unit = 1
        self.pause = False
        if p.has("context/avail_operations"):
            self.attr("avail_operations", lambda: "".join(o + "\n" for o in OPERATIONS), mode=RO)
        self.keyword("operations", "operations", lambda: OPERATIONS)
        if p.has("context/addr_unit"):
            self.ulong("addr_unit", check=lambda v: v or ki.fail(errno.EINVAL))
        if p.has("context/pause"):
            self.yes_no("pause")
        self.monitoring_attrs = self.add_dir("monitoring_attrs", MonitoringAttrs(p))
        self.targets = self.add_dir("targets", Targets(p))
        self.schemes = self.add_dir("schemes", Schemes(p))


# --- monitoring_attrs -------------------------------------------------------

class MonitoringAttrs(Node):
    def __init__(self, p):
        super().__init__()
        self.intervals = self.add_dir("intervals", Intervals(p))
        self.nr_regions = self.add_dir("nr_regions", ULRange(10, 1000))
        self.probes = self.add_dir("probes", Probes(p)) if p.has("monitoring_attrs/probes") else None


class Intervals(Node):
    def __init__(self, p):
        super().__init__()
        self.sample_us, self.aggr_us, self.update_us = 5000, 100000, 60000000
        for name in ("sample_us", "aggr_us", "update_us"):
            self.ulong(name)
        self.intervals_goal = None
        if p.has("intervals/intervals_goal"):
            self.intervals_goal = self.add_dir("intervals_goal", IntervalsGoal())


class IntervalsGoal(Node):
    def __init__(self):
        super().__init__()
        self.access_bp = self.aggrs = self.min_sample_us = self.max_sample_us = 0
        for name in ("access_bp", "aggrs", "min_sample_us", "max_sample_us"):
            self.ulong(name)


class Probes(NrDir):
    nr_name = "nr_probes"
    max_nr = DAMON_MAX_PROBES

    def __init__(self, p):
        self.p = p
        super().__init__()

    def new_child(self, index):
        return Probe(self.p)


class Probe(Node):
    def __init__(self, p):
        super().__init__()
        self.weight = 0
        if p.has("probe/weight"):
            self.uint("weight")
        self.filters = self.add_dir("filters", ProbeFilters())


class ProbeFilters(NrDir):
    nr_name = "nr_filters"

    def new_child(self, index):
        return ProbeFilter()


class ProbeFilter(Node):
    def __init__(self):
        super().__init__()
        self.type, self.matching, self.allow, self.path = "anon", False, False, None
        self.keyword("type", "type", lambda: PROBE_FILTER_TYPES)
        self.yes_no("matching")
        self.yes_no("allow")
        self.text("path", "path")


# --- targets ----------------------------------------------------------------

class Targets(NrDir):
    nr_name = "nr_targets"

    def __init__(self, p):
        self.p = p
        super().__init__()

    def new_child(self, index):
        return Target(self.p)


class Target(Node):
    def __init__(self, p):
        super().__init__()
        self.pid_target = 0
        self.obsolete_target = False
        self._number("pid_target", "pid_target", _einval_on_error(ki.kstrtoint))
        if p.has("target/obsolete_target"):
            self.yes_no("obsolete_target")
        self.regions = self.add_dir("regions", Regions())


class Regions(NrDir):
    nr_name = "nr_regions"

    def new_child(self, index):
        return Region()


class Region(Node):
    def __init__(self):
        super().__init__()
        self.start = self.end = 0
        self.ulong("start")
        self.ulong("end")


# --- schemes ----------------------------------------------------------------

class Schemes(NrDir):
    nr_name = "nr_schemes"

    def __init__(self, p):
        self.p = p
        super().__init__()

    def new_child(self, index):
        return Scheme(self.p)


class Scheme(Node):
    def __init__(self, p: Profile):
        super().__init__()
        self.action = "stat"
        self.apply_interval_us = 0  # 0: same as the aggregation interval
        self.target_nid = NUMA_NO_NODE
        self.keyword("action", "action", p.actions)
        if p.has("scheme/apply_interval_us"):
            self.ulong("apply_interval_us")
        if p.has("scheme/target_nid"):
            self.int_("target_nid")
        self.access_pattern = self.add_dir("access_pattern", AccessPattern())
        self.dests = self.add_dir("dests", Dests()) if p.has("scheme/dests") else None
        self.quotas = self.add_dir("quotas", Quotas(p))
        self.watermarks = self.add_dir("watermarks", Watermarks())
        self.filters = self.core_filters = self.ops_filters = None
        if p.has("scheme/filters"):
            self.filters = self.add_dir("filters", SchemeFilters(p, "both"))
        if p.has("scheme/core_filters"):
            self.core_filters = self.add_dir("core_filters", SchemeFilters(p, "core"))
            self.ops_filters = self.add_dir("ops_filters", SchemeFilters(p, "ops"))
        self.stats = self.add_dir("stats", Stats(p))
        self.tried_regions = None
        if p.has("scheme/tried_regions"):
            self.tried_regions = self.add_dir("tried_regions", TriedRegions(p))

    def all_filters(self):
        return [f for d in (self.core_filters, self.ops_filters, self.filters) if d for f in d]


class AccessPattern(Node):
    def __init__(self):
        super().__init__()
        # Every new range reads 0, max included: an unedited scheme matches nothing.
        self.sz = self.add_dir("sz", ULRange(0, 0))
        self.nr_accesses = self.add_dir("nr_accesses", ULRange(0, 0))
        self.age = self.add_dir("age", ULRange(0, 0))


class Dests(NrDir):
    nr_name = "nr_dests"

    def new_child(self, index):
        return Dest()


class Dest(Node):
    def __init__(self):
        super().__init__()
        self.id = self.weight = 0
        self.uint("id")
        self.uint("weight")


class Quotas(Node):
    def __init__(self, p: Profile):
        super().__init__()
        self.ms = self.bytes = self.reset_interval_ms = 0
        self.effective_bytes = 0
        self.goal_tuner = "consist"
        self.fail_charge_num = self.fail_charge_denom = 0
        for name in ("ms", "bytes", "reset_interval_ms"):
            self._number(name, name, _einval_on_error(ki.kstrtoul))
        if p.has("quotas/effective_bytes"):
            self.ro_number("effective_bytes")
        if p.has("quotas/goal_tuner"):
            self.keyword("goal_tuner", "goal_tuner", lambda: GOAL_TUNERS)
        if p.has("quotas/fail_charge_num"):
            for name in ("fail_charge_num", "fail_charge_denom"):
                self._number(name, name, _einval_on_error(ki.kstrtouint))
        self.weights = self.add_dir("weights", Weights())
        self.goals = self.add_dir("goals", Goals(p)) if p.has("quotas/goals") else None


class Weights(Node):
    def __init__(self):
        super().__init__()
        self.sz_permil = self.nr_accesses_permil = self.age_permil = 0
        for name in ("sz_permil", "nr_accesses_permil", "age_permil"):
            self.uint(name)


class Goals(NrDir):
    nr_name = "nr_goals"

    def __init__(self, p):
        self.p = p
        super().__init__()

    def new_child(self, index):
        return Goal(self.p)


class Goal(Node):
    def __init__(self, p: Profile):
        super().__init__()
        self.target_metric = "user_input"
        self.target_value = self.current_value = 0
        self.nid = 0
        self.path = None
        if p.has("goal/target_metric"):
            self.keyword("target_metric", "target_metric", p.goal_metrics)
        self.ulong("target_value")
        self.ulong("current_value")
        if p.has("goal/nid"):
            self.int_("nid")
        if p.has("goal/path"):
            self.text("path", "path")


class Watermarks(Node):
    def __init__(self):
        super().__init__()
        self.metric = "none"
        self.interval_us = self.high = self.mid = self.low = 0
        self.keyword("metric", "metric", lambda: WATERMARK_METRICS)
        for name in ("interval_us", "high", "mid", "low"):
            self.ulong(name)


class SchemeFilters(NrDir):
    nr_name = "nr_filters"

    def __init__(self, p, layer):
        self.p = p
        self.layer = layer  # "core", "ops" or "both" (the legacy filters/ dir)
        super().__init__()

    def new_child(self, index):
        return SchemeFilter(self.p, self.layer)


class SchemeFilter(Node):
    def __init__(self, p: Profile, layer: str):
        super().__init__()
        self.layer = layer
        self.type = "anon"  # enum value 0, even in core_filters/ where it cannot be written
        self.matching = self.allow = False
        self.memcg_path = None
        self.addr_start = self.addr_end = 0
        self.min = self.max = 0
        self.damon_target_idx = 0
        self.keyword("type", "type", self._valid_types)
        self.yes_no("matching")
        if p.has("filter/allow"):
            self.yes_no("allow")
        self.text("memcg_path", "memcg_path")
        if p.has("filter/addr_start"):
            self.ulong("addr_start")
            self.ulong("addr_end")
        if p.has("filter/min"):
            self.ulong("min")
            self.ulong("max")
        if p.has("filter/damon_target_idx"):
            self.int_("damon_target_idx")
        self._profile = p

    def _valid_types(self):
        types = self._profile.filter_types()
        if self.layer == "core":
            return [t for t in types if FILTER_TYPES[t][1]]
        if self.layer == "ops":
            return [t for t in types if not FILTER_TYPES[t][1]]
        return types


class Stats(Node):
    FIELDS = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "sz_ops_filter_passed",
              "qt_exceeds", "nr_snapshots")

    def __init__(self, p: Profile):
        super().__init__()
        for name in self.FIELDS:
            setattr(self, name, 0)
        self.max_nr_snapshots = 0
        for name in self.FIELDS:
            if name in ("sz_ops_filter_passed", "nr_snapshots") and not p.has("stats/" + name):
                continue
            self.ro_number(name)
        if p.has("stats/max_nr_snapshots"):
            self.ulong("max_nr_snapshots")


class TriedRegions(Node):
    """Filled by update_schemes_tried_regions, emptied by clear_schemes_tried_regions."""

    def __init__(self, p: Profile):
        super().__init__()
        self.p = p
        self.total_bytes = 0
        self.regions: list = []
        if p.has("tried_regions/total_bytes"):
            self.ro_number("total_bytes")

    def clear(self):
        for i in range(len(self.regions)):
            self.remove_dir(str(i))
        self.regions = []
        self.total_bytes = 0

    def add_region(self, start, end, nr_accesses, age, sz_filter_passed, nr_probes=0):
        region = TriedRegion(self.p, start, end, nr_accesses, age, sz_filter_passed, nr_probes)
        self.add_dir(str(len(self.regions)), region)
        self.regions.append(region)


class TriedRegion(Node):
    def __init__(self, p, start, end, nr_accesses, age, sz_filter_passed, nr_probes):
        super().__init__()
        self.start, self.end = start, end
        self.nr_accesses, self.age = nr_accesses, age
        self.sz_filter_passed = sz_filter_passed
        for name in ("start", "end", "nr_accesses", "age"):
            self.ro_number(name)
        if p.has("tried_region/sz_filter_passed"):
            self.ro_number("sz_filter_passed")
        if p.has("tried_region/probes"):
            probes = self.add_dir("probes", Node())
            for i in range(nr_probes):
                hits = probes.add_dir(str(i), Node())
                hits.attr("hits", lambda: "0\n", mode=RO)
