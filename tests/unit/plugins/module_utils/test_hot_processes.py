# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_hot_processes.py.

The process scan runs on a fake /proc tree in tmp_path whose ``sleep`` hook changes
the tree between the two samples (CPU used, processes exiting, PIDs reused).
"""

from __future__ import annotations

import errno

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _hot_processes as hot
from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from tests.helpers.fake_proc import TICKS, FakeProc
from tests.helpers.pagemap import HUGE


@pytest.fixture
def fake_proc(tmp_path):
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, comm="init", ppid=0, ticks=500, cmdline=["/sbin/init"])
    proc.add(2, comm="kthreadd", ppid=0, flags=0x208040, anon_kb=None, cmdline=[])
    proc.add(3, comm="kworker/0:1", ppid=2, flags=0x4208060, anon_kb=None, cmdline=[])
    proc.add(50, comm="ansible", ppid=1, ticks=100, cmdline=["ansible-playbook", "site.yml"])
    proc.add(51, comm="python3", ppid=50, ticks=10, cmdline=["python3", "AnsiballZ_hot_processes.py"])
    return proc


def scan(proc, changes, **kwargs):
    """find_hot_processes on the fake tree; ``changes`` runs between the samples."""
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        changes()

    kwargs.setdefault("self_pid", 51)
    kwargs.setdefault("huge", HUGE)
    result = hot.find_hot_processes(proc_root=str(proc.root), sleep=sleep, **kwargs)
    assert slept == [kwargs.get("window_s", 1.0)]
    return result


def test_scan_ranks_by_cpu_delta_ties_by_pid(fake_proc):
    fake_proc.add(100, comm="idle", ticks=1000)
    fake_proc.add(101, comm="busy", ticks=1000)
    fake_proc.add(102, comm="busier", ticks=0)
    fake_proc.add(103, comm="tie", ticks=50)
    fake_proc.add(104, comm="tie", ticks=70)

    def changes():
        fake_proc.set_ticks(101, 1000 + TICKS // 2)
        fake_proc.set_ticks(102, TICKS)
        fake_proc.set_ticks(103, 50 + 3)
        fake_proc.set_ticks(104, 70 + 3)
        fake_proc.set_ticks(1, 500 + 5 * TICKS)  # an ancestor: never reported

    processes, summary = scan(fake_proc, changes, top=0)
    assert [p["pid"] for p in processes] == [102, 101, 103, 104, 100]
    busier = processes[0]
    assert busier["cpu_seconds"] == pytest.approx(1.0, abs=0.01)
    assert busier["cpu_pct"] > 0
    assert busier["comm"] == "busier" and busier["cmdline"] == ["busier"]
    assert busier["user"] == "root" and busier["uid"] == 0
    assert busier["cgroup"] == "/system.slice/app.service"
    assert busier["anon_rss_bytes"] == 64 << 20
    assert busier["anon_huge_bytes"] == 0
    assert busier["thp_eligible"] is True
    assert processes[-1]["cpu_seconds"] == 0
    assert summary["kernel_threads"] == 2
    assert summary["excluded"] == 3  # 51 itself, 50 and 1
    assert summary["matched"] == 5
    assert summary["scanned"] == 10


def test_scan_top_limits_and_reads_rollup_only_for_returned(fake_proc):
    for pid in range(100, 110):
        fake_proc.add(pid, ticks=0)

    def changes():
        for pid in range(100, 110):
            fake_proc.set_ticks(pid, pid - 99)
        # A process below the top-3 cut whose smaps_rollup is gone: not read, so no harm.
        (fake_proc.root / "100" / "smaps_rollup").unlink()

    processes, summary = scan(fake_proc, changes, top=3)
    assert [p["pid"] for p in processes] == [109, 108, 107]
    assert summary["matched"] == 10


def test_scan_handles_exits_and_pid_reuse(fake_proc):
    fake_proc.add(100, comm="leaves", ticks=10)
    fake_proc.add(101, comm="old", ticks=5000, starttime=100)
    fake_proc.add(102, comm="vanishes", ticks=0)

    def changes():
        fake_proc.remove(100)
        # PID 101 reused by a new process (other start time): its whole CPU time counts.
        fake_proc.add(101, comm="new", ticks=20, starttime=9999)
        fake_proc.add(103, comm="born", ticks=7)
        fake_proc.set_ticks(102, 50)
        # 102 loses its status file between the samples' stat read and the detail read.
        (fake_proc.root / "102" / "status").unlink()

    processes, summary = scan(fake_proc, changes, top=0)
    assert [(p["pid"], p["comm"]) for p in processes] == [(101, "new"), (103, "born")]
    assert processes[0]["cpu_seconds"] == pytest.approx(20.0 / TICKS)
    assert summary["exited"] == 2  # 100 between the samples, 102 while reading


def test_scan_skips_zombies_and_unreadable(fake_proc, monkeypatch):
    fake_proc.add(100, comm="zombie", state="Z", anon_kb=None, cmdline=[])
    fake_proc.add(101, comm="secret", ticks=0)
    real = procfs.read_status

    def read_status(pid, proc_root=procfs.PROC):
        if pid == 101:
            raise procfs.ProcAccessDenied("/proc/101/status", errno.EACCES)
        return real(pid, proc_root)

    monkeypatch.setattr(procfs, "read_status", read_status)
    processes, summary = scan(fake_proc, lambda: None, top=0)
    assert processes == []
    assert summary["exited"] == 1 and summary["unreadable"] == 1


def test_scan_filters(fake_proc):
    fake_proc.add(100, comm="postgres", uid=0, anon_kb=1 << 20, cmdline=["/usr/bin/postgres", "-D", "/db"],
                  cgroup="0::/system.slice/postgresql.service\n")
    fake_proc.add(101, comm="kube-controller", uid=65534, anon_kb=1024,
                  cmdline=["/usr/local/bin/kube-controller-manager", "--v=2"], cgroup="0::/kubepods/pod1\n")
    fake_proc.add(102, comm="java", uid=65534, anon_kb=4 << 20, cmdline=["java", "-jar", "app.jar"],
                  cgroup="0::/user.slice/user-1000.slice\n", thp_enabled=0)

    def pids(**kwargs):
        return [p["pid"] for p in scan(fake_proc, lambda: None, top=0, **kwargs)[0]]

    assert pids() == [100, 101, 102]
    assert pids(min_anon_rss_bytes=2 << 20) == [100, 102]
    assert pids(name_pattern="^kube-controller-manager$") == [101]  # base name of argv[0], comm is cut
    assert pids(name_pattern="gres") == [100]
    assert pids(cmdline_pattern=r"-jar\s+app") == [102]
    assert pids(users=["nobody"]) == [101, 102]
    assert pids(users=[65534, "0"]) == [100, 101, 102]
    assert pids(cgroup="/system.slice") == [100]
    assert pids(cgroup="/system") == []
    assert pids(cgroup="pod1") == [101]
    assert pids(exclude_pids=[100, 101]) == [102]
    assert pids(min_cpu_pct=1.0) == []
    java = scan(fake_proc, lambda: None, top=0, cmdline_pattern="java")[0][0]
    assert java["thp_eligible"] is False and java["user"] == "nobody"


def test_scan_bad_filters(fake_proc):
    with pytest.raises(hot.HotProcessError, match="name_pattern"):
        scan(fake_proc, lambda: None, name_pattern="(")
    with pytest.raises(hot.HotProcessError, match="no user named"):
        hot.resolve_users(["no-such-user-xyz"])
    with pytest.raises(hot.HotProcessError):
        hot.resolve_users([True])
