# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_thp_eligibility.py on fake /proc and /sys trees.

The smaps/status texts are shaped like the ones redis-server and PostgreSQL showed in the
Debian 7.3.4 guest (docs/real-applications.md).
"""

from __future__ import annotations

import struct

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs
from ansible_collections.linux_mm.damon.plugins.module_utils import _thp_eligibility as te

H = 2 << 20
P = 4096
PID = 4242

HEAP = 0x7F0000000000          # 2 MiB aligned, 8 chunks
STACK = 0x7F0001000000         # a glibc thread stack: nh
SHM = 0x7F0002000000           # /dev/zero (deleted), MAP_SHARED
SHM_UNALIGNED = 0x7F000300C000


def _vma(start, end, perms, path, rss_kb, flags, offset=0, inode=0, dev="00:00"):
    head = "%x-%x %s %08x %s %d" % (start, end, perms, offset, dev, inode)
    if path:
        head += " " * 10 + path
    return "\n".join([head, "Size: %d kB" % ((end - start) // 1024), "Rss: %d kB" % rss_kb,
                      "AnonHugePages: 0 kB", "THPeligible: 0", "VmFlags: %s" % flags, ""])


REDIS_SMAPS = "".join([
    _vma(0x55D000000000, 0x55D000200000, "r-xp", "/usr/bin/redis-server", 900, "rd ex mr mw me", inode=77),
    _vma(HEAP, HEAP + 8 * H, "rw-p", "", 16384, "rd wr mr mw me nr sd"),
    _vma(STACK - P, STACK, "---p", "", 0, "mr mw me ac sd nh"),          # its guard page: too small to matter
    _vma(STACK, STACK + 4 * H, "rw-p", "", 16, "rd wr mr mw me ac sd nh"),
])
PG_SMAPS = "".join([
    _vma(HEAP, HEAP + 2 * H, "rw-p", "[heap]", 2048, "rd wr mr mw me ac sd"),
    _vma(SHM, SHM + 4 * H, "rw-s", "/dev/zero (deleted)", 8192, "rd wr sh mr mw me ms sd", inode=27, dev="00:01"),
    _vma(SHM_UNALIGNED, SHM_UNALIGNED + 4 * H, "rw-s", "/dev/zero (deleted)", 4096, "rd wr sh mr mw me ms sd",
         inode=28, dev="00:01"),
    _vma(SHM_UNALIGNED + 8 * H + P, SHM_UNALIGNED + 8 * H + 2 * P, "rw-s", "/SYSV000043a2 (deleted)", 4,
         "rd wr sh mr mw me ms sd", inode=0, dev="00:01"),              # PostgreSQL's 4 KiB SysV segment
])


def _tree(tmp_path, smaps, thp_enabled="1", enabled="always [madvise] never",
          shmem="always within_size advise [never] deny force", thp=True):
    proc = tmp_path / "proc"
    (proc / str(PID)).mkdir(parents=True)
    (proc / str(PID) / "smaps").write_text(smaps)
    (proc / str(PID) / "status").write_text("Name:\tredis-server\nRssAnon:\t16400 kB\nTHP_enabled:\t%s\n" % thp_enabled)
    sys_root = tmp_path / "sys"
    if thp:
        d = sys_root / "kernel/mm/transparent_hugepage"
        d.mkdir(parents=True)
        (d / "enabled").write_text(enabled + "\n")
        (d / "shmem_enabled").write_text(shmem + "\n")
        (d / "hpage_pmd_size").write_text("%d\n" % H)
    else:
        (sys_root / "kernel/mm").mkdir(parents=True)
    return str(proc), str(sys_root)


def test_redis_madvise_only_thread_stacks_are_blocked(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc)
    assert [b["reason"] for b in got] == [te.VMA_NOHUGEPAGE]
    assert got[0]["bytes"] == 16 * 1024
    assert got[0]["mappings"] == [[STACK, STACK + 4 * H]]
    assert "MADV_NOHUGEPAGE" in got[0]["fix"]
    # THPeligible 0 and no hg flag under madvise do not block MADV_COLLAPSE
    assert all(b["reason"] != te.THP_NEVER for b in got)


def test_process_with_thp_disabled_by_prctl(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS, thp_enabled="0", enabled="[always] madvise never")
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc)
    assert [b["reason"] for b in got] == [te.PROCESS_DISABLED]
    assert got[0]["bytes"] == (16384 + 16) * 1024      # every anonymous mapping, the stack too
    assert "disable-thp no" in got[0]["fix"]
    assert "THP_enabled: 0" in got[0]["detail"]


def test_never_blocks_only_the_hugepage_path(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS, enabled="always madvise [never]")
    assert te.THP_NEVER not in [b["reason"] for b in te.blockers(PID, sysfs_root=sys_root, proc_root=proc)]
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc, path="hugepage")
    assert got[0]["reason"] == te.THP_NEVER
    assert got[0]["bytes"] == (16384 + 16) * 1024


def test_kernel_without_thp(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS, thp=False)
    assert [b["reason"] for b in te.blockers(PID, sysfs_root=sys_root, proc_root=proc)] == [te.NO_THP]


def test_postgres_shared_buffers_misaligned_while_shmem_never(tmp_path):
    proc, sys_root = _tree(tmp_path, PG_SMAPS)
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc)
    # the aligned mapping collapses even under never (forced collapse); the misaligned one never
    assert [b["reason"] for b in got] == [te.SHMEM_MISALIGNED]
    assert got[0]["bytes"] == 4096 * 1024
    assert got[0]["mappings"] == [[SHM_UNALIGNED, SHM_UNALIGNED + 4 * H]]
    assert "never" in got[0]["detail"]
    assert "restart" in got[0]["fix"] and "shmem_enabled" in got[0]["fix"]


def test_shmem_never_blocks_the_hugepage_path(tmp_path):
    proc, sys_root = _tree(tmp_path, PG_SMAPS)
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc, path="hugepage")
    assert [b["reason"] for b in got] == [te.SHMEM_DISABLED]
    assert got[0]["bytes"] == (8192 + 4096) * 1024


def test_shmem_enabled_but_mapping_created_unaligned(tmp_path):
    proc, sys_root = _tree(tmp_path, PG_SMAPS, shmem="always within_size [advise] never deny force")
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc)
    assert [b["reason"] for b in got] == [te.SHMEM_MISALIGNED]
    assert got[0]["mappings"] == [[SHM_UNALIGNED, SHM_UNALIGNED + 4 * H]]


def test_shmem_deny_blocks_even_aligned_mappings(tmp_path):
    proc, sys_root = _tree(tmp_path, PG_SMAPS, shmem="always within_size advise never [deny] force")
    got = te.blockers(PID, sysfs_root=sys_root, proc_root=proc)
    assert got[0]["reason"] == te.SHMEM_DISABLED
    assert got[0]["bytes"] == (8192 + 4096) * 1024


def test_gone_process_raises(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    with pytest.raises(_procfs.ProcessGone):
        te.blockers(PID + 1, sysfs_root=sys_root, proc_root=proc)


def test_summarize():
    assert te.summarize(7, "x", []) == "x (pid 7): nothing keeps it from huge pages"
    line = te.summarize(7, "redis-server", [{"reason": te.PROCESS_DISABLED, "bytes": 3 << 20, "detail": "d"}])
    assert line == "redis-server (pid 7): process_thp_disabled: 3.0 MiB (d)"


# --- classify_ranges ----------------------------------------------------------------

PRESENT = 1 << 63
THP_HEAD = (1 << 22) | (1 << 15)
THP_TAIL = (1 << 22) | (1 << 16)


class FakeFlags(object):
    available = True

    def __init__(self, flags):
        self.map = flags

    def flags(self, pfn, count=1):
        return [self.map.get(pfn + i, 0) for i in range(count)]

    def close(self):
        pass


def _pagemap(layout):
    """layout: chunk index -> 'huge' | 'full' | 'empty' | 'one' ; returns (read_entries, kpageflags)."""
    per = H // P
    flags = {}
    table = {}
    for idx, kind in layout.items():
        base = 0x100000 + idx * per   # aligned PFN block per chunk
        if kind == "huge":
            ents = [PRESENT | (base + i) for i in range(per)]
            flags[base] = THP_HEAD
            for i in range(1, per):
                flags[base + i] = THP_TAIL
        elif kind == "full":
            ents = [PRESENT | (base + 7 * i + 1) for i in range(per)]
        elif kind == "one":
            ents = [PRESENT | base] + [0] * (per - 1)
        elif kind == "zero":          # only read: every page maps the one zero-page PFN
            ents = [PRESENT | 0x4242] * per
        else:
            ents = [0] * per
        table[idx] = ents

    def read_entries(start, end):
        out = []
        for c in range(start, end, H):
            out += table.get((c - HEAP) // H, [0] * per)
        return out
    return read_entries, FakeFlags(flags)


def test_classify_heap_range(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    read_entries, kpf = _pagemap({0: "huge", 1: "full", 2: "empty", 3: "one", 4: "full", 5: "zero"})
    # from 4 KiB into chunk 0 to half-way into chunk 5: chunk 0's head and chunk 5's half are partial
    start, end = HEAP + P, HEAP + 5 * H + H // 2
    (got,) = te.classify_ranges(PID, [(start, end)], sysfs_root=sys_root, proc_root=proc,
                                read_entries=read_entries, kpageflags=kpf)
    b = got["bytes"]
    assert b[te.PARTIAL] == (H - P) + H // 2
    assert b[te.COLLAPSIBLE] == 3 * H           # chunks 1, 3 (one page: the kernel would zero-fill), 4
    assert b[te.EMPTY] == H                     # chunk 2: EINVAL without a page table, bloat with one
    assert b[te.ALREADY_HUGE] == 0              # chunk 0 is not whole inside the range
    assert got["blockers"] == {}
    (zero,) = te.classify_ranges(PID, [(HEAP + 5 * H, HEAP + 6 * H)], sysfs_root=sys_root, proc_root=proc,
                                 read_entries=read_entries, kpageflags=kpf)
    assert zero["bytes"][te.EMPTY] == H           # only the zero page: nothing to gain
    (whole,) = te.classify_ranges(PID, [(HEAP, HEAP + 2 * H)], sysfs_root=sys_root, proc_root=proc,
                                  read_entries=read_entries, kpageflags=kpf)
    assert whole["bytes"][te.ALREADY_HUGE] == H and whole["bytes"][te.COLLAPSIBLE] == H


def test_classify_blocked_and_edges(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    read_entries, kpf = _pagemap({7: "full"})
    # heap chunk 7, then the gap up to the stack mapping, then 2 stack chunks (nh)
    (got,) = te.classify_ranges(PID, [(HEAP + 7 * H, STACK + 2 * H)], sysfs_root=sys_root, proc_root=proc,
                                read_entries=read_entries, kpageflags=kpf)
    b = got["bytes"]
    assert b[te.COLLAPSIBLE] == H
    assert b[te.BLOCKED] == 2 * H
    assert got["blockers"] == {te.VMA_NOHUGEPAGE: 2 * H}
    assert b[te.VMA_EDGE] == (STACK - (HEAP + 8 * H))


def test_classify_process_disabled_blocks_everything(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS, thp_enabled="0")
    read_entries, kpf = _pagemap({0: "full", 1: "full"})
    (got,) = te.classify_ranges(PID, [(HEAP, HEAP + 2 * H)], sysfs_root=sys_root, proc_root=proc,
                                read_entries=read_entries, kpageflags=kpf)
    assert got["bytes"][te.BLOCKED] == 2 * H
    assert got["blockers"] == {te.PROCESS_DISABLED: 2 * H}


def test_classify_shmem(tmp_path):
    proc, sys_root = _tree(tmp_path, PG_SMAPS)
    read_entries, kpf = _pagemap({})
    aligned, misaligned = te.classify_ranges(
        PID, [(SHM, SHM + 4 * H), (SHM_UNALIGNED, SHM_UNALIGNED + 4 * H)], sysfs_root=sys_root, proc_root=proc,
        read_entries=read_entries, kpageflags=kpf)
    assert aligned["blockers"] == {}
    assert misaligned["blockers"] == {te.SHMEM_MISALIGNED: 3 * H}   # 3 whole chunks inside the range


def test_classify_tiny_range_is_partial(tmp_path):
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    read_entries, kpf = _pagemap({})
    (got,) = te.classify_ranges(PID, [(HEAP + P, HEAP + 3 * P)], sysfs_root=sys_root, proc_root=proc,
                                read_entries=read_entries, kpageflags=kpf)
    assert got["bytes"][te.PARTIAL] == 2 * P
    assert sum(got["bytes"].values()) == 2 * P


def test_classify_reads_real_pagemap_file(tmp_path):
    """Default readers: a pagemap file in the fake /proc tree, kpageflags absent (not root)."""
    proc, sys_root = _tree(tmp_path, REDIS_SMAPS)
    per = H // P
    with open("%s/%d/pagemap" % (proc, PID), "wb") as f:   # sparse: only the heap's entries
        f.seek(HEAP // P * 8)
        f.write(struct.pack("%dQ" % per, *[PRESENT | (5 + 3 * i) for i in range(per)]))  # chunk 0 resident
        f.write(struct.pack("%dQ" % per, *([0] * per)))                  # chunk 1 empty
    (got,) = te.classify_ranges(PID, [(HEAP, HEAP + 2 * H)], sysfs_root=sys_root, proc_root=proc)
    assert got["bytes"][te.COLLAPSIBLE] == H
    assert got["bytes"][te.EMPTY] == H
