# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only parsing of /proc shared by the hot_processes and collapse modules.

Everything here only reads. Processes come and go while we read: a file of a
process that has exited raises :class:`ProcessGone` (ENOENT or ESRCH), a file
we may not read raises :class:`ProcAccessDenied` (EACCES or EPERM), so callers
can skip such processes without catching raw ``OSError``.

Formats (proc(5), Documentation/filesystems/proc.rst):

* ``stat``: ``pid (comm) state ppid ...``; comm may contain spaces and
  parentheses, so it ends at the *last* ``)``. Field 9 is ``flags``
  (``PF_KTHREAD`` = 0x00200000), fields 14/15 ``utime``/``stime`` in clock
  ticks, field 22 ``starttime`` in clock ticks since boot.
* ``status``, ``smaps_rollup``, ``smaps``: ``Key: value [kB]`` lines.
* ``pagemap``: one native-endian 64-bit entry per virtual page; bit 63 page
  present, bit 62 swapped, bits 0-54 the PFN (zero without CAP_SYS_ADMIN).
* ``/proc/kpageflags``: one 64-bit flag word per PFN (root only); bit 15
  ``COMPOUND_HEAD``, 16 ``COMPOUND_TAIL``, 22 ``THP``, 24 ``ZERO_PAGE``.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re
import signal
import threading
import time
from array import array

PROC = "/proc"

PF_KTHREAD = 0x00200000
# include/linux/threads.h (64-bit): pid_max can be raised to this at most, and PIDs are below pid_max.
PID_MAX_LIMIT = 4194304

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_PFN_MASK = (1 << 55) - 1

KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
KPF_THP = 1 << 22
KPF_ZERO_PAGE = 1 << 24

ENTRY_SIZE = 8  # bytes per pagemap / kpageflags entry

_GONE = (errno_mod.ENOENT, errno_mod.ESRCH)
_DENIED = (errno_mod.EACCES, errno_mod.EPERM)


class ProcError(Exception):
    """A /proc read failed for a reason other than the process being gone or access denied."""

    def __init__(self, path, err, what=None):
        self.path = path
        self.errno = err
        name = errno_mod.errorcode.get(err, "E?")
        msg = "reading %s failed: %s (%s)" % (path, os.strerror(err), name)
        if what:
            msg += "; " + what
        super().__init__(msg)


class ProcessGone(ProcError):
    """The process exited (or never existed) while we read its files."""


class ProcAccessDenied(ProcError):
    """We may not read this file of the process (ptrace access, hidepid, ...)."""


def _raise_for(path, exc):
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
        _raise_for(path, e)


def read_text(path):
    return read_bytes(path).decode("utf-8", "replace")


def pid_path(pid, name, proc_root=PROC):
    return os.path.join(proc_root, str(pid), name)


def page_size():
    return os.sysconf("SC_PAGE_SIZE")


def pmd_size(sysfs_root="/sys"):
    """Size of a PMD-mapped huge page (2 MiB on x86-64 with 4 KiB pages).

    Read from ``kernel/mm/transparent_hugepage/hpage_pmd_size`` (read only);
    without it, 512 base pages, which is the PMD size of every 4 KiB-page
    architecture.
    """
    try:
        with open(os.path.join(sysfs_root, "kernel/mm/transparent_hugepage/hpage_pmd_size")) as f:
            value = int(f.read().strip())
        if value > 0:
            return value
    except (OSError, ValueError):
        pass
    return page_size() * (page_size() // ENTRY_SIZE)


def clock_ticks():
    return os.sysconf("SC_CLK_TCK")


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


def parse_smaps(text):
    vmas = []
    current = None
    for line in text.splitlines():
        vma = _parse_vma_header(line)
        if vma is not None:
            current = vma
            vmas.append(vma)
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
    return vmas


def iter_smaps(pid, proc_root=PROC, keep=None):
    """Mappings of /proc/PID/smaps, read line by line (not the whole file at once).

    ``keep(vma)``, given a mapping's header, drops the mappings not wanted before
    their fields are parsed: memory stays bounded by what the caller keeps.
    """
    path = pid_path(pid, "smaps", proc_root)
    current = None
    try:
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\n")
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
    except OSError as e:
        _raise_for(path, e)
    if current is not None:
        yield current


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


# --- pagemap and kpageflags ----------------------------------------------------

def _pread_entries(fd, index, count, path):
    """``count`` 64-bit entries from entry ``index`` of an open pagemap/kpageflags file."""
    want = count * ENTRY_SIZE
    data = b""
    offset = index * ENTRY_SIZE
    try:
        while len(data) < want:
            chunk = os.pread(fd, want - len(data), offset + len(data))
            if not chunk:
                break
            data += chunk
    except OSError as e:
        _raise_for(path, e)
    entries = array("Q")
    entries.frombytes(data[:len(data) - len(data) % ENTRY_SIZE])
    return entries


class _FdFile(object):
    """A /proc file kept open for pread(2); closes on exit of a with block."""

    fd = None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pagemap(_FdFile):
    """/proc/PID/pagemap opened once; ``entries(start, end)`` per virtual page."""

    def __init__(self, pid, proc_root=PROC, page=None):
        self.path = pid_path(pid, "pagemap", proc_root)
        self.page = page or page_size()
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except OSError as e:
            _raise_for(self.path, e)

    def entries(self, start, end):
        first = start // self.page
        count = (end - start) // self.page
        result = _pread_entries(self.fd, first, count, self.path)
        if len(result) != count:
            # Reads stop at the end of the address space only; anything shorter is a vanished mm.
            raise ProcessGone(self.path, errno_mod.ESRCH)
        return result


class KPageFlags(_FdFile):
    """/proc/kpageflags when readable (root), else ``available`` is False."""

    def __init__(self, path=os.path.join(PROC, "kpageflags")):
        self.path = path
        self.fd = None
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except OSError:
            self.fd = None

    @property
    def available(self):
        return self.fd is not None

    def flags(self, pfn, count=1):
        if self.fd is None:
            return None
        try:
            return _pread_entries(self.fd, pfn, count, self.path)
        except ProcError:
            return None


def count_populated(entries):
    """(present, swapped) counts of pagemap entries."""
    present = swapped = 0
    for e in entries:
        if e & PM_PRESENT:
            present += 1
        elif e & PM_SWAP:
            swapped += 1
    return present, swapped


def pfns_known(entries):
    """True when present entries carry PFNs (we have CAP_SYS_ADMIN)."""
    for e in entries:
        if e & PM_PRESENT:
            return bool(e & PM_PFN_MASK)
    return False


def is_whole_thp(entries, kpageflags):
    """Whether the pages of one PMD-sized, PMD-aligned chunk are exactly one huge folio.

    True when every page is present, the PFNs are contiguous from a PFN aligned to
    the chunk's page count, the first page is a THP compound head and all the
    others are its tails. None when that cannot be told (no PFNs or no kpageflags).
    """
    n = len(entries)
    if n == 0:
        return False
    first = entries[0]
    if not first & PM_PRESENT:
        return False
    pfn0 = first & PM_PFN_MASK
    if not pfn0:
        return None
    if pfn0 % n:
        return False
    for i in range(n):
        e = entries[i]
        if not e & PM_PRESENT or (e & PM_PFN_MASK) != pfn0 + i:
            return False
    if kpageflags is None or not kpageflags.available:
        return None
    flags = kpageflags.flags(pfn0, n)
    if flags is None or len(flags) != n:
        return None
    if not (flags[0] & KPF_THP and flags[0] & KPF_COMPOUND_HEAD):
        return False
    for f in flags[1:]:
        if not (f & KPF_THP and f & KPF_COMPOUND_TAIL):
            return False
    return True


def range_huge_bytes(pid, start, end, huge=None, proc_root=PROC, kpageflags=None):
    """Bytes of [start, end) backed by whole PMD-sized THPs; None when that cannot be
    told (PFNs and /proc/kpageflags need CAP_SYS_ADMIN).

    Only the PMD-aligned chunks inside the range are examined. Unlike per-VMA
    smaps, this separates ranges even when neighbouring mappings merged.
    """
    huge = huge or pmd_size()
    astart = -(-start // huge) * huge
    aend = end // huge * huge
    if aend <= astart:
        return 0
    own = kpageflags is None
    kpf = KPageFlags() if own else kpageflags
    try:
        if not kpf.available:
            return None
        total = 0
        with Pagemap(pid, proc_root) as pm:
            entries = pm.entries(astart, aend)
            per = huge // pm.page
            for i in range(0, len(entries), per):
                verdict = is_whole_thp(entries[i:i + per], kpf)
                if verdict is None:
                    return None
                if verdict:
                    total += huge
        return total
    finally:
        if own:
            kpf.close()


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


# --- CPU sampling ----------------------------------------------------------------

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


# --- hot processes -----------------------------------------------------------------

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


def find_hot_processes(window_s=1.0, top=5, min_anon_rss_bytes=0, min_cpu_pct=0.0, name_pattern=None,
                       cmdline_pattern=None, users=None, cgroup=None, exclude_pids=(), self_pid=None,
                       proc_root=PROC, sleep=time.sleep, huge=None):
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
    excluded = set(ancestors(self_pid, proc_root)) | set(int(p) for p in exclude_pids or ())

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
        if is_kernel_thread(st):
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
            status = read_status(pid, proc_root)
            cmdline = read_cmdline(pid, proc_root)
            if is_kernel_thread(st, cmdline):
                summary["kernel_threads"] += 1
                continue
            anon_rss = kb_value(status.get("RssAnon"))
            if anon_rss is None:
                anon_rss = read_smaps_rollup(pid, proc_root).get("Anonymous", 0)
            uid = status_uid(status)
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
            cgroups = read_cgroup(pid, proc_root)
            if cgroup is not None and not cgroup_matches(cgroups, cgroup):
                summary["filtered"] += 1
                continue
        except ProcessGone:
            summary["exited"] += 1
            continue
        except ProcError:
            summary["unreadable"] += 1
            continue
        candidates.append({
            "pid": pid,
            "ppid": st["ppid"],
            "comm": st["comm"],
            "cmdline": cmdline,
            "uid": uid,
            "cgroup": main_cgroup_path(cgroups),
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
            rollup = read_smaps_rollup(proc["pid"], proc_root)
            anon_huge = rollup.get("AnonHugePages", 0)
        except ProcessGone:
            summary["exited"] += 1
            summary["matched"] -= 1
            continue
        except ProcError:
            anon_huge = None
        proc["user"] = user_name(proc["uid"], names) if proc["uid"] is not None else None
        proc["anon_huge_bytes"] = anon_huge
        proc["thp_eligible"] = (not proc.pop("thp_disabled")) and proc["anon_rss_bytes"] >= huge
        processes.append(proc)
    return processes, summary
