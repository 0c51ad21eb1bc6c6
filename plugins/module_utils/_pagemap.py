# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Page sizes and huge-page measurement from pagemap and kpageflags (read only).

Formats (Documentation/admin-guide/mm/pagemap.rst):

* ``/proc/PID/pagemap``: one native-endian 64-bit entry per virtual page; bit 63
  page present, bit 62 swapped, bits 0-54 the PFN (zero without CAP_SYS_ADMIN).
* ``/proc/kpageflags``: one 64-bit flag word per PFN (root only); bit 15
  ``COMPOUND_HEAD``, 16 ``COMPOUND_TAIL``, 22 ``THP``, 24 ``ZERO_PAGE``.

The PMD size (one huge page) comes from ``SYSFS/kernel/mm/transparent_hugepage/hpage_pmd_size``
of the ``sysfs_root`` in use: every module that sizes chunks asks :func:`pmd_size`.
"""

from __future__ import annotations

import errno as errno_mod
import os
from array import array

from ansible_collections.linux_mm.damon.plugins.module_utils._procfs import (
    PROC, ProcError, ProcessGone, pid_path, raise_for,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, read_optional

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_PFN_MASK = (1 << 55) - 1

KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
KPF_THP = 1 << 22
KPF_ZERO_PAGE = 1 << 24

ENTRY_SIZE = 8  # bytes per pagemap / kpageflags entry
PMD_SIZE_FILE = "kernel/mm/transparent_hugepage/hpage_pmd_size"


def page_size():
    return os.sysconf("SC_PAGE_SIZE")


def pmd_size(sysfs_root="/sys"):
    """Size of a PMD-mapped huge page (2 MiB on x86-64 with 4 KiB pages).

    Read from ``SYSFS_ROOT/kernel/mm/transparent_hugepage/hpage_pmd_size`` (read
    only); without it, 512 base pages, which is the PMD size of every 4 KiB-page
    architecture.
    """
    try:
        value = int(read_optional(os.path.join(sysfs_root, PMD_SIZE_FILE)) or 0)
        if value > 0:
            return value
    except (SysfsError, ValueError):
        pass
    return page_size() * (page_size() // ENTRY_SIZE)


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
        raise_for(path, e)
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
            raise_for(self.path, e)

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
    smaps, this separates ranges even when neighbouring mappings merged. ``huge``:
    the PMD size (default: this host's, :func:`pmd_size`).
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
