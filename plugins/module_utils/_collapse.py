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

import bisect
import ctypes
import ctypes.util
import errno as errno_mod
import itertools
import os
import platform
import time

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap, _procfs, _thp_eligibility
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import parse_release
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import errno_name, errno_words

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
    """One PMD-sized chunk, or ``count`` adjacent chunks skipped for the same reason.

    ``state``: one of STATES, then ``collapsed`` or ``failed``. Runs (``count`` > 1)
    keep the plan's memory bounded by the process's mappings and resident memory,
    not by the size of the requested range.
    """

    __slots__ = ("start", "state", "present", "swapped", "reason", "errno", "retries", "count")

    def __init__(self, start, state, present=None, swapped=None, reason=None, count=1):
        self.start = start
        self.state = state
        self.present = present
        self.swapped = swapped
        self.reason = reason
        self.errno = None
        self.retries = 0
        self.count = count


def _chunk_density(entries, per):
    present, swapped = _pagemap.count_populated(entries)
    return present, swapped, float(present + swapped) / per


# Chunks whose pagemap is read at once: 64 x 2 MiB = 128 MiB of address space, 256 KiB of entries.
READ_BATCH_CHUNKS = 64
_RUN_STATES = ("skipped_unmapped", "skipped_quota", "skipped_already_huge", "duplicate")


def _add(chunks, chunk, huge):
    """Append ``chunk``, or extend the previous run when it is the same skip right before it."""
    last = chunks[-1] if chunks else None
    if (last is not None and last.state == chunk.state and last.start + last.count * huge == chunk.start
            and (chunk.state in _RUN_STATES
                 or (chunk.state == "skipped_sparse" and not (last.present or last.swapped)
                     and not (chunk.present or chunk.swapped)))):
        last.count += chunk.count
        return
    chunks.append(chunk)


def _not_done(lo, hi, done):
    """Split [lo, hi) into (start, end, duplicate) pieces against the sorted, merged ``done`` list."""
    pieces, cursor = [], lo
    for dlo, dhi in done:
        if dhi <= cursor or dlo >= hi:
            continue
        if dlo > cursor:
            pieces.append((cursor, dlo, False))
        pieces.append((max(dlo, cursor), min(dhi, hi), True))
        cursor = min(dhi, hi)
    if cursor < hi:
        pieces.append((cursor, hi, False))
    return pieces


def _merge(done, lo, hi):
    merged = []
    for dlo, dhi in sorted(done + [(lo, hi)]):
        if merged and dlo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], dhi))
        else:
            merged.append((dlo, dhi))
    done[:] = merged


def _unmapped(chunks, lo, hi, huge):
    if hi > lo:
        _add(chunks, Chunk(lo, "skipped_unmapped", reason="not inside a single mapping", count=(hi - lo) // huge),
             huge)


def plan(ranges, vmas, read_entries, kpageflags, min_density, quota_bytes, huge, page):
    """Decide, per PMD-sized chunk of each range, whether to collapse it.

    ``vmas``: mappings of the target (from smaps, or maps when smaps fields are missing).
    ``read_entries(start, end)``: pagemap entries of a chunk-aligned span.
    ``kpageflags``: a :class:`_pagemap.KPageFlags` (may be unavailable).
    Returns a list with one dict per range: its numbers, and ``chunks`` (Chunk objects;
    adjacent chunks skipped for the same reason are one Chunk with a ``count``).

    Ranges are intersected with the mappings, not walked chunk by chunk: the work
    and memory grow with the mapped part (and, for pagemap reads, with mappings that
    have resident pages), so a range like [0, 2**47) costs what the process maps.
    """
    per = huge // page
    remaining = quota_bytes if quota_bytes else None
    vmas = sorted(vmas, key=lambda v: v.start)
    starts = [v.start for v in vmas]
    done = []  # aligned spans of earlier ranges, merged: their chunks are duplicates here
    result = []
    for start, end in ranges:
        entry = {"start": start, "end": end, "aligned_start": None, "aligned_end": None, "chunks": []}
        result.append(entry)
        aligned = align_inward(start, end, huge)
        if aligned is None:
            continue
        entry["aligned_start"], entry["aligned_end"] = aligned
        chunks = entry["chunks"]
        for lo, hi, duplicate in _not_done(aligned[0], aligned[1], done):
            if duplicate:
                _add(chunks, Chunk(lo, "duplicate", count=(hi - lo) // huge), huge)
                continue
            remaining = _plan_span(chunks, lo, hi, vmas, starts, read_entries, kpageflags, min_density,
                                   remaining, huge, per)
        _merge(done, aligned[0], aligned[1])
    return result


def _plan_span(chunks, lo, hi, vmas, starts, read_entries, kpageflags, min_density, remaining, huge, per):
    """Plan the chunks of [lo, hi) (chunk-aligned, not seen before); returns the quota left."""
    cursor = lo
    first = max(bisect.bisect_right(starts, lo) - 1, 0)
    for vma in itertools.islice(vmas, first, None):
        if vma.start >= hi:
            break
        a = -(-max(vma.start, lo) // huge) * huge
        b = min(vma.end, hi) // huge * huge
        if b <= a:
            continue  # no whole chunk inside this mapping
        _unmapped(chunks, cursor, a, huge)
        cursor = b
        if vma.fields.get("Rss") == 0 and not vma.fields.get("Swap"):
            # smaps says nothing is resident: every chunk is empty, no pagemap read needed
            present_none = Chunk(a, "skipped_sparse", 0, 0, count=(b - a) // huge,
                                 reason="0 of %d base pages resident (0.0%% < %.1f%%)" % (per, 100.0 * min_density))
            _add(chunks, present_none, huge)
            continue
        for blo in range(a, b, READ_BATCH_CHUNKS * huge):
            bhi = min(b, blo + READ_BATCH_CHUNKS * huge)
            data = read_entries(blo, bhi)
            for i, cstart in enumerate(range(blo, bhi, huge)):
                remaining = _plan_chunk(chunks, cstart, data[i * per:(i + 1) * per], vma, kpageflags,
                                        min_density, remaining, huge, per)
    _unmapped(chunks, cursor, hi, huge)
    return remaining


def _plan_chunk(chunks, cstart, entries, vma, kpageflags, min_density, remaining, huge, per):
    present, swapped, density = _chunk_density(entries, per)
    # PTEs of the shared zero page (memory only read) are no data: collapsing them makes a
    # 2 MiB huge page of zeros on 7.3 (and fails on 6.12). They do not count as resident.
    zero = _thp_eligibility.zero_page_entries(entries, kpageflags) if present else 0
    if zero:
        present -= zero
        density = float(present + swapped) / per
    chunk = Chunk(cstart, "collapse", present, swapped)
    if _already_huge(entries, vma, kpageflags, huge):
        chunk.state = "skipped_already_huge"
    elif density < min_density or present + swapped == 0:
        chunk.state = "skipped_sparse"
        chunk.reason = "%d of %d base pages resident (%.1f%% < %.1f%%)%s" % (
            present + swapped, per, 100.0 * density, 100.0 * min_density,
            "; %d more map only the zero page" % zero if zero else "")
    elif remaining is not None:
        if remaining < huge:
            chunk.state = "skipped_quota"
        else:
            remaining -= huge
    _add(chunks, chunk, huge)
    return remaining


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
    verdict = _pagemap.is_whole_thp(entries, kpageflags)
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
    parsed = parse_release(release)
    return parsed is None or parsed < version


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
                counts["duplicate"] += c.count
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
                counts[state] += c.count
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

def _refuse_kernel_thread(pid, proc_root):
    identity = _procfs.read_identity(pid, proc_root)  # None: gone or unreadable, pidfd_open and the reads below say so
    if identity is not None and identity[1]:
        raise CollapseError("pid: PID %d (%s) is a kernel thread; it has no user memory to collapse"
                            % (pid, identity[0]))


def _overlapping(ranges, huge):
    """A test ``keep(vma)``: whether a mapping can hold a whole chunk of one of ``ranges``."""
    spans = []
    for start, end in sorted(ranges):
        aligned = align_inward(start, end, huge)
        if aligned is None:
            continue
        if spans and aligned[0] <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], aligned[1]))
        else:
            spans.append(aligned)
    starts = [lo for lo, unused in spans]

    def keep(vma):
        i = bisect.bisect_right(starts, vma.start) - 1
        return any(lo < vma.end and vma.start < hi for lo, hi in spans[max(i, 0):i + 2])
    return keep


def collapse(pid, ranges, min_density=0.5, quota_bytes=0, retries=3, check_mode=False, kernel=None,
             proc_root=_procfs.PROC, huge=None, page=None, sleep=time.sleep, kpageflags=None):
    """Plan and (unless ``check_mode``) collapse; returns the module result fields."""
    huge = huge or _pagemap.pmd_size()
    page = page or _pagemap.page_size()
    normalized = normalize_ranges(ranges)
    validate_options(min_density, quota_bytes, retries, huge)
    if _procfs.bad_pid(pid):
        raise CollapseError("pid: " + _procfs.bad_pid(pid))
    _refuse_kernel_thread(pid, proc_root)
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
    kpf = _pagemap.KPageFlags() if own_kpf else kpageflags
    precise = bool(kpf.available)
    try:
        try:
            before = _procfs.anon_huge_bytes(pid, proc_root)
            vmas = list(_procfs.iter_smaps(pid, proc_root, keep=_overlapping(normalized, huge)))
            with _pagemap.Pagemap(pid, proc_root, page) as pagemap:
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
