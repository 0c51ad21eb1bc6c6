# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only parsing of /proc: stat, status, cmdline, cgroup, maps/smaps, the process tree.

Everything here only reads. Processes come and go while we read: a file of a
process that has exited raises :class:`ProcessGone` (ENOENT or ESRCH), a file
we may not read raises :class:`ProcAccessDenied` (EACCES or EPERM), so callers
can skip such processes without catching raw ``OSError``. Page maps and huge
pages are in :mod:`_pagemap`, CPU sampling in :mod:`_cpu_sampling`, the
hot_processes ranking in :mod:`_hot_processes`.

Formats (proc(5), Documentation/filesystems/proc.rst):

* ``stat``: ``pid (comm) state ppid ...``; comm may contain spaces and
  parentheses, so it ends at the *last* ``)``. Field 9 is ``flags``
  (``PF_KTHREAD`` = 0x00200000), fields 14/15 ``utime``/``stime`` in clock
  ticks, field 22 ``starttime`` in clock ticks since boot.
* ``status``, ``smaps_rollup``, ``smaps``: ``Key: value [kB]`` lines.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re

from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import errno_words

PROC = "/proc"

PF_KTHREAD = 0x00200000
# include/linux/threads.h (64-bit): pid_max can be raised to this at most, and PIDs are below pid_max.
PID_MAX_LIMIT = 4194304

_GONE = (errno_mod.ENOENT, errno_mod.ESRCH)
_DENIED = (errno_mod.EACCES, errno_mod.EPERM)


class ProcError(Exception):
    """A /proc read failed for a reason other than the process being gone or access denied."""

    def __init__(self, path, err, what=None):
        self.path = path
        self.errno = err
        msg = "reading %s failed: %s" % (path, errno_words(err))
        if what:
            msg += "; " + what
        super().__init__(msg)


class ProcessGone(ProcError):
    """The process exited (or never existed) while we read its files."""


class ProcAccessDenied(ProcError):
    """We may not read this file of the process (ptrace access, hidepid, ...)."""


def raise_for(path, exc):
    """Raise ProcessGone, ProcAccessDenied or ProcError for an OSError from reading ``path``."""
    err = exc.errno or errno_mod.EIO
    if err in _GONE:
        raise ProcessGone(path, err)
    if err in _DENIED:
        raise ProcAccessDenied(path, err)
    raise ProcError(path, err)


def read_bytes(path):
    """Whole content of a /proc file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise_for(path, e)


def read_text(path):
    return read_bytes(path).decode("utf-8", "replace")


def bad_pid(pid):
    """Why ``pid`` cannot be a process id (1 .. PID_MAX_LIMIT - 1), or None."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < PID_MAX_LIMIT:
        return "%r is not a valid PID (1..%d; PID_MAX_LIMIT is %d)" % (pid, PID_MAX_LIMIT - 1, PID_MAX_LIMIT)
    return None


def pid_path(pid, name, proc_root=PROC):
    return os.path.join(proc_root, str(pid), name)


# --- listing -------------------------------------------------------------

def list_pids(proc_root=PROC):
    """PIDs (thread-group ids) of every process, ascending."""
    pids = []
    with os.scandir(proc_root) as it:
        for entry in it:
            if entry.name.isdigit():
                pids.append(int(entry.name))
    pids.sort()
    return pids


# --- stat ---------------------------------------------------------------

def parse_stat(text):
    """Fields of /proc/PID/stat we use; comm ends at the last ')'."""
    open_paren = text.index("(")
    close_paren = text.rindex(")")
    pid = int(text[:open_paren].strip())
    comm = text[open_paren + 1:close_paren]
    rest = text[close_paren + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    return {
        "pid": pid,
        "comm": comm,
        "state": rest[0],
        "ppid": int(rest[1]),
        "flags": int(rest[6]),
        "utime": int(rest[11]),
        "stime": int(rest[12]),
        "num_threads": int(rest[17]),
        "starttime": int(rest[19]),
        "rss_pages": int(rest[21]),
    }


def read_stat(pid, proc_root=PROC):
    path = pid_path(pid, "stat", proc_root)
    text = read_text(path)
    try:
        return parse_stat(text)
    except (ValueError, IndexError):
        # An empty read happens when the process is being reaped.
        if not text.strip():
            raise ProcessGone(path, errno_mod.ESRCH)
        raise ProcError(path, errno_mod.EINVAL, "unexpected format: %r" % text[:200])


def is_kernel_thread(stat, cmdline=None):
    """True for kernel threads: PF_KTHREAD set, or kthreadd itself / its children with no cmdline."""
    if stat["flags"] & PF_KTHREAD:
        return True
    if stat["pid"] == 2 or (stat["ppid"] == 2 and cmdline is not None and not cmdline):
        return True
    return False


def read_identity(pid, proc_root=PROC):
    """(comm, is a kernel thread) of ``pid``; None when it cannot be read (gone, denied).

    The command line is read only for children of kthreadd, where an empty one tells a
    kernel thread on kernels whose stat flags do not show PF_KTHREAD.
    """
    try:
        stat = read_stat(pid, proc_root)
        cmdline = read_cmdline(pid, proc_root) if stat["ppid"] == 2 else None
    except ProcError:
        return None
    return stat["comm"], is_kernel_thread(stat, cmdline)


# --- status ----------------------------------------------------------------

def parse_status(text):
    """``Key:\\tvalue`` lines of /proc/PID/status as a dict of stripped strings."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key] = value.strip()
    return result


def kb_value(text):
    """'1234 kB' -> 1263616 (bytes); None when absent or malformed."""
    if text is None:
        return None
    parts = text.split()
    if not parts:
        return None
    try:
        number = int(parts[0])
    except ValueError:
        return None
    if len(parts) > 1 and parts[1] == "kB":
        return number * 1024
    return number


def read_status(pid, proc_root=PROC):
    return parse_status(read_text(pid_path(pid, "status", proc_root)))


def status_uid(status, which="effective"):
    """Real, effective, saved or filesystem uid from a parsed status."""
    index = {"real": 0, "effective": 1, "saved": 2, "filesystem": 3}[which]
    fields = status.get("Uid", "").split()
    return int(fields[index]) if len(fields) > index else None


# --- cmdline -----------------------------------------------------------------

def parse_cmdline(data):
    """NUL-separated argv bytes -> list of strings (empty for kernel threads and zombies)."""
    if not data:
        return []
    if data.endswith(b"\0"):
        data = data[:-1]
    return [arg.decode("utf-8", "replace") for arg in data.split(b"\0")]


def read_cmdline(pid, proc_root=PROC):
    return parse_cmdline(read_bytes(pid_path(pid, "cmdline", proc_root)))


# --- cgroup ------------------------------------------------------------------

def parse_cgroup(text):
    """Lines ``id:controllers:path`` -> list of dicts (controllers as a list)."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        entries.append({
            "hierarchy": int(hier) if hier.isdigit() else hier,
            "controllers": [c for c in controllers.split(",") if c],
            "path": path,
        })
    return entries


def read_cgroup(pid, proc_root=PROC):
    return parse_cgroup(read_text(pid_path(pid, "cgroup", proc_root)))


def main_cgroup_path(entries):
    """The cgroup path worth showing: the unified (v2) path on pure cgroup v2 hosts,
    else the v1 ``memory`` controller's path, else the ``name=systemd`` path,
    else the unified path, else the first one."""
    if not entries:
        return None
    unified = [e for e in entries if e["hierarchy"] == 0 and not e["controllers"]]
    if len(entries) == 1:
        return entries[0]["path"]
    for e in entries:
        if "memory" in e["controllers"]:
            return e["path"]
    for e in entries:
        if "name=systemd" in e["controllers"]:
            return e["path"]
    if unified:
        return unified[0]["path"]
    return entries[0]["path"]


def cgroup_matches(entries, wanted):
    """``wanted`` starting with '/' is a path prefix on component boundaries
    (``/system.slice`` matches ``/system.slice/x.service``); anything else is a
    substring. True when any hierarchy's path matches."""
    for e in entries:
        path = e["path"]
        if wanted.startswith("/"):
            prefix = wanted.rstrip("/")
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                return True
        elif wanted in path:
            return True
    return False


# --- smaps, smaps_rollup, maps ---------------------------------------------------

_VMA_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s*(.*)$")


def parse_smaps_rollup(text):
    """``Key: N kB`` lines -> dict of bytes (the ``[rollup]`` header is ignored)."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or " " in key:
            continue
        number = kb_value(value.strip())
        if number is not None:
            result[key] = number
    return result


def read_smaps_rollup(pid, proc_root=PROC):
    return parse_smaps_rollup(read_text(pid_path(pid, "smaps_rollup", proc_root)))


def anon_huge_bytes(pid, proc_root=PROC):
    """AnonHugePages of /proc/PID/smaps_rollup in bytes (PMD-mapped anonymous THP)."""
    return read_smaps_rollup(pid, proc_root).get("AnonHugePages", 0)


class Vma(object):
    """One mapping of /proc/PID/maps or /proc/PID/smaps."""

    __slots__ = ("start", "end", "perms", "offset", "dev", "inode", "path", "fields", "vm_flags")

    def __init__(self, start, end, perms, offset=0, dev="00:00", inode=0, path="", fields=None, vm_flags=None):
        self.start = start
        self.end = end
        self.perms = perms
        self.offset = offset
        self.dev = dev
        self.inode = inode
        self.path = path
        self.fields = fields if fields is not None else {}
        self.vm_flags = vm_flags  # None when read from maps (no VmFlags line)

    @property
    def private(self):
        return self.perms[3:4] == "p"

    @property
    def anonymous(self):
        """Private anonymous memory: no file (heap, stack and unnamed maps count)."""
        return self.inode == 0 and (not self.path or self.path.startswith("[") or self.path.startswith("[anon:"))

    @property
    def anon_huge_bytes(self):
        return self.fields.get("AnonHugePages", 0)

    @property
    def thp_eligible(self):
        value = self.fields.get("THPeligible")
        return None if value is None else bool(value)

    def contains(self, start, end):
        return self.start <= start and end <= self.end

    def ineligibility(self):
        """Why MADV_COLLAPSE would refuse this mapping (None when nothing is known against it)."""
        reasons = []
        flags = self.vm_flags or ()
        if "nh" in flags:
            reasons.append("VM_NOHUGEPAGE is set (madvise MADV_NOHUGEPAGE)")
        if not self.private:
            reasons.append("shared mapping (MAP_SHARED: shmem/file THP rules apply)")
        if "io" in flags or "pf" in flags:
            reasons.append("special mapping (VM_IO/VM_PFNMAP)")
        if self.inode:
            reasons.append("file-backed mapping %s" % (self.path or "inode %d" % self.inode))
        return "; ".join(reasons) if reasons else None

    def as_dict(self):
        return {
            "start": self.start,
            "end": self.end,
            "perms": self.perms,
            "path": self.path,
            "anon_huge_bytes": self.anon_huge_bytes,
            "thp_eligible": self.thp_eligible,
            "vm_flags": sorted(self.vm_flags) if self.vm_flags is not None else None,
        }


def _parse_vma_header(line):
    m = _VMA_HEADER.match(line)
    if not m:
        return None
    return Vma(int(m.group(1), 16), int(m.group(2), 16), m.group(3), int(m.group(4), 16),
               m.group(5), int(m.group(6)), m.group(7).strip())


def parse_maps(text):
    vmas = []
    for line in text.splitlines():
        vma = _parse_vma_header(line)
        if vma is not None:
            vmas.append(vma)
    return vmas


def _smaps_mappings(lines, keep=None):
    """Mappings with their fields from smaps lines; ``keep(vma)`` drops unwanted ones before their fields."""
    current = None
    for line in lines:
        vma = _parse_vma_header(line)
        if vma is not None:
            if current is not None:
                yield current
            current = vma if keep is None or keep(vma) else None
            continue
        if current is None:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key == "VmFlags":
            current.vm_flags = frozenset(value.split())
        else:
            number = kb_value(value.strip())
            if number is not None:
                current.fields[key] = number
    if current is not None:
        yield current


def parse_smaps(text):
    return list(_smaps_mappings(text.splitlines()))


def iter_smaps(pid, proc_root=PROC, keep=None):
    """Mappings of /proc/PID/smaps, read line by line (not the whole file at once).

    ``keep(vma)``, given a mapping's header, drops the mappings not wanted before
    their fields are parsed: memory stays bounded by what the caller keeps.
    """
    path = pid_path(pid, "smaps", proc_root)
    try:
        with open(path, "rb") as f:
            yield from _smaps_mappings((raw.decode("utf-8", "replace").rstrip("\n") for raw in f), keep)
    except OSError as e:
        raise_for(path, e)


def read_maps(pid, proc_root=PROC):
    return parse_maps(read_text(pid_path(pid, "maps", proc_root)))


def read_smaps(pid, proc_root=PROC):
    return parse_smaps(read_text(pid_path(pid, "smaps", proc_root)))


def find_vma(vmas, start, end):
    """The mapping holding all of [start, end), or None (unmapped, or split across mappings)."""
    for vma in vmas:
        if vma.start <= start < vma.end:
            return vma if end <= vma.end else None
    return None


# --- process tree ----------------------------------------------------------------

def ancestors(pid, proc_root=PROC, limit=4096):
    """``pid`` and its ancestors up to (and including) the first one whose parent is 0."""
    chain = []
    seen = set()
    current = pid
    while current and current not in seen and len(chain) < limit:
        seen.add(current)
        chain.append(current)
        try:
            current = read_stat(current, proc_root)["ppid"]
        except ProcError:
            break
    return chain
