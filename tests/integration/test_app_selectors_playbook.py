# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Applications declared by selector (hugepage_applications) through playbooks/hugepage.yml, on the emulator.

Two hotcold processes are declared by command line. One is restarted between two runs: the second run finds
the new process under the same name, so the application keeps its kdamond slot and the threshold it learned,
retargeted to the new PID, and the other application's kdamond is not written at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
TUNE = "linux_mm.damon.hugepage : Tune the hotness threshold of each application"
NOT_WHOLE = "linux_mm.damon.hugepage : Say which declared applications were not found whole"
SELECTORS = [{"name": "small", "cmdline_pattern": "--hot-mb 8 "},
             {"name": "large", "cmdline_pattern": "--hot-mb 16 "},
             {"name": "absent", "cmdline_pattern": "--no-such-option"}]


def model(w):
    return {"pid": w.pid, "regions": [{"start": w.hot[0], "end": w.hot[1], "rate": 0.5},
                                      {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}


def slots(record):
    return dict((v["name"], int(k)) for k, v in json.loads(Path(record).read_text())["slots"].items())


def kdamond(emu, index):
    return next(k for k in emu.status()["kdamonds"] if k["index"] == index)


def test_a_restarted_application_keeps_its_slot_and_threshold(run_playbook, tmp_path):
    small, large = HotCold(hot_mb=8, cold_mb=16, idle=True).start(), HotCold(hot_mb=16, cold_mb=16, idle=True).start()
    try:
        with EmulatedSysfs(kernel="6.12", scenario={"speed": 20, "targets": [model(small), model(large)]}) as emu:
            record = str(tmp_path / "own.json")
            extra = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.12.117",
                         hugepage_ownership_file=record, hugepage_learned_file=str(tmp_path / "learned.json"),
                         hugepage_interval_s=0.5, hugepage_applications=SELECTORS,
                         report_dir=str(tmp_path), report_interval_s=0.2, ansible_become=False,
                         report_plots=False)  # plots: test_hugepage_playbooks.py (1.5 s of CPU a run)
            first = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
            assert first.rc == 0, first.explain()
            tuned = first[TUNE]
            assert tuned["converged"] and set(tuned["thresholds"]) == {"small", "large"}, tuned
            assert "absent: no process matches its selector; not tuned this run" in first[NOT_WHOLE]["msg"]
            before = slots(record)
            large_kd = kdamond(emu, before["hugepage:large"])
            writes_before = len(emu.writes())

            small.stop()
            small = HotCold(hot_mb=8, cold_mb=16, idle=True).start()
            emu.set_model([model(small), model(large)])
            second = run_playbook(REPO / "playbooks" / "hugepage.yml", extra_vars=extra)
            assert second.rc == 0, second.explain()
            assert slots(record) == before  # same slots, same names
            small_kd = kdamond(emu, before["hugepage:small"])
            assert small_kd["state"] == "on" and [t["pid"] for t in small_kd["targets"]] == [small.pid]
            # the restarted application starts from the threshold it had learned, not from the initial one
            retuned = second[TUNE]
            assert retuned["trace"][0]["apps"]["small"]["threshold"] == tuned["thresholds"]["small"], retuned
            assert retuned["thresholds"]["small"] == tuned["thresholds"]["small"]
            # the other application's kdamond kept running untouched
            assert kdamond(emu, before["hugepage:large"])["pid"] == large_kd["pid"]
            large_dir = "kdamonds/%d/" % before["hugepage:large"]
            assert [w["path"] for w in emu.writes()[writes_before:] if large_dir in w["path"]
                    and not w["path"].endswith("/state")] == []
    finally:
        small.stop()
        large.stop()
