# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/README.md promises that `make bench BENCH_ARGS='--only report'` rebuilds the committed figures
from the committed raw data: the report, pointed at a temporary directory, gives the same latest.json."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"


def test_report_rebuilds_the_committed_figures_from_raw(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)  # reads results/raw/, writes here only
    with contextlib.redirect_stdout(io.StringIO()):
        report.build()
    committed = json.loads((RESULTS / "latest.json").read_text())
    rebuilt = json.loads((tmp_path / "latest.json").read_text())
    for data in (committed, rebuilt):
        del data["machine"]["host_kernel"], data["machine"]["cpus"]  # the machine the report runs on
    assert rebuilt == committed

    # Every table row of latest.md is rebuilt too (the header line names the machine and the time).
    def rows(text):
        return [re.sub(r"\| -0\.0 \|", "| 0.0 |", line) for line in text.splitlines() if line.startswith("|")]
    assert rows((tmp_path / "latest.md").read_text()) == rows((RESULTS / "latest.md").read_text())


def test_every_measure_again_command_names_a_real_section():
    text = (REPO / "bench" / "README.md").read_text()
    section = text[text.index("## Where each figure comes from"):]
    from bench.__main__ import SECTIONS  # pylint: disable=import-outside-toplevel
    named = set(re.findall(r"--only (\w+)", section))
    assert named and named <= set(SECTIONS), named
