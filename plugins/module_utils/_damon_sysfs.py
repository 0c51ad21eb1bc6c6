# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read live kdamonds, plan the minimal ordered writes to a desired tree, apply them.

Kernel rules the planner encodes (mm/damon/sysfs*.c):
- writing an ``nr_*`` file removes every child directory and creates new ones
  holding zeros, even when the number does not change, so an ``nr_*`` file is
  written only when its value changes, before the files of its children, and
  then every file of the new children is written (the maxima included);
- files are read by the kernel only on ``on`` and ``commit``, so the order of
  plain value writes inside one directory does not matter;
- a running kdamond takes new values with ``commit``, never with off/on.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import ADMIN
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import (
    KDAMOND, from_tree, read_tree, volatile_files,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import read_optional, read_text, write_text

STATS_FILES = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "sz_ops_filter_passed",
               "qt_exceeds", "nr_snapshots")


def kdamonds_dir(sysfs_root):
    return os.path.join(sysfs_root, ADMIN, "kdamonds")


class Kdamond(object):
    """One live kdamond directory as read from sysfs."""

    def __init__(self, index, path, state, pid, tree):
        self.index, self.path, self.state, self.pid, self.tree = index, path, state, pid, tree

    @property
    def running(self):
        return self.state == "on"

    @property
    def context(self):
        """The spec of its (only) context, or None."""
        contexts = from_tree(KDAMOND, self.tree).get("contexts") or []
        return contexts[0] if contexts else None

    def summary(self):
        ctx = self.context or {}
        return {
            "index": self.index,
            "state": self.state,
            "pid": self.pid,
            "operations": ctx.get("operations"),
            "actions": [s.get("action") for s in ctx.get("schemes", [])],
            "target_pids": [t.get("pid") for t in ctx.get("targets", [])],
        }

    def describe(self):
        s = self.summary()
        return "kdamond %d (state %s, pid %s, operations %s, actions %s)" % (
            s["index"], s["state"], s["pid"], s["operations"] or "-", ",".join(s["actions"]) or "-")


def read_kdamond(sysfs_root, index, features):
    path = os.path.join(kdamonds_dir(sysfs_root), str(index))
    state = read_text(os.path.join(path, "state"))
    pid = read_optional(os.path.join(path, "pid"))
    pid = int(pid) if pid not in (None, "", "-1") else None
    return Kdamond(index, path, state, pid, read_tree(KDAMOND, path, features))


def read_kdamonds(sysfs_root, features):
    count = int(read_text(os.path.join(kdamonds_dir(sysfs_root), "nr_kdamonds")))
    return [read_kdamond(sysfs_root, i, features) for i in range(count)]


def plan(current, desired, base):
    """Ordered [(path, value)] that turns tree ``current`` (None: new dir) into ``desired``."""
    writes = []
    _plan(current, desired, base, writes)
    return writes


def _plan(current, desired, base, writes):
    for rel, value in desired.files.items():
        if current is None:
            if value != "":  # an empty write(2) never reaches the kernel; new files are empty
                writes.append((base + "/" + rel, value))
        elif rel not in desired.volatile and current.files.get(rel) != value:
            writes.append((base + "/" + rel, value))
    for nr_rel, (dir_rel, kids) in desired.lists.items():
        old = current.lists.get(nr_rel) if current is not None else None
        fresh = old is None or len(old[1]) != len(kids)
        if fresh and not (current is None and not kids):  # new dirs already hold nr_*=0
            writes.append((base + "/" + nr_rel, str(len(kids))))
        for i, kid in enumerate(kids):
            _plan(None if fresh else old[1][i], kid, "%s/%s/%d" % (base, dir_rel, i), writes)


def apply(writes, applied):
    """Write each (path, value); ``applied`` collects what succeeded (also on failure)."""
    for path, value in writes:
        write_text(path, value)
        applied.append({"path": path, "value": value})


def digest(tree):
    """Stable digest of a kdamond's configuration (volatile files left out)."""
    def canon(t):
        return {
            "files": dict((k, v) for k, v in sorted(t.files.items()) if k not in volatile_files(t)),
            "lists": dict((k, [canon(kid) for kid in kids]) for k, (unused, kids) in sorted(t.lists.items())),
        }
    return hashlib.sha256(json.dumps(canon(tree), sort_keys=True).encode()).hexdigest()[:16]


def command(kdamond_path, word):
    write_text(os.path.join(kdamond_path, "state"), word)


def _scheme_dirs(kdamond_path):
    base = os.path.join(kdamond_path, "contexts", "0", "schemes")
    count = read_optional(os.path.join(base, "nr_schemes"))
    return [os.path.join(base, str(i)) for i in range(int(count or 0))]


def read_stats(kdamond_path):
    """Per-scheme cumulative stats as the kernel last published them."""
    result = []
    for sdir in _scheme_dirs(kdamond_path):
        stats = {}
        for name in STATS_FILES:
            value = read_optional(os.path.join(sdir, "stats", name))
            if value is not None:
                stats[name] = int(value)
        result.append(stats)
    return result


def read_tried_regions(kdamond_path):
    """Per-scheme list of tried regions {start, end, nr_accesses, age}."""
    result = []
    for sdir in _scheme_dirs(kdamond_path):
        tdir = os.path.join(sdir, "tried_regions")
        regions = []
        names = sorted((n for n in os.listdir(tdir) if n.isdigit()), key=int) if os.path.isdir(tdir) else []
        for n in names:
            r = {}
            for key in ("start", "end", "nr_accesses", "age", "sz_filter_passed"):
                value = read_optional(os.path.join(tdir, n, key))
                if value is not None:
                    r[key] = int(value)
            regions.append(r)
        result.append(regions)
    return result
