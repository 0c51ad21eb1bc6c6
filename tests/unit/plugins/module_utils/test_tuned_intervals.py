# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""With an intervals goal the kernel owns sample_us/aggr_us: plans and digests ignore their tuned values."""

from __future__ import annotations

import copy
import os

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import from_table
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import KDAMOND, to_tree
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import digest, plan

K73 = from_table("7.3.0")
GOAL = {"access_bp": 400, "aggrs": 3, "min_sample_us": 5000, "max_sample_us": 10000000}
SAMPLE = "monitoring_attrs/intervals/sample_us"


def tree(attrs):
    ctx = {"targets": [{"pid": os.getpid()}], "monitoring_attrs": attrs, "schemes": [{"action": "stat"}]}
    return to_tree(KDAMOND, {"contexts": [ctx]}, K73)


def tuned(t, sample_us, aggr_us):
    live = copy.deepcopy(t)
    ctx = live.lists["contexts/nr_contexts"][1][0]
    ctx.files[SAMPLE] = str(sample_us)
    ctx.files["monitoring_attrs/intervals/aggr_us"] = str(aggr_us)
    return live


def test_tuned_intervals_plan_no_write_and_keep_the_digest():
    desired = tree({"sample_us": 5000, "aggr_us": 100000, "intervals_goal": GOAL})
    live = tuned(desired, 280000, 5600000)  # what update_tuned_intervals shows after 30 s on redis
    assert plan(live, desired, "/k") == []
    assert digest(live) == digest(desired)


def test_without_a_goal_intervals_are_plain_values():
    desired = tree({"sample_us": 5000, "aggr_us": 100000})
    live = tuned(desired, 280000, 5600000)
    assert plan(live, desired, "/k") == [("/k/contexts/0/" + SAMPLE, "5000"),
                                         ("/k/contexts/0/monitoring_attrs/intervals/aggr_us", "100000")]
    assert digest(live) != digest(desired)


def test_a_goal_change_is_still_written():
    desired = tree({"sample_us": 5000, "aggr_us": 100000, "intervals_goal": dict(GOAL, access_bp=800)})
    live = tuned(tree({"sample_us": 5000, "aggr_us": 100000, "intervals_goal": GOAL}), 280000, 5600000)
    assert plan(live, desired, "/k") == [
        ("/k/contexts/0/monitoring_attrs/intervals/intervals_goal/access_bp", "800")]
