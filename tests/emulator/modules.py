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

# name -> (kind, default, mode); a realistic subset of each module's parameters.
_COMMON_ATTRS = {
    "sample_interval": ("ulong", 5000, RW), "aggr_interval": ("ulong", 100000, RW),
    "min_nr_regions": ("ulong", 10, RW), "max_nr_regions": ("ulong", 1000, RW),
    "monitor_region_start": ("ulong", 0, RW), "monitor_region_end": ("ulong", 0, RW),
    "commit_inputs": ("bool", False, RW),
}
PARAMS = {
    "damon_reclaim": dict(_COMMON_ATTRS, **{
        "min_age": ("ulong", 120000000, RW), "quota_ms": ("ulong", 10, RW),
        "quota_sz": ("ulong", 128 * 1024 * 1024, RW), "quota_reset_interval_ms": ("ulong", 1000, RW),
        "wmarks_interval": ("ulong", 5000000, RW), "wmarks_high": ("ulong", 500, RW),
        "wmarks_mid": ("ulong", 400, RW), "wmarks_low": ("ulong", 200, RW),
        "skip_anon": ("bool", False, RW), "nr_reclaim_tried_regions": ("ulong", 0, RO),
        "bytes_reclaimed_regions": ("ulong", 0, RO),
    }),
    "damon_lru_sort": dict(_COMMON_ATTRS, **{
        "hot_thres_access_freq": ("ulong", 500, RW), "cold_min_age": ("ulong", 120000000, RW),
        "quota_ms": ("ulong", 10, RW), "quota_reset_interval_ms": ("ulong", 1000, RW),
        "wmarks_interval": ("ulong", 5000000, RW), "wmarks_high": ("ulong", 200, RW),
        "wmarks_mid": ("ulong", 150, RW), "wmarks_low": ("ulong", 50, RW),
    }),
    "damon_stat": {
        "estimated_memory_bandwidth": ("ulong", 0, RO),
        "memory_idle_ms_percentiles": ("percentiles", None, RO),
        "aggr_interval_us": ("ulong", 0, RO),
    },
}


class ModuleParameters(Node):
    def __init__(self, kernel, name: str):
        super().__init__()
        self.kernel = kernel
        self.name = name
        self.pid = -1  # kdamond pid while enabled
        self.attr("enabled", lambda: "Y\n" if self.enabled else "N\n", self._store_enabled)
        p = kernel.profile
        if name != "damon_stat" or p.has("damon_stat/kdamond_pid"):
            self.attr("kdamond_pid", lambda: "%d\n" % self.pid, mode=RO)
        for param, (kind, default, mode) in PARAMS[name].items():
            if name == "damon_stat" and param == "aggr_interval_us" and not p.has("damon_stat/aggr_interval_us"):
                continue
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
                raise ValueError("kernel %s has no module %s" % (kernel.profile.name, name))
            if on:
                self.params[name].pid = kernel.next_pid()

    def exclusive_running(self) -> bool:
        return any(m.enabled for m in self.params.values())

    def status(self) -> dict:
        return {name: m.enabled for name, m in self.params.items()}
