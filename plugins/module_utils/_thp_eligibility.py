# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why a process, or part of it, cannot get huge pages: reasons a run reports instead of retrying.

Read only (/proc and /sys). Two entry points:

* :func:`blockers` -- per process: what keeps (part of) its memory out of huge pages, with
  the bytes concerned, and how to lift it.
* :func:`classify_ranges` -- per address range (e.g. DAMON's hot regions): which part of each
  range can become a PMD-sized huge page, which is already one, and why the rest cannot.

Kernel behaviour these rules follow (read in mm/khugepaged.c, mm/huge_memory.c, mm/shmem.c
of Linux 7.3.4 and checked in the Debian 6.12.117 / 7.3.4 guests, see
docs/real-applications.md and tests/vm/test_collapse_facts_guest.py):

* MADV_COLLAPSE ignores the ``enabled`` mode (``never``/``madvise`` included): a VMA without
  VM_HUGEPAGE (no ``hg`` in VmFlags, smaps ``THPeligible: 0`` under ``madvise``) collapses.
  ``THPeligible`` describes page faults and khugepaged, not MADV_COLLAPSE.
* It refuses (EINVAL) VMAs with VM_NOHUGEPAGE (``nh``), every VMA of a process after
  prctl(PR_SET_THP_DISABLE) (``THP_enabled: 0``), and shmem whose mapping is not 2 MiB aligned
  to its file offset.
* Per 2 MiB chunk: a chunk without a page table (never touched; on 7.3 also one emptied by
  MADV_DONTNEED, which frees empty page tables with CONFIG_PT_RECLAIM) fails the call with
  EINVAL; 7.3 still collapses the other chunks of the call, 6.12 stops there. On 6.12 a chunk
  with no writable page (emptied by MADV_DONTNEED, or only read: zero page) fails too; 7.3
  zero-fills it. A chunk with a single resident page is collapsed and zero-filled to 2 MiB on
  both (max_ptes_none does not apply to MADV_COLLAPSE): bloat, never worth it.
* Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, SysV shm, memfd: ``/dev/zero
  (deleted)``, ``/SYSV...``, ``/memfd:...``) is shmem. A shmem mapping whose address is not
  2 MiB aligned to its offset can never be PMD-mapped (EINVAL), and while ``shmem_enabled``
  is ``never`` the kernel does not align new shared mappings (PostgreSQL's shared_buffers
  came out misaligned). A 2 MiB-aligned one collapses even under ``never`` (forced collapse);
  ``deny`` forbids shmem THP altogether; faults and khugepaged need advise/within_size/always.
* cgroup v2 has no THP switch on these kernels (6.12, 7.3); nothing to report there.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap, _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, read_text

THP_DIR = "kernel/mm/transparent_hugepage"

# reason codes (stable: reports and tests key on them)
NO_THP = "kernel_without_thp"
THP_NEVER = "thp_enabled_never"
PROCESS_DISABLED = "process_thp_disabled"
VMA_NOHUGEPAGE = "vma_nohugepage"
SHMEM_DISABLED = "shmem_thp_disabled"
SHMEM_MISALIGNED = "shmem_misaligned"

# chunk states of classify_ranges
COLLAPSIBLE = "collapsible"
ALREADY_HUGE = "already_huge"
EMPTY = "empty"
PARTIAL = "partial"          # head/tail of a range that is not a whole aligned 2 MiB chunk
VMA_EDGE = "vma_edge"        # the chunk crosses a mapping boundary (or is not mapped)
BLOCKED = "blocked"

KPF_KSM = 1 << 21  # /proc/kpageflags: a KSM-merged page (Documentation/admin-guide/mm/pagemap.rst)

_SHMEM_PREFIXES = ("/dev/zero", "/SYSV", "/memfd:")


def _read(path):
    try:
        return read_text(path)
    except SysfsError:
        return None


def _selected(text):
    """'always [madvise] never' -> 'madvise'; a plain value stays as is; None stays None."""
    if text is None:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.split()[0] if text.split() else None


def thp_settings(sysfs_root="/sys"):
    """``{"available", "enabled", "shmem_enabled", "pmd_size"}`` read from sysfs."""
    base = os.path.join(sysfs_root, THP_DIR)
    return {
        "available": os.path.isdir(base),
        "enabled": _selected(_read(os.path.join(base, "enabled"))),
        "shmem_enabled": _selected(_read(os.path.join(base, "shmem_enabled"))),
        "pmd_size": _pagemap.pmd_size(sysfs_root),
    }


def is_shmem(vma):
    """Shared anonymous memory: MAP_SHARED|MAP_ANONYMOUS, SysV shm, memfd (all shmem)."""
    return not vma.private and vma.path.startswith(_SHMEM_PREFIXES)


def _shmem_aligned(vma, pmd):
    # A file/shmem VMA can be PMD-mapped only where address and file offset agree modulo
    # the PMD size (thp_vma_suitable_order).
    return (vma.start - vma.offset) % pmd == 0


def vma_blocker(vma, settings, process_disabled=False, path="collapse"):
    """The reason code that keeps this mapping out of huge pages, or None."""
    pmd = settings["pmd_size"]
    if not settings["available"]:
        return NO_THP
    if process_disabled:
        return PROCESS_DISABLED
    if "nh" in (vma.vm_flags or ()):
        return VMA_NOHUGEPAGE
    if is_shmem(vma):
        shmem = settings["shmem_enabled"]
        # MADV_COLLAPSE ignores never (forced collapse), not deny; faults and khugepaged
        # (the hugepage path) need advise/within_size/always.
        if shmem == "deny" or (path == "hugepage" and shmem == "never"):
            return SHMEM_DISABLED
        if not _shmem_aligned(vma, pmd):
            return SHMEM_MISALIGNED
    return None


FIXES = {
    NO_THP: "the kernel has no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE); use a kernel with THP",
    THP_NEVER: ("set /sys/kernel/mm/transparent_hugepage/enabled to madvise (MADV_HUGEPAGE and khugepaged "
                "do nothing under never; MADV_COLLAPSE and the DAMOS collapse action work in every mode)"),
    PROCESS_DISABLED: ("the process, or whatever started it (the flag survives fork and exec), called "
                       "prctl(PR_SET_THP_DISABLE); restart it without that, e.g. redis-server with "
                       "`disable-thp no` (redis sets it by default when THP enabled is `always`)"),
    VMA_NOHUGEPAGE: ("the application marked these mappings MADV_NOHUGEPAGE (e.g. glibc thread stacks, "
                     "jemalloc with thp:never); only the application can undo it (process_madvise() does "
                     "not take MADV_HUGEPAGE): change its configuration and restart it"),
    SHMEM_DISABLED: ("shared anonymous memory is shmem: set /sys/kernel/mm/transparent_hugepage/shmem_enabled "
                     "to advise (or within_size/always) and restart the application, so that its shared "
                     "memory is also mapped 2 MiB aligned"),
    SHMEM_MISALIGNED: ("set /sys/kernel/mm/transparent_hugepage/shmem_enabled to advise (or within_size/always) "
                       "if it is not, then restart the application: the kernel places a new shared mapping "
                       "2 MiB aligned only while shmem THP is enabled, and a misaligned one can never be "
                       "PMD-mapped"),
}

DETAILS = {
    NO_THP: "no /sys/kernel/mm/transparent_hugepage",
    THP_NEVER: "transparent_hugepage/enabled is never",
    PROCESS_DISABLED: "THP_enabled: 0 in /proc/PID/status (prctl PR_SET_THP_DISABLE)",
    VMA_NOHUGEPAGE: "mappings with nh (VM_NOHUGEPAGE) in smaps VmFlags",
    SHMEM_DISABLED: "shared anonymous (shmem) mappings while transparent_hugepage/shmem_enabled is {shmem}",
    SHMEM_MISALIGNED: ("shared anonymous (shmem) mappings whose address is not 2 MiB aligned to their offset "
                       "(shmem_enabled is {shmem})"),
}


def _entry(reason, nbytes, settings, mappings=None):
    entry = {"reason": reason, "detail": DETAILS[reason].format(shmem=settings.get("shmem_enabled")),
             "fix": FIXES[reason], "bytes": nbytes}
    if mappings is not None:
        entry["mappings"] = mappings
    return entry


def _rss(vma):
    return vma.fields.get("Rss", 0)


def blockers(pid, sysfs_root="/sys", proc_root="/proc", path="collapse", vmas=None, status=None):
    """What keeps process ``pid``'s memory out of huge pages.

    ``path``: ``collapse`` (MADV_COLLAPSE: process_madvise or the DAMOS collapse action) or
    ``hugepage`` (MADV_HUGEPAGE: the DAMOS hugepage action, khugepaged does the work).
    Returns a list of ``{"reason", "detail", "fix", "bytes"}`` (``bytes``: resident memory
    concerned; per-mapping reasons add ``mappings``: up to 8 ``[start, end]`` pairs), empty
    when nothing is known against it. Raises _procfs.ProcessGone / ProcAccessDenied.
    ``vmas``/``status`` may be passed when already read (smaps Vma list, parsed status).
    """
    settings = thp_settings(sysfs_root)
    if not settings["available"]:
        return [_entry(NO_THP, 0, settings)]
    if status is None:
        status = _procfs.read_status(pid, proc_root)
    if vmas is None:
        vmas = _procfs.read_smaps(pid, proc_root)
    anon = [v for v in vmas if (v.private and v.anonymous) or is_shmem(v)]
    result = []
    if path == "hugepage" and settings["enabled"] == "never":
        result.append(_entry(THP_NEVER, sum(_rss(v) for v in anon if v.private), settings))
    if status.get("THP_enabled") == "0":
        # Everything else is moot: every VMA of the process is refused.
        result.append(_entry(PROCESS_DISABLED, sum(_rss(v) for v in anon), settings))
        return result
    grouped = {}
    pmd = settings["pmd_size"]
    for vma in anon:
        if -(-vma.start // pmd) * pmd + pmd > vma.end:
            continue  # no whole 2 MiB chunk (guard pages, small SysV segments): never huge anyway
        reason = vma_blocker(vma, settings, path=path)
        if reason is None:
            continue
        group = grouped.setdefault(reason, [0, []])
        group[0] += _rss(vma)
        group[1].append([vma.start, vma.end])
    for reason in (VMA_NOHUGEPAGE, SHMEM_DISABLED, SHMEM_MISALIGNED):
        if reason in grouped:
            nbytes, mappings = grouped[reason]
            result.append(_entry(reason, nbytes, settings, mappings[:8]))
    return result


def classify_ranges(pid, ranges, sysfs_root="/sys", proc_root="/proc", vmas=None, status=None,
                    read_entries=None, kpageflags=None):
    """Split each ``(start, end)`` range into what can become a PMD huge page and what cannot.

    Per range: ``{"start", "end", "bytes": {state: n}, "blockers": {reason: n}}`` where the
    states are ``collapsible`` (whole aligned 2 MiB chunks, inside one mapping, with resident
    pages and not yet huge), ``already_huge``, ``empty`` (no resident page other than the
    shared zero page: MADV_COLLAPSE fails with EINVAL, or on 7.3 zero-fills a chunk that still
    has a page table into a 2 MiB huge page of nothing -- never collapse),
    ``partial`` (the range's unaligned head and tail), ``vma_edge`` (the chunk crosses a
    mapping boundary or is unmapped) and ``blocked`` (see ``blockers`` for the reasons).
    ``read_entries(start, end)`` returns pagemap entries (default: /proc/PID/pagemap);
    ``kpageflags``: a _pagemap.KPageFlags (default: /proc/kpageflags when readable). Without
    PFNs (not root), a chunk with every page present counts as collapsible.
    """
    settings = thp_settings(sysfs_root)
    pmd = settings["pmd_size"]
    if status is None:
        status = _procfs.read_status(pid, proc_root)
    if vmas is None:
        vmas = _procfs.read_smaps(pid, proc_root)
    disabled = status.get("THP_enabled") == "0"
    own = []
    pagemap = None
    if read_entries is None:
        pagemap = _pagemap.Pagemap(pid, proc_root)
        own.append(pagemap)
        read_entries = pagemap.entries
    if kpageflags is None:
        kpageflags = _pagemap.KPageFlags(os.path.join(proc_root, "kpageflags"))
        own.append(kpageflags)
    try:
        return [_classify_one(start, end, vmas, settings, disabled, read_entries, kpageflags, pmd)
                for start, end in ranges]
    finally:
        for f in own:
            f.close()


def _classify_one(start, end, vmas, settings, disabled, read_entries, kpageflags, pmd):
    counts = {k: 0 for k in (COLLAPSIBLE, ALREADY_HUGE, EMPTY, PARTIAL, VMA_EDGE, BLOCKED)}
    reasons = {}
    out = {"start": start, "end": end, "bytes": counts, "blockers": reasons}
    astart = -(-start // pmd) * pmd
    aend = end // pmd * pmd
    if aend <= astart:
        counts[PARTIAL] = max(0, end - start)
        return out
    counts[PARTIAL] = (astart - start) + (end - aend)
    for chunk in range(astart, aend, pmd):
        vma = _procfs.find_vma(vmas, chunk, chunk + pmd)
        if vma is None:
            counts[VMA_EDGE] += pmd
            continue
        reason = vma_blocker(vma, settings, disabled)
        if reason is not None:
            counts[BLOCKED] += pmd
            reasons[reason] = reasons.get(reason, 0) + pmd
            continue
        entries = read_entries(chunk, chunk + pmd)
        present, swapped = _pagemap.count_populated(entries)
        if present + swapped - zero_page_entries(entries, kpageflags) == 0:
            counts[EMPTY] += pmd
        elif present == len(entries) and _pagemap.is_whole_thp(entries, kpageflags):
            counts[ALREADY_HUGE] += pmd
        else:
            counts[COLLAPSIBLE] += pmd
    return out


def zero_page_entries(entries, kpageflags=None):
    """Present entries that map the shared zero page (read, never written).

    The zero page is one PFN mapped at every such address, so a PFN that repeats within a
    chunk is it. With /proc/kpageflags (``kpageflags`` available) a repeated PFN counts only
    when it has KPF_ZERO_PAGE (KSM-merged pages repeat too and hold data); without it every
    repeated PFN counts. Without PFNs (not root) nothing can be told: 0.
    """
    seen = {}
    for e in entries:
        if e & _pagemap.PM_PRESENT:
            pfn = e & _pagemap.PM_PFN_MASK
            if not pfn:
                return 0
            seen[pfn] = seen.get(pfn, 0) + 1
    repeated = dict((pfn, n) for pfn, n in seen.items() if n > 1)
    if repeated and kpageflags is not None and getattr(kpageflags, "available", False):
        zero = 0
        for pfn, n in repeated.items():
            flags = kpageflags.flags(pfn)
            flags = flags[0] if flags else 0
            if flags & _pagemap.KPF_ZERO_PAGE or not flags & KPF_KSM:
                zero += n
        return zero
    return sum(repeated.values())


_zero_page_entries = zero_page_entries


def summarize(pid, name, entries):
    """One line per process for a report: 'redis-server (pid 42): 1.2 GiB THP disabled by prctl ...'."""
    if not entries:
        return "%s (pid %d): nothing keeps it from huge pages" % (name, pid)
    parts = ["%s: %.1f MiB (%s)" % (e["reason"], e["bytes"] / 1048576.0, e["detail"]) for e in entries]
    return "%s (pid %d): %s" % (name, pid, "; ".join(parts))
