"""``module/damon_{reclaim,lru_sort,stat}/parameters``: the exclusive DAMON modules.

Each module starts its ctx with ``damon_start(..., exclusive=true)``: enabling one
fails with -EBUSY while any other DAMON ctx runs (a sysfs kdamond or another module),
and while one runs a sysfs ``on`` fails with -EBUSY. ``enabled`` reads Y only while
the module's kdamond runs (``damon_*_enabled_load()``). DAMON_RECLAIM and DAMON_LRU_SORT
only hold DAMON and show a kdamond pid. DAMON_STAT also monitors: its read-only results
(``aggr_interval_us``, ``estimated_memory_bandwidth``, ``memory_idle_ms_percentiles``)
are refreshed every 5 s of virtual time while it runs (:class:`StatMonitor`).
"""

from __future__ import annotations

import errno

from . import kernel_input as ki
from .access_model import ModelRange, Phase
from .intervals_goal import effective_rate, feed_loop_next_input
from .tree import RO, RW, Node

# name -> (kind, default, mode, first kernel). Lists and defaults as the 6.12 and 7.3 guests
# show them; parameters new in 7.3 are dated by their feature (approximate where noted).
_V = (5, 16)
_COMMON = {
    "sample_interval": ("ulong", 5000, RW, _V), "aggr_interval": ("ulong", 100000, RW, _V),
    "min_nr_regions": ("ulong", 10, RW, _V), "max_nr_regions": ("ulong", 1000, RW, _V),
    "monitor_region_start": ("ulong", 0, RW, _V), "monitor_region_end": ("ulong", 0, RW, _V),
    "commit_inputs": ("bool", False, RW, _V),
    "wmarks_interval": ("ulong", 5000000, RW, _V),
    "quota_ms": ("ulong", 10, RW, _V), "quota_reset_interval_ms": ("ulong", 1000, RW, _V),
    "addr_unit": ("ulong", 1, RW, (6, 18)),
    "autotune_monitoring_intervals": ("bool", False, RW, (7, 0)),  # approximate
}
_STATS_RECLAIM = ("nr_reclaim_tried_regions", "bytes_reclaim_tried_regions", "nr_reclaimed_regions",
                  "bytes_reclaimed_regions", "nr_quota_exceeds")
_LRU_SORT_COUNTERS = ("nr_lru_sort_tried", "bytes_lru_sort_tried", "nr_lru_sorted", "bytes_lru_sorted")
_STATS_LRU_SORT = tuple("%s_%s_regions" % (a, b) for a in _LRU_SORT_COUNTERS for b in ("hot", "cold")) + (
    "nr_hot_quota_exceeds", "nr_cold_quota_exceeds")
PARAMS = {
    "damon_reclaim": dict(_COMMON, **{
        "min_age": ("ulong", 120000000, RW, _V), "quota_sz": ("ulong", 128 * 1024 * 1024, RW, _V),
        "quota_mem_pressure_us": ("ulong", 0, RW, (6, 8)), "quota_autotune_feedback": ("ulong", 0, RW, (6, 8)),
        "wmarks_high": ("ulong", 500, RW, _V), "wmarks_mid": ("ulong", 400, RW, _V),
        "wmarks_low": ("ulong", 200, RW, _V), "skip_anon": ("bool", False, RW, (6, 1)),
    }, **{name: ("ulong", 0, RO, _V) for name in _STATS_RECLAIM}),
    "damon_lru_sort": dict(_COMMON, **{
        "hot_thres_access_freq": ("ulong", 500, RW, _V), "cold_min_age": ("ulong", 120000000, RW, _V),
        "wmarks_high": ("ulong", 200, RW, _V), "wmarks_mid": ("ulong", 150, RW, _V),
        "wmarks_low": ("ulong", 50, RW, _V),
        "active_mem_bp": ("ulong", 0, RW, (7, 0)), "filter_young_pages": ("bool", False, RW, (7, 0)),
    }, **{name: ("ulong", 0, RO, _V) for name in _STATS_LRU_SORT}),
    "damon_stat": {
        "estimated_memory_bandwidth": ("ulong", 0, RO, (6, 17)),
        "memory_idle_ms_percentiles": ("percentiles", None, RO, (6, 17)),
        "aggr_interval_us": ("ulong", 0, RO, (7, 0)),  # approximate
    },
}
KDAMOND_PID_SINCE = {"damon_reclaim": _V, "damon_lru_sort": _V, "damon_stat": (7, 0)}  # stat: approximate


STAT_REFRESH_US = 5000000  # damon_stat_damon_call_fn(): at most once per 5 s
# What DAMON_STAT's paddr ctx monitors when the scenario has no `index: 0` model target:
# the development host's System RAM range, idle.
DEFAULT_STAT_MEMORY = (1 << 32, 6845104128)
MAX_STAT_STEPS = 100000


class StatMonitor:
    """DAMON_STAT's kdamond as its parameters show it (mm/damon/stat.c).

    Its ctx samples physical memory with auto-tuned intervals (5 ms sample, 20 samples
    per aggregation, goal 4 % of samples accessed, tuned every 3 aggregations within
    5 ms..10 s, like ``intervals_goal``). Physical memory is the scenario's model target
    ``index: 0`` (what a sysfs paddr kdamond sees too) or one idle 2.4 GiB range. On the
    first sample more than 5 s after the module's last refresh (the first sample at all
    after boot), it copies the tuned aggregation interval, the bandwidth estimate (bytes x
    nr_accesses per second) and the idle-time percentiles (ms since a range's access
    pattern last changed, negative for accessed ranges) to its parameters.
    """

    AGGR_SAMPLES, GOAL_BP, GOAL_AGGRS = 20, 400, 3
    MIN_SAMPLE_US, MAX_SAMPLE_US = 5000, 10000000

    def __init__(self, params, kernel, now_us: int):
        self.params, self.kernel = params, kernel
        self.since = now_us
        self.sample_us = self.MIN_SAMPLE_US
        self.aggr_us = self.sample_us * self.AGGR_SAMPLES
        self.aggr_start_us = now_us  # the current aggregation window starts on a sample
        self.aggrs = 0

    def ranges(self) -> list:
        model = self.kernel.model.find("paddr", 0, 0)
        if model.ranges:
            return model.ranges
        return [ModelRange(DEFAULT_STAT_MEMORY[0], DEFAULT_STAT_MEMORY[1], [Phase(0.0, None, 0.0)])]

    def _nr(self, r, t_us: int) -> int:
        rate = effective_rate(r, t_us / 1e6, self.sample_us)
        return min(self.AGGR_SAMPLES, int(rate * self.AGGR_SAMPLES + 0.5))

    def _next_refresh_us(self) -> int:
        """The first sample on which damon_stat_damon_call_fn() refreshes: the kdamond calls
        it every sample, and it acts once more than 5 s passed since its last refresh (a
        module-wide time, kept while the module is off)."""
        first = self.aggr_start_us + self.sample_us
        last = self.params.last_refresh_us
        if last is None or last + STAT_REFRESH_US < first:
            return first
        samples = (last + STAT_REFRESH_US - self.aggr_start_us) // self.sample_us + 1
        return self.aggr_start_us + samples * self.sample_us

    def advance(self, now_us: int) -> None:
        steps = 0
        while True:
            next_aggr = self.aggr_start_us + self.aggr_us
            refresh = self._next_refresh_us()
            t = min(next_aggr, refresh)
            if t > now_us:
                return
            steps += 1
            if steps > MAX_STAT_STEPS:  # far behind: jump to now and refresh once
                self.aggr_start_us = now_us
                self.refresh(now_us)
                return
            if refresh == t:  # kdamond_call() runs before the aggregation's tuning
                self.refresh(t)
            if next_aggr == t:
                self.aggrs += 1
                if self.aggrs >= self.GOAL_AGGRS:
                    self.aggrs = 0
                    self.tune(t)
                self.aggr_start_us = t

    def tune(self, t_us: int) -> None:
        """kdamond_tune_intervals() with DAMON_STAT's goal."""
        max_events = events = 0
        for r in self.ranges():
            size = r.end - r.start
            max_events += size * self.AGGR_SAMPLES
            events += size * self._nr(r, t_us)
        score = events * 10000 // (max_events * self.GOAL_BP // 10000 or 1)
        bp = feed_loop_next_input(100000000, score) // 10000
        bp = 5000 + bp // 2 if bp <= 10000 else bp
        sample = min(self.MAX_SAMPLE_US, max(self.MIN_SAMPLE_US, self.sample_us * bp // 10000))
        self.sample_us, self.aggr_us = sample, sample * self.AGGR_SAMPLES

    def refresh(self, t_us: int) -> None:
        regions = []
        for r in self.ranges():
            nr = self._nr(r, t_us)
            phase_start = next((p.start for p in r.phases if p.covers(t_us / 1e6)), 0.0)
            age = (t_us - max(self.since, int(phase_start * 1e6))) // self.aggr_us
            idle_ms = (age + 1) * self.aggr_us // 1000
            regions.append((-idle_ms if nr else idle_ms, r.end - r.start, nr))
        regions.sort()
        total = sum(size for _idle, size, _nr in regions) or 1
        percentiles, accounted, nxt = [], 0, 0
        for idle, size, _nr in regions:
            accounted += size
            while nxt <= 100 and nxt <= accounted * 100 // total:
                percentiles.append(idle)
                nxt += 1
        p = self.params
        p.memory_idle_ms_percentiles = percentiles[:101] + [percentiles[-1]] * (101 - len(percentiles))
        p.estimated_memory_bandwidth = sum(size * nr for _i, size, nr in regions) * 1000000 // self.aggr_us
        p.aggr_interval_us = self.aggr_us
        p.last_refresh_us = t_us


class ModuleParameters(Node):
    def __init__(self, kernel, name: str):
        super().__init__()
        self.kernel = kernel
        self.name = name
        self.pid = -1  # kdamond pid while enabled
        self.monitor = None  # StatMonitor while damon_stat runs
        self.last_refresh_us = None  # damon_stat's last refresh (a static in stat.c)
        self.memory_idle_ms_percentiles = [0] * 101
        self.attr("enabled", lambda: "Y\n" if self.enabled else "N\n", self._store_enabled)
        version = kernel.profile.version
        if version >= KDAMOND_PID_SINCE[name]:
            self.attr("kdamond_pid", lambda: "%d\n" % self.pid, mode=RO)
        for param, (kind, default, mode, since) in PARAMS[name].items():
            if version >= since:
                self._param(param, kind, default, mode)

    @property
    def enabled(self) -> bool:
        return self.pid != -1

    def _param(self, param, kind, default, mode):
        if kind == "percentiles":
            self.attr(param, lambda: ",".join("%d" % v for v in self.memory_idle_ms_percentiles) + "\n", mode=RO)
            return
        setattr(self, param, default)
        if kind == "bool":
            self.yes_no(param)
            if mode == RO:
                self.files[param].mode = RO
        else:
            self._number(param, param, ki.kstrtoul, mode, fmt="%d\n")

    def _store_enabled(self, text: str) -> None:
        want = ki.kstrtobool(text)
        self.kernel.catch_up()
        if want == self.enabled:
            return
        if want:
            if self.kernel.any_damon_running():
                ki.fail(errno.EBUSY)
            self.start()
        else:
            self.pid = -1
            self.monitor = None  # the parameters keep their last values

    def start(self) -> None:
        self.pid = self.kernel.next_pid()
        if self.name == "damon_stat":
            self.monitor = StatMonitor(self, self.kernel, self.kernel.clock.now_us())

    def catch_up(self, now_us: int) -> None:
        if self.monitor is not None:
            self.monitor.advance(now_us)


class Modules:
    def __init__(self, kernel, enabled: dict):
        self.params = {name: ModuleParameters(kernel, name) for name in kernel.profile.modules()}
        for name, on in enabled.items():
            if name not in self.params:
                if not on:
                    continue  # disabling a module this kernel does not have: nothing to do
                raise ValueError("kernel %s has no module %s" % (kernel.profile.name, name))
            if on:
                self.params[name].start()

    def catch_up(self, now_us: int) -> None:
        for m in self.params.values():
            m.catch_up(now_us)

    def exclusive_running(self) -> bool:
        return any(m.enabled for m in self.params.values())

    def status(self) -> dict:
        return {name: m.enabled for name, m in self.params.items()}
