# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a person reads of a run, on the emulator: hugepage_tune's progress line per iteration at default
verbosity, and playbooks/report.yml's history and HTML page (with plots, without matplotlib, in check mode)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
TUNE_TASK = "linux_mm.damon.hugepage : Tune the hotness threshold of each application"
PROGRESS = re.compile(r"^hugepage_tune \[localhost\] iteration (\d+)/\d+ \([\d.]+ s\): hotcold threshold [\d.]+ % "
                      r"\(\d+ of \d+ samples\), hot \d+ MiB, huge (\d+|\?) MiB in hot / (\d+|\?) MiB in cold chunks: "
                      r"\S.*$", re.M)


def _schema(name):
    return json.loads((REPO / "docs" / "schemas" / name).read_text())


def _images(page):
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_progress_lines_history_and_html_report(run_playbook, tmp_path):
    with HotCold() as w, EmulatedSysfs(kernel="6.12", scenario={"speed": 20, "targets": [{"pid": w.pid, "regions": [
            {"start": w.hot[0], "end": w.hot[1], "rate": 0.5},
            {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}]}) as emu:
        extra = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.12.117",
                     hugepage_ownership_file=str(tmp_path / "own.json"), hugepage_interval_s=0.5,
                     hugepage_learned_file=str(tmp_path / "learned.json"),
                     hugepage_apps=[{"name": "hotcold", "pid": w.pid}], report_dir=str(tmp_path),
                     report_interval_s=0.2, ansible_become=False)
        applied = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
        assert applied.rc == 0, applied.explain()

        # one progress line per iteration, printed while the task runs (before its result), at default verbosity
        tuned = applied[TUNE_TASK]
        lines = re.findall(r"^hugepage_tune \[localhost\] iteration (\d+)/.*$", applied.stdout, re.M)
        assert [int(n) for n in lines] == list(range(1, tuned["iterations"] + 1)), applied.stdout
        assert PROGRESS.search(applied.stdout), applied.stdout
        task_output = applied.stdout.split("TASK [%s]" % TUNE_TASK, 1)[1]
        assert task_output.index("iteration 1/") < task_output.index(": [localhost]")
        assert tuned["converged"] and [m.group(0) for m in PROGRESS.finditer(applied.stdout)][-1].endswith(
            ": converged")

        history_file = tmp_path / "history" / "localhost.jsonl"
        records = [json.loads(line) for line in history_file.read_text().splitlines()]
        assert len(records) == 1
        jsonschema.validate(records[0], _schema("hugepage-history.schema.json"))
        report = json.loads((tmp_path / "hugepage-report.json").read_text())
        jsonschema.validate(report, _schema("hugepage-report.schema.json"))
        row, app = report["rows"][0], records[0]["apps"][0]
        assert (app["name"], app["pid"], app["threshold"], app["hot_bytes"]) == (
            row["app"], row["pid"], row["threshold"], row["hot_bytes"])

        page = (tmp_path / "hugepage-report.html").read_text()
        assert len(_images(page)) == 2  # the fleet and the one host
        assert all(img.startswith(b"\x89PNG") for img in _images(page))
        assert "HTML report: %s/hugepage-report.html (with plots" % tmp_path in applied.stdout

        # a second report run adds a line; the page has no external reference
        again = run_playbook(REPO / "playbooks" / "report.yml", extra_vars=extra)
        assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.explain()
        assert len(history_file.read_text().splitlines()) == 2
        page = (tmp_path / "hugepage-report.html").read_text()
        assert re.findall(r'(?:src|href)="(?!data:image/png;base64,)', page) == []

        # check mode writes nothing: not the history, not the page
        before = (history_file.read_text(), (tmp_path / "hugepage-report.html").read_text())
        checked = run_playbook(REPO / "playbooks" / "report.yml", extra_vars=extra, check=True)
        assert checked.rc == 0, checked.explain()
        assert (history_file.read_text(), (tmp_path / "hugepage-report.html").read_text()) == before

        # without matplotlib on the controller: the tables only, and the page and the run say why
        stub = tmp_path / "no-matplotlib"
        (stub / "matplotlib").mkdir(parents=True)
        (stub / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib (test stub)')\n")
        bare = run_playbook(REPO / "playbooks" / "report.yml", extra_vars=dict(extra, report_history_max_records=2),
                            env={"PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])})
        assert bare.rc == 0, bare.explain()
        page = (tmp_path / "hugepage-report.html").read_text()
        assert _images(page) == [] and "No plots: matplotlib cannot be imported on the controller" in page
        assert "tables only" in bare.stdout and "matplotlib cannot be imported" in bare.stdout
        assert "<h2>Fleet summary</h2>" in page and 'id="host-localhost"' in page
        lines = history_file.read_text().splitlines()
        assert len(lines) == 2 and lines[0] == before[0].splitlines()[1]  # bounded: the oldest was dropped
