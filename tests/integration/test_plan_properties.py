# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property: on the emulated kernel, applying plan(current, desired) yields desired.

For random current and desired kdamond trees: the plan turns the live tree into
the desired one, a second plan is empty, and no plan rewrites an ``nr_*`` file
with the count it already has (which would wipe its children).

Each example costs about half a second of emulator work: ``make test-fast`` tries 10 per
kernel; ``LINUX_MM_DAMON_PLAN_EXAMPLES=25`` (the count before issue 11) or more tries more.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import KDAMOND, to_tree
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import apply, plan, read_kdamond
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import read_text, write_text
from tests.emulator import EmulatedSysfs

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

KERNELS = {"6.12": "6.12.117", "7.3": "7.3.4"}
NR_FILES = ("nr_contexts", "nr_targets", "nr_schemes", "nr_regions", "nr_filters", "nr_goals")

small = st.integers(min_value=0, max_value=2 ** 20)
paths = st.sampled_from(["/a", "/system.slice"])  # clearing a path to "" is impossible through sysfs


def ranges(low, high):
    return st.tuples(low, high).map(sorted)


@st.composite
def access_patterns(draw):
    sz, acc, age = draw(ranges(small, small)), draw(ranges(st.integers(0, 20), st.integers(0, 20))), draw(ranges(small, small))
    return {"min_size": sz[0], "max_size": sz[1], "min_nr_accesses": acc[0], "max_nr_accesses": acc[1],
            "min_age": age[0], "max_age": age[1]}


def when(features, feature, strategy, default):
    """``strategy`` where the kernel has ``feature``, else its default."""
    return strategy if features.has(feature) else st.just(default)


def filters(f):
    return st.fixed_dictionaries({
        "type": st.sampled_from(["anon", "memcg", "addr", "target", "young"]),
        "matching": st.booleans(), "allow": when(f, "filter_allow", st.booleans(), False), "memcg_path": paths,
        "addr_start": st.just(4096), "addr_end": st.just(8192), "target_idx": st.integers(0, 2),
    })


def goals(f):
    return st.fixed_dictionaries({"metric": st.sampled_from(["user_input", "some_mem_psi_us"]),
                                  "target_value": small, "current_value": small,
                                  "path": when(f, "goal_path", paths, "")})


def schemes(f):
    return st.fixed_dictionaries({
        "action": st.sampled_from(["stat", "hugepage", "nohugepage", "cold", "pageout"]),
        "access_pattern": access_patterns(),
        "apply_interval_us": st.sampled_from([0, 1000000]),
        "quotas": st.fixed_dictionaries({
            "ms": small, "bytes": small, "reset_interval_ms": small,
            "weights": st.fixed_dictionaries({"sz_permil": small, "age_permil": small}),
            "goals": st.lists(goals(f), max_size=2),
        }),
        "watermarks": st.fixed_dictionaries({"metric": st.sampled_from(["none", "free_mem_rate"]),
                                             "interval_us": small, "high": st.just(900), "mid": st.just(500),
                                             "low": st.just(100)}),
        "filters": st.lists(filters(f), max_size=3),
    })


regions = st.lists(st.integers(1, 50).map(lambda i: {"start": i * 2 ** 21, "end": i * 2 ** 21 + 4096}),
                   max_size=2, unique_by=lambda r: r["start"])


def contexts(pid, f):
    return st.fixed_dictionaries({
        "operations": st.sampled_from(["vaddr", "fvaddr"]),
        "monitoring_attrs": st.fixed_dictionaries({
            "sample_us": st.sampled_from([5000, 10000]), "aggr_us": st.sampled_from([100000, 200000]),
            "min_nr_regions": st.integers(3, 20), "max_nr_regions": st.integers(100, 2000)}),
        "targets": st.lists(st.fixed_dictionaries({"pid": st.just(pid), "regions": regions}), max_size=2),
        "schemes": st.lists(schemes(f), max_size=3),
    })


def kdamond_specs(pid, f):
    return st.fixed_dictionaries({"refresh_ms": when(f, "refresh_ms", st.sampled_from([0, 1000]), 0),
                                  "contexts": st.lists(contexts(pid, f), max_size=1)})


@pytest.fixture(scope="module", params=sorted(KERNELS))
def emulated(request):
    with EmulatedSysfs(kernel=request.param, scenario={"speed": 0}) as emu:
        write_text(os.path.join(emu.root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds"), "1")
        yield emu, detect(emu.root, KERNELS[request.param])


EXAMPLES = int(os.environ.get("LINUX_MM_DAMON_PLAN_EXAMPLES") or 10)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_plan_reaches_the_desired_tree_and_then_plans_nothing(emulated, data):
    emu, features = emulated
    pid = os.getpid()
    current, desired = (to_tree(KDAMOND, data.draw(kdamond_specs(pid, features)), features) for unused in "cd")
    kd_path = os.path.join(emu.root, "kernel/mm/damon/admin/kdamonds/0")

    apply(plan(read_kdamond(emu.root, 0, features).tree, current, kd_path), [])
    live = read_kdamond(emu.root, 0, features).tree

    for path, value in plan(live, desired, kd_path):
        if path.endswith(NR_FILES):
            assert read_text(path) != value, "rewrote %s with its current count %s" % (path, value)
        write_text(path, value)
    assert plan(read_kdamond(emu.root, 0, features).tree, desired, kd_path) == []
