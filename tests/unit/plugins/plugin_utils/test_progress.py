# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-iteration progress line of hugepage_tune (plugin_utils/_progress.py) and the loop's callback."""

from __future__ import annotations

import pytest

from ansible_collections.linux_mm.damon.plugins.plugin_utils._progress import (
    decision_text, iteration_line, threshold_text,
)
from ansible_collections.linux_mm.damon.plugins.plugin_utils._tune_loop import run_loop

MIB = 1 << 20


def observed(threshold=9, nxt=9, status="converged", reason="settled", hot=66 * MIB, huge_hot=64 * MIB, cold=0):
    return {"threshold": threshold, "next_threshold": nxt, "max_nr_accesses": 20, "hot_bytes": hot,
            "huge_bytes_hot": huge_hot, "huge_bytes_cold": cold, "status": status, "reason": reason}


def test_the_line_names_iteration_app_threshold_sizes_and_decision():
    line = iteration_line({"iteration": 1, "elapsed_s": 3.14, "apps": {"hotcold": observed()}}, "web1", 10)
    assert line == ("hugepage_tune [web1] iteration 2/10 (3.1 s): hotcold threshold 45 % (9 of 20 samples), hot 66 MiB, "
                    "huge 64 MiB in hot / 0 MiB in cold chunks: converged")
    assert "\n" not in line


def test_one_line_for_several_applications_in_name_order():
    line = iteration_line({"iteration": 0, "apps": {"web": observed(), "db": observed(
        threshold=4, nxt=6, status="pending", reason="raise", huge_hot=None)}})
    assert line.startswith("hugepage_tune iteration 1: db threshold 20 % (4 of 20 samples)")
    assert "huge ? MiB in hot" in line and "next threshold 30 % (6 of 20 samples); web threshold 45 %" in line


@pytest.mark.parametrize("app, text", [
    (observed(status="nothing_hot"), "nothing hot"),
    (observed(status="pending", reason="no hot chunk; widen the intervals 5 ms/100 ms -> 20 ms/400 ms"),
     "widen the intervals"),
    (observed(status="pending", reason="x; the kernel is still tuning the intervals (now 5 ms/100 ms): wait"),
     "wait for the kernel's intervals"),
    (observed(status="pending", reason="still collapsing"), "keep the threshold (pending)"),
    (observed(status="pending", nxt=21), "next threshold none (21 of 20 samples: collapse nothing)"),
])
def test_decisions_in_a_few_words(app, text):
    assert decision_text(app) == text


@pytest.mark.parametrize("entry, text", [
    ({"exited": True}, "db exited (its kdamond was removed)"),
    ({"blocked": "prctl"}, "db blocked (prctl): not tuned"),
    ({"threshold": 9, "observed": False}, "db threshold 9: not observed yet (its kdamond has no statistics yet)"),
])
def test_applications_that_were_not_observed(entry, text):
    assert iteration_line({"iteration": 0, "apps": {"db": entry}}).endswith(": " + text)


def test_threshold_without_samples_per_interval():
    assert threshold_text(3, None) == "3 samples" and threshold_text(None, 20) == "unchanged"
    assert threshold_text(1, 3) == "33.3 % (1 of 3 samples)"


def test_the_loop_calls_back_with_each_trace_entry_as_it_is_built():
    calls, seen = [], []

    def step(args):
        calls.append(args)
        app = args["apps"][0]
        return {"changed": True, "path": "damos_collapse", "apps": [{
            "name": app["name"], "pid": app["pid"], "threshold": 9, "max_nr_accesses": 20,
            "histogram": [[0, 64 * MIB], [12, 32 * MIB]], "hot_bytes": 32 * MIB, "huge_bytes_hot": 32 * MIB,
            "scheme_stats": {"nr_applied": 16, "sz_applied": 32 * MIB}, "huge_bytes": 32 * MIB, "huge_bytes_cold": 0}]}

    def on_iteration(entry):
        seen.append((len(calls), entry))

    out = run_loop(step, [{"name": "db", "pid": 42}], "adaptive", {}, 10, 60, on_iteration=on_iteration)
    assert [entry for unused, entry in seen] == out["trace"]
    assert [n for n, unused in seen] == list(range(1, out["iterations"] + 1))  # right after each step call
    assert "db threshold 45 % (9 of 20 samples), hot 32 MiB, huge 32 MiB in hot / 0 MiB in cold" in iteration_line(
        seen[0][1])
