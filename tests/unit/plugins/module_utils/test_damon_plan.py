# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner and the layout model on in-memory trees (no filesystem)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import from_table
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import (
    KDAMOND, SpecError, from_tree, to_tree,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import validate_context
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import plan

import os

K612 = from_table("6.12.0")
K73 = from_table("7.3.0")
ME = os.getpid()


def kdamond(ctx, features=K612):
    return to_tree(KDAMOND, {"contexts": [ctx]}, features)


BASE = {"targets": [{"pid": ME}], "schemes": [{"action": "stat", "access_pattern": {"min_size": 2097152}}]}


def test_new_tree_writes_every_file_and_no_zero_counts():
    writes = plan(None, kdamond(BASE), "/k")
    paths = [path for path, unused in writes]
    assert paths[0] == "/k/contexts/nr_contexts"
    assert "/k/contexts/0/schemes/0/access_pattern/sz/max" in paths  # maxima always written
    counts = ("nr_contexts", "nr_targets", "nr_schemes", "nr_regions", "nr_filters", "nr_goals")
    assert not [p for p, v in writes if p.endswith(counts) and v == "0"]
    # nr_* is written before any file of its children
    assert paths.index("/k/contexts/0/schemes/nr_schemes") < paths.index("/k/contexts/0/schemes/0/action")


def test_unchanged_tree_plans_nothing():
    assert plan(kdamond(BASE), kdamond(copy.deepcopy(BASE)), "/k") == []


def test_one_value_change_is_one_write():
    changed = copy.deepcopy(BASE)
    changed["schemes"][0]["access_pattern"]["min_nr_accesses"] = 7
    assert plan(kdamond(BASE), kdamond(changed), "/k") == [
        ("/k/contexts/0/schemes/0/access_pattern/nr_accesses/min", "7")]


def test_count_change_rewrites_the_whole_list():
    more = copy.deepcopy(BASE)
    more["schemes"].append({"action": "pageout"})
    writes = plan(kdamond(BASE), kdamond(more), "/k")
    assert writes[0] == ("/k/contexts/0/schemes/nr_schemes", "2")
    # scheme 0 is recreated by the kernel with zeros, so all of it is written again
    assert ("/k/contexts/0/schemes/0/action", "stat") in writes
    assert ("/k/contexts/0/schemes/1/action", "pageout") in writes
    assert not [path for path, unused in writes if "/targets/" in path]


def test_goal_current_value_is_written_only_when_the_goal_is_new():
    goal = copy.deepcopy(BASE)
    goal["schemes"][0]["quotas"] = {"goals": [{"metric": "user_input", "target_value": 10000, "current_value": 5}]}
    live = kdamond(goal)
    live.lists["contexts/nr_contexts"][1][0].lists["schemes/nr_schemes"][1][0] \
        .lists["quotas/goals/nr_goals"][1][0].files["current_value"] = "4321"
    assert plan(live, kdamond(goal), "/k") == []
    assert ("/k/contexts/0/schemes/0/quotas/goals/0/current_value", "5") in plan(None, kdamond(goal), "/k")


def test_filters_split_into_core_and_ops_from_6_15():
    ctx = copy.deepcopy(BASE)
    ctx["schemes"][0]["filters"] = [{"type": "anon", "matching": True}, {"type": "addr", "addr_start": 0, "addr_end": 4096}]
    new = kdamond(ctx, K73).lists["contexts/nr_contexts"][1][0].lists["schemes/nr_schemes"][1][0]
    assert [len(new.lists[k][1]) for k in ("core_filters/nr_filters", "ops_filters/nr_filters")] == [1, 1]
    old = kdamond(ctx, K612).lists["contexts/nr_contexts"][1][0].lists["schemes/nr_schemes"][1][0]
    assert len(old.lists["filters/nr_filters"][1]) == 2


def test_spec_round_trips_through_the_tree():
    tree = kdamond(BASE, K73)
    spec = from_tree(KDAMOND, tree)["contexts"][0]
    assert spec["schemes"][0]["access_pattern"]["min_size"] == 2097152
    assert plan(tree, kdamond(spec, K73), "/k") == []


def test_feature_the_kernel_lacks_names_the_kernel_that_adds_it():
    ctx = copy.deepcopy(BASE)
    ctx["monitoring_attrs"] = {"intervals_goal": {"access_bp": 400, "aggrs": 3}}
    with pytest.raises(SpecError, match=r"monitoring_attrs\.intervals_goal needs Linux 6\.15; this kernel is 6\.12"):
        kdamond(ctx, K612)
    kdamond(ctx, K73)


@pytest.mark.parametrize("change, message", [
    ({"schemes": [{"action": "collapse"}]}, r"schemes\[0\]\.action: action 'collapse' needs Linux 7\.2.*linux_mm\.damon\.collapse"),
    ({"schemes": [{"action": "explode"}]}, r"'explode' is not a DAMON action"),
    ({"schemes": [{"action": "stat", "access_pattern": {"min_size": 5, "max_size": 1}}]}, r"min_size \(5\) is greater than max_size \(1\)"),
    ({"schemes": [{"action": "stat", "access_pattern": {"min_age": -1}}]},
     r"schemes\[0\]\.access_pattern\.min_age: -1 is out of range for unsigned int \(0\.\.4294967295\)"),
    ({"schemes": [{"action": "stat", "filters": [{"type": "young"}]}]}, None),
    ({"schemes": [{"action": "stat", "filters": [{"type": "unmapped"}]}]}, r"filter type 'unmapped' needs Linux 6\.15"),
    ({"targets": [{"pid": 2 ** 22 + 1}]}, r"targets\[0\]\.pid: 4194305 is not a valid PID \(1\.\.4194303"),
    ({"targets": [{"pid": ME, "regions": [{"start": 0, "end": 8192}, {"start": 4096, "end": 9000}]}]}, r"overlap"),
    ({"operations": "paddr", "targets": [{}]}, r"targets\[0\]\.regions: the paddr operations set needs at least one region"),
    ({"monitoring_attrs": {"sample_us": 200000, "aggr_us": 100000}}, r"sample_us \(200000\) must be at least 1 and not above aggr_us"),
    ({"monitoring_attrs": {"min_nr_regions": 2}}, r"at least 3"),
])
def test_bad_specs_are_refused_with_the_option_and_reason(change, message):
    ctx = dict(copy.deepcopy(BASE), **change)
    if message is None:
        validate_context(ctx, K612, [])
        return
    with pytest.raises(SpecError, match=message):
        validate_context(ctx, K612, [])


def test_unreachable_nr_accesses_threshold_is_a_warning():
    ctx = copy.deepcopy(BASE)
    ctx["schemes"][0]["access_pattern"]["min_nr_accesses"] = 90  # the RFC's start; max is 100000/5000 = 20
    warnings = []
    validate_context(ctx, K612, warnings)
    assert "largest possible nr_accesses, aggr_us/sample_us = 20" in warnings[0]
