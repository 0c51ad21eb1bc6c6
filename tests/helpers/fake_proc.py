# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake /proc tree for the hot-process scan: one directory per PID with the files it reads."""

from __future__ import annotations

import os

TICKS = os.sysconf("SC_CLK_TCK")  # the scan turns the tree's CPU ticks into seconds with this host's rate


class FakeProc:
    """A fake /proc: one directory per PID with stat, status, cmdline, cgroup, smaps_rollup."""

    def __init__(self, root):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, pid, comm="app", ppid=1, ticks=0, starttime=1000, flags=0x400000, state="S", uid=0,
            anon_kb=65536, cmdline=None, cgroup="0::/system.slice/app.service\n", huge_kb=0, thp_enabled=1,
            threads=1):
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        utime, stime = ticks - ticks // 3, ticks // 3
        fields = [state, ppid, ppid, 0, 0, -1, flags, 0, 0, 0, 0, utime, stime, 0, 0, 20, 0, threads, 0,
                  starttime, 0, 100]
        (d / "stat").write_text("%d (%s) %s\n" % (pid, comm, " ".join(str(f) for f in fields)))
        status = "Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n" % (comm, uid, uid, uid, uid)
        if anon_kb is not None:
            status += "RssAnon:\t%d kB\n" % anon_kb
        status += "THP_enabled:\t%d\n" % thp_enabled
        (d / "status").write_text(status)
        args = [comm] if cmdline is None else cmdline
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in args))
        (d / "cgroup").write_text(cgroup)
        (d / "smaps_rollup").write_text("Rss: %d kB\nAnonymous: %d kB\nAnonHugePages: %d kB\n"
                                        % (anon_kb or 0, anon_kb or 0, huge_kb))

    def remove(self, pid):
        d = self.root / str(pid)
        for f in d.iterdir():
            f.unlink()
        d.rmdir()

    def set_ticks(self, pid, ticks):
        path = self.root / str(pid) / "stat"
        parts = path.read_text().split()
        parts[13], parts[14] = str(ticks - ticks // 3), str(ticks // 3)
        path.write_text(" ".join(parts) + "\n")
