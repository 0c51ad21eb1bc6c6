# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/ground_truth.py: chunks classified from idle-page windows, coverage and bloat from huge-page maps,
and the workloads section's summary (time-weighted coverage as a share of the oracle's)."""

from __future__ import annotations

import math

import pytest

from bench import ground_truth as gt
from bench import workloads

T0 = 1000.0


def window(t, acc, res=(512, 512, 512, 32)):
    return {"t": t, "res": list(res), "acc": list(acc), "huge": "0000"}


def calibration_rows(n=20):
    # chunk 0 accessed (>= 1/8 of its pages) in every window, chunk 1 in every other, chunk 2 never
    # (a few pages, below 1/8), chunk 3 (sparse, 32 resident pages) in none
    return [window(T0 + gt.SETTLE_S + i, (400, 100 if i % 2 else 10, 5, 0)) for i in range(n)]


def test_classify_by_share_of_windows_accessed():
    bounds = gt.phase_bounds({"t0": T0}, None, T0 + gt.SETTLE_S + 20)
    rows = [window(T0 + 1, (0, 0, 0, 0))] + calibration_rows()  # the settling window is left out
    (cls,) = gt.classify(rows, bounds)
    assert cls["windows"] == 20
    assert cls["share"] == [1.0, 0.5, 0.0, 0.0]
    assert (cls["hot"], cls["warm"], cls["cold"]) == ([0, 1], [], [2, 3])
    assert cls["res"] == [512, 512, 512, 32]
    assert cls["level"] == [0.7812, pytest.approx((100 + 10) / 2 / 512, abs=1e-4), 0.0098, 0.0]
    assert gt.rank_agreement([cls], [[1, 0, 3, 2]]) == [1.0]
    assert gt.rank_agreement([cls], [[0, 2, 1, 3]]) == [0.5]


def test_two_phases_are_classified_apart():
    bounds = gt.phase_bounds({"t0": T0}, T0 + 30, T0 + 60)
    rows = ([window(T0 + 6 + i, (400, 0, 0, 0)) for i in range(20)]
            + [window(T0 + 36 + i, (0, 0, 400, 0)) for i in range(20)])
    first, second = gt.classify(rows, bounds)
    assert first["hot"] == [0] and second["hot"] == [2]


def run_rows(huge_by_second):
    return [{"t": T0 + i, "res": [512, 512, 512, 512], "huge": h} for i, h in enumerate(huge_by_second)]


def test_metrics_coverage_t90_bloat_and_calls():
    calib = gt.phase_bounds({"t0": T0}, None, T0 + gt.SETTLE_S + 4)
    (cls,) = gt.classify([window(T0 + gt.SETTLE_S + i, (400, 100, 5, 0)) for i in range(4)], calib)
    bounds = gt.phase_bounds({"t0": T0}, None, T0 + 4)  # the configuration run's own clock
    samples = gt.series(run_rows(["0000", "1000", "1101", "1101"]), [cls], bounds)
    assert [s["hot_coverage"] for s in samples] == [0.0, 0.5, 1.0, 1.0]
    levels = cls["level"]  # writes land in huge pages in proportion to the huge chunks' levels
    assert samples[1]["access_coverage"] == levels[0] / sum(levels) and samples[0]["access_coverage"] == 0.0
    m = gt.metrics(samples, [cls], bounds, call_times=(T0 + 0.5, T0 + 1.5, T0 + 3.5))
    assert m["hot_coverage_end"] == 1.0 and m["hot_coverage_mean"] == 0.625
    assert m["access_coverage_end"] == round((levels[0] + levels[1] + levels[3]) / sum(levels), 3)
    assert m["t90_s"] == 2.0 and m["calls_to_90"] == 2 and m["calls"] == 3
    assert m["cold_huge_bytes"] == gt.CHUNK and m["cold_huge_share"] == 0.5
    assert m["cold_zero_filled_bytes"] == (512 - 32) * 4096  # chunk 3 had 32 resident pages
    # bloat: what the collapse added, against the cold chunks' resident memory (512 + 32 pages)
    assert m["cold_bloat_share"] == round(480 / 544, 4)


def test_a_fully_resident_cold_chunk_made_huge_is_no_bloat():
    (cls,) = gt.classify([window(T0 + gt.SETTLE_S + i, (400, 100, 5, 0)) for i in range(4)],
                         gt.phase_bounds({"t0": T0}, None, T0 + gt.SETTLE_S + 4))
    bounds = gt.phase_bounds({"t0": T0}, None, T0 + 2)
    m = gt.metrics(gt.series(run_rows(["1010", "1010"]), [cls], bounds), [cls], bounds)
    assert m["cold_huge_share"] == 0.5 and m["cold_zero_filled_bytes"] == 0 and m["cold_bloat_share"] == 0.0


def test_never_reaching_90_percent_has_no_t90():
    (cls,) = gt.classify([window(T0 + gt.SETTLE_S, (400, 100, 5, 0))],
                         gt.phase_bounds({"t0": T0}, None, T0 + gt.SETTLE_S + 1))
    bounds = gt.phase_bounds({"t0": T0}, None, T0 + 3)
    m = gt.metrics(gt.series(run_rows(["1000"] * 3), [cls], bounds), [cls], bounds)
    assert m["t90_s"] is None and m["calls_to_90"] is None and m["cold_bloat_share"] == 0.0


def test_summary_divides_by_the_oracle_of_the_same_repetition():
    def run(config, rep, mean):
        return {"config": config, "rep": rep, "metrics": {"hot_coverage_mean": mean, "hot_coverage_end": 1.0,
                                                          "cold_bloat_share": 0.0, "t90_s": 10.0}}
    raw = {"release": "7.3.4+deb13-amd64", "kernel": "bench-7.3", "workloads": {"graded": {"runs": [
        run("oracle", 0, 0.9), run("ours", 0, 0.45), run("oracle", 1, 0.8), run("ours", 1, 0.8)]}}}
    rows = {r["config"]: r for r in workloads.summarize(raw)}
    ours = rows["ours"]
    assert [p["hot_coverage_time_weighted"] for p in ours["runs"]] == [0.5, 1.0]
    assert ours["median"]["hot_coverage_time_weighted"] == pytest.approx(0.75)
    assert ours["median"]["hot_coverage_time_weighted_range"] == [0.5, 1.0]
    assert ours["kernel"] == "7.3.4+deb13-amd64" and ours["workload"] == "graded"
    assert "| graded | 7.3.4+deb13-amd64 | ours | 2 |" in workloads.markdown(list(rows.values()))


@pytest.mark.parametrize("level", [k for k in workloads.LEVELS if k < workloads.DEFAULT_SAMPLES])
def test_a_level_workload_runs_at_the_rate_default_sampling_sees_at_that_level(level):
    """Poisson accesses: at the workload's rate a hot page's accessed bit is set at level/20 of the 5 ms samples."""
    rate = workloads.level_rate(level)
    per_page = rate / (workloads.LEVEL_HOT_MB * 256)
    assert 20 * (1 - math.exp(-per_page * 0.005)) == pytest.approx(level, abs=0.01)
    assert workloads.sampled_level(rate) == pytest.approx(level, abs=0.01)
    assert "--rate %d" % rate in workloads.WORKLOADS["level-%d" % level]["procs"][0]


def test_calls_to_90_against_hotness_put_ours_beside_the_stepdown():
    def run(config, calls, rate):
        return {"config": config, "rep": 0, "metrics": {"hot_coverage_mean": 0.5, "hot_coverage_end": 1.0,
                                                        "cold_bloat_share": 0.0, "t90_s": calls and 30.0 * calls,
                                                        "calls_to_90": calls, "access_rate": rate}}
    rate = workloads.level_rate(4)
    raw = {"release": "7.3.4+deb13-amd64", "kernel": "bench-7.3", "workloads": {"level-4": {"runs": [
        run("ours", 3, rate), run("rfc-stepdown", None, rate * 0.5)]}}}
    text = workloads.levels_markdown(workloads.summarize(raw))
    achieved = "%.1f" % workloads.sampled_level(rate * 0.75)  # the median of the two runs' rates
    assert "| 7.3.4+deb13-amd64 | 4 | %s | 1.00 | 90 | 3 | 1.00 | — | — |" % achieved in text, text
    assert workloads.levels_markdown([]) == ""


def test_budget_use_compares_with_the_hottest_chunks():
    cls = {"level": [0.9, 0.1, 0.5, 0.0], "hot": [0, 2]}
    assert gt.budget_use("1010", cls) == {"budget_precision": 1.0, "huge_level_mean": 0.7, "hot_left_level_mean": None}
    assert gt.budget_use("0110", cls) == {"budget_precision": 0.5, "huge_level_mean": 0.3, "hot_left_level_mean": 0.9}
    assert gt.budget_use("0000", cls)["budget_precision"] is None


def test_processes_are_merged_side_by_side_per_second():
    a = [{"t": 100.2, "res": [1], "huge": "1", "cpu_s": 0.1}, {"t": 101.2, "res": [2], "huge": "0", "cpu_s": 0.2}]
    b = [{"t": 100.5, "res": [7, 8], "huge": "01", "cpu_s": 0.1}]
    (row,) = workloads._merge([a, b], 100.0)  # second 1 lacks process b: left out
    assert row["res"] == [1, 7, 8] and row["huge"] == "101" and row["t"] == 100.2


def test_a_last_sample_after_the_workload_exited_is_left_out():
    (cls,) = gt.classify([window(T0 + gt.SETTLE_S + i, (400, 100, 5, 0)) for i in range(4)],
                         gt.phase_bounds({"t0": T0}, None, T0 + gt.SETTLE_S + 4))
    bounds = gt.phase_bounds({"t0": T0}, None, T0 + 3)
    m = gt.metrics(gt.series(run_rows(["1000", "1000", "0000"]), [cls], bounds), [cls], bounds)
    assert m["hot_coverage_end"] == 0.5  # the process ended: every huge page went at once
    never = gt.metrics(gt.series(run_rows(["0000", "0000"]), [cls], bounds), [cls], bounds)
    assert never["hot_coverage_end"] == 0.0
