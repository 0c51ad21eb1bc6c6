# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Access levels of 2 MiB chunks from DAMON regions (what can become a huge page)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.linux_mm.damon.plugins.module_utils._hugepage import (
    _merge, _merge_levels, _minus, chunk_runs, confirmed, hottest_first, threshold_of, with_confirmed,
)
from tests.helpers.pagemap import HUGE

K = 4096
BASE = 0x7F0000000000


def region(start, end, nr):
    return {"start": BASE + start, "end": BASE + end, "nr_accesses": nr}


def test_a_tiny_very_hot_region_leaves_its_chunk_cold():
    runs = chunk_runs([region(0, 4 * K, 20), region(4 * K, 2 * HUGE, 0)], HUGE)
    assert runs == [(BASE, BASE + HUGE, 0), (BASE + HUGE, BASE + 2 * HUGE, 0)]


def test_whole_chunks_take_their_region_level_in_one_run():
    runs = chunk_runs([region(0, 64 * HUGE, 7)], HUGE)
    assert runs == [(BASE, BASE + 64 * HUGE, 7)]


def test_a_shared_chunk_takes_the_highest_level_covering_half_of_it():
    half = HUGE // 2
    runs = chunk_runs([region(0, HUGE + half + K, 9), region(HUGE + half + K, 3 * HUGE, 2)], HUGE)
    assert runs == [(BASE, BASE + HUGE, 9), (BASE + HUGE, BASE + 2 * HUGE, 9), (BASE + 2 * HUGE, BASE + 3 * HUGE, 2)]


def test_thresholds_in_basis_points_become_min_nr_accesses():
    assert threshold_of({"threshold_bp": 1500}, 20) == 3
    assert threshold_of({"threshold_bp": 1501}, 20) == 4
    assert threshold_of({"threshold_bp": 10001}, 20) == 21  # collapse nothing
    assert threshold_of({"threshold": 5, "threshold_bp": 9000}, 20) == 5
    assert threshold_of({}, 20) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3 * 512), st.integers(0, 20)), min_size=1, max_size=30))
def test_chunks_cover_the_regions_aligned_and_disjoint(parts):
    regions, cursor = [], 0
    for pages, nr in parts:
        regions.append(region(cursor, cursor + pages * K, nr))
        cursor += pages * K
    runs = chunk_runs(regions, HUGE)
    assert all(s % HUGE == 0 and e % HUGE == 0 and s < e for s, e, unused in runs)
    assert all(a[1] <= b[0] for a, b in zip(runs, runs[1:]))
    covered = sum(e - s for s, e, unused in runs)
    assert covered == (-(-(BASE + cursor) // HUGE) - BASE // HUGE) * HUGE
    assert len(runs) <= 3 * len(regions)  # work grows with regions, not with bytes


def test_regions_listed_twice_give_disjoint_runs_at_the_lower_level():
    """The 7.3 guest with redis: one update_schemes_tried_regions listed 18 MiB in two overlapping regions,
    and the runs built from them overlapped (the next step refused them as previous_chunk_access)."""
    runs = chunk_runs([region(0, 8 * HUGE, 4), region(6 * HUGE, 10 * HUGE, 9), region(10 * HUGE, 12 * HUGE, 9)], HUGE)
    assert runs == [(BASE, BASE + 8 * HUGE, 4), (BASE + 8 * HUGE, BASE + 12 * HUGE, 9)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 3 * 512), st.integers(0, 20)), min_size=1, max_size=12))
def test_overlapping_regions_give_sorted_disjoint_runs_of_the_chunks_they_touch(parts):
    regions = [region(start * 64 * K, start * 64 * K + pages * K, nr) for start, pages, nr in parts]
    runs = chunk_runs(regions, HUGE)
    assert all(s < e for s, e, unused in runs) and all(a[1] <= b[0] for a, b in zip(runs, runs[1:]))
    alone = [levels_per_chunk(chunk_runs([r], HUGE)) for r in regions]  # each region's own chunk levels
    levels = levels_per_chunk(runs)
    assert set(levels) == set(c for one in alone for c in one)
    for c, level in levels.items():
        assert level <= max(r["nr_accesses"] for r, one in zip(regions, alone) if c in one)


def test_collapse_order_is_hottest_first_so_a_budget_goes_to_the_hottest_chunks():
    regions = [region(0, 2 * HUGE, 5), region(2 * HUGE, 3 * HUGE, 1), region(3 * HUGE, 4 * HUGE, 19),
               region(4 * HUGE, 6 * HUGE, 5)]
    runs = chunk_runs(regions, HUGE)
    assert hottest_first(runs, 5) == [(BASE + 3 * HUGE, BASE + 4 * HUGE), (BASE, BASE + 2 * HUGE),
                                      (BASE + 4 * HUGE, BASE + 6 * HUGE)]
    assert hottest_first(runs, 20) == []


def levels_per_chunk(runs):
    return dict((c, level) for s, e, level in runs for c in range(s, e, HUGE))


@settings(max_examples=200, deadline=None)
@given(*[st.lists(st.tuples(st.integers(1, 3 * 512), st.integers(0, 20)), min_size=1, max_size=20)] * 2)
def test_a_confirmed_chunk_is_in_both_snapshots_at_the_lower_of_its_levels(first, second):
    runs = [snapshot_runs(first), snapshot_runs(second)]
    both = confirmed(*runs)
    snapshots = [levels_per_chunk(r) for r in runs]
    assert levels_per_chunk(both) == dict((c, min(snapshots[0][c], snapshots[1][c]))
                                          for c in set(snapshots[0]) & set(snapshots[1]))


def snapshot_runs(parts):
    """chunk_runs of consecutive regions (pages, nr_accesses) from BASE."""
    regions, cursor = [], 0
    for pages, nr in parts:
        regions.append(region(cursor, cursor + pages * K, nr))
        cursor += pages * K
    return chunk_runs(regions, HUGE)


@settings(max_examples=200, deadline=None)
@given(*[st.lists(st.tuples(st.integers(1, 3 * 512), st.integers(0, 20)), min_size=1, max_size=20)] * 2)
def test_the_access_given_to_the_next_step_carries_both_levels_of_every_chunk(first, second):
    """chunk_access: each chunk of the latest snapshot once, at its level there and, as confirmed_bp, at the
    lower of its two levels (0 where the earlier snapshot did not see it)."""
    earlier, latest = snapshot_runs(first), snapshot_runs(second)
    both = with_confirmed(_merge_levels(latest), confirmed(earlier, latest))
    assert all(s < e for s, e, unused, unused2 in both) and all(a[1] <= b[0] for a, b in zip(both, both[1:]))
    assert all(a[1] < b[0] or a[2:] != b[2:] for a, b in zip(both, both[1:]))  # adjacent equal parts joined
    per_chunk = dict((c, (level, lower)) for s, e, level, lower in both for c in range(s, e, HUGE))
    seen, now = levels_per_chunk(earlier), levels_per_chunk(latest)
    assert per_chunk == dict((c, (level, min(level, seen[c]) if c in seen else 0)) for c, level in now.items())


CELL_RUNS = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 6)))


@settings(max_examples=300, deadline=None)
@given(CELL_RUNS, CELL_RUNS)
def test_minus_leaves_exactly_the_chunks_outside_the_cut(a, b):
    def ranges(pairs):
        return _merge(sorted(set((s, s + 1) for start, n in pairs for s in range(start, start + n))))

    def cells(rs):
        return set(c for s, e in rs for c in range(s, e))

    left = _minus(ranges(a), ranges(b))
    assert cells(left) == cells(ranges(a)) - cells(ranges(b))
    assert all(s < e for s, e in left) and all(x[1] <= y[0] for x, y in zip(left, left[1:]))
