# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/plugin_utils/_rollout.py: the health checks and the gate of playbooks/rollout.yml."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.linux_mm.damon.plugins.filter.rollout_gate import rollout_gate
from ansible_collections.linux_mm.damon.plugins.filter.rollout_health import rollout_health
from ansible_collections.linux_mm.damon.plugins.plugin_utils._rollout import RolloutError, gate, health

REPO = Path(__file__).resolve().parents[4]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "rollout-record.schema.json").read_text())
MIB = 1 << 20


def app(name="db", hot=8 * MIB, huge_hot=8 * MIB, huge_cold=0, exited=False, threshold=6):
    return {"name": name, "pid": 1234, "exited": exited, "threshold": threshold, "max_nr_accesses": 20,
            "hot_bytes": hot, "huge_bytes_hot": huge_hot, "huge_bytes_cold": huge_cold}


def observed(*apps):
    return {"apps": list(apps)}


def tuned(**status):
    return {"status": status}


def previous_of(obs, tun):
    """The record a passed gate would write after a run that observed ``obs``, as the next run reads it."""
    return rollout_health(obs, tun, host="h1", recorded_at="2026-11-27T10:00:00Z")["record"]


def run(obs, tun=None, previous=None, **limits):
    return health(obs, tun, previous, **limits)


def checks(result):
    return [(p["check"], p["app"]) for p in result["problems"]]


def test_figures_sum_the_observed_applications_and_leave_out_exited_ones():
    result = run(observed(app("db", 8 * MIB, 6 * MIB, MIB), app("cache", 8 * MIB, 8 * MIB, 0),
                          app("gone", exited=True)), tuned(db="converged", cache="converged", gone="exited"))
    fig = result["figures"]
    assert (fig["hot_bytes"], fig["huge_bytes_hot"], fig["huge_bytes_cold"]) == (16 * MIB, 14 * MIB, MIB)
    assert fig["hot_coverage"] == 14 / 16 and sorted(fig["apps"]) == ["cache", "db"]
    assert fig["apps"]["db"]["hot_coverage"] == 0.75 and fig["apps"]["db"]["status"] == "converged"
    assert result["healthy"] and result["problems"] == []
    assert result["summary"].startswith("hot coverage 0.875 of 16.0 MiB hot, 1.0 MiB huge in cold chunks (cache: "
                                        "threshold 6/20, coverage 1.000, 0.0 MiB huge in cold, converged; db:")


def test_cold_bloat_above_the_limit_names_the_numbers_and_the_applications():
    obs = observed(app("db", huge_cold=3 * MIB), app("cache", huge_cold=2 * MIB))
    assert run(obs, max_cold_huge_bytes=5 * MIB)["healthy"]  # at the limit is fine
    result = run(obs, max_cold_huge_bytes=4 * MIB)
    [problem] = result["problems"]
    assert problem["check"] == "cold_bloat" and (problem["value"], problem["limit"]) == (5 * MIB, 4 * MIB)
    assert problem["msg"] == ("5.0 MiB in huge pages in cold chunks (cache 2.0 MiB, db 3.0 MiB) > "
                              "rollout_max_cold_huge_bytes 4.0 MiB")
    assert run(obs, max_cold_huge_bytes=None)["healthy"]  # no limit


def test_coverage_within_the_tolerance_is_no_regression_beyond_it_is():
    record = previous_of(observed(app(hot=10 * MIB, huge_hot=10 * MIB)), tuned(db="converged"))
    jsonschema.validate(record, SCHEMA)
    # 9.5 of 10 MiB: 0.95, exactly the tolerance below 1.0
    assert run(observed(app(hot=10 * MIB, huge_hot=int(9.5 * MIB))), tuned(db="converged"), record)["healthy"]
    result = run(observed(app(hot=8 * MIB, huge_hot=6 * MIB)), tuned(db="converged"), record, coverage_tolerance=0.05)
    assert checks(result) == [("coverage", None), ("app_coverage", "db")]
    assert result["problems"][0]["msg"] == ("hot coverage 0.750 (6.0 MiB of 8.0 MiB hot in huge pages) < 1.000 "
                                            "(previous run 2026-11-27T10:00:00Z) - tolerance 0.05")
    assert run(observed(app(huge_hot=6 * MIB)), tuned(db="converged"), record, coverage_tolerance=0.25)["healthy"]


def test_an_application_that_no_longer_converges_is_a_regression_only_when_the_loop_ran():
    record = previous_of(observed(app()), tuned(db="converged"))
    now = observed(app())
    result = run(now, tuned(db="pending"), record)
    assert checks(result) == [("app_status", "db")]
    assert result["problems"][0]["msg"] == "db: converged (previous run 2026-11-27T10:00:00Z), now pending"
    assert run(now, None, record)["healthy"]  # check mode: the loop did not run
    assert run(now, tuned(db="converged"), record)["healthy"]
    # an application blocked now is not observed (no kdamond): its status still counts
    assert checks(run(observed(), tuned(db="blocked"), record)) == [("coverage", None), ("app_status", "db")]


def test_nothing_hot_any_more_is_a_regression_of_the_host():
    record = previous_of(observed(app()), tuned(db="converged"))
    result = run(observed(app(hot=0, huge_hot=0)), None, record)
    assert checks(result) == [("coverage", None)]
    assert result["problems"][0]["msg"].startswith("nothing hot is observed in any application now; hot coverage "
                                                   "was 1.000 of 8.0 MiB hot")


def test_applications_only_in_one_run_are_not_compared():
    record = previous_of(observed(app("old"), app("db")), tuned(old="converged", db="converged"))
    result = run(observed(app("db"), app("new", huge_hot=0)), tuned(db="converged", new="converged"), record,
                 coverage_tolerance=0.5)
    assert checks(result) == []  # host coverage 0.5 = 1.0 - 0.5; "new" has no previous figures


def test_unmeasured_huge_pages_are_a_problem_and_records_from_elsewhere_are_refused():
    result = run(observed(app(huge_hot=None, huge_cold=None)), max_cold_huge_bytes=0)
    assert checks(result) == [("unmeasured", "db")] and result["figures"]["huge_bytes_cold"] is None
    with pytest.raises(RolloutError, match="not a linux_mm.damon/rollout-record/1 record"):
        run(observed(app()), None, {"schema": "something/else"})
    with pytest.raises(RolloutError, match="coverage_tolerance must be within 0..1"):
        run(observed(app()), coverage_tolerance=2)


def outcome(problems=(), failure=None):
    return {"failure": failure, "health": None if failure else {"problems": list(problems), "summary": "fine"}}


def test_the_gate_counts_failed_and_unreachable_hosts_against_max_fail_percentage():
    outcomes = {"a": outcome(), "b": outcome(failure="Read DAMON facts: boom"), "c": outcome(), "d": outcome()}
    passed = gate(outcomes, ["a", "b", "c", "d"], 25, [], 2)
    assert passed["passed"] and passed["failed_hosts"] == ["b"] and passed["failed_percentage"] == 25.0
    assert passed["msg"][:3] == ["Rollout gate passed for batch 2: a, b, c, d (4 hosts).", "b: failed: Read DAMON facts: boom",
                                 "failed hosts: 1 of 4 (25 %), rollout_max_fail_percentage 25"]
    failed = gate(outcomes, ["a", "b", "c"], 25, ["e", "f"], 2)  # d became unreachable
    assert not failed["passed"] and failed["failed_hosts"] == ["b", "d"]
    assert "d: failed: unreachable, or failed outside the hugepage role" in failed["msg"]
    assert "failed hosts: 2 of 4 (50 %), rollout_max_fail_percentage 25 -- exceeded" in failed["msg"]
    assert failed["msg"][-1] == "Not rolled out: e, f."
    ended = gate(dict(outcomes, b=outcome(failure="ended by the role")), ["a", "c", "d"], 25, [], 2)  # meta: end_host
    assert ended["passed"] and "b: failed: ended by the role" in ended["msg"]


def test_the_gate_fails_on_any_unhealthy_host_and_when_every_host_failed():
    sick = outcome([{"check": "cold_bloat", "msg": "9.0 MiB ..."}])
    result = gate({"a": outcome(), "b": sick}, ["a", "b"], 100, [], 1)
    assert not result["passed"] and result["unhealthy_hosts"] == ["b"] and "b: cold_bloat: 9.0 MiB ..." in result["msg"]
    everyone = gate({"a": outcome(failure="x")}, ["a"], 100, [], 1)
    assert not everyone["passed"] and "every host of the batch failed" in everyone["msg"][-2]


def test_the_filters_say_what_is_wrong_with_their_input():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="rollout_gate: expected a non-empty dict"):
        rollout_gate({}, [])
    with pytest.raises(AnsibleFilterError, match="rollout_health: the previous rollout record is not"):
        rollout_health(observed(app()), previous=[1, 2])
