# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""User-space huge-page collapse of given ranges of another process.

This is the DAMOS ``collapse`` action (Linux 7.2) done from user space for older
kernels: ``pidfd_open(pid)`` then ``process_madvise(pidfd, iov, n,
MADV_COLLAPSE, 0)``.

The work is split in two steps so it can be tested without a kernel:

1. :func:`plan` cuts each range, aligned inward to the PMD size (2 MiB on
   x86-64), into PMD-sized chunks and decides per chunk: collapse it, or skip it
   because it is not inside one mapping, already a huge page, too sparse (fewer
   resident base pages than ``min_density``: MADV_COLLAPSE fills holes with zero
   pages, which is memory bloat), or beyond the byte quota.
2. :func:`execute` hands the chosen chunks to the kernel, one iovec per chunk and
   at most IOV_MAX iovecs per call. process_madvise() returns the bytes of the
   iovecs it finished before the first failure and loses that failure's errno, so
   the failing chunk is retried alone to learn why (EAGAIN is retried up to
   ``retries`` times) and the batch continues after it. Errors that concern the
   whole call (ESRCH, EPERM, ENOSYS, EBADF) stop the run.

Why one iovec per chunk: MADV_COLLAPSE on a multi-chunk range keeps going after a
failed chunk but reports only the last error, so per-chunk iovecs are the only way
to account every chunk exactly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
import platform
import time

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs

MADV_COLLAPSE = 25  # include/uapi/asm-generic/mman-common.h, Linux 6.1
IOV_MAX = 1024  # UIO_MAXIOV; process_madvise() rejects larger vectors with EINVAL

# process_madvise was added in Linux 5.10, after the syscall tables were unified
# (5.1): every architecture with the generic numbering (x86-64, i386, arm, arm64,
# riscv, loongarch, powerpc, s390, sparc, parisc, m68k, sh, xtensa, microblaze,
# csky, ...) uses 440 (include/uapi/asm-generic/unistd.h; arch/*/syscall*.tbl).
# Exceptions are the tables with an offset: alpha (+110) and the three MIPS ABIs
# (o32 4000+, n64 5000+, n32 6000+). x32 is 440 | __X32_SYSCALL_BIT.
SYS_PROCESS_MADVISE = 440
_SYSCALL_EXCEPTIONS = {
    "alpha": 550,
}
_MIPS_NUMBERS = {"o32": 4440, "n64": 5440, "n32": 6440}
_X32_SYSCALL_BIT = 0x40000000

STATES = ("collapse", "skipped_unmapped", "skipped_already_huge", "skipped_sparse", "skipped_quota", "duplicate")

# Errors that concern the call, not a chunk: stop at the first one.
FATAL_ERRNOS = (errno_mod.ESRCH, errno_mod.EPERM, errno_mod.ENOSYS, errno_mod.EBADF, errno_mod.EFAULT)
RETRY_ERRNOS = (errno_mod.EAGAIN, errno_mod.EINTR)
RETRY_FIRST_DELAY_S = 0.005
RETRY_MAX_DELAY_S = 0.2

EPERM_HINT = ("process_madvise() needs CAP_SYS_NICE and ptrace read access (PTRACE_MODE_READ) to the target "
              "process; run the task as root (become: true) or grant CAP_SYS_NICE and make sure Yama's "
              "ptrace_scope or a security module does not forbid access")


def errno_name(err):
    return errno_mod.errorcode.get(err, "E%d" % err)


def errno_words(err):
    return "%s (%s)" % (os.strerror(err), errno_name(err))


class CollapseError(Exception):
    """Bad input or a failure that stops the whole run; ``details`` go to the result."""

    def __init__(self, msg, errno=None, process_gone=False, **details):
        super().__init__(msg)
        self.errno = errno
        self.process_gone = process_gone
        self.details = details


def process_madvise_number(machine=None, abi=None):
    """System call number of process_madvise on this architecture."""
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine.startswith("alpha"):
        return _SYSCALL_EXCEPTIONS["alpha"]
    if machine.startswith("mips"):
        if abi is None:
            abi = "n64" if ctypes.sizeof(ctypes.c_void_p) == 8 else "o32"
        return _MIPS_NUMBERS[abi]
    if machine == "x86_64" and abi == "x32":
        return SYS_PROCESS_MADVISE | _X32_SYSCALL_BIT
    return SYS_PROCESS_MADVISE


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class Kernel(object):
    """The real system calls. Tests pass a fake with the same two methods."""

    def __init__(self):
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self._syscall = self._libc.syscall
        self._syscall.restype = ctypes.c_long
        self._nr = process_madvise_number()

    def pidfd_open(self, pid):
        """An fd for ``pid``; raises OSError (ESRCH when there is no such process)."""
        if hasattr(os, "pidfd_open"):
            return os.pidfd_open(pid)
        fd = self._syscall(ctypes.c_long(434), ctypes.c_long(pid), ctypes.c_long(0))
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    def close(self, fd):
        os.close(fd)

    def process_madvise(self, pidfd, iovecs, advice):
        """``iovecs``: [(start, length)]. Returns (bytes advised or -1, errno)."""
        n = len(iovecs)
        array = (_Iovec * n)()
        for i, (start, length) in enumerate(iovecs):
            array[i].iov_base = start
            array[i].iov_len = length
        ctypes.set_errno(0)
        ret = self._syscall(ctypes.c_long(self._nr), ctypes.c_long(pidfd), array, ctypes.c_size_t(n),
                            ctypes.c_long(advice), ctypes.c_ulong(0))
        return (ret, 0) if ret >= 0 else (-1, ctypes.get_errno())


# --- input ---------------------------------------------------------------------

def parse_address(value, what):
    """An address given as int, decimal string or hex string ('0x7f...')."""
    if isinstance(value, bool):
        raise CollapseError("%s: %r is not an address" % (what, value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise CollapseError("%s: %r is not an address (use an integer or a hex string like 0x7f0000000000)"
                                % (what, value))
    else:
        raise CollapseError("%s: %r is not an address" % (what, value))
    if number < 0 or number >= 1 << 64:
        raise CollapseError("%s: %r is outside the 64-bit address space" % (what, value))
    return number


def normalize_ranges(ranges):
    """[{start, end}] (ints or hex strings) -> [(start, end)], validated."""
    if not ranges:
        raise CollapseError("ranges: give at least one {start, end} range")
    result = []
    for i, item in enumerate(ranges):
        if not isinstance(item, dict) or "start" not in item or "end" not in item:
            raise CollapseError("ranges[%d]: %r must be a dict with start and end" % (i, item))
        start = parse_address(item["start"], "ranges[%d].start" % i)
        end = parse_address(item["end"], "ranges[%d].end" % i)
        if end <= start:
            raise CollapseError("ranges[%d]: end %#x is not above start %#x" % (i, end, start))
        result.append((start, end))
    return result


def validate_options(min_density, quota_bytes, retries, huge):
    if not 0.0 <= min_density <= 1.0:
        raise CollapseError("min_density: %r is not a fraction between 0 and 1" % (min_density,))
    if quota_bytes < 0:
        raise CollapseError("quota_bytes: %r is negative (0 means unlimited)" % (quota_bytes,))
    if 0 < quota_bytes < huge:
        raise CollapseError("quota_bytes: %d is below one huge page (%d bytes), so nothing could be collapsed; "
                            "use 0 for no limit or at least %d" % (quota_bytes, huge, huge))
    if retries < 0:
        raise CollapseError("retries: %r is negative" % (retries,))


def align_inward(start, end, huge):
    """[start, end) shrunk to whole huge pages; None when no whole huge page fits."""
    astart = -(-start // huge) * huge
    aend = end // huge * huge
    if aend <= astart:
        return None
    return astart, aend


# --- planning --------------------------------------------------------------------

class Chunk(object):
    """One PMD-sized chunk. ``state``: one of STATES, then ``collapsed`` or ``failed``."""

    __slots__ = ("start", "state", "present", "swapped", "reason", "errno", "retries")

    def __init__(self, start, state, present=None, swapped=None, reason=None):
        self.start = start
        self.state = state
        self.present = present
        self.swapped = swapped
        self.reason = reason
        self.errno = None
        self.retries = 0


def _chunk_density(entries, per):
    present, swapped = _procfs.count_populated(entries)
    return present, swapped, float(present + swapped) / per


def plan(ranges, vmas, read_entries, kpageflags, min_density, quota_bytes, huge, page):
    """Decide, per PMD-sized chunk of each range, whether to collapse it.

    ``vmas``: mappings of the target (from smaps, or maps when smaps fields are missing).
    ``read_entries(start, end)``: pagemap entries of a chunk-aligned span.
    ``kpageflags``: a :class:`_procfs.KPageFlags` (may be unavailable).
    Returns a list with one dict per range: its numbers, and ``chunks`` (Chunk objects).
    """
    per = huge // page
    seen = set()
    remaining = quota_bytes if quota_bytes else None
    result = []
    for start, end in ranges:
        entry = {"start": start, "end": end, "aligned_start": None, "aligned_end": None, "chunks": []}
        result.append(entry)
        aligned = align_inward(start, end, huge)
        if aligned is None:
            continue
        entry["aligned_start"], entry["aligned_end"] = aligned
        # Read pagemap once per mapped stretch of the range.
        chunk_starts = list(range(aligned[0], aligned[1], huge))
        entries_by_chunk = {}
        for vma in vmas:
            lo = max(vma.start, aligned[0])
            hi = min(vma.end, aligned[1])
            lo = -(-lo // huge) * huge
            hi = hi // huge * huge
            if hi <= lo:
                continue
            data = read_entries(lo, hi)
            for i, cstart in enumerate(range(lo, hi, huge)):
                entries_by_chunk[cstart] = data[i * per:(i + 1) * per]
        for cstart in chunk_starts:
            if cstart in seen:
                entry["chunks"].append(Chunk(cstart, "duplicate"))
                continue
            seen.add(cstart)
            vma = _procfs.find_vma(vmas, cstart, cstart + huge)
            if vma is None or cstart not in entries_by_chunk:
                entry["chunks"].append(Chunk(cstart, "skipped_unmapped",
                                             reason="not inside a single mapping"))
                continue
            entries = entries_by_chunk[cstart]
            present, swapped, density = _chunk_density(entries, per)
            chunk = Chunk(cstart, "collapse", present, swapped)
            entry["chunks"].append(chunk)
            if _already_huge(entries, vma, kpageflags, huge):
                chunk.state = "skipped_already_huge"
                continue
            if density < min_density or present + swapped == 0:
                chunk.state = "skipped_sparse"
                chunk.reason = "%d of %d base pages resident (%.1f%% < %.1f%%)" % (
                    present + swapped, per, 100.0 * density, 100.0 * min_density)
                continue
            if remaining is not None:
                if remaining < huge:
                    chunk.state = "skipped_quota"
                    continue
                remaining -= huge
    return result


def _already_huge(entries, vma, kpageflags, huge):
    """Whether a chunk is already one PMD-mapped THP.

    Root: pagemap PFNs + /proc/kpageflags tell exactly (one order-9 THP folio) and
    the mapping's AnonHugePages must be non-zero (so the folio is PMD-mapped, not
    PTE-mapped). Without PFNs: only when every whole huge page of the mapping is
    PMD-mapped according to smaps; otherwise we let the kernel decide (it treats an
    already PMD-mapped chunk as success).
    """
    vma_huge = vma.fields.get("AnonHugePages")
    if vma_huge == 0:
        return False
    verdict = _procfs.is_whole_thp(entries, kpageflags)
    if verdict is not None:
        return verdict and vma_huge != 0
    if vma_huge is None:
        return False
    whole = (vma.end // huge * huge) - (-(-vma.start // huge) * huge)
    return whole > 0 and vma_huge >= whole


# --- execution -------------------------------------------------------------------

def _new_counts():
    return {"tried": 0, "collapsed": 0, "skipped_sparse": 0, "skipped_already_huge": 0,
            "skipped_unmapped": 0, "skipped_quota": 0, "retried": 0, "failed_by_errno": {}}


def execute(planned, kernel, pidfd, huge, retries=3, sleep=time.sleep, check_mode=False,
            batch_max=IOV_MAX, vma_reason=None):
    """Collapse the chunks ``plan`` chose. Returns the result dict (see summarize).

    Raises CollapseError for errors that stop the run (ESRCH, EPERM, ENOSYS, ...),
    with the partial result in ``details``.
    """
    todo = [c for r in planned for c in r["chunks"] if c.state == "collapse"]
    failures = []
    if not check_mode:
        i = 0
        while i < len(todo):
            batch = todo[i:i + batch_max]
            ret, err = kernel.process_madvise(pidfd, [(c.start, huge) for c in batch], MADV_COLLAPSE)
            if ret >= 0 and ret >= len(batch) * huge:
                for c in batch:
                    c.state = "collapsed"
                i += len(batch)
                continue
            if ret < 0 and err in FATAL_ERRNOS:
                _fatal(err, planned, failures, huge, todo[i].start)
            done = max(ret, 0) // huge
            for c in batch[:done]:
                c.state = "collapsed"
            failing = batch[done]
            # The batch call lost the chunk's errno: ask again for this chunk alone.
            _collapse_one(failing, kernel, pidfd, huge, retries, sleep, planned, failures, vma_reason)
            i += done + 1
    summary = summarize(planned, huge)
    summary["failures"] = failures
    return summary


def _collapse_one(chunk, kernel, pidfd, huge, retries, sleep, planned, failures, vma_reason):
    delay = RETRY_FIRST_DELAY_S
    attempt = 0
    while True:
        ret, err = kernel.process_madvise(pidfd, [(chunk.start, huge)], MADV_COLLAPSE)
        if ret >= huge:
            chunk.state = "collapsed"
            return
        if ret >= 0:  # 0 bytes without an error should not happen; count it as EAGAIN-like
            err = errno_mod.EAGAIN
        if err in FATAL_ERRNOS:
            _fatal(err, planned, failures, huge, chunk.start)
        if err in RETRY_ERRNOS and attempt < retries:
            attempt += 1
            chunk.retries = attempt
            sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)
            continue
        chunk.state = "failed"
        chunk.errno = err
        failure = {"start": chunk.start, "end": chunk.start + huge, "errno": err,
                   "errno_name": errno_name(err), "attempts": attempt + 1, "message": errno_words(err)}
        hint = _chunk_hint(err, chunk.start, vma_reason)
        if hint:
            failure["hint"] = hint
        failures.append(failure)
        return


def _chunk_hint(err, start, vma_reason):
    if err == errno_mod.EINVAL:
        why = vma_reason(start) if vma_reason else None
        release = platform.release()
        hint = "the mapping is not eligible for MADV_COLLAPSE"
        if why:
            hint += ": " + why
        if _kernel_before(release, (6, 1)):
            hint += "; kernel %s predates MADV_COLLAPSE (Linux 6.1)" % release
        return hint
    if err == errno_mod.ENOMEM:
        return "no huge page could be allocated (memory fragmented or short), or the range was unmapped"
    if err == errno_mod.EBUSY:
        return "the memory cgroup could not be charged for the huge page"
    if err in RETRY_ERRNOS:
        return "transient failure (page could not be isolated, raced with khugepaged or a fault); retries exhausted"
    return None


def _kernel_before(release, version):
    parts = []
    for piece in release.split("-")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) < version


def _fatal(err, planned, failures, huge, start):
    partial = summarize(planned, huge)
    partial["failures"] = failures
    if err == errno_mod.ESRCH:
        raise CollapseError("the target process exited during the collapse", errno=err, process_gone=True,
                            partial=partial)
    if err == errno_mod.EPERM:
        raise CollapseError("process_madvise(MADV_COLLAPSE) failed: %s; %s" % (errno_words(err), EPERM_HINT),
                            errno=err, partial=partial)
    if err == errno_mod.ENOSYS:
        raise CollapseError("process_madvise() is not available: %s; it needs Linux 5.10 or later (and "
                            "MADV_COLLAPSE needs 6.1), and a seccomp filter may block it" % errno_words(err),
                            errno=err, partial=partial)
    raise CollapseError("process_madvise(MADV_COLLAPSE) at %#x failed: %s" % (start, errno_words(err)),
                        errno=err, partial=partial)


def summarize(planned, huge):
    """Totals and per-range detail from the chunk states."""
    totals = _new_counts()
    ranges = []
    planned_bytes = 0
    for r in planned:
        counts = _new_counts()
        del counts["retried"]
        counts["duplicate"] = 0
        for c in r["chunks"]:
            state = c.state
            if state == "duplicate":
                counts["duplicate"] += 1
                continue
            if state in ("collapse", "collapsed", "failed"):
                planned_bytes += huge
                counts["tried"] += 1
                totals["retried"] += c.retries
            if state == "collapsed":
                counts["collapsed"] += 1
            elif state == "failed":
                name = errno_name(c.errno)
                counts["failed_by_errno"][name] = counts["failed_by_errno"].get(name, 0) + 1
            elif state.startswith("skipped_"):
                counts[state] += 1
        for key, value in counts.items():
            if key == "failed_by_errno":
                for name, n in value.items():
                    totals["failed_by_errno"][name] = totals["failed_by_errno"].get(name, 0) + n
            elif key in totals:
                totals[key] += value
        detail = {
            "start": r["start"],
            "end": r["end"],
            "aligned_start": r["aligned_start"],
            "aligned_end": r["aligned_end"],
            "bytes_collapsed": counts["collapsed"] * huge,
            "bytes_planned": sum(huge for c in r["chunks"] if c.state in ("collapse", "collapsed", "failed")),
        }
        detail.update(counts)
        if r["aligned_start"] is None:
            detail["note"] = "no whole huge page fits in this range"
        ranges.append(detail)
    return {
        "bytes_collapsed": totals["collapsed"] * huge,
        "bytes_planned": planned_bytes,
        "chunks": totals,
        "ranges": ranges,
    }


# --- the whole run ---------------------------------------------------------------------

def collapse(pid, ranges, min_density=0.5, quota_bytes=0, retries=3, check_mode=False, kernel=None,
             proc_root=_procfs.PROC, huge=None, page=None, sleep=time.sleep, kpageflags=None):
    """Plan and (unless ``check_mode``) collapse; returns the module result fields."""
    huge = huge or _procfs.pmd_size()
    page = page or _procfs.page_size()
    normalized = normalize_ranges(ranges)
    validate_options(min_density, quota_bytes, retries, huge)
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise CollapseError("pid: %r is not a process id" % (pid,))
    kernel = kernel or Kernel()

    started = time.monotonic()
    before = None
    try:
        pidfd = kernel.pidfd_open(pid)
    except OSError as e:
        if e.errno == errno_mod.ESRCH:
            raise CollapseError("process %d does not exist" % pid, errno=e.errno, process_gone=True)
        if e.errno == errno_mod.ENOSYS:
            raise CollapseError("pidfd_open() is not available (Linux 5.3 or later is needed): %s"
                                % errno_words(e.errno), errno=e.errno)
        raise CollapseError("pidfd_open(%d) failed: %s" % (pid, errno_words(e.errno)), errno=e.errno)
    own_kpf = kpageflags is None
    kpf = _procfs.KPageFlags() if own_kpf else kpageflags
    precise = bool(kpf.available)
    try:
        try:
            before = _procfs.anon_huge_bytes(pid, proc_root)
            vmas = _procfs.read_smaps(pid, proc_root)
            with _procfs.Pagemap(pid, proc_root, page) as pagemap:
                planned = plan(normalized, vmas, pagemap.entries, kpf, min_density, quota_bytes, huge, page)
        except _procfs.ProcessGone:
            raise CollapseError("process %d does not exist (it exited while its /proc files were read)" % pid,
                                errno=errno_mod.ESRCH, process_gone=True)
        except _procfs.ProcAccessDenied as e:
            raise CollapseError("%s; reading another process's smaps and pagemap needs ptrace read access "
                                "(run as root or as the process owner)" % e, errno=e.errno)
        except _procfs.ProcError as e:
            raise CollapseError(str(e), errno=e.errno)

        def vma_reason(address):
            vma = _procfs.find_vma(vmas, address, address + huge)
            return vma.ineligibility() if vma is not None else None

        result = execute(planned, kernel, pidfd, huge, retries=retries, sleep=sleep, check_mode=check_mode,
                         vma_reason=vma_reason)
        try:
            after = before if check_mode else _procfs.anon_huge_bytes(pid, proc_root)
        except _procfs.ProcessGone:
            raise CollapseError("the target process exited right after the collapse", errno=errno_mod.ESRCH,
                                process_gone=True, partial=result)
        except _procfs.ProcError:
            after = None
    except CollapseError as e:
        if "partial" in e.details:
            e.details["partial"]["anon_huge_bytes_before"] = before
        raise
    finally:
        kernel.close(pidfd)
        if own_kpf:
            kpf.close()
    result.update({
        "pid": pid,
        "anon_huge_bytes_before": before,
        "anon_huge_bytes_after": after,
        "huge_page_size": huge,
        "min_density": min_density,
        "quota_bytes": quota_bytes,
        "elapsed_s": round(time.monotonic() - started, 6),
        "precise_huge_check": precise,
    })
    return result
