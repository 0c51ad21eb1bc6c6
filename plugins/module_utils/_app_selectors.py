# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Applications declared by selector (name, command line, systemd unit, cgroup, user), resolved to processes.

An application is known by its name, not by a PID: each run resolves its
selector again, so a restarted process keeps the application's name and with it
its kdamond slot (``hugepage:NAME``) and learned threshold.

An application whose selector matches several processes (a database with worker
processes, a pre-forking server) is tuned as its ``processes`` largest members
by anonymous memory, each with its own kdamond and threshold: a process's
access distribution is its own, and DAMON reports tried regions without saying
which target they belong to, so one kdamond cannot watch several processes
chunk by chunk. Members are named ``NAME``, ``NAME#2``, ... in the order the
processes started, so a member keeps its slot for as long as it runs.

Every selector criterion must hold (they are ANDed). A process goes to the
first application that selects it; later applications do not get it again.
Everything here only reads /proc.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._hot_processes import (
    HotProcessError, bounded_search, compile_pattern, resolve_users,
)

CRITERIA = ("name_pattern", "cmdline_pattern", "systemd_unit", "cgroup", "users")
MEMBER_SEP = "#"
# what one application may monitor at most: each member is one kdamond (one kernel thread)
MAX_PROCESSES = 16


class _Selector(object):
    def __init__(self, spec, index):
        self.name = spec.get("name")
        where = "applications[%d]" % index
        if not self.name or not isinstance(self.name, str) or MEMBER_SEP in self.name or ":" in self.name:
            raise HotProcessError("%s.name: %r must be a non-empty name without %r or ':'" % (
                where, self.name, MEMBER_SEP))
        where = "applications[%s]" % self.name
        if not any(spec.get(k) for k in CRITERIA):
            raise HotProcessError("%s: give at least one of %s; a name alone selects nothing" % (
                where, ", ".join(CRITERIA)))
        self.processes = spec.get("processes") or 1
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise HotProcessError("%s.processes: %r is not within 1..%d (each process is one kdamond)" % (
                where, self.processes, MAX_PROCESSES))
        self.budget_bytes = spec.get("budget_bytes") or 0
        self.name_re = compile_pattern(where + ".name_pattern", spec.get("name_pattern") or None)
        self.cmdline_re = compile_pattern(where + ".cmdline_pattern", spec.get("cmdline_pattern") or None)
        unit = spec.get("systemd_unit") or None
        if unit and ("/" in unit or "." not in unit):
            raise HotProcessError("%s.systemd_unit: %r is not a unit name such as redis-server.service" % (
                where, unit))
        self.unit = unit
        self.cgroup = spec.get("cgroup") or None
        try:
            self.uids = resolve_users(spec.get("users")) if spec.get("users") else None
        except HotProcessError as e:
            raise HotProcessError("%s.%s" % (where, e))
        self.where = where

    def matches(self, proc):
        if self.uids is not None and proc.uid not in self.uids:
            return False
        if self.name_re is not None:
            argv0 = os.path.basename(proc.cmdline[0]) if proc.cmdline else ""
            if not (bounded_search(self.name_re, proc.comm, self.where + ".name_pattern", proc.pid)
                    or (argv0 and bounded_search(self.name_re, argv0, self.where + ".name_pattern", proc.pid))):
                return False
        if self.cmdline_re is not None and not bounded_search(
                self.cmdline_re, " ".join(proc.cmdline), self.where + ".cmdline_pattern", proc.pid):
            return False
        if self.unit is not None and not any(self.unit in e["path"].split("/") for e in proc.cgroups):
            return False
        return self.cgroup is None or _procfs.cgroup_matches(proc.cgroups, self.cgroup)


class _Process(object):
    """The /proc facts of one user-space process the selectors look at."""

    def __init__(self, pid, stat, proc_root):
        self.pid, self.comm, self.starttime = pid, stat["comm"], stat["starttime"]
        status = _procfs.read_status(pid, proc_root)
        self.uid = _procfs.status_uid(status)
        self.cmdline = _procfs.read_cmdline(pid, proc_root)
        self.cgroups = _procfs.read_cgroup(pid, proc_root)
        anon = _procfs.kb_value(status.get("RssAnon"))
        self.anon_rss_bytes = anon if anon is not None else 0


def _processes(proc_root, excluded, summary):
    """Every readable user-space process except ``excluded``; kernel threads are counted, not returned
    (they have no user memory: a selector that matches only them says so)."""
    procs, kthreads = [], []
    for pid in _procfs.list_pids(proc_root):
        if pid in excluded:
            continue
        try:
            stat = _procfs.read_stat(pid, proc_root)
            if stat["state"] in ("Z", "X", "x"):
                continue
            if _procfs.is_kernel_thread(stat, _procfs.read_cmdline(pid, proc_root) if stat["ppid"] == 2 else None):
                kthreads.append((pid, stat["comm"]))
                continue
            procs.append(_Process(pid, stat, proc_root))
        except _procfs.ProcessGone:
            continue
        except _procfs.ProcError:
            summary["unreadable"] += 1
    summary["scanned"] = len(procs) + len(kthreads)
    return procs, kthreads


def resolve(specs, proc_root=_procfs.PROC, self_pid=None, exclude_pids=()):
    """Resolve application selectors to processes.

    Returns (apps, report, summary): ``apps`` is a list of {name, pid, budget_bytes, application}
    (one per member, ready for hugepage_tune); ``report`` one entry per application with ``matched``
    (processes its selector matched), ``pids`` (its members), ``taken`` (matches an earlier application
    got) and a ``msg`` when it resolved to nothing or to fewer processes than it matched.
    """
    selectors = [_Selector(spec, i) for i, spec in enumerate(specs or ())]
    names = [s.name for s in selectors]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise HotProcessError("applications: names must be unique; repeated: %s" % ", ".join(duplicates))
    self_pid = os.getpid() if self_pid is None else self_pid
    excluded = set(_procfs.ancestors(self_pid, proc_root)) | set(int(p) for p in exclude_pids or ())
    summary = {"scanned": 0, "unreadable": 0}
    procs, kthreads = _processes(proc_root, excluded, summary)
    claimed, apps, report = {}, [], []
    for sel in selectors:
        matched = [p for p in procs if sel.matches(p)]
        free = [p for p in matched if p.pid not in claimed]
        chosen = sorted(sorted(free, key=lambda p: (-p.anon_rss_bytes, p.pid))[:sel.processes],
                        key=lambda p: (p.starttime, p.pid))
        entry = {"name": sel.name, "matched": len(matched), "pids": [p.pid for p in chosen],
                 "taken": dict((p.pid, claimed[p.pid]) for p in matched if p.pid in claimed)}
        for rank, proc in enumerate(chosen):
            claimed[proc.pid] = sel.name
            member = sel.name if rank == 0 else "%s%s%d" % (sel.name, MEMBER_SEP, rank + 1)
            apps.append({"name": member, "pid": proc.pid, "budget_bytes": sel.budget_bytes, "application": sel.name})
        entry["msg"] = _explain(sel, matched, free, chosen, entry["taken"], kthreads)
        report.append(entry)
    return apps, report, summary


def _explain(sel, matched, free, chosen, taken, kthreads):
    if not matched:
        kernel = [comm for pid, comm in kthreads if sel.name_re is not None and sel.name_re.search(comm)]
        if kernel:
            return ("%s: its selector matches only kernel threads (%s), which have no user memory to collapse" % (
                sel.name, ", ".join(sorted(set(kernel))[:5])))
        return "%s: no process matches its selector; not tuned this run" % sel.name
    if not free:
        return "%s: every process its selector matches belongs to an earlier application (%s); not tuned" % (
            sel.name, ", ".join(sorted(set(taken.values()))))
    if len(free) > len(chosen):
        return ("%s: its selector matches %d processes; tuning the %d with the most anonymous memory (PID %s; "
                "raise processes to tune more)" % (sel.name, len(free), len(chosen),
                                                   ", ".join(str(p.pid) for p in chosen)))
    return None
