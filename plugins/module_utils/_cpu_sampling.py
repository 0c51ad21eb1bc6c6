# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPU time of every process from two passes over /proc (read only).

``utime``/``stime`` of /proc/PID/stat count clock ticks since the process
started; a PID whose ``starttime`` changed between two passes is a new process.
"""

from __future__ import annotations

import os
import time

from ansible_collections.linux_mm.damon.plugins.module_utils._procfs import PROC, ProcError, list_pids, read_stat


def clock_ticks():
    return os.sysconf("SC_CLK_TCK")


def sample_cpu(proc_root=PROC):
    """One pass over /proc: {pid: stat dict} for every readable process, and the
    monotonic time in the middle of the pass. Vanished processes are left out."""
    t0 = time.monotonic()
    stats = {}
    for pid in list_pids(proc_root):
        try:
            stats[pid] = read_stat(pid, proc_root)
        except ProcError:
            continue
    t1 = time.monotonic()
    return stats, (t0 + t1) / 2.0


def _cpu_ticks(stat):
    return stat["utime"] + stat["stime"]


def rank_by_cpu(first, second):
    """[(delta_ticks, pid)] for processes of ``second``, highest delta first, ties by pid.

    A PID absent from ``first`` or with another start time (PID reused) started in
    the window, so all its CPU time counts.
    """
    ranked = []
    for pid, st in second.items():
        before = first.get(pid)
        base = _cpu_ticks(before) if before is not None and before["starttime"] == st["starttime"] else 0
        ranked.append((max(0, _cpu_ticks(st) - base), pid))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return ranked
