# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_pagemap.py: page sizes, pagemap and kpageflags, whole-THP checks."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import struct
from array import array

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap as pagemap
from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from tests.helpers.pagemap import HUGE, PAGE, PER, FakeKpf, fake_pagemap, present, thp_flags, write_entries


def test_count_populated_and_pfns_known():
    entries = array("Q", [present(5), pagemap.PM_SWAP, 0, present(0)])
    assert pagemap.count_populated(entries) == (2, 1)
    assert pagemap.pfns_known(entries)
    assert not pagemap.pfns_known(array("Q", [present(0), 0]))
    assert not pagemap.pfns_known(array("Q", [0, pagemap.PM_SWAP]))


def test_is_whole_thp():
    pfn0 = 0x40000
    whole = array("Q", [present(pfn0 + i) for i in range(PER)])
    kpf = FakeKpf(thp_flags(pfn0))
    assert pagemap.is_whole_thp(whole, kpf) is True
    # Same PFNs but not a THP folio (e.g. contiguous base pages).
    assert pagemap.is_whole_thp(whole, FakeKpf()) is False
    # Misaligned first PFN, a hole, a non-contiguous PFN.
    assert pagemap.is_whole_thp(array("Q", [present(pfn0 + 1 + i) for i in range(PER)]), kpf) is False
    holed = array("Q", whole)
    holed[7] = 0
    assert pagemap.is_whole_thp(holed, kpf) is False
    moved = array("Q", whole)
    moved[9] = present(pfn0 + 4096)
    assert pagemap.is_whole_thp(moved, kpf) is False
    # mTHP: first page is a head but page 16 is a head too.
    mthp = thp_flags(pfn0)
    mthp[pfn0 + 16] = pagemap.KPF_THP | pagemap.KPF_COMPOUND_HEAD
    assert pagemap.is_whole_thp(whole, FakeKpf(mthp)) is False
    # No PFNs (not CAP_SYS_ADMIN) or no kpageflags: cannot tell.
    assert pagemap.is_whole_thp(array("Q", [present(0)] * PER), kpf) is None
    assert pagemap.is_whole_thp(whole, FakeKpf(available=False)) is None
    assert pagemap.is_whole_thp(whole, None) is None
    assert pagemap.is_whole_thp(array("Q", [0] * PER), kpf) is False
    assert pagemap.is_whole_thp(array("Q"), kpf) is False


def test_pagemap_reads_entries_of_a_span(tmp_path):
    base_page = 0x10000  # virtual page index of the span
    fake_pagemap(tmp_path, 42, {base_page: present(1), base_page + 3: pagemap.PM_SWAP, base_page + 1023: present(2)})
    with pagemap.Pagemap(42, str(tmp_path), page=PAGE) as pm:
        entries = pm.entries(base_page * PAGE, (base_page + 1024) * PAGE)
        assert len(entries) == 1024
        assert entries[0] == present(1) and entries[3] == pagemap.PM_SWAP and entries[1023] == present(2)
        assert pagemap.count_populated(entries) == (2, 1)
        # Past the end of the (fake) file: the mm went away.
        with pytest.raises(procfs.ProcessGone):
            pm.entries((base_page + 1024) * PAGE, (base_page + 2048) * PAGE)
    assert pm.fd is None


def test_pagemap_of_missing_process(tmp_path):
    with pytest.raises(procfs.ProcessGone):
        pagemap.Pagemap(99, str(tmp_path))


def test_kpageflags_unavailable(tmp_path):
    kpf = pagemap.KPageFlags(str(tmp_path / "nope"))
    assert not kpf.available
    assert kpf.flags(0, 4) is None
    kpf.close()


def test_kpageflags_reads_a_file(tmp_path):
    path = str(tmp_path / "kpageflags")
    write_entries(path, 1000, [pagemap.KPF_THP, pagemap.KPF_ZERO_PAGE])
    with pagemap.KPageFlags(path) as kpf:
        assert kpf.available
        assert list(kpf.flags(1000, 2)) == [pagemap.KPF_THP, pagemap.KPF_ZERO_PAGE]


@contextlib.contextmanager
def own_memory(size):
    """(mmap, address) of ``size`` bytes of this process's private anonymous memory, untouched."""
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf = (ctypes.c_char * size).from_buffer(m)
        yield m, ctypes.addressof(buf)
        del buf
    finally:
        m.close()


def test_pagemap_of_own_private_memory():
    """The present bit of our own freshly touched private anonymous pages."""
    size = 4 * HUGE
    page = pagemap.page_size()
    with own_memory(size) as (m, addr):
        for off in range(0, size // 2, page):
            m[off] = 1
        with pagemap.Pagemap(os.getpid()) as pm:
            entries = pm.entries(addr, addr + size)
        assert pagemap.count_populated(entries)[0] == (size // 2) // page


def test_range_huge_bytes_of_own_small_pages():
    size = 4 * HUGE
    with own_memory(size) as (m, addr):
        for off in range(0, size, pagemap.page_size()):
            m[off] = 1
        value = pagemap.range_huge_bytes(os.getpid(), addr, addr + size)
        # None without CAP_SYS_ADMIN; as root, at most the aligned part (THP=always may back it).
        assert value is None or 0 <= value <= size
        assert pagemap.range_huge_bytes(os.getpid(), addr, addr + 4096) == 0


def test_pmd_size_and_page_size(tmp_path):
    assert pagemap.page_size() == mmap.PAGESIZE
    assert pagemap.pmd_size(str(tmp_path)) == mmap.PAGESIZE * (mmap.PAGESIZE // 8)
    thp = tmp_path / "kernel" / "mm" / "transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "hpage_pmd_size").write_text("536870912\n")
    assert pagemap.pmd_size(str(tmp_path)) == 536870912


# --------------------------------------------------------------------------
# the hot-process scan on a fake /proc


def test_entry_size():
    assert struct.calcsize("Q") == pagemap.ENTRY_SIZE
