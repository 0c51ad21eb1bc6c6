# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input through real ansible-playbook runs: refused before any write, the same way on a re-run.

The emulator stands for the host's DAMON sysfs (kernel 7.3, so every option exists);
after each batch of bad tasks it must still have no kdamond and no ownership record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator import EmulatedSysfs
from tests.helpers import playbooks
from tests.helpers.unprivileged import run_module_as_nobody
from tests.integration.test_thp_module import make_tree

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

ADMIN = "kernel/mm/damon/admin/kdamonds"


def read(root, rel):
    with open(os.path.join(root, ADMIN, rel)) as f:
        return f.read().strip()


def play(*tasks):
    return playbooks.play(*tasks, ignore_errors=True)  # every result is checked for its own failure


def kdamond(root, own, name="hot", **options):
    args = dict(name=name, sysfs_root=root, kernel_release="7.3.4", ownership_file=str(own))
    args.update(options)
    return {"linux_mm.damon.kdamond": args}


@pytest.mark.slow
def test_kdamond_refuses_values_beyond_kernel_types_and_unordered_pairs(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    stat = {"action": "stat"}
    cases = [
        (dict(monitoring_attrs={"aggr_us": 2 ** 70}),
         "monitoring_attrs.aggr_us: 1180591620717411303424 is out of range for unsigned long (0..18446744073709551615)"),
        (dict(refresh_ms=2 ** 64), "refresh_ms: 18446744073709551616 is out of range for unsigned int (0..4294967295)"),
        (dict(schemes=[dict(stat, apply_interval_us=-1)]),
         "schemes[0].apply_interval_us: -1 is out of range for unsigned long (0..18446744073709551615)"),
        (dict(schemes=[dict(stat, access_pattern={"max_nr_accesses": 2 ** 32})]),
         "schemes[0].access_pattern.max_nr_accesses: 4294967296 is out of range for unsigned int (0..4294967295)"),
        (dict(name=""), "name: '' is empty"),
        (dict(pool_size=2000), "pool_size: 2000 is outside 1..64"),
        (dict(pool_size=-1), "pool_size: -1 is outside 1..64"),
        (dict(monitoring_attrs={"sample_us": 0}), "monitoring_attrs: sample_us (0) must be at least 1"),
        (dict(monitoring_attrs={"intervals_goal": {"access_bp": 400, "aggrs": 3, "min_sample_us": 10000,
                                                   "max_sample_us": 5000}}),
         "monitoring_attrs.intervals_goal: min_sample_us (10000) is greater than max_sample_us (5000)"),
        (dict(schemes=[dict(stat, filters=[{"type": "hugepage_size", "min": 4194304, "max": 2097152}])]),
         "schemes[0].filters[0]: min (4194304) is greater than max (2097152)"),
        (dict(schemes=[dict(stat, filters=[{"type": "memcg", "memcg_path": "/app\n/other"}])]),
         "schemes[0].filters[0].memcg_path: '/app\\n/other' must be an absolute path on one line"),
        (dict(targets=[{"pid": 2 ** 70}]), "targets[0].pid: 1180591620717411303424 is not a valid PID (1..4194303"),
        (dict(targets=[{"pid": 2}]), "targets[0].pid: PID 2 (kthreadd) is a kernel thread"),
    ]
    with EmulatedSysfs(kernel="7.3") as emu:
        tasks = []
        for options, unused in cases:
            options.setdefault("targets", [{"pid": target_pid}])
            options.setdefault("schemes", [stat])
            tasks.append(kdamond(emu.root, own, **options))
        first = run_playbook(play(*tasks))
        again = run_playbook(play(*tasks))  # re-running the same input fails the same way
        for run in (first, again):
            for i, (unused, message) in enumerate(cases):
                assert run[i]["_status"] == "failed", run.explain()
                assert message in run[i]["msg"], (message, run[i]["msg"])
                assert not run[i].get("applied"), run[i]
        assert [first[i]["msg"] for i in range(len(cases))] == [again[i]["msg"] for i in range(len(cases))]
        assert read(emu.root, "nr_kdamonds") == "0" and not own.exists()  # nothing written, nothing recorded


def test_pid_1_is_warned_not_refused(run_playbook, tmp_path):
    with EmulatedSysfs(kernel="7.3") as emu:
        run = run_playbook(play(kdamond(emu.root, tmp_path / "own.json", targets=[{"pid": 1}],
                                        schemes=[{"action": "stat"}], exclusive_modules="stop")), check=True)
        assert run[0]["_status"] == "ok", run.explain()
        assert "targets[0].pid: PID 1" in run.stdout + run.stderr + json.dumps(run[0].get("warnings", []))
        assert read(emu.root, "nr_kdamonds") == "0"


def tune(emu, own, apps, **options):
    args = dict(apps=apps, sysfs_root=emu.root, kernel_release="7.3.4", ownership_file=str(own), interval_s=0.5,
                max_iterations=2, timeout_s=60)
    args.update(options)
    return {"linux_mm.damon.hugepage_tune": args}


def test_hugepage_tune_refuses_bad_options_before_the_first_step(run_playbook, tmp_path, target_pid):
    own = tmp_path / "own.json"
    app = {"name": "web", "pid": target_pid}
    cases = [
        (dict(apps=[app, {"name": "db", "pid": target_pid}, {"name": "web", "pid": target_pid}]),
         "apps: application names must be unique; 'web' is given as apps[0] and apps[2]"),
        (dict(timeout_s="nan"), "timeout_s: nan is not a finite number"),
        (dict(interval_s="inf"), "interval_s: inf is not a finite number"),
        (dict(apps=[dict(app, budget_bytes=-5)], host_budget_bytes=1 << 30),
         "apps[0] (web).budget_bytes: -5 is out of range for unsigned long"),
        (dict(pool_size=2000), "pool_size: 2000 is outside 1..64"),
        (dict(pool_size=-2), "pool_size: -2 is outside 1..64"),
        (dict(monitoring_attrs={"sample_us": 0}), "monitoring_attrs: sample_us (0) must be at least 1"),
        (dict(apps=[{"name": "web", "pid": 2 ** 70}]), "apps[0] (web).pid: 1180591620717411303424 is not a valid PID"),
        (dict(apps=[{"name": "k", "pid": 2}]), "apps[0] (k).pid: PID 2 (kthreadd) is a kernel thread"),
    ]
    with EmulatedSysfs(kernel="7.3") as emu:
        tasks = []
        for options, unused in cases:
            options.setdefault("apps", [app])
            tasks.append(tune(emu, own, **options))
        run = run_playbook(play(*tasks))
        for i, (unused, message) in enumerate(cases):
            assert run[i]["_status"] == "failed", run.explain()
            assert message in run[i]["msg"], (message, run[i]["msg"])
        assert not run[3]["msg"].startswith("host_budget_bytes")  # the app's budget is wrong, not the host's
        assert read(emu.root, "nr_kdamonds") == "0" and not own.exists()


def test_collapse_of_the_whole_address_space_is_planned_over_the_mappings(run_playbook, target_pid):
    """[0, 2**47) used to build 2**26 chunk objects (the module got killed); now it costs what sleep maps."""
    task = {"linux_mm.damon.collapse": {"pid": target_pid, "ranges": [{"start": 0, "end": 2 ** 47}],
                                        "quota_bytes": 0}}
    run = run_playbook(play(task, dict(task, **{"linux_mm.damon.collapse": {
        "pid": target_pid, "ranges": [{"start": 0, "end": "0x100000000000"}]}})), check=True)
    assert run[0]["_status"] == "ok", run.explain()
    assert run[0]["chunks"]["skipped_unmapped"] > 2 ** 47 // (2 << 20) // 2
    assert run[0]["chunks"]["collapsed"] == 0
    assert run[1]["_status"] == "ok", run.explain()
    bad = run_playbook(play({"linux_mm.damon.collapse": {"pid": 2 ** 70, "ranges": [{"start": 0, "end": 4096}]}}))
    assert "pid: 1180591620717411303424 is not a valid PID" in bad[0]["msg"], bad.explain()


def test_hot_processes_regexes_are_bounded(run_playbook):
    marker = "marker%d" % os.getpid()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker, "a" * 40 + "!",
                             "x" * 5000, marker + "tail"])
    try:
        run = run_playbook(play(
            {"linux_mm.damon.hot_processes": {"window_s": 0.1, "top": 0, "cmdline_pattern": marker + " a"}},
            {"linux_mm.damon.hot_processes": {"window_s": 0.1, "top": 0, "cmdline_pattern": marker + "tail$"}},
            {"linux_mm.damon.hot_processes": {"window_s": 0.1, "top": 0, "cmdline_pattern": marker + " (a+)+$"}},
            {"linux_mm.damon.hot_processes": {"window_s": 0.1, "min_cpu_pct": "nan"}},
        ))
    finally:
        proc.kill()
        proc.wait()
    assert [p["pid"] for p in run[0]["processes"]] == [proc.pid], run.explain()
    assert run[1]["_status"] == "ok" and run[1]["processes"] == []  # beyond the first 4096 characters
    assert run[2]["_status"] == "failed"
    assert "cmdline_pattern: " in run[2]["msg"] and "took more than 1 s" in run[2]["msg"], run[2]["msg"]
    assert run[3]["_status"] == "failed" and "min_cpu_pct: nan is not a finite number" in run[3]["msg"]


def test_a_vanished_sysfs_root_is_reported_as_such(run_playbook, tmp_path):
    with EmulatedSysfs(kernel="7.3") as emu:
        root = emu.root
    empty = tmp_path / "mnt"
    empty.mkdir()
    run = run_playbook(play(*[kdamond(r, tmp_path / "own.json", targets=[{"pid": os.getpid()}],
                                      schemes=[{"action": "stat"}]) for r in (root, str(empty))]))
    for i, where in enumerate((root, str(empty))):
        msg = run[i]["msg"]
        assert msg.startswith("sysfs root %s does not exist" % where), msg
        assert "CONFIG_DAMON_SYSFS" not in msg


# --- not root --------------------------------------------------------------------------------

def test_not_root_is_said_up_front(collections_root, world_readable_dir):
    thp = Path(make_tree(world_readable_dir))
    for path in (world_readable_dir / "kernel", world_readable_dir / "kernel" / "mm", thp, thp / "khugepaged"):
        os.chmod(str(path), 0o755)
    result = run_module_as_nobody(collections_root, world_readable_dir, "thp.py",
                                  {"sysfs_root": str(world_readable_dir), "enabled": "always"})
    assert result.get("failed") is True, result
    assert result["msg"].startswith("linux_mm.damon.thp needs root (become: true) to write THP settings"), result
    assert (thp / "enabled").read_text() == "always [madvise] never\n"  # nothing written

    result = run_module_as_nobody(collections_root, world_readable_dir, "hot_processes.py", {"window_s": 0})
    assert result.get("failed") is True, result
    assert "linux_mm.damon.hot_processes needs root (become: true)" in result["msg"]
    assert "without CAP_SYS_PTRACE" in result["msg"]
