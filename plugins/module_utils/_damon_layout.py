# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The typed DAMON model and where each field lives in sysfs.

One declarative table (``KDAMOND`` and the nodes below it) says, for every
user-facing field, its file under the kdamond directory, its type, its
default and the kernel feature that adds it. Everything else is derived from
it: converting a user spec to a tree of file values (``to_tree``), reading a
live tree (``read_tree``) and converting a tree back to a spec (``from_tree``).

A ``Tree`` holds the files of one directory level that has no ``nr_*`` file
of its own, flattened (``quotas/weights/sz_permil``), plus its ``nr_*`` lists.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import CORE_FILTER_TYPES
from ansible_collections.linux_mm.damon.plugins.module_utils._options import (
    AGGR_US, MAX_NR_REGIONS, MIN_NR_REGIONS, SAMPLE_US, UPDATE_US,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import read_optional

ULONG_MAX = 2 ** 64 - 1
UINT_MAX = 2 ** 32 - 1

# The C type each numeric sysfs file is parsed into (kstrtoul/kstrtouint/kstrtoint
# in mm/damon/sysfs*.c), with its range on a 64-bit kernel. A value outside it
# fails with ERANGE/EINVAL at the write, mid-plan; we refuse it before any write.
ULONG = ("unsigned long", 0, ULONG_MAX)
UINT = ("unsigned int", 0, UINT_MAX)
INT = ("int", -2 ** 31, 2 ** 31 - 1)


class SpecError(ValueError):
    """A user spec the kernel cannot take; the message names the option."""


class Tree(object):
    """File values of one directory (relative paths) and its nr_* lists."""

    def __init__(self):
        self.files = {}  # relative path -> value text, in write order
        self.lists = {}  # relative nr_* path -> (relative dir of the children, [Tree])
        self.volatile = set()  # files others update at run time: written only into new dirs

    def __eq__(self, other):
        return isinstance(other, Tree) and self.files == other.files and self.lists == other.lists

    def __repr__(self):
        return "Tree(files=%r, lists=%r)" % (self.files, self.lists)


def check_int(label, value, ctype):
    """SpecError unless ``value`` is an integer the kernel's ``ctype`` (ULONG, UINT, INT) can hold."""
    name, low, high = ctype
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("%s: %r is not an integer (%s)" % (label, value, name))
    if not low <= value <= high:
        raise SpecError("%s: %d is out of range for %s (%d..%d)" % (label, value, name, low, high))


class Field(object):
    def __init__(self, key, path, kind=int, default=0, feature=None, choices=None, volatile=False, ctype=None):
        if kind is int and ctype is None:
            raise ValueError("%s: an integer field needs the C type of its sysfs file" % path)
        self.key, self.path, self.kind, self.default = key, path, kind, default
        self.feature, self.choices, self.volatile = feature, choices, volatile
        self.ctype = ctype

    def to_text(self, value):
        if self.kind is bool:
            return "Y" if value else "N"
        return str(value)

    def from_text(self, text):
        if self.kind is bool:
            return text in ("Y", "1", "y")
        if self.kind is int:
            try:
                return int(text)
            except ValueError:
                return text
        return text


class Group(object):
    """A nested dict of the spec whose fields live in fixed sub-directories."""

    def __init__(self, key, members, feature=None):
        self.key, self.members, self.feature = key, members, feature


class Many(object):
    """A list of the spec stored as an ``nr_*`` file and numbered children."""

    def __init__(self, key, nr_path, dir_path, members, feature=None):
        self.key, self.nr_path, self.dir_path = key, nr_path, dir_path
        self.members, self.feature = members, feature


class Filters(object):
    """Scheme filters: ``core_filters/`` + ``ops_filters/`` from 6.15, ``filters/`` before."""

    key = "filters"
    feature = "filters"

    def __init__(self, members):
        self.members = members

    def lists(self, features):
        if features.has("core_ops_filters"):
            return [("core_filters", True), ("ops_filters", False)]
        return [("filters", None)]


FILTER = [
    Field("type", "type", str, "anon"),
    Field("matching", "matching", bool, False),
    Field("allow", "allow", bool, False, feature="filter_allow"),
    Field("memcg_path", "memcg_path", str, ""),
    Field("addr_start", "addr_start", int, 0, feature="filter_addr_target", ctype=ULONG),
    Field("addr_end", "addr_end", int, 0, feature="filter_addr_target", ctype=ULONG),
    Field("target_idx", "damon_target_idx", int, 0, feature="filter_addr_target", ctype=INT),
    Field("min", "min", int, 0, feature="filter_min_max", ctype=ULONG),
    Field("max", "max", int, 0, feature="filter_min_max", ctype=ULONG),
]

GOAL = [
    Field("metric", "target_metric", str, "user_input", feature="goal_metric"),
    Field("target_value", "target_value", int, 0, ctype=ULONG),
    # A feedback loop (ours or the user's) feeds current_value while DAMON runs.
    Field("current_value", "current_value", int, 0, volatile=True, ctype=ULONG),
    Field("nid", "nid", int, 0, feature="goal_nid", ctype=INT),
    Field("path", "path", str, "", feature="goal_path"),
]

SCHEME = [
    Field("action", "action", str, "stat"),
    # The sz/nr_accesses/age files take unsigned long (damon_sysfs_ul_range), but struct
    # damos_access_pattern keeps nr_accesses and age as unsigned int: the kernel would
    # truncate larger values silently, so their effective type is unsigned int.
    Group("access_pattern", [
        Field("min_size", "access_pattern/sz/min", int, 0, ctype=ULONG),
        Field("max_size", "access_pattern/sz/max", int, ULONG_MAX, ctype=ULONG),
        Field("min_nr_accesses", "access_pattern/nr_accesses/min", int, 0, ctype=UINT),
        Field("max_nr_accesses", "access_pattern/nr_accesses/max", int, UINT_MAX, ctype=UINT),
        Field("min_age", "access_pattern/age/min", int, 0, ctype=UINT),
        Field("max_age", "access_pattern/age/max", int, UINT_MAX, ctype=UINT),
    ]),
    Field("apply_interval_us", "apply_interval_us", int, 0, feature="apply_interval", ctype=ULONG),
    Field("target_nid", "target_nid", int, -1, feature="migrate_actions", ctype=INT),
    Group("quotas", [
        Field("ms", "quotas/ms", int, 0, ctype=ULONG),
        Field("bytes", "quotas/bytes", int, 0, ctype=ULONG),
        Field("reset_interval_ms", "quotas/reset_interval_ms", int, 0, ctype=ULONG),
        Field("goal_tuner", "quotas/goal_tuner", str, "consist", feature="goal_tuner"),
        Group("weights", [
            Field("sz_permil", "quotas/weights/sz_permil", int, 0, ctype=UINT),
            Field("nr_accesses_permil", "quotas/weights/nr_accesses_permil", int, 0, ctype=UINT),
            Field("age_permil", "quotas/weights/age_permil", int, 0, ctype=UINT),
        ]),
        Many("goals", "quotas/goals/nr_goals", "quotas/goals", GOAL, feature="quota_goals"),
    ]),
    Group("watermarks", [
        Field("metric", "watermarks/metric", str, "none", choices=["none", "free_mem_rate"]),
        Field("interval_us", "watermarks/interval_us", int, 0, ctype=ULONG),
        Field("high", "watermarks/high", int, 0, ctype=ULONG),
        Field("mid", "watermarks/mid", int, 0, ctype=ULONG),
        Field("low", "watermarks/low", int, 0, ctype=ULONG),
    ]),
    Filters(FILTER),
    Field("max_nr_snapshots", "stats/max_nr_snapshots", int, 0, feature="nr_snapshots", ctype=ULONG),
]

TARGET = [
    Field("pid", "pid_target", int, 0, ctype=INT),
    Many("regions", "regions/nr_regions", "regions", [
        Field("start", "start", int, 0, ctype=ULONG),
        Field("end", "end", int, 0, ctype=ULONG),
    ]),
]

CONTEXT = [
    Field("operations", "operations", str, "vaddr"),
    Field("addr_unit", "addr_unit", int, 1, feature="addr_unit", ctype=ULONG),
    Group("monitoring_attrs", [
        Field("sample_us", "monitoring_attrs/intervals/sample_us", int, SAMPLE_US, ctype=ULONG),
        Field("aggr_us", "monitoring_attrs/intervals/aggr_us", int, AGGR_US, ctype=ULONG),
        Field("update_us", "monitoring_attrs/intervals/update_us", int, UPDATE_US, ctype=ULONG),
        Group("intervals_goal", [
            Field("access_bp", "monitoring_attrs/intervals/intervals_goal/access_bp", int, 0, ctype=ULONG),
            Field("aggrs", "monitoring_attrs/intervals/intervals_goal/aggrs", int, 0, ctype=ULONG),
            Field("min_sample_us", "monitoring_attrs/intervals/intervals_goal/min_sample_us", int, 0, ctype=ULONG),
            Field("max_sample_us", "monitoring_attrs/intervals/intervals_goal/max_sample_us", int, 0, ctype=ULONG),
        ], feature="intervals_goal"),
        Field("min_nr_regions", "monitoring_attrs/nr_regions/min", int, MIN_NR_REGIONS, ctype=ULONG),
        Field("max_nr_regions", "monitoring_attrs/nr_regions/max", int, MAX_NR_REGIONS, ctype=ULONG),
    ]),
    Many("targets", "targets/nr_targets", "targets", TARGET),
    Many("schemes", "schemes/nr_schemes", "schemes", SCHEME),
]

KDAMOND = [
    Field("refresh_ms", "refresh_ms", int, 0, feature="refresh_ms", ctype=UINT),  # kstrtouint
    Many("contexts", "contexts/nr_contexts", "contexts", CONTEXT),
]


def _join(*parts):
    return "/".join(p for p in parts if p != "")


def _unsupported(where, feature, features):
    return SpecError("%s needs %s; this kernel is %s" % (
        where, features.since_text(feature), features.release))


def _is_default(member, value):
    if isinstance(member, Field):
        return value is None or value == member.default
    if isinstance(member, Group):
        return not value or all(_is_default(m, value.get(m.key)) for m in member.members)
    return not value


# With an intervals goal (aggrs > 0) the kernel rewrites these itself (kdamond_tune_intervals);
# they reach sysfs on update_tuned_intervals (or refresh_ms), so they are volatile then.
GOAL_AGGRS = "monitoring_attrs/intervals/intervals_goal/aggrs"
TUNED_INTERVALS = ("monitoring_attrs/intervals/sample_us", "monitoring_attrs/intervals/aggr_us")


def volatile_files(tree):
    """Files of ``tree`` (a desired or a live one) that the kernel or a feedback loop updates at run time."""
    names = set(rel for rel in tree.files if rel.rsplit("/", 1)[-1] == "current_value")
    if tree.files.get(GOAL_AGGRS, "0") not in ("", "0"):
        names.update(TUNED_INTERVALS)
    return names


def check_ranges(members, spec, where=""):
    """SpecError naming the option path of the first integer outside its kernel C type.

    Walks ``spec`` (a dict) along ``members`` whatever the kernel's features: an
    out-of-range value is wrong on every kernel.
    """
    for m in members:
        value = (spec or {}).get(m.key)
        if value is None:
            continue
        label = _join(where, m.key).replace("/", ".")
        if isinstance(m, Field):
            if m.ctype is not None:
                check_int(label, value, m.ctype)
        elif isinstance(m, Group):
            if not isinstance(value, dict):
                raise SpecError("%s: %r is not a dict" % (label, value))
            check_ranges(m.members, value, label)
        else:
            if not isinstance(value, list):
                raise SpecError("%s: %r is not a list" % (label, value))
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise SpecError("%s[%d]: %r is not a dict" % (label, i, item))
                check_ranges(m.members, item, "%s[%d]" % (label, i))


def to_tree(members, spec, features, where=""):
    """Tree of file values for ``spec`` (a dict), defaults filled in."""
    tree = Tree()
    _fill(tree, members, spec or {}, features, where)
    tree.volatile.update(volatile_files(tree))
    return tree


def _fill(tree, members, spec, features, where):
    for m in members:
        value = spec.get(m.key)
        label = _join(where, m.key).replace("/", ".")
        if m.feature and not features.has(m.feature):
            if not _is_default(m, value):
                raise _unsupported(label, m.feature, features)
            continue
        if isinstance(m, Field):
            if value is not None and m.ctype is not None:
                check_int(label, value, m.ctype)  # never write what the kernel would refuse mid-plan
            tree.files[m.path] = m.to_text(m.default if value is None else value)
            if m.volatile:
                tree.volatile.add(m.path)
        elif isinstance(m, Group):
            _fill(tree, m.members, value or {}, features, label)
        elif isinstance(m, Many):
            kids = [to_tree(m.members, item, features, "%s[%d]" % (label, i))
                    for i, item in enumerate(value or [])]
            tree.lists[m.nr_path] = (m.dir_path, kids)
        else:
            _fill_filters(tree, m, value or [], features, label)


def _fill_filters(tree, m, filters, features, label):
    groups = dict((name, []) for name, unused in m.lists(features))
    for i, item in enumerate(filters):
        kid = to_tree(m.members, item, features, "%s[%d]" % (label, i))
        ftype = item.get("type")
        if "filters" in groups:
            groups["filters"].append(kid)
        else:
            groups["core_filters" if ftype in CORE_FILTER_TYPES else "ops_filters"].append(kid)
    for name, kids in groups.items():
        tree.lists[name + "/nr_filters"] = (name, kids)


def from_tree(members, tree):
    """Spec dict of the fields present in ``tree``."""
    spec = {}
    for m in members:
        if isinstance(m, Field):
            if m.path in tree.files:
                spec[m.key] = m.from_text(tree.files[m.path])
        elif isinstance(m, Group):
            sub = from_tree(m.members, tree)
            if sub:
                spec[m.key] = sub
        elif isinstance(m, Many):
            if m.nr_path in tree.lists:
                spec[m.key] = [from_tree(m.members, kid) for kid in tree.lists[m.nr_path][1]]
        else:
            found = [kid for name in ("core_filters", "ops_filters", "filters")
                     for kid in tree.lists.get(name + "/nr_filters", (None, []))[1]]
            if any(name + "/nr_filters" in tree.lists for name in ("core_filters", "ops_filters", "filters")):
                spec[m.key] = [from_tree(m.members, kid) for kid in found]
    return spec


def read_tree(members, path, features):
    """Read the files of ``members`` that exist below directory ``path``."""
    tree = Tree()
    _read_into(tree, members, path, features)
    return tree


def _read_into(tree, members, path, features):
    for m in members:
        if isinstance(m, Field):
            value = read_optional(os.path.join(path, m.path))
            if value is not None:
                tree.files[m.path] = value
        elif isinstance(m, Group):
            _read_into(tree, m.members, path, features)
        elif isinstance(m, Many):
            _read_list(tree, m.nr_path, m.dir_path, m.members, path, features)
        else:
            for name in ("core_filters", "ops_filters", "filters"):
                _read_list(tree, name + "/nr_filters", name, m.members, path, features)


def _read_list(tree, nr_path, dir_path, members, path, features):
    count = read_optional(os.path.join(path, nr_path))
    if count is None:
        return
    kids = [read_tree(members, os.path.join(path, dir_path, str(i)), features) for i in range(int(count))]
    tree.lists[nr_path] = (dir_path, kids)
