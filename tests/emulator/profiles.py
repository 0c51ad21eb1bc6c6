"""Kernel profiles: which DAMON sysfs file, keyword and behaviour exists since which kernel.

Sources (read for facts, no code copied):

* Debian ``linux-source-6.12`` (6.12.117) and ``linux-source-7.3`` (7.3.4) trees:
  ``mm/damon/sysfs.c``, ``sysfs-schemes.c``, ``sysfs-common.c``, ``core.c``,
  ``stat.c``, ``reclaim.c``, ``lru_sort.c``, ``mm/huge_memory.c``, ``mm/khugepaged.c``
  and ``Documentation/ABI/testing/sysfs-kernel-mm-damon`` (per-file "Date:" lines).
  6.12 and 7.3 file lists, modes, defaults and errnos are checked against those trees.
* The development host runs 6.18: its (read-only) ``/sys/kernel/mm/damon`` tree
  confirms the 6.18 file set.
* Versions in between (6.6, 6.15, ...) come from damo's curated feature list
  (damonitor/damo ``src/_damon_features.py``, damo 3.4.3), cross-checked with the ABI
  "Date:" lines.

Paths in ``SINCE`` are *logical*: ``<dir kind>/<name>``, where the dir kind is the
kernel's kobject type (``kdamond``, ``context``, ``scheme``, ``quotas``, ...).
A name not listed exists since the sysfs interface itself (5.18/5.19).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Version = tuple  # (major, minor)

SYSFS_SINCE = (5, 18)

# First kernel that has a file or directory (logical path, see module doc).
SINCE: dict[str, Version] = {
    "kdamond/refresh_ms": (6, 17),
    "context/avail_operations": (5, 19),
    "context/addr_unit": (6, 18),
    "context/pause": (7, 2),
    "intervals/intervals_goal": (6, 15),
    "monitoring_attrs/probes": (7, 2),
    "probe/weight": (7, 3),
    "target/obsolete_target": (6, 19),
    "scheme/tried_regions": (6, 2),
    "scheme/filters": (6, 3),
    "scheme/apply_interval_us": (6, 7),
    "scheme/target_nid": (6, 11),
    "scheme/core_filters": (6, 15),
    "scheme/ops_filters": (6, 15),
    "scheme/dests": (6, 17),
    "quotas/goals": (6, 8),
    "quotas/effective_bytes": (6, 9),
    "quotas/goal_tuner": (7, 1),
    "quotas/fail_charge_num": (7, 2),
    "quotas/fail_charge_denom": (7, 2),
    "goal/target_metric": (6, 9),
    "goal/nid": (6, 16),
    "goal/path": (6, 19),
    "filter/addr_start": (6, 6),
    "filter/addr_end": (6, 6),
    "filter/damon_target_idx": (6, 6),
    "filter/allow": (6, 14),
    "filter/min": (6, 15),
    "filter/max": (6, 15),
    "stats/sz_ops_filter_passed": (6, 14),
    "stats/nr_snapshots": (7, 0),
    "stats/max_nr_snapshots": (7, 0),
    "tried_regions/total_bytes": (6, 6),
    "tried_region/sz_filter_passed": (6, 14),
    "tried_region/probes": (7, 2),
    "module/damon_lru_sort": (6, 0),
    "module/damon_stat": (6, 17),
}

# Keywords accepted by `state`, in the kernel's table order.
STATE_COMMANDS: dict[str, Version] = {
    "on": (5, 18),
    "off": (5, 18),
    "commit": (5, 19),
    "commit_schemes_quota_goals": (6, 8),
    "update_schemes_stats": (5, 18),
    "update_schemes_tried_bytes": (6, 6),
    "update_schemes_tried_regions": (6, 2),
    "clear_schemes_tried_regions": (6, 2),
    "update_schemes_effective_quotas": (6, 9),
    "update_tuned_intervals": (6, 15),
}

# DAMOS action keywords in the kernel's table (enum) order.
ACTIONS: dict[str, Version] = {
    "willneed": (5, 18),
    "cold": (5, 18),
    "pageout": (5, 18),
    "hugepage": (5, 18),
    "nohugepage": (5, 18),
    "collapse": (7, 2),
    "lru_prio": (6, 0),
    "lru_deprio": (6, 0),
    "migrate_hot": (6, 11),
    "migrate_cold": (6, 11),
    "stat": (5, 18),
}

# Which operations sets implement an action (others are tried but never applied).
ACTION_OPS = {
    "willneed": {"vaddr", "fvaddr"},
    "cold": {"vaddr", "fvaddr"},
    "pageout": {"vaddr", "fvaddr", "paddr"},
    "hugepage": {"vaddr", "fvaddr"},
    "nohugepage": {"vaddr", "fvaddr"},
    "collapse": {"vaddr", "fvaddr"},
    "lru_prio": {"paddr"},
    "lru_deprio": {"paddr"},
    "migrate_hot": {"vaddr", "fvaddr", "paddr"},
    "migrate_cold": {"vaddr", "fvaddr", "paddr"},
    "stat": {"vaddr", "fvaddr", "paddr"},
}

OPERATIONS = ("vaddr", "fvaddr", "paddr")

# DAMOS filter types in enum order (the default of a new filter dir is the first: anon).
# Value: (first kernel, handled by the core layer?).
FILTER_TYPES: dict[str, tuple] = {
    "anon": ((6, 3), False),
    "active": ((6, 15), False),
    "memcg": ((6, 3), False),
    "young": ((6, 10), False),
    "hugepage_size": ((6, 15), False),
    "unmapped": ((6, 15), False),
    "addr": ((6, 6), True),
    "target": ((6, 6), True),
}

# Data-attribute probe filter types (monitoring_attrs/probes, 7.2+).
PROBE_FILTER_TYPES = ("anon", "memcg")

QUOTA_GOAL_METRICS: dict[str, Version] = {
    "user_input": (6, 8),
    "some_mem_psi_us": (6, 9),
    "node_mem_used_bp": (6, 16),
    "node_mem_free_bp": (6, 16),
    "node_memcg_used_bp": (6, 19),
    "node_memcg_free_bp": (6, 19),
    "active_mem_bp": (7, 0),
    "inactive_mem_bp": (7, 0),
    "node_eligible_mem_bp": (7, 2),
}

GOAL_TUNERS = ("consist", "temporal")
WATERMARK_METRICS = ("none", "free_mem_rate")

# Kernels that reorganised the command handling; see docs in commands.py.
DAMON_CALL_SINCE = (6, 14)

# Debian's 6.1 kernels ship with CONFIG_DAMON unset: a useful "no DAMON" profile.
NO_DAMON = {(6, 1)}

KNOWN_PROFILES = ("6.1", "6.6", "6.12", "6.18", "7.3")


def parse_version(text) -> Version:
    """'7.3', '7.3.4', '6.12.117-cloud-amd64' or (7, 3) -> (7, 3)."""
    if isinstance(text, tuple):
        return tuple(text[:2])
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text))
    if not match:
        raise ValueError("not a kernel version: %r" % (text,))
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Profile:
    version: Version
    damon: bool = True
    name: str = field(default="")

    @classmethod
    def for_kernel(cls, kernel) -> "Profile":
        version = parse_version(kernel)
        damon = version >= SYSFS_SINCE and version not in NO_DAMON
        return cls(version=version, damon=damon, name="%d.%d" % version)

    def has(self, logical_path: str) -> bool:
        """Does this kernel have the file/dir `<kind>/<name>`?"""
        return self.version >= SINCE.get(logical_path, SYSFS_SINCE)

    def state_commands(self) -> list:
        return [w for w, v in STATE_COMMANDS.items() if self.version >= v]

    def actions(self) -> list:
        return [w for w, v in ACTIONS.items() if self.version >= v]

    def filter_types(self) -> list:
        return [w for w, (v, _core) in FILTER_TYPES.items() if self.version >= v]

    def goal_metrics(self) -> list:
        return [w for w, v in QUOTA_GOAL_METRICS.items() if self.version >= v]

    @property
    def damon_call_era(self) -> bool:
        """≥6.14: commands go through damon_call()/damos_walk() (7.3 semantics);
        before: through the after_aggregation callback request (6.12 semantics)."""
        return self.version >= DAMON_CALL_SINCE

    def modules(self) -> list:
        if not self.damon:
            return []
        mods = ["damon_reclaim"]
        if self.has("module/damon_lru_sort"):
            mods.append("damon_lru_sort")
        if self.has("module/damon_stat"):
            mods.append("damon_stat")
        return mods

    def default_module_enabled(self) -> dict:
        """Debian's defaults: DAMON_STAT is enabled by default (CONFIG_DAMON_STAT_ENABLED_DEFAULT)."""
        return {m: (m == "damon_stat") for m in self.modules()}
