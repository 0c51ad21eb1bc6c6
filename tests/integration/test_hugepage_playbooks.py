# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/hugepage.yml, report.yml and stop.yml with the hugepage role, on the emulator."""

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

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


TUNE_TASK = "linux_mm.damon.hugepage : Tune the hotness threshold of each application"
PROGRESS = re.compile(r"^hugepage_tune \[localhost\] iteration (\d+)/\d+ \([\d.]+ s\): hotcold threshold [\d.]+ % "
                      r"\(\d+ of \d+ samples\), hot \d+ MiB, huge (\d+|\?) MiB in hot / (\d+|\?) MiB in cold chunks: "
                      r"\S.*$", re.M)


def _schema(name):
    return json.loads((REPO / "docs" / "schemas" / name).read_text())


def _images(page):
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_apply_report_rerun_and_stop(run_playbook, tmp_path):
    """hugepage.yml tunes and reports; what a person reads of the run: hugepage_tune's progress line per
    iteration at default verbosity, report.yml's history and HTML page (with plots, without matplotlib, in check
    mode); a second hugepage.yml run changes nothing; stop.yml removes the kdamonds. (The progress, history and
    HTML checks were test_report_playbook.py, which ran the same first hugepage.yml run again: 7 s of CPU.)

    The workload is idle: the emulator's access model, not its accesses, decides what DAMON sees."""
    with HotCold(idle=True) as w, EmulatedSysfs(kernel="6.12", scenario={"speed": 20, "targets": [
            {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.5},
                                       {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}]}) as emu:
        extra = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.12.117",
                     hugepage_ownership_file=str(tmp_path / "own.json"), hugepage_interval_s=0.5,
                     hugepage_learned_file=str(tmp_path / "learned.json"),
                     hugepage_apps=[{"name": "hotcold", "pid": w.pid}], report_dir=str(tmp_path), report_interval_s=0.2,
                     ansible_become=False)
        applied = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
        assert applied.rc == 0, applied.explain()
        tuned = applied[TUNE_TASK]
        assert tuned["converged"] and tuned["changed"] and tuned["stopped"] == "converged"

        # one progress line per iteration, printed while the task runs (before its result), at default verbosity
        lines = re.findall(r"^hugepage_tune \[localhost\] iteration (\d+)/.*$", applied.stdout, re.M)
        assert [int(n) for n in lines] == list(range(1, tuned["iterations"] + 1)), applied.stdout
        assert PROGRESS.search(applied.stdout), applied.stdout
        task_output = applied.stdout.split("TASK [%s]" % TUNE_TASK, 1)[1]
        assert task_output.index("iteration 1/") < task_output.index(": [localhost]")
        assert [m.group(0) for m in PROGRESS.finditer(applied.stdout)][-1].endswith(": converged")

        report = json.loads((tmp_path / "hugepage-report.json").read_text())
        jsonschema.validate(report, _schema("hugepage-report.schema.json"))
        row = report["rows"][0]
        assert (row["host"], row["app"], row["path"]) == ("localhost", "hotcold", "user_collapse")
        assert row["hot_coverage"] == 1.0 and row["huge_bytes_cold"] == 0  # real pages of the workload
        assert "hotcold" in applied.stdout and "100%" in applied.stdout  # the table

        history_file = tmp_path / "history" / "localhost.jsonl"
        records = [json.loads(line) for line in history_file.read_text().splitlines()]
        assert len(records) == 1
        jsonschema.validate(records[0], _schema("hugepage-history.schema.json"))
        app = records[0]["apps"][0]
        assert (app["name"], app["pid"], app["threshold"], app["hot_bytes"]) == (
            row["app"], row["pid"], row["threshold"], row["hot_bytes"])

        page = (tmp_path / "hugepage-report.html").read_text()
        assert len(_images(page)) == 2  # the fleet and the one host
        assert all(img.startswith(b"\x89PNG") for img in _images(page))
        assert "HTML report: %s/hugepage-report.html (with plots" % tmp_path in applied.stdout

        # a second report run adds a line; the page has no external reference
        reported = run_playbook(REPO / "playbooks" / "report.yml", extra_vars=extra)
        assert reported.rc == 0 and reported.stats["localhost"]["changed"] == 0, reported.explain()
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

        # a converged host is left as it is
        again = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=dict(extra, report_plots=False))
        assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.explain()

        stopped = run_playbook(REPO / "playbooks" / "stop.yml", extra_vars=extra)
        assert stopped.rc == 0, stopped.explain()
        assert emu.status()["kdamonds"] == [] or all(k["state"] == "off" for k in emu.status()["kdamonds"])


def test_a_kernel_without_damon_fails_clearly(run_playbook, tmp_path):
    with EmulatedSysfs(kernel="6.1") as emu:
        run = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=dict(
            hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.1.0", hugepage_apps=[{"name": "x", "pid": 1}],
            hugepage_ownership_file=str(tmp_path / "own.json"), hugepage_learned_file=str(tmp_path / "learned.json"),
            report_dir=str(tmp_path), ansible_become=False))
        assert run.rc != 0
        assert "no DAMON sysfs interface" in run["linux_mm.damon.hugepage : Stop when the kernel has no DAMON"]["msg"]
        assert "Traceback" not in run.stdout


def test_no_matched_application_says_which_filter_left_what_out(run_playbook, tmp_path):
    with HotCold(hot_mb=8, cold_mb=8, idle=True) as w, EmulatedSysfs(kernel="7.3") as emu:
        run = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=dict(
            hugepage_sysfs_root=emu.root, hugepage_kernel_release="7.3.4", hugepage_detect_name_pattern="^hotcold",
            # only this test's workload: other test processes run hotcold workloads at the same time
            hugepage_detect_cmdline_pattern=re.escape(w.out),
            hugepage_detect_window_s=0.2, hugepage_ownership_file=str(tmp_path / "own.json"),
            hugepage_learned_file=str(tmp_path / "learned.json"),
            report_dir=str(tmp_path), report_interval_s=0.2, ansible_become=False))
        assert run.rc == 0, run.explain()
        why = run["linux_mm.damon.hugepage : Say why no application was detected"]["msg"]
        assert "no application matched the detection filters" in why
        assert "(pid %d): anon RSS" % w.pid in why and "(below the minimum)" in why, why  # < the 64 MiB minimum
        outcome = run["linux_mm.damon.hugepage : Show the outcome of the feedback loop"]["msg"]
        assert "stopped: no_apps" in outcome and "converged" not in outcome, outcome


def test_stop_restores_the_thp_settings_start_changed(run_playbook, tmp_path):
    """hugepage_thp in start records the old values on the host; stop writes them back (issue 8, item 8)."""
    with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "thp": {"enabled": "madvise"}}) as emu:
        base = Path(emu.root) / "kernel/mm/transparent_hugepage"
        extra = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="7.3.4",
                     hugepage_ownership_file=str(tmp_path / "rec" / "own.json"), hugepage_apps=[],
                     hugepage_learned_file=str(tmp_path / "rec" / "learned.json"),
                     hugepage_detect_name_pattern="^no-such-process$", hugepage_detect_window_s=0.1,
                     hugepage_thp={"enabled": "always", "khugepaged": {"pages_to_scan": 8}},
                     report_dir=str(tmp_path), ansible_become=False)
        started = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
        assert started.rc == 0, started.explain()
        assert "[always]" in (base / "enabled").read_text() and (base / "khugepaged/pages_to_scan").read_text().strip() == "8"
        stopped = run_playbook(REPO / "playbooks" / "stop.yml", extra_vars=extra)
        assert stopped.rc == 0, stopped.explain()
        assert "[madvise]" in (base / "enabled").read_text()
        assert (base / "khugepaged/pages_to_scan").read_text().strip() == "4096"
        again = run_playbook(REPO / "playbooks" / "stop.yml", extra_vars=extra)
        assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.explain()
