# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""between_runs (issue 9 part 3) on the emulator: what keeps collapsing on the user_collapse path while no run is
in progress. With ``hugepage`` the kdamond marks hot regions (DAMOS hugepage) and khugepaged collapses them after
the step returned; regions that stay cold are unmarked (nohugepage); with ``none`` nothing happens between runs;
on the damos_collapse path the option changes nothing."""

from __future__ import annotations

import pytest

from tests.emulator import EmulatedSysfs
from tests.helpers.playbooks import run_tasks
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

MIB = 1 << 20


def step(emu, own, w, release, between_runs, path="auto"):
    return {"linux_mm.damon.hugepage_step": dict(
        apps=[{"name": "hotcold", "pid": w.pid, "threshold_bp": 3000}], sysfs_root=emu.root, kernel_release=release,
        ownership_file=str(own), interval_s=0.2, between_runs=between_runs, exclusive_modules="stop", path=path)}


def model_huge(emu, w):
    """Huge-page bytes of the hot and the cold range in the emulated kernel (khugepaged, DAMOS actions)."""
    ranges = dict((r["start"], r) for t in emu.status()["targets"] for r in t["ranges"])
    return ranges[w.hot[0]]["huge_bytes"], ranges[w.cold[0]]["huge_bytes"]


@pytest.mark.parametrize("between_runs", ["hugepage", "none"])
def test_khugepaged_keeps_collapsing_the_marked_hot_memory_after_the_step(run_playbook, tmp_path, between_runs):
    with HotCold() as w, EmulatedSysfs(kernel="6.12", scenario={
            "speed": 20, "thp": {"enabled": "madvise"}, "targets": [{"pid": w.pid, "regions": [
                {"start": w.hot[0], "end": w.hot[1], "phases": [{"start": 0, "end": 400, "rate": 0.5},
                                                                {"start": 400, "rate": 0.0}]},
                {"start": w.cold[0], "end": w.cold[1], "rate": 0.0}]}]}) as emu:
        [result] = run_tasks(run_playbook, [step(emu, tmp_path / "own.json", w, "6.12.117", between_runs)])
        assert result["_status"] == "ok", result
        [kd] = [k for k in emu.status()["kdamonds"] if k["state"] == "on"]
        actions = [s["action"] for s in kd["schemes"]]
        emu.advance(300)  # five minutes without a run
        hot, cold = model_huge(emu, w)
        if between_runs == "hugepage":
            assert actions == ["stat", "stat", "hugepage", "nohugepage"]
            assert hot == 32 * MIB and cold == 0, (hot, cold)
            # from 400 s on the hot range is not accessed any more: 5 minutes later it is no longer marked
            emu.advance(900)
            ranges = dict((r["start"], r) for t in emu.status()["targets"] for r in t["ranges"])
            assert ranges[w.hot[0]]["advised_bytes"] == 0 and ranges[w.hot[0]]["huge_bytes"] == 32 * MIB
        else:
            assert actions == ["stat", "stat"]
            assert hot == 0 and cold == 0


def test_the_option_changes_nothing_on_the_kernel_collapse_path(run_playbook, tmp_path):
    with HotCold(hot_mb=8, cold_mb=8) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 0}) as emu:
        [result] = run_tasks(run_playbook, [step(emu, tmp_path / "own.json", w, "7.3.4", "hugepage", "damos_collapse")])
        assert result["_status"] == "ok" and result["path"] == "damos_collapse", result
        [kd] = [k for k in emu.status()["kdamonds"] if k["state"] == "on"]
        assert [s["action"] for s in kd["schemes"]] == ["stat", "collapse"]
