# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.hot_processes through real ansible-playbook runs on the host.

The module only reads /proc. The test starts two marked Python children, one
spinning on the CPU (a fifth of the time) with little memory and one idle holding 64 MiB of touched
anonymous memory, and narrows the scan to them with ``cmdline_pattern`` so
other processes on the machine cannot disturb the ranking.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from tests.helpers.playbooks import run_tasks

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow,
              pytest.mark.xdist_group("hot_processes_children")]  # one pair of children (module fixture)

MIB = 1 << 20

# Busy 2 ms of every 10 ms: it always has CPU time in a sampling window, the idle child none, and it
# leaves the machine's CPUs to the other tests (a whole-CPU spin here slowed `make test-fast` down).
BUSY = ("import time\nwhile True:\n    end = time.monotonic() + 0.002\n    while time.monotonic() < end:\n"
        "        pass\n    time.sleep(0.008)\n")
IDLE = ("import sys, time\nb = bytearray(64 << 20)\nb[::4096] = b'\\x01' * (len(b) // 4096)\n"
        "sys.stdout.write('ready\\n')\nsys.stdout.flush()\ntime.sleep(600)\n")


@pytest.fixture(scope="module")
def children():
    marker = "hotproc-%s" % uuid.uuid4().hex[:12]
    busy = subprocess.Popen([sys.executable, "-c", BUSY, marker + "-busy"], stdin=subprocess.DEVNULL)
    idle = subprocess.Popen([sys.executable, "-c", IDLE, marker + "-idle"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert idle.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        yield {"marker": marker, "busy": busy.pid, "idle": idle.pid}
    finally:
        for child in (busy, idle):
            child.kill()
            child.wait()
        idle.stdout.close()


def hot_task(**options):
    return {"linux_mm.damon.hot_processes": options}


def pids(result):
    assert result["_status"] == "ok", result
    return [p["pid"] for p in result["processes"]]


def test_busy_ranks_above_idle_and_fields(run_playbook, children):
    result, = run_tasks(run_playbook, [hot_task(window_s=0.5, top=0, cmdline_pattern=children["marker"])])
    assert pids(result) == [children["busy"], children["idle"]]
    assert result["changed"] is False
    busy, idle = result["processes"]
    # no share of a CPU is asserted: a loaded machine gives the busy child what it can
    assert busy["cpu_seconds"] > idle["cpu_seconds"] == 0.0, (busy, idle)  # the idle child only sleeps
    window = result["summary"]["window_s"]
    assert busy["cpu_pct"] == pytest.approx(100.0 * busy["cpu_seconds"] / window, abs=0.01)
    assert idle["anon_rss_bytes"] >= 64 * MIB > busy["anon_rss_bytes"]
    assert idle["cmdline"][-1] == children["marker"] + "-idle"
    assert idle["ppid"] == os.getpid()
    assert idle["user"] == "root" and idle["uid"] == 0
    assert idle["anon_huge_bytes"] >= 0
    assert idle["thp_eligible"] is True
    assert busy["comm"] == procfs.read_stat(children["busy"])["comm"]
    assert busy["cgroup"] == procfs.main_cgroup_path(procfs.read_cgroup(children["busy"]))
    assert result["summary"]["matched"] == 2
    assert window >= 0.5  # the samples are at least the requested window apart


def test_filters(run_playbook, children):
    marker = children["marker"]
    cgroup = procfs.main_cgroup_path(procfs.read_cgroup(os.getpid()))
    comm = procfs.read_stat(children["busy"])["comm"]
    cases = [
        (dict(min_anon_rss_bytes="32M"), [children["idle"]]),
        (dict(top=1), [children["busy"]]),
        (dict(min_cpu_pct=0.01), [children["busy"]]),  # the idle child uses no CPU at all
        (dict(exclude_pids=[children["busy"]]), [children["idle"]]),
        (dict(name_pattern="^%s$" % comm), [children["busy"], children["idle"]]),
        (dict(name_pattern="^no-such-name$"), []),
        (dict(users=["root"]), [children["busy"], children["idle"]]),
        (dict(users=[0]), [children["busy"], children["idle"]]),
        (dict(users=[65534]), []),
        (dict(cgroup=cgroup), [children["busy"], children["idle"]]),
        (dict(cgroup="/no-such-cgroup-%s" % marker), []),
        (dict(cmdline_pattern=marker + "-idle$"), [children["idle"]]),
    ]
    tasks = []
    for options, _expected in cases:
        task = dict(window_s=0.3, top=0, cmdline_pattern=marker)
        task.update(options)
        tasks.append(hot_task(**task))
    results = run_tasks(run_playbook, tasks)
    for (options, expected), result in zip(cases, results):
        assert pids(result) == expected, (options, result)


def test_own_process_chain_is_excluded(run_playbook, tmp_path):
    # the module's own AnsiballZ file lies under tmp_path; other test processes (make test-fast runs four)
    # may run hot_processes at the same time, and theirs are not this module's chain
    remote_tmp = tmp_path / "remote-tmp"
    result, = run_tasks(run_playbook, [hot_task(window_s=0.2, top=0)], env={"ANSIBLE_REMOTE_TMP": str(remote_tmp)})
    assert result["_status"] == "ok", result
    found = result["processes"]
    # ansible-playbook runs with our tmp_path as its working directory and playbook directory.
    assert not any(str(tmp_path) in " ".join(p["cmdline"]) for p in found), found
    assert os.getpid() not in [p["pid"] for p in found]  # pytest is an ancestor
    assert result["summary"]["excluded"] >= 3
    assert result["summary"]["kernel_threads"] >= 1
    assert not any(p["cmdline"] == [] for p in found)
    cpu = [p["cpu_seconds"] for p in found]
    assert cpu == sorted(cpu, reverse=True)
    for a, b in zip(found, found[1:]):
        if a["cpu_seconds"] == b["cpu_seconds"]:
            assert a["pid"] < b["pid"]


def test_check_mode_runs(run_playbook, children):
    result, = run_tasks(run_playbook, [hot_task(window_s=0.2, top=0, cmdline_pattern=children["marker"])],
                        check=True)
    assert sorted(pids(result)) == sorted([children["busy"], children["idle"]])
    assert result["changed"] is False


@pytest.mark.parametrize("options, message", [
    (dict(name_pattern="("), "name_pattern: '(' is not a valid regular expression"),
    (dict(users=["no-such-user-zz"]), "users: no user named 'no-such-user-zz' on this host"),
    (dict(window_s=-1), "window_s: -1.0 is outside 0..3600 seconds"),
    (dict(top=-1), "top: -1 is negative"),
])
def test_bad_input(run_playbook, options, message):
    result, = run_tasks(run_playbook, [hot_task(**options)])
    assert result["_status"] == "failed"
    assert message in result["msg"]
