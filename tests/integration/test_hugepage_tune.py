# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hugepage_tune action plugin: real ansible-playbook runs against the emulator and real workloads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(600)]

MIB = 1 << 20


def model(workload, hot_rate=0.35, phases=None):
    hot = {"start": workload.hot[0], "end": workload.hot[1]}
    cold = {"start": workload.cold[0], "end": workload.cold[1]}
    if phases:
        hot["phases"], cold["phases"] = phases
    else:
        hot["rate"], cold["rate"] = hot_rate, 0.0
    return {"pid": workload.pid, "regions": [hot, cold]}


def tune(emu, own, apps, kernel="7.3.4", **options):
    args = dict(apps=apps, sysfs_root=emu.root, kernel_release=kernel, ownership_file=str(own), interval_s=0.5,
                exclusive_modules="stop", max_iterations=30, timeout_s=240)
    args.update(options)
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "tune", "linux_mm.damon.hugepage_tune": args}]}]


def hot_cold_huge(emu, workload):
    ranges = dict((r["start"], r) for t in emu.status()["targets"] for r in t["ranges"])
    return ranges[workload.hot[0]]["huge_bytes"], ranges[workload.cold[0]]["huge_bytes"]


@pytest.mark.xdist_group("hugepage_tune_policies")  # the last of the two compares their iteration counts
@pytest.mark.parametrize("policy", ["adaptive", "stepdown"])
def test_policy_converges_and_a_second_run_changes_nothing(run_playbook, tmp_path, policy):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "targets": [model(w)]}) as emu:
        apps = [{"name": "hotcold", "pid": w.pid}]
        predicted = run_playbook(tune(emu, own, apps, policy=policy, path="damos_collapse"), check=True)
        assert predicted.rc == 0 and predicted[0]["stopped"] == "check_mode", predicted.explain()
        assert emu.status()["kdamonds"] == [] and not own.exists()

        run = run_playbook(tune(emu, own, apps, policy=policy, path="damos_collapse"))
        assert run.rc == 0, run.explain()
        result = run[0]
        assert result["converged"] and result["changed"], result
        assert result["iterations"] == len(result["trace"])
        assert hot_cold_huge(emu, w) == (32 * MIB, 0)
        assert result["thresholds"]["hotcold"] <= 7  # the hot range shows nr_accesses 7 of 20

        again = run_playbook(tune(emu, own, apps, policy=policy, path="damos_collapse"))
        assert again.rc == 0 and not again[0]["changed"] and again[0]["converged"], again.explain()
        assert again[0]["thresholds"] == result["thresholds"]
        pytest.iterations = getattr(pytest, "iterations", {})
        pytest.iterations[policy] = result["iterations"]
    if len(pytest.iterations) == 2:
        assert pytest.iterations["adaptive"] * 3 <= pytest.iterations["stepdown"], pytest.iterations


def test_threshold_rises_when_the_hot_set_moves(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    # first 600 s: the first range is warm (7 of 20); then the other becomes very hot (18) and the first,
    # at 6, is now the colder class: the old threshold (below 6) would keep collapsing it
    phases = ([{"start": 0, "end": 600, "rate": 0.35}, {"start": 600, "rate": 0.3}],
              [{"start": 0, "end": 600, "rate": 0.0}, {"start": 600, "rate": 0.9}])
    with HotCold(idle=True) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "targets": [model(w, phases=phases)]}) as emu:
        apps = [{"name": "hotcold", "pid": w.pid}]
        first = run_playbook(tune(emu, own, apps))
        assert first.rc == 0 and first[0]["converged"], first.explain()
        before = first[0]["thresholds"]["hotcold"]
        emu.advance(600)
        second = run_playbook(tune(emu, own, apps))
        assert second.rc == 0, second.explain()
        after = second[0]["thresholds"]["hotcold"]
        assert after > before, (before, after, second[0]["trace"])


def _running_slot(record, name):
    """Whether the ownership record names a running kdamond called ``name`` (it has a pid)."""
    try:
        slots = json.loads(record.read_text())["slots"]
    except (OSError, ValueError, KeyError):
        return False  # not written yet
    return any(slot.get("name") == name and slot.get("pid") for slot in slots.values())


def _when(condition, action, done, poll_s=0.05):
    """Call ``action`` once ``condition()`` holds, unless ``done`` is set first."""
    while not done.wait(poll_s):
        if condition():
            action()
            return


def test_an_application_that_exits_mid_loop_is_dropped(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    with HotCold(idle=True) as stays, HotCold(idle=True) as leaves, EmulatedSysfs(
            kernel="6.12", scenario={"speed": 20, "targets": [model(stays), model(leaves)]}) as emu:
        apps = [{"name": "stays", "pid": stays.pid}, {"name": "leaves", "pid": leaves.pid}]
        # an event, not a delay: 'leaves' exits once its kdamond runs (the record names its pid), whatever the load
        done = threading.Event()
        watcher = threading.Thread(target=_when, args=(lambda: _running_slot(own, "hugepage:leaves"), leaves.stop,
                                                       done), daemon=True)
        watcher.start()
        try:
            run = run_playbook(tune(emu, own, apps, kernel="6.12.117", policy="stepdown", path="khugepaged"))
        finally:
            done.set()
            watcher.join()
        assert run.rc == 0, run.explain()
        assert run[0]["dropped"] == ["leaves"] and "stays" in run[0]["thresholds"]


def test_bad_arguments_are_refused(run_playbook, tmp_path):
    with HotCold(idle=True) as w, EmulatedSysfs(kernel="6.12") as emu:
        apps = [{"name": "x", "pid": w.pid}]
        plays = [tune(emu, tmp_path / "o.json", apps, kernel="6.12.117", **bad) for bad in (
            {"policy": "greedy"}, {"path": "damos_collapse"}, {"max_iterations": 0}, {})]
        tasks = [dict(play[0]["tasks"][0], ignore_errors=True) for play in plays]
        tasks[3]["linux_mm.damon.hugepage_tune"]["apps"] = [{"name": "x", "pid": 4194303}]  # valid, not running
        run = run_playbook([dict(plays[0][0], tasks=tasks)])
        assert all(run[i]["_status"] == "failed" for i in range(3)), run.explain()
        assert "greedy" in run[0]["msg"] and "adaptive" in run[0]["msg"]
        assert "damos_collapse needs the DAMOS collapse action of Linux 7.2" in run[1]["msg"]
        assert "max_iterations: must be a positive integer" in run[2]["msg"]
        # a PID that does not exist (or exits) is a documented skip: dropped, not a failure
        assert run[3]["_status"] == "ok" and run[3]["dropped"] == ["x"] and run[3]["thresholds"] == {}


def test_an_application_with_thp_disabled_is_reported_and_not_retried(run_playbook, tmp_path):
    own = tmp_path / "own.json"
    child = subprocess.Popen([sys.executable, "-c", "import ctypes, time\n"
                              "assert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0\n"  # PR_SET_THP_DISABLE
                              "print('ready', flush=True)\ntime.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with HotCold(idle=True) as w, EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "targets": [model(w)]}) as emu:
            apps = [{"name": "hotcold", "pid": w.pid}, {"name": "nothp", "pid": child.pid}]
            run = run_playbook(tune(emu, own, apps, path="damos_collapse"))  # huge pages of the emulator's kernel
            assert run.rc == 0, run.explain()
            result = run[0]
            assert result["status"] == {"hotcold": "converged", "nothp": "blocked"}, result
            assert result["stopped"] == "finished" and not result["converged"]
            assert result["blocked"]["nothp"]["reason"] == "process_thp_disabled"
            (message,) = [m for m in result["messages"] if m.startswith("nothp:")]
            assert "not tuned" in message and "process_thp_disabled" in message and "restart" in message
            # seen once, then not asked for again
            assert [t["apps"].get("nothp") for t in result["trace"]][:2] == [{"blocked": "process_thp_disabled"},
                                                                             None][:len(result["trace"])]
            assert all("nothp" not in t["apps"] for t in result["trace"][1:])
            assert hot_cold_huge(emu, w)[0] == 32 * MIB
    finally:
        child.kill()
        child.wait(timeout=10)
