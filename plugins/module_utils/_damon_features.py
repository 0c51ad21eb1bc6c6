# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the running kernel's DAMON sysfs interface supports.

Detection never stages a throw-away kdamond (that would disturb whoever else
uses DAMON). It maps the kernel release to the first mainline kernel of each
feature, then lets the files of kdamond directories that already exist
overrule the table (distribution kernels backport and disable things).
"""

from __future__ import annotations

import errno
import os
import re

from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, errno_words, read_text

# feature -> first mainline kernel (sources: Documentation/ABI/testing/sysfs-kernel-mm-damon,
# damo's _damon_features.py).
FEATURE_SINCE = {
    "sysfs": (5, 18),
    "commit": (5, 19),
    "avail_operations": (5, 19),
    "fvaddr": (5, 19),
    "lru_sort_actions": (6, 0),
    "tried_regions": (6, 2),
    "filters": (6, 3),
    "tried_regions_total_bytes": (6, 6),
    "filter_addr_target": (6, 6),
    "apply_interval": (6, 7),
    "quota_goals": (6, 8),
    "effective_quotas": (6, 9),
    "goal_metric": (6, 9),
    "filter_young": (6, 10),
    "migrate_actions": (6, 11),
    "filter_allow": (6, 14),
    "sz_ops_filter_passed": (6, 14),
    "intervals_goal": (6, 15),
    "core_ops_filters": (6, 15),
    "filter_min_max": (6, 15),
    "goal_nid": (6, 16),
    "dests": (6, 17),
    "refresh_ms": (6, 17),
    "addr_unit": (6, 18),
    "goal_path": (6, 19),
    "obsolete_target": (6, 19),
    "nr_snapshots": (7, 0),
    "goal_tuner": (7, 1),
    "collapse_action": (7, 2),
    "pause": (7, 2),
    "fail_charge": (7, 2),
}

# Files whose presence, where their parent directory exists, proves a feature
# (relative to a kdamond, context or scheme directory).
FEATURE_PROBES = {
    "refresh_ms": ("kdamond", "refresh_ms"),
    "avail_operations": ("context", "avail_operations"),
    "addr_unit": ("context", "addr_unit"),
    "pause": ("context", "pause"),
    "intervals_goal": ("context", "monitoring_attrs/intervals/intervals_goal"),
    "tried_regions": ("scheme", "tried_regions"),
    "tried_regions_total_bytes": ("scheme", "tried_regions/total_bytes"),
    "filters": ("scheme", "filters"),
    "apply_interval": ("scheme", "apply_interval_us"),
    "quota_goals": ("scheme", "quotas/goals"),
    "effective_quotas": ("scheme", "quotas/effective_bytes"),
    "migrate_actions": ("scheme", "target_nid"),
    "sz_ops_filter_passed": ("scheme", "stats/sz_ops_filter_passed"),
    "core_ops_filters": ("scheme", "core_filters"),
    "dests": ("scheme", "dests"),
    "nr_snapshots": ("scheme", "stats/max_nr_snapshots"),
    "goal_tuner": ("scheme", "quotas/goal_tuner"),
    # damo infers the collapse action from the file added in the same release.
    "fail_charge": ("scheme", "quotas/fail_charge_denom"),
    "collapse_action": ("scheme", "quotas/fail_charge_denom"),
}

ACTIONS_SINCE = {
    "willneed": "sysfs", "cold": "sysfs", "pageout": "sysfs", "hugepage": "sysfs",
    "nohugepage": "sysfs", "stat": "sysfs",
    "lru_prio": "lru_sort_actions", "lru_deprio": "lru_sort_actions",
    "migrate_hot": "migrate_actions", "migrate_cold": "migrate_actions",
    "collapse": "collapse_action",
}

OPERATIONS_SINCE = {"vaddr": "sysfs", "paddr": "sysfs", "fvaddr": "fvaddr"}

FILTER_TYPES_SINCE = {
    "anon": "filters", "memcg": "filters",
    "addr": "filter_addr_target", "target": "filter_addr_target",
    "young": "filter_young",
    "hugepage_size": "filter_min_max", "unmapped": "filter_min_max", "active": "filter_min_max",
}
# Filter types handled by DAMON core (core_filters/); the rest are ops-layer (ops_filters/).
CORE_FILTER_TYPES = ("addr", "target")

GOAL_METRICS_SINCE = {
    "user_input": "quota_goals",
    "some_mem_psi_us": "goal_metric",
    "node_mem_used_bp": "goal_nid", "node_mem_free_bp": "goal_nid",
    "node_memcg_used_bp": "goal_path", "node_memcg_free_bp": "goal_path",
    "active_mem_bp": "nr_snapshots", "inactive_mem_bp": "nr_snapshots",
    "node_eligible_mem_bp": "collapse_action",
}

STATE_WORDS_SINCE = {
    "on": "sysfs", "off": "sysfs", "update_schemes_stats": "sysfs",
    "commit": "commit",
    "update_schemes_tried_regions": "tried_regions", "clear_schemes_tried_regions": "tried_regions",
    "update_schemes_tried_bytes": "tried_regions_total_bytes",
    "commit_schemes_quota_goals": "quota_goals",
    "update_schemes_effective_quotas": "effective_quotas",
    "update_tuned_intervals": "intervals_goal",
}

# What each exclusive DAMON module is called in messages.
EXCLUSIVE_MODULES = {
    "damon_reclaim": "DAMON_RECLAIM",
    "damon_lru_sort": "DAMON_LRU_SORT",
    "damon_stat": "DAMON_STAT",
}

ADMIN = "kernel/mm/damon/admin"


def version_text(version):
    return "%d.%d" % version


def parse_release(release):
    """(6, 12) from '6.12.117+deb13-cloud-amd64'; None when unparsable."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def running_release():
    return os.uname().release


class Features(object):
    """Feature flags of one host's DAMON sysfs interface."""

    def __init__(self, release, available, flags, reason=None):
        self.release = release
        self.version = parse_release(release)
        self.available = available
        self.flags = flags
        self.reason = reason

    def has(self, feature):
        return self.flags.get(feature, False)

    def since_text(self, feature):
        return "Linux " + version_text(FEATURE_SINCE[feature])

    def supported(self, table):
        return sorted(k for k, feature in table.items() if self.has(feature))

    @property
    def actions(self):
        return self.supported(ACTIONS_SINCE)

    @property
    def filter_types(self):
        return self.supported(FILTER_TYPES_SINCE)

    @property
    def goal_metrics(self):
        return self.supported(GOAL_METRICS_SINCE)

    @property
    def state_words(self):
        return self.supported(STATE_WORDS_SINCE)

    def as_dict(self):
        return {
            "kernel_release": self.release,
            "available": self.available,
            "reason": self.reason,
            "flags": dict(sorted(self.flags.items())),
            "actions": self.actions if self.available else [],
            "filter_types": self.filter_types if self.available else [],
            "goal_metrics": self.goal_metrics if self.available else [],
            "state_words": self.state_words if self.available else [],
        }


def from_table(release):
    """Features of ``release`` from the version table alone."""
    version = parse_release(release)
    flags = dict((name, version is not None and version >= since) for name, since in FEATURE_SINCE.items())
    return Features(release, True, flags)


def _existing_dirs(admin):
    """Directories of existing kdamonds, contexts and schemes, by kind."""
    found = {"kdamond": [], "context": [], "scheme": []}
    kdamonds = os.path.join(admin, "kdamonds")
    for k in sorted(os.listdir(kdamonds)) if os.path.isdir(kdamonds) else []:
        kd = os.path.join(kdamonds, k)
        if not k.isdigit():
            continue
        found["kdamond"].append(kd)
        ctxs = os.path.join(kd, "contexts")
        for c in sorted(os.listdir(ctxs)) if os.path.isdir(ctxs) else []:
            if not c.isdigit():
                continue
            ctx = os.path.join(ctxs, c)
            found["context"].append(ctx)
            schemes = os.path.join(ctx, "schemes")
            for s in sorted(os.listdir(schemes)) if os.path.isdir(schemes) else []:
                if s.isdigit():
                    found["scheme"].append(os.path.join(schemes, s))
    return found


def _root_problem(sysfs_root):
    """Why ``sysfs_root`` is no sysfs at all (gone, unreadable, unmounted), or None.

    Only then may a missing DAMON directory be blamed on the kernel's configuration:
    every mounted sysfs has ``kernel/mm``.
    """
    try:
        os.stat(sysfs_root)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "sysfs root %s does not exist" % sysfs_root
        return "sysfs root %s cannot be read: %s" % (sysfs_root, errno_words(e.errno or errno.EIO))
    if not os.path.isdir(sysfs_root):
        return "sysfs root %s is not a directory" % sysfs_root
    mm = os.path.join(sysfs_root, "kernel", "mm")
    if not os.path.isdir(mm):
        return ("sysfs root %s does not exist as a sysfs: %s is missing (is sysfs mounted there, or did the "
                "mount go away?)" % (sysfs_root, mm))
    return None


def detect(sysfs_root, release=None):
    """Features of the DAMON sysfs under ``sysfs_root`` for kernel ``release``."""
    release = release or running_release()
    version = parse_release(release)
    admin = os.path.join(sysfs_root, ADMIN)
    if not os.path.isdir(os.path.join(admin, "kdamonds")):
        root_problem = _root_problem(sysfs_root)
        if root_problem:
            reason = root_problem
        elif version is not None and version < FEATURE_SINCE["sysfs"]:
            reason = "Linux %s has no DAMON sysfs interface (added in Linux 5.18)" % release
        else:
            reason = ("this kernel (%s) has no DAMON sysfs interface: %s is missing "
                      "(CONFIG_DAMON_SYSFS is not set)" % (release, admin))
        return Features(release, False, {}, reason)
    flags = from_table(release).flags
    flags["sysfs"] = True
    dirs = _existing_dirs(admin)
    for feature, (kind, rel) in FEATURE_PROBES.items():
        if dirs[kind]:
            flags[feature] = os.path.exists(os.path.join(dirs[kind][0], rel))
    return Features(release, True, flags)


def exclusive_modules(sysfs_root):
    """{module: {'present': bool, 'enabled': bool, 'label': ...}} for DAMON's exclusive modules."""
    result = {}
    for name, label in EXCLUSIVE_MODULES.items():
        path = os.path.join(sysfs_root, "module", name, "parameters", "enabled")
        try:
            value = read_text(path)
        except SysfsError:
            result[name] = {"label": label, "present": False, "enabled": False, "path": path}
            continue
        result[name] = {"label": label, "present": True, "enabled": value in ("Y", "1"), "path": path}
    return result
