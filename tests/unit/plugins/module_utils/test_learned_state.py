# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_learned_state.py: what is kept, when it is written, what is refused."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _learned_state as ls
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import RecordError

SCHEMA = json.loads(open("docs/schemas/learned-state.schema.json").read())
SEEN = {"hot_bytes": 4 << 20, "huge_bytes_hot": 2 << 20, "huge_bytes_cold": 0}


@pytest.fixture
def path(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return str(d / "learned.json")


def test_a_change_is_a_decision_and_the_same_values_are_not(path):
    state = ls.LearnedState.load(path)
    assert state.remember("db", 3000, (5000, 100000), "user_collapse", SEEN, now=10.0)
    assert not state.remember("db", 3000, (5500, 110000), "user_collapse", SEEN, now=11.0)  # within 1.25x
    assert state.remember("db", 3000, (20000, 400000), "user_collapse", SEEN, now=12.0)  # the kernel widened them
    state.save()
    again = ls.LearnedState.load(path)
    kept = again.recall("db")
    assert (kept["threshold_bp"], kept["sample_us"], kept["since"]) == (3000, 20000, 12.0)
    assert [d["at"] for d in kept["decisions"]] == [10.0, 12.0] and kept["decisions"][0]["huge_bytes_hot"] == 2 << 20
    jsonschema.validate(json.loads(open(path).read()), SCHEMA)


def test_decisions_and_applications_are_bounded(path):
    state = ls.LearnedState.load(path)
    for i in range(ls.MAX_DECISIONS + 5):
        state.remember("db", i, (5000, 100000), "damos_collapse", SEEN, now=float(i))
    for i in range(ls.MAX_APPS + 3):
        state.remember("app%d" % i, 100, None, "khugepaged", {}, now=1000.0 + i)
    assert len(state.recall("app%d" % (ls.MAX_APPS + 2))["decisions"]) == 1
    assert len(state.apps) == ls.MAX_APPS and state.recall("db") is None  # the least recently changed went first
    state.save()
    jsonschema.validate(json.loads(open(path).read()), SCHEMA)


def test_nothing_is_read_or_written_for_a_missing_file(path):
    state = ls.LearnedState.load(path)
    assert state.recall("db") is None and not state.dirty


@pytest.mark.parametrize("data, words", [
    ("{", "not JSON"),
    ({"version": 2, "apps": {}}, "version must be 1"),
    ({"version": 1, "apps": []}, "apps must be an object"),
    ({"version": 1, "apps": {"x": {"threshold_bp": 20000, "path": "user_collapse", "since": 1, "decisions": []}}},
     "apps[x].threshold_bp must be an integer in 0..10001"),
    ({"version": 1, "apps": {"x": {"threshold_bp": 1, "path": "magic", "since": 1, "decisions": []}}},
     "apps[x].path must be one of"),
    ({"version": 1, "apps": {"x": {"threshold_bp": 1, "path": "user_collapse", "since": 1, "decisions": [],
                                   "extra": 1}}}, "apps[x] has unknown keys extra"),
])
def test_a_damaged_file_is_refused_naming_it(path, data, words):
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(RecordError) as e:
        ls.LearnedState.load(path)
    assert str(e.value).startswith("learned_file %s is not a valid linux_mm.damon learned state: " % path)
    assert words in str(e.value)


def test_a_directory_others_may_write_is_refused(tmp_path):
    d = tmp_path / "open"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    with pytest.raises(RecordError, match="learned_file .* is writable by group or others"):
        ls.LearnedState.load(str(d / "learned.json"))


def test_the_default_is_beside_the_ownership_record():
    assert ls.default_path("/run/linux_mm_damon/ownership.json") == "/run/linux_mm_damon/learned.json"


def test_what_a_decision_led_to_is_kept_when_it_moves_by_a_huge_page(path):
    state = ls.LearnedState.load(path)
    state.remember("db", 3000, (5000, 100000), "damos_collapse", dict(SEEN, huge_bytes_hot=0), now=1.0)
    state.dirty = False
    assert not state.remember("db", 3000, (5000, 100000), "damos_collapse", dict(SEEN, huge_bytes_hot=1 << 20),
                              now=2.0) and not state.dirty  # less than a huge page: nothing to write
    assert state.remember("db", 3000, (5000, 100000), "damos_collapse", SEEN, now=3.0)  # the kernel collapsed
    [decision] = state.recall("db")["decisions"]
    assert (decision["at"], decision["seen_at"], decision["huge_bytes_hot"]) == (1.0, 3.0, 2 << 20)
    state.save()
    jsonschema.validate(json.loads(open(path).read()), SCHEMA)
