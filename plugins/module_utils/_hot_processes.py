# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hot-process ranking of the hot_processes module: the busiest processes by CPU time, filtered.

Two CPU samples ``window_s`` apart rank every process (:mod:`_cpu_sampling`);
filters (anonymous RSS, CPU share, name, command line, user, cgroup) then keep
the candidates. Everything here only reads /proc.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._cpu_sampling import clock_ticks, rank_by_cpu, sample_cpu
from ansible_collections.linux_mm.damon.plugins.module_utils._pagemap import pmd_size


class HotProcessError(Exception):
    """Bad filter input (unknown user, bad regular expression, ...)."""


def resolve_users(users):
    """Names or uids (ints or digit strings) -> set of uids; unknown names raise."""
    import pwd  # pylint: disable=import-outside-toplevel

    uids = set()
    for user in users or ():
        if isinstance(user, bool):
            raise HotProcessError("users: %r is not a user name or uid" % (user,))
        if isinstance(user, int):
            uids.add(user)
            continue
        text = str(user).strip()
        if text.isdigit():
            uids.add(int(text))
            continue
        try:
            uids.add(pwd.getpwnam(text).pw_uid)
        except KeyError:
            raise HotProcessError("users: no user named %r on this host" % text)
    return uids


def user_name(uid, cache):
    import pwd  # pylint: disable=import-outside-toplevel

    if uid not in cache:
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            cache[uid] = str(uid)
    return cache[uid]


def compile_pattern(name, pattern):
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise HotProcessError("%s: %r is not a valid regular expression: %s" % (name, pattern, e))


# A pattern is matched against at most this many characters of a name or command line: a
# backtracking pattern costs at least polynomial time in the text length, and argv can be
# megabytes long. On top of that one match may take at most MATCH_TIME_S seconds (enforced
# with a timer signal in the main thread; Python's regex engine checks signals while it runs).
MATCH_TEXT_MAX = 4096
MATCH_TIME_S = 1.0


class _MatchTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _MatchTimeout()


def bounded_search(regex, text, option, pid, limit_s=MATCH_TIME_S):
    """``regex.search`` on the first MATCH_TEXT_MAX characters of ``text``, in at most ``limit_s``."""
    text = text[:MATCH_TEXT_MAX]
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return regex.search(text)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            return regex.search(text)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _MatchTimeout:
        raise HotProcessError("%s: %r took more than %g s on the %d characters of PID %d's text (at most %d are "
                              "matched); the pattern backtracks catastrophically, simplify it"
                              % (option, regex.pattern, limit_s, len(text), pid, MATCH_TEXT_MAX))
    finally:
        signal.signal(signal.SIGALRM, previous)


def find_hot_processes(window_s=1.0, top=5, min_anon_rss_bytes=0, min_cpu_pct=0.0, name_pattern=None,
                       cmdline_pattern=None, users=None, cgroup=None, exclude_pids=(), self_pid=None,
                       proc_root=_procfs.PROC, sleep=time.sleep, huge=None):
    """Sample CPU time twice over ``window_s`` and return (processes, summary).

    ``processes`` are the ``top`` busiest matching processes (all when ``top`` is 0),
    highest CPU-time delta first, ties by PID. Kernel threads, zombies, ``self_pid``
    with its ancestors, ``exclude_pids`` and processes that exit before their files
    are read are left out.
    """
    name_re = compile_pattern("name_pattern", name_pattern)
    cmdline_re = compile_pattern("cmdline_pattern", cmdline_pattern)
    uids = resolve_users(users) if users else None
    huge = huge or pmd_size()
    ticks = float(clock_ticks())
    self_pid = os.getpid() if self_pid is None else self_pid
    excluded = set(_procfs.ancestors(self_pid, proc_root)) | set(int(p) for p in exclude_pids or ())

    first, t_first = sample_cpu(proc_root)
    if window_s > 0:
        sleep(window_s)
    second, t_second = sample_cpu(proc_root)
    elapsed = max(t_second - t_first, 1e-6)

    summary = {
        "window_s": round(elapsed, 6),
        "scanned": len(second),
        "exited": len(set(first) - set(second)),
        "kernel_threads": 0,
        "excluded": 0,
        "filtered": 0,
        "unreadable": 0,
        "matched": 0,
    }
    candidates = []
    for delta, pid in rank_by_cpu(first, second):
        st = second[pid]
        if _procfs.is_kernel_thread(st):
            summary["kernel_threads"] += 1
            continue
        if st["state"] in ("Z", "X", "x"):
            summary["exited"] += 1
            continue
        if pid in excluded:
            summary["excluded"] += 1
            continue
        cpu_seconds = delta / ticks
        cpu_pct = 100.0 * cpu_seconds / elapsed
        if cpu_pct < min_cpu_pct:
            summary["filtered"] += 1
            continue
        try:
            status = _procfs.read_status(pid, proc_root)
            cmdline = _procfs.read_cmdline(pid, proc_root)
            if _procfs.is_kernel_thread(st, cmdline):
                summary["kernel_threads"] += 1
                continue
            anon_rss = _procfs.kb_value(status.get("RssAnon"))
            if anon_rss is None:
                anon_rss = _procfs.read_smaps_rollup(pid, proc_root).get("Anonymous", 0)
            uid = _procfs.status_uid(status)
            if anon_rss < min_anon_rss_bytes or (uids is not None and uid not in uids):
                summary["filtered"] += 1
                continue
            if name_re is not None:
                argv0 = os.path.basename(cmdline[0]) if cmdline else ""
                if not (bounded_search(name_re, st["comm"], "name_pattern", pid)
                        or (argv0 and bounded_search(name_re, argv0, "name_pattern", pid))):
                    summary["filtered"] += 1
                    continue
            if cmdline_re is not None and not bounded_search(cmdline_re, " ".join(cmdline), "cmdline_pattern", pid):
                summary["filtered"] += 1
                continue
            cgroups = _procfs.read_cgroup(pid, proc_root)
            if cgroup is not None and not _procfs.cgroup_matches(cgroups, cgroup):
                summary["filtered"] += 1
                continue
        except _procfs.ProcessGone:
            summary["exited"] += 1
            continue
        except _procfs.ProcError:
            summary["unreadable"] += 1
            continue
        candidates.append({
            "pid": pid,
            "ppid": st["ppid"],
            "comm": st["comm"],
            "cmdline": cmdline,
            "uid": uid,
            "cgroup": _procfs.main_cgroup_path(cgroups),
            "cpu_seconds": round(cpu_seconds, 6),
            "cpu_pct": round(cpu_pct, 2),
            "threads": st["num_threads"],
            "anon_rss_bytes": anon_rss,
            "thp_disabled": status.get("THP_enabled", "1").strip() == "0",
        })
    summary["matched"] = len(candidates)

    names = {}
    processes = []
    for proc in candidates:
        if top and len(processes) >= top:
            break
        try:
            rollup = _procfs.read_smaps_rollup(proc["pid"], proc_root)
            anon_huge = rollup.get("AnonHugePages", 0)
        except _procfs.ProcessGone:
            summary["exited"] += 1
            summary["matched"] -= 1
            continue
        except _procfs.ProcError:
            anon_huge = None
        proc["user"] = user_name(proc["uid"], names) if proc["uid"] is not None else None
        proc["anon_huge_bytes"] = anon_huge
        proc["thp_eligible"] = (not proc.pop("thp_disabled")) and proc["anon_rss_bytes"] >= huge
        processes.append(proc)
    return processes, summary
