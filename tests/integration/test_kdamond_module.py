# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.kdamond and damon_info through real ansible-playbook runs on the emulator."""

from __future__ import annotations

import json
import os

import pytest

from tests.emulator import EmulatedSysfs
from tests.helpers.playbooks import play

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]

ADMIN = "kernel/mm/damon/admin/kdamonds"


def read(root, rel):
    with open(os.path.join(root, ADMIN, rel)) as f:
        return f.read().strip()


def kdamond_task(emu, own, name="hot", kernel="6.12.0", **options):
    args = dict(name=name, sysfs_root=emu.root, kernel_release=kernel, ownership_file=str(own))
    args.update(options)
    return {"linux_mm.damon.kdamond": args}


def stat_scheme(min_nr_accesses=5):
    return {"action": "stat", "access_pattern": {"min_size": 2097152, "min_nr_accesses": min_nr_accesses}}


@pytest.mark.slow
def test_check_mode_diff_apply_and_idempotence(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    with EmulatedSysfs(kernel="6.12") as emu:
        task = kdamond_task(emu, own, targets=[{"pid": target_pid}], schemes=[stat_scheme()])

        checked = run_playbook(play(task), check=True, diff=True)
        assert checked.rc == 0, checked.explain()
        result = checked[0]
        assert result["changed"] and result["writes"] and result["applied"] == []
        assert result["diff"]["after"]["context"]["schemes"][0]["action"] == "stat"
        assert read(emu.root, "nr_kdamonds") == "0" and not own.exists()

        applied = run_playbook(play(task))
        assert applied.rc == 0, applied.explain()
        result = applied[0]
        assert result["changed"] and len(result["applied"]) == len(result["writes"])
        assert result["kdamond"]["state"] == "on" and result["kdamond"]["pid"] > 0
        assert read(emu.root, "0/state") == "on"
        assert read(emu.root, "0/contexts/0/schemes/0/access_pattern/sz/max") == str(2 ** 64 - 1)
        assert json.loads(own.read_text())["slots"]["0"]["name"] == "hot"

        again = run_playbook(play(task), diff=True)
        assert again.rc == 0 and not again[0]["changed"] and again[0]["writes"] == [], again.explain()
        # before and after have one shape: an unchanged kdamond shows no difference at all (no stray index)
        assert again[0]["diff"]["before"] == again[0]["diff"]["after"], again[0]["diff"]
        assert again[0]["kdamond"]["index"] == 0  # the result names the slot

        pid_before = read(emu.root, "0/pid")
        task = kdamond_task(emu, own, targets=[{"pid": target_pid}], schemes=[stat_scheme(9)])
        tuned = run_playbook(play(task), diff=True)
        assert tuned.rc == 0, tuned.explain()
        writes = [(w["path"].split("kdamonds/")[1], w["value"]) for w in tuned[0]["writes"]]
        assert writes == [("0/contexts/0/schemes/0/access_pattern/nr_accesses/min", "9"), ("0/state", "commit")]
        before = tuned[0]["diff"]["before"]["context"]["schemes"][0]["access_pattern"]["min_nr_accesses"]
        assert before == 5
        assert read(emu.root, "0/pid") == pid_before  # committed, not restarted

        stopped = run_playbook(play(kdamond_task(emu, own, state="stopped", targets=[{"pid": target_pid}],
                                                 schemes=[stat_scheme(9)])))
        assert stopped.rc == 0 and stopped[0]["changed"], stopped.explain()
        assert read(emu.root, "0/state") == "off"

        absent = run_playbook(play(kdamond_task(emu, own, state="absent")) * 1)
        assert absent.rc == 0 and absent[0]["changed"], absent.explain()
        assert read(emu.root, "nr_kdamonds") == "0"
        assert json.loads(own.read_text())["slots"] == {}
        assert not run_playbook(play(kdamond_task(emu, own, state="absent")))[0]["changed"]


def test_bad_input_fails_clearly_and_writes_nothing(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    with EmulatedSysfs(kernel="6.12") as emu:
        cases = [
            (dict(targets=[{"pid": target_pid}], schemes=[{"action": "collapse"}]),
             "action 'collapse' needs Linux 7.2; this kernel is 6.12.0"),
            (dict(targets=[{"pid": target_pid}], schemes=[{"action": "explode"}]), "'explode' is not a DAMON action"),
            (dict(targets=[{"pid": 4194305}], schemes=[stat_scheme()]), "targets[0].pid: 4194305 is not a valid PID"),
            (dict(targets=[{"pid": target_pid}], schemes=[{"action": "stat", "access_pattern": {"min_age": 9, "max_age": 3}}]),
             "min_age (9) is greater than max_age (3)"),
            (dict(targets=[{"pid": target_pid}], schemes=[{"action": "stat", "access_pattern": {"min_size": -1}}]),
             "schemes[0].access_pattern.min_size: -1 is out of range for unsigned long"),
            (dict(targets=[{"pid": target_pid}], schemes=[{"action": "stat", "quotas": {"bytes": "lots"}}]),
             "bytes"),
            (dict(targets=[{"pid": target_pid}], monitoring_attrs={"intervals_goal": {"access_bp": 400, "aggrs": 3}}),
             "monitoring_attrs.intervals_goal needs Linux 6.15"),
        ]
        run = run_playbook(play(*[kdamond_task(emu, own, **options) for options, unused in cases], ignore_errors=True))
        for i, (unused, message) in enumerate(cases):
            assert run[i]["_status"] == "failed", run.explain()
            assert message in run[i]["msg"], (message, run[i]["msg"])
        assert read(emu.root, "nr_kdamonds") == "0" and not own.exists()

    nodamon = tmp_path / "nodamon"  # a sysfs (kernel/mm exists) without DAMON's directory
    (nodamon / "kernel" / "mm").mkdir(parents=True)
    missing = run_playbook(play(
        {"linux_mm.damon.kdamond": dict(name="x", sysfs_root=str(tmp_path / "nowhere"), ownership_file=str(own))},
        {"linux_mm.damon.kdamond": dict(name="x", sysfs_root=str(nodamon), ownership_file=str(own))},
        {"linux_mm.damon.damon_info": dict(sysfs_root=str(nodamon), ownership_file=str(own))},
        ignore_errors=True))
    assert "sysfs root %s does not exist" % (tmp_path / "nowhere") in missing[0]["msg"]
    assert "no DAMON sysfs interface" in missing[1]["msg"] and "CONFIG_DAMON_SYSFS" in missing[1]["msg"]
    assert missing[2]["_status"] == "ok" and missing[2]["available"] is False
    assert "CONFIG_DAMON_SYSFS" in missing[2]["reason"]


def test_nr_accesses_above_the_possible_maximum_warns(run_playbook, tmp_path, target_pid):
    with EmulatedSysfs(kernel="6.12") as emu:
        run = run_playbook(play(kdamond_task(emu, tmp_path / "own.json", targets=[{"pid": target_pid}],
                                             schemes=[stat_scheme(90)])), check=True)
        assert run.rc == 0, run.explain()
        assert any("aggr_us/sample_us = 20" in w for w in run[0].get("warnings", [])), run[0]


def test_exclusive_module_fails_by_default_or_is_stopped_and_restored(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    enabled = "module/damon_stat/parameters/enabled"
    with EmulatedSysfs(kernel="7.3") as emu:
        with open(os.path.join(emu.root, enabled)) as f:
            assert f.read().strip() == "Y"
        spec = dict(kernel="7.3.4", targets=[{"pid": target_pid}], schemes=[stat_scheme()])
        refused = run_playbook(play(kdamond_task(emu, own, **spec)))
        assert refused[0]["_status"] == "failed"
        assert "DAMON_STAT" in refused[0]["msg"] and "exclusive_modules=stop" in refused[0]["msg"]
        assert read(emu.root, "nr_kdamonds") == "0"

        started = run_playbook(play(kdamond_task(emu, own, exclusive_modules="stop", **spec)))
        assert started.rc == 0, started.explain()
        with open(os.path.join(emu.root, enabled)) as f:
            assert f.read().strip() == "N"
        assert read(emu.root, "0/state") == "on"
        assert json.loads(own.read_text())["stopped_modules"] == ["damon_stat"]

        removed = run_playbook(play(kdamond_task(emu, own, state="absent", kernel="7.3.4")))
        assert removed.rc == 0, removed.explain()
        with open(os.path.join(emu.root, enabled)) as f:
            assert f.read().strip() == "Y"
        assert json.loads(own.read_text())["stopped_modules"] == []


def test_foreign_kdamonds_are_reported_and_never_touched(run_playbook, tmp_path, target_pid):
    from tests.emulator import FOREIGN_PADDR_KDAMOND  # pylint: disable=import-outside-toplevel

    own = tmp_path / "own.json"
    with EmulatedSysfs(kernel="6.18", scenario={"speed": 0, "modules": {"damon_stat": False}, "kdamonds": [FOREIGN_PADDR_KDAMOND]}) as emu:
        foreign_pid = read(emu.root, "0/pid")
        spec = dict(kernel="6.18.4", targets=[{"pid": target_pid}], schemes=[stat_scheme()])
        run = run_playbook(play(
            kdamond_task(emu, own, **spec),
            {"linux_mm.damon.damon_info": dict(sysfs_root=emu.root, kernel_release="6.18.4", ownership_file=str(own))},
            ignore_errors=True))
        message = run[0]["msg"]
        assert run[0]["_status"] == "failed"
        assert "kdamond 0 (state on, pid %s, operations paddr, actions pageout)" % foreign_pid in message
        assert "Stop and remove them yourself" in message
        assert read(emu.root, "nr_kdamonds") == "1" and read(emu.root, "0/pid") == foreign_pid

        info = run[1]
        assert info["available"] and "collapse" not in info["features"]["actions"]
        assert info["features"]["operations"] == ["fvaddr", "paddr", "vaddr"]
        assert info["kdamonds"] == [dict(index=0, state="on", pid=int(foreign_pid), owned=False, name=None,
                                         operations="paddr", actions=["pageout"], target_pids=[0],
                                         context=info["kdamonds"][0]["context"])]
        assert info["thp"]["values"]["enabled"] in ("always", "madvise", "never")


def test_idle_slots_we_own_are_reused_while_a_foreign_kdamond_runs(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    spec = dict(targets=[{"pid": target_pid}], schemes=[stat_scheme()], state="stopped")
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0}) as emu:
        made = run_playbook(play(kdamond_task(emu, own, name="a", **spec), kdamond_task(emu, own, name="b", **spec)))
        assert made.rc == 0, made.explain()
        assert read(emu.root, "nr_kdamonds") == "2"

        # Someone else takes slot 0 by hand and starts it: from now on it is foreign.
        for rel, value in (("0/contexts/0/schemes/0/action", "pageout"), ("0/state", "on")):
            with open(os.path.join(emu.root, ADMIN, rel), "w") as f:
                f.write(value)
        foreign_pid = read(emu.root, "0/pid")

        running = dict(spec)
        running["state"] = "running"
        run = run_playbook(play(
            {"linux_mm.damon.kdamond": dict(name="a", state="absent", sysfs_root=emu.root, kernel_release="6.12.0",
                                            ownership_file=str(own))},
            kdamond_task(emu, own, name="b", state="absent"),
            kdamond_task(emu, own, name="c", **running),
            ignore_errors=True))
        assert run[0]["_status"] == "failed" and "changed or restarted by someone else" in run[0]["msg"]
        assert run[1]["_status"] == "ok" and run[1]["changed"]
        assert run[2]["_status"] == "ok", run.explain()
        assert run[2]["kdamond"]["index"] == 1 and read(emu.root, "1/state") == "on"
        assert read(emu.root, "0/pid") == foreign_pid and read(emu.root, "0/contexts/0/schemes/0/action") == "pageout"


def test_a_failed_write_reports_what_was_applied_and_a_rerun_converges(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    spec = dict(targets=[{"pid": target_pid}], schemes=[stat_scheme()])
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0}) as emu:
        # A wrong kernel_release makes the plan write refresh_ms (6.17+), which 6.12 does not have.
        broken = run_playbook(play(kdamond_task(emu, own, kernel="6.18.0", refresh_ms=1000, **spec)))
        result = broken[0]
        assert result["_status"] == "failed"
        assert "writing '1000' to %s/%s/0/refresh_ms failed: No such file or directory (ENOENT)" % (
            emu.root, ADMIN) in result["msg"]
        assert "1 of " in result["msg"] and "re-run to converge" in result["msg"]
        assert [w["value"] for w in result["applied"]] == ["1"]
        assert result["failed_write"]["errno_name"] == "ENOENT"

        fixed = run_playbook(play(kdamond_task(emu, own, **spec)))
        assert fixed.rc == 0 and fixed[0]["kdamond"]["index"] == 0, fixed.explain()
        assert not [w for w in fixed[0]["writes"] if w["path"].endswith("nr_kdamonds")]
        assert read(emu.root, "0/state") == "on"
        assert not run_playbook(play(kdamond_task(emu, own, **spec)))[0]["changed"]
