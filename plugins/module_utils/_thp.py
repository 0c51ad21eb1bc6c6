# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent huge page (THP) and khugepaged settings under sysfs.

Pure functions, in the order a module uses them:

* :func:`read_state` reads ``<sysfs_root>/kernel/mm/transparent_hugepage``;
* :func:`desired_from_params` turns module parameters into flat settings;
* :func:`validate` checks them against what this kernel accepts (selector
  words are read from the files themselves, since kernels differ);
* :func:`plan` lists the writes, in order, that turn the current settings into
  the desired ones (empty when nothing changes);
* :func:`apply` performs them and reports which ones were applied.

Settings are keyed by their path relative to the THP directory
(``enabled``, ``khugepaged/pages_to_scan``...). Typed values: selector words are
``str``, 0/1 flags are ``bool``, counters and tunables are ``int``.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import read_optional, write_text

THP_SUBDIR = os.path.join("kernel", "mm", "transparent_hugepage")

UINT_MAX = 2 ** 32 - 1
# HPAGE_PMD_NR - 1 with 4 KiB pages and 2 MiB PMD huge pages (x86-64, arm64/4K).
DEFAULT_MAX_PTES = 511

SELECTOR = "selector"
FLAG = "flag"
UINT = "uint"


class Setting(object):
    """One writable file: its key, option name, kind and accepted range."""

    def __init__(self, key, kind, minimum=0, maximum=UINT_MAX, pte_limit=False, since=None):
        self.key = key
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.pte_limit = pte_limit  # maximum is HPAGE_PMD_NR - 1
        self.since = since

    @property
    def option(self):
        return self.key.replace("/", ".")


# Write order: khugepaged is tuned first, then the fault-time policy, and
# ``enabled`` last, so THP (and the khugepaged thread it starts) comes up with
# its final settings.
SETTINGS = (
    Setting("khugepaged/defrag", FLAG),
    Setting("khugepaged/pages_to_scan", UINT, minimum=1),
    Setting("khugepaged/scan_sleep_millisecs", UINT),
    Setting("khugepaged/alloc_sleep_millisecs", UINT),
    Setting("khugepaged/max_ptes_none", UINT, pte_limit=True),
    Setting("khugepaged/max_ptes_swap", UINT, pte_limit=True, since="4.5"),
    Setting("khugepaged/max_ptes_shared", UINT, pte_limit=True, since="5.8"),
    Setting("use_zero_page", FLAG, since="3.8"),
    Setting("shmem_enabled", SELECTOR, since="4.8"),
    Setting("defrag", SELECTOR),
    Setting("enabled", SELECTOR),
)
SETTINGS_BY_KEY = dict((s.key, s) for s in SETTINGS)
KHUGEPAGED_OPTIONS = tuple(
    s.key.split("/", 1)[1] for s in SETTINGS if s.key.startswith("khugepaged/")
)

# Read-only files reported with the settings.
READ_ONLY = (
    ("hpage_pmd_size", UINT),
    ("shrink_underused", FLAG),  # since 6.12; writable, reported only
    ("khugepaged/pages_collapsed", UINT),
    ("khugepaged/full_scans", UINT),
)


class ThpError(Exception):
    """Bad input, an unreadable tree or unexpected file content; nothing was written."""


class ThpPlan(object):
    """What a thp run writes, planned before any write (the idiom of ``_damon_kdamond.KdamondPlan``).

    ``changes``: ordered ``{key, path, before, after}`` (values as written to the file);
    ``writes``: the same as ``(path, value)``; ``before``/``after``: the writable settings
    as nested views, for diff mode.
    """

    def __init__(self, changes, before, after):
        self.changes, self.before, self.after = changes, before, after

    @property
    def writes(self):
        return [(c["path"], c["after"]) for c in self.changes]


# --------------------------------------------------------------------------
# Parsing


def parse_selector(text, path="selector"):
    """Parse ``always [madvise] never`` into ``("madvise", ["always", "madvise", "never"])``."""
    words = text.split()
    current = None
    choices = []
    for word in words:
        if word.startswith("[") and word.endswith("]") and len(word) > 2:
            if current is not None:
                current = None
                break
            word = word[1:-1]
            current = word
        if "[" in word or "]" in word:
            current = None
            break
        choices.append(word)
    if current is None:
        raise ThpError(
            "unexpected content in %s: %r (expected the choices with the current one "
            "in brackets, like 'always [madvise] never')" % (path, text)
        )
    return current, choices


def parse_uint(text, path="file"):
    try:
        value = int(text.strip(), 10)
    except ValueError:
        value = -1
    if value < 0:
        raise ThpError("unexpected content in %s: %r (expected a non-negative integer)" % (path, text))
    return value


def parse_flag(text, path="file"):
    value = text.strip()
    if value not in ("0", "1"):
        raise ThpError("unexpected content in %s: %r (expected 0 or 1)" % (path, text))
    return value == "1"


def format_value(kind, value):
    """The string written to the file for a typed value."""
    if kind == FLAG:
        return "1" if value else "0"
    return str(value)


# --------------------------------------------------------------------------
# Reading


def thp_dir(sysfs_root):
    """The THP directory under ``sysfs_root``; ThpError when it is missing."""
    if not os.path.isdir(sysfs_root):
        raise ThpError(
            "sysfs_root %s does not exist or is not a directory (is sysfs mounted there?)" % sysfs_root
        )
    path = os.path.join(sysfs_root, THP_SUBDIR)
    if not os.path.isdir(path):
        raise ThpError(
            "%s has no transparent_hugepage directory: this kernel was built without "
            "transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)"
            % os.path.join(sysfs_root, "kernel", "mm")
        )
    return path


def _parse(kind, text, path):
    if kind == SELECTOR:
        return parse_selector(text, path)
    if kind == FLAG:
        return parse_flag(text, path)
    return parse_uint(text, path)


def read_state(sysfs_root):
    """Read every THP file this module knows.

    Returns ``{"dir": path, "values": {key: value}, "choices": {key: [words]},
    "read_only": {key: value or None}}``; keys of missing writable files are
    absent from ``values``. Raises ThpError or SysfsError.
    """
    base = thp_dir(sysfs_root)
    values = {}
    choices = {}
    for setting in SETTINGS:
        path = os.path.join(base, setting.key)
        text = read_optional(path)
        if text is None:
            continue
        parsed = _parse(setting.kind, text, path)
        if setting.kind == SELECTOR:
            values[setting.key], choices[setting.key] = parsed
        else:
            values[setting.key] = parsed
    return {"dir": base, "values": values, "choices": choices, "read_only": read_read_only(base)}


def read_read_only(base):
    result = {}
    for key, kind in READ_ONLY:
        path = os.path.join(base, key)
        text = read_optional(path)
        result[key] = None if text is None else _parse(kind, text, path)
    return result


# --------------------------------------------------------------------------
# Desired settings and validation


def desired_from_params(params):
    """Flat ``{key: value}`` of the settings the user asked for (None = leave alone)."""
    desired = {}
    for key in ("enabled", "defrag", "shmem_enabled", "use_zero_page"):
        value = params.get(key)
        if value is not None:
            desired[key] = value.strip() if isinstance(value, str) else value
    khugepaged = params.get("khugepaged") or {}
    for name in KHUGEPAGED_OPTIONS:
        value = khugepaged.get(name)
        if value is not None:
            desired["khugepaged/" + name] = value
    return desired


def pte_limit(state, page_size=None):
    """HPAGE_PMD_NR - 1: the largest value the max_ptes_* files accept."""
    pmd_size = state.get("read_only", {}).get("hpage_pmd_size")
    if page_size is None:
        try:
            page_size = os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            page_size = None
    if pmd_size and page_size and pmd_size >= page_size:
        return pmd_size // page_size - 1
    return DEFAULT_MAX_PTES


def validate(desired, state, page_size=None):
    """Raise ThpError listing every problem with ``desired``; return None if all is well."""
    problems = []
    limit = pte_limit(state, page_size)
    for key in sorted(set(desired) - set(SETTINGS_BY_KEY)):
        problems.append("unknown setting %r" % key)
    for setting in SETTINGS:
        key = setting.key
        if key not in desired:
            continue
        value = desired[key]
        option = setting.option
        if key not in state["values"]:
            since = " (added in Linux %s)" % setting.since if setting.since else ""
            problems.append(
                "%s: this kernel has no %s%s"
                % (option, os.path.join(state["dir"], key), since)
            )
            continue
        if setting.kind == SELECTOR:
            allowed = state["choices"][key]
            if not isinstance(value, str) or value not in allowed:
                problems.append(
                    "%s: %r is not accepted by this kernel; %s lists: %s"
                    % (option, value, os.path.join(state["dir"], key), ", ".join(allowed))
                )
        elif setting.kind == FLAG:
            if not isinstance(value, bool):
                problems.append("%s: %r is not a boolean" % (option, value))
        else:
            maximum = limit if setting.pte_limit else setting.maximum
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append("%s: %r is not an integer" % (option, value))
            elif not setting.minimum <= value <= maximum:
                why = " (HPAGE_PMD_NR - 1)" if setting.pte_limit else ""
                problems.append(
                    "%s: %d is out of range; the kernel accepts %d to %d%s"
                    % (option, value, setting.minimum, maximum, why)
                )
    if problems:
        raise ThpError("invalid THP settings, nothing was written: " + "; ".join(problems))


# --------------------------------------------------------------------------
# Planning and applying


def plan(state, desired):
    """A :class:`ThpPlan` from the current ``state`` to the ``desired`` settings; only reads."""
    changes = []
    for setting in SETTINGS:
        key = setting.key
        if key not in desired or key not in state["values"]:
            continue
        current = state["values"][key]
        wanted = desired[key]
        if current == wanted and type(current) is type(wanted):
            continue
        changes.append(
            {
                "key": key,
                "path": os.path.join(state["dir"], key),
                "before": format_value(setting.kind, current),
                "after": format_value(setting.kind, wanted),
            }
        )
    return ThpPlan(changes, settings_view(state["values"]), settings_view(expected_values(state, desired)))


def remember_before(saved, changes):
    """Add the old value of each changed file to ``saved`` unless it is there already: the first
    change wins, so ``saved`` keeps what the host had before linux_mm.damon touched it."""
    for change in changes:
        saved.setdefault(change["key"], change["before"])
    return saved


def desired_from_saved(saved):
    """``{key: typed value}`` from values saved by :func:`remember_before` (unknown keys dropped)."""
    desired = {}
    for key, text in saved.items():
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            continue
        if setting.kind == SELECTOR:
            desired[key] = text
        else:
            desired[key] = _parse(setting.kind, text, key)
    return desired


def expected_values(state, desired):
    """The writable settings once ``desired`` is applied."""
    values = dict(state["values"])
    for key, value in desired.items():
        if key in values:
            values[key] = value
    return values


def apply(p, applied, write=write_text):
    """Write the plan's changes in order, appending each one done to ``applied`` (as
    :func:`public_change`); the first failing write raises its SysfsError."""
    for change in p.changes:
        write(change["path"], change["after"])
        applied.append(public_change(change))
    return applied


def public_change(change):
    """A change as returned by the module: ``{path, before, after}``."""
    return {"path": change["path"], "before": change["before"], "after": change["after"]}


# --------------------------------------------------------------------------
# Views returned by the module


def settings_view(values):
    """Nested view of the writable settings: top-level keys plus a ``khugepaged`` dict."""
    view = {"khugepaged": {}}
    for setting in SETTINGS:
        if setting.key.startswith("khugepaged/"):
            view["khugepaged"][setting.key.split("/", 1)[1]] = values.get(setting.key)
        else:
            view[setting.key] = values.get(setting.key)
    return view


def full_view(values, choices, read_only):
    """Everything the module returns as ``thp``."""
    view = settings_view(values)
    for key, _kind in READ_ONLY:
        if key.startswith("khugepaged/"):
            view["khugepaged"][key.split("/", 1)[1]] = read_only.get(key)
        else:
            view[key] = read_only.get(key)
    view["choices"] = dict((key, list(words)) for key, words in choices.items())
    return view
