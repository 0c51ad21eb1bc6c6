"""``module/damon_{reclaim,lru_sort,stat}/parameters``: the exclusive DAMON modules.

Each module starts its ctx with ``damon_start(..., exclusive=true)``: enabling one
fails with -EBUSY while any other DAMON ctx runs (a sysfs kdamond or another module),
and while one runs a sysfs ``on`` fails with -EBUSY. ``enabled`` reads Y only while
the module's kdamond runs (``damon_*_enabled_load()``). The monitoring itself is not
emulated: an enabled module only holds DAMON and shows a kdamond pid.
"""

from __future__ import annotations

import errno

from . import kernel_input as ki
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


class ModuleParameters(Node):
    def __init__(self, kernel, name: str):
        super().__init__()
        self.kernel = kernel
        self.name = name
        self.pid = -1  # kdamond pid while enabled
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
            self.attr(param, lambda: ",".join(["0"] * 101) + "\n", mode=RO)
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
            self.pid = self.kernel.next_pid()
        else:
            self.pid = -1


class Modules:
    def __init__(self, kernel, enabled: dict):
        self.params = {name: ModuleParameters(kernel, name) for name in kernel.profile.modules()}
        for name, on in enabled.items():
            if name not in self.params:
                if not on:
                    continue  # disabling a module this kernel does not have: nothing to do
                raise ValueError("kernel %s has no module %s" % (kernel.profile.name, name))
            if on:
                self.params[name].pid = kernel.next_pid()

    def exclusive_running(self) -> bool:
        return any(m.enabled for m in self.params.values())

    def status(self) -> dict:
        return {name: m.enabled for name, m in self.params.items()}
