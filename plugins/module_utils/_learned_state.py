# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the feedback loop learned per application, kept on the host between runs.

A kdamond keeps its application's threshold and intervals in sysfs only while
its slot exists: a reboot, or a run in which the application was down (its
kdamond is then removed), loses them. This file keeps them by application name
(``threshold_bp``, the intervals in force, the collapse path), with the last
few decisions that changed them and what was hot and huge then, so a new
kdamond for the same application starts where the last one was instead of
from the initial threshold.

It is written by hugepage_step only, under the host lock it already holds for
the ownership record, with the same atomic replace; its structure is published
as ``docs/schemas/learned-state.schema.json`` and checked on every load. It is
rewritten only when a learned value changes, so a run on a host where nothing
changed writes nothing.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import RecordError, check_path, write_json
from ansible_collections.linux_mm.damon.plugins.module_utils._options import NOTHING_BP

VERSION = 1
MAX_APPS = 256  # least recently changed applications are forgotten beyond this
MAX_DECISIONS = 16  # per application, the most recent changes
OPTION = "learned_file"
_APP_KEYS = {"threshold_bp": (0, NOTHING_BP), "sample_us": (1, 2 ** 64 - 1), "aggr_us": (1, 2 ** 64 - 1)}
# the kernel's intervals_goal moves the intervals a little all the time: only a larger move is worth a write
INTERVALS_RATIO = 1.25
OUTCOME = ("hot_bytes", "huge_bytes_hot", "huge_bytes_cold")
OUTCOME_STEP = 2 << 20  # a huge page
_DECISION_NUMBERS = ("threshold_bp", "sample_us", "aggr_us") + OUTCOME
PATHS = ("damos_collapse", "user_collapse", "khugepaged")


def default_path(ownership_file):
    """Beside the ownership record."""
    return os.path.join(os.path.dirname(ownership_file), "learned.json")


def _fail(path, what):
    raise RecordError("%s %s is not a valid linux_mm.damon learned state: %s; fix it or move it away (its "
                      "applications then start from the initial threshold)" % (OPTION, path, what))


def _number(path, where, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(path, "%s must be an integer in %d..%d, got %r" % (where, lo, hi, value))


def _check_app(path, name, app):
    where = "apps[%s]" % name
    if not isinstance(app, dict):
        _fail(path, "%s must be an object" % where)
    unknown = set(app) - {"threshold_bp", "sample_us", "aggr_us", "path", "since", "decisions"}
    if unknown:
        _fail(path, "%s has unknown keys %s" % (where, ", ".join(sorted(unknown))))
    for key, (lo, hi) in _APP_KEYS.items():
        if key == "threshold_bp" or app.get(key) is not None:
            _number(path, "%s.%s" % (where, key), app.get(key), lo, hi)
    if app.get("path") not in PATHS:
        _fail(path, "%s.path must be one of %s, got %r" % (where, ", ".join(PATHS), app.get("path")))
    if not isinstance(app.get("since"), (int, float)) or isinstance(app.get("since"), bool):
        _fail(path, "%s.since must be a time in seconds since the epoch, got %r" % (where, app.get("since")))
    decisions = app.get("decisions")
    if not isinstance(decisions, list) or len(decisions) > MAX_DECISIONS:
        _fail(path, "%s.decisions must be a list of at most %d entries" % (where, MAX_DECISIONS))
    for i, d in enumerate(decisions):
        if not isinstance(d, dict) or set(d) - set(_DECISION_NUMBERS + ("at", "seen_at")) or isinstance(
                d.get("at"), bool) or not isinstance(d.get("at"), (int, float)):
            _fail(path, "%s.decisions[%d] must be an object with a time 'at' and keys among %s" % (
                where, i, ", ".join(_DECISION_NUMBERS)))
        for key in _DECISION_NUMBERS:
            if d.get(key) is not None:
                _number(path, "%s.decisions[%d].%s" % (where, i, key), d[key], 0, 2 ** 64 - 1)


def validate(path, data):
    """Standard-library check of the structure the JSON Schema documents."""
    if not isinstance(data, dict) or set(data) - {"version", "apps"}:
        _fail(path, "the top level must be an object with keys version and apps")
    if data.get("version") != VERSION:
        _fail(path, "version must be %d, got %r" % (VERSION, data.get("version")))
    apps = data.get("apps")
    if not isinstance(apps, dict):
        _fail(path, "apps must be an object keyed by application name")
    for name, app in apps.items():
        _check_app(path, name, app)


def _close(old, new):
    if old is None or new is None:
        return old == new
    return max(old, new) <= INTERVALS_RATIO * min(old, new)


class LearnedState(object):
    def __init__(self, path):
        self.path = path
        self.apps = {}
        self.dirty = False

    @classmethod
    def load(cls, path):
        check_path(path, OPTION)
        state = cls(path)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return state
        except OSError as e:
            raise RecordError("cannot read %s %s: %s" % (OPTION, path, e))
        try:
            data = json.loads(text)
        except ValueError as e:
            _fail(path, "not JSON (%s)" % e)
        validate(path, data)
        state.apps = data["apps"]
        return state

    def recall(self, name):
        """{threshold_bp, sample_us, aggr_us, path, since, decisions} learned for ``name``, or None."""
        return self.apps.get(name)

    def remember(self, name, threshold_bp, intervals, path, seen, now=None):
        """Keep what ``name`` runs with now; a change of threshold, intervals or path is a decision,
        recorded with what was hot and huge (``seen``: hot_bytes, huge_bytes_hot, huge_bytes_cold), and
        updated with what it led to. Returns whether anything changed."""
        sample_us, aggr_us = intervals or (None, None)
        old = self.apps.get(name)
        values = {"threshold_bp": min(int(threshold_bp), NOTHING_BP), "sample_us": sample_us, "aggr_us": aggr_us,
                  "path": path}
        now = time.time() if now is None else now
        if old is not None and old["threshold_bp"] == values["threshold_bp"] and old["path"] == path and _close(
                old.get("sample_us"), sample_us) and _close(old.get("aggr_us"), aggr_us):
            return self._outcome(old["decisions"][-1] if old["decisions"] else None, seen, now)
        decision = dict((k, values[k]) for k in ("threshold_bp", "sample_us", "aggr_us"))
        decision.update((k, seen.get(k)) for k in OUTCOME)
        decisions = ((old or {}).get("decisions") or []) + [dict(decision, at=round(now, 3))]
        self.apps[name] = dict(values, since=round(now, 3), decisions=decisions[-MAX_DECISIONS:])
        for gone in sorted(self.apps, key=lambda n: self.apps[n]["since"])[:max(0, len(self.apps) - MAX_APPS)]:
            del self.apps[gone]
        self.dirty = True
        return True

    def _outcome(self, decision, seen, now):
        """What the current decision led to (the kernel collapses after it was made): updated when a byte count
        moved by a huge page or more, so a steady host rewrites nothing."""
        if decision is None or all(abs((seen.get(k) or 0) - (decision.get(k) or 0)) < OUTCOME_STEP for k in OUTCOME):
            return False
        decision.update((k, seen.get(k)) for k in OUTCOME)
        decision["seen_at"] = round(now, 3)
        self.dirty = True
        return True

    def save(self):
        write_json(self.path, {"version": VERSION, "apps": self.apps}, OPTION)
        self.dirty = False
