# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fake pagemap entries and kpageflags for tests of huge-page measurement and collapse planning."""

from __future__ import annotations

import os
from array import array

from ansible_collections.linux_mm.damon.plugins.module_utils._pagemap import (
    KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_THP, PM_PRESENT,
)

PAGE = 4096
PER = 512
HUGE = PAGE * PER


def present(pfn=0):
    """A pagemap entry of a present page (PFN 0: no CAP_SYS_ADMIN)."""
    return PM_PRESENT | pfn


def thp_flags(pfn0):
    """{pfn: kpageflags} of one THP folio whose head is ``pfn0``."""
    flags = {pfn0: KPF_THP | KPF_COMPOUND_HEAD}
    for i in range(1, PER):
        flags[pfn0 + i] = KPF_THP | KPF_COMPOUND_TAIL
    return flags


class FakeKpf:
    """A stand-in for ``_pagemap.KPageFlags``: ``flags`` maps PFN -> flag word (0 elsewhere)."""

    def __init__(self, flags=None, available=True):
        self.flags_by_pfn = flags or {}
        self.available = available

    def flags(self, pfn, count=1):
        return array("Q", [self.flags_by_pfn.get(pfn + i, 0) for i in range(count)])


def write_entries(path, index, values):
    """Write 64-bit ``values`` at entry ``index`` of the file ``path`` (created when missing)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.seek(index * 8)
        f.write(array("Q", values).tobytes())


def fake_pagemap(proc_root, pid, entries_at):
    """``PROC_ROOT/PID/pagemap`` holding ``entries_at``: {virtual page index: entry}."""
    d = proc_root / str(pid)
    d.mkdir(exist_ok=True)
    path = str(d / "pagemap")
    open(path, "wb").close()
    for index, value in entries_at.items():
        write_entries(path, index, [value])
    return path
