# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/hugepage.yml, report.yml and stop.yml with the hugepage role, on the emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def test_apply_report_rerun_and_stop(run_playbook, tmp_path):
    with HotCold() as w, EmulatedSysfs(kernel="6.12", scenario={"speed": 20, "targets": [{"pid": w.pid, "regions": [
            {"start": w.hot[0], "end": w.hot[1], "rate": 0.5},
            {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}]}) as emu:
        extra = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.12.117",
                     hugepage_ownership_file=str(tmp_path / "own.json"), hugepage_interval_s=0.5,
                     hugepage_learned_file=str(tmp_path / "learned.json"),
                     hugepage_apps=[{"name": "hotcold", "pid": w.pid}], report_dir=str(tmp_path), report_interval_s=0.2,
                     report_plots=False,  # plots: test_report_playbook.py (1.5 s of CPU a run)
                     ansible_become=False)
        applied = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
        assert applied.rc == 0, applied.explain()
        tuned = applied["linux_mm.damon.hugepage : Tune the hotness threshold of each application"]
        assert tuned["converged"] and tuned["changed"] and tuned["stopped"] == "converged"

        report = json.loads((tmp_path / "hugepage-report.json").read_text())
        schema = json.loads((REPO / "docs" / "schemas" / "hugepage-report.schema.json").read_text())
        jsonschema.validate(report, schema)
        row = report["rows"][0]
        assert (row["host"], row["app"], row["path"]) == ("localhost", "hotcold", "user_collapse")
        assert row["hot_coverage"] == 1.0 and row["huge_bytes_cold"] == 0  # real pages of the workload
        assert "hotcold" in applied.stdout and "100%" in applied.stdout  # the table

        again = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
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
