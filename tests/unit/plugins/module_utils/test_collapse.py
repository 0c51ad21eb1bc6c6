# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_collapse.py.

Planning runs on synthetic mappings and pagemap data; execution on a fake
kernel that answers process_madvise() like the real one (bytes of the iovecs
finished before the first failure, or -1 and the errno when the first one
fails). Only the last tests make real system calls, with an advice the kernel
rejects, so nothing is changed.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse as collapse
from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap as pagemap
from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from ansible_collections.linux_mm.damon.plugins.module_utils import _thp_eligibility as te
from tests.helpers.pagemap import HUGE, PAGE, PER, FakeKpf, present, thp_flags

BASE = 0x7F0000000000  # huge-page aligned


class Memory:
    """Synthetic pagemap: {virtual page index: entry}; read_entries(start, end) like Pagemap.entries."""

    def __init__(self):
        self.pages = {}
        self.reads = []

    def fill(self, start, end, step_pages=1, entry=None):
        for index in range(start // PAGE, end // PAGE, step_pages):
            self.pages[index] = present(0) if entry is None else entry

    def fill_thp(self, start, pfn0):
        for i in range(PER):
            self.pages[start // PAGE + i] = present(pfn0 + i)

    def read_entries(self, start, end):
        self.reads.append((start, end))
        return array("Q", [self.pages.get(i, 0) for i in range(start // PAGE, end // PAGE)])


def vma(start, end, anon_huge=0, flags=("rd", "wr", "mr", "mw", "me"), perms="rw-p"):
    return procfs.Vma(start, end, perms, fields={"AnonHugePages": anon_huge}, vm_flags=frozenset(flags))


def states(planned):
    """One state per 2 MiB chunk (a run of skipped chunks counts ``count`` times)."""
    return [c.state for r in planned for c in r["chunks"] for unused in range(c.count)]


def do_plan(ranges, vmas, memory, kpf=None, min_density=0.5, quota=0):
    return collapse.plan(ranges, vmas, memory.read_entries, kpf or FakeKpf(available=False), min_density, quota,
                         HUGE, PAGE)


# --------------------------------------------------------------------------
# input

@pytest.mark.parametrize("value, expected", [
    (4096, 4096), ("0x7f0000000000", 0x7F0000000000), ("0X1000", 0x1000), (" 8192 ", 8192),
    ("0x7f00_0000_0000", 0x7F0000000000), (2.0 ** 21, 1 << 21),
])
def test_parse_address(value, expected):
    assert collapse.parse_address(value, "x") == expected


@pytest.mark.parametrize("value", [True, "zz", "0xg", -1, 1 << 64, None, [1], 1.5, ""])
def test_parse_address_rejects(value):
    with pytest.raises(collapse.CollapseError, match="x:"):
        collapse.parse_address(value, "x")


def test_normalize_ranges():
    assert collapse.normalize_ranges([{"start": "0x1000", "end": 8192}]) == [(4096, 8192)]
    with pytest.raises(collapse.CollapseError, match="at least one"):
        collapse.normalize_ranges([])
    with pytest.raises(collapse.CollapseError, match=r"ranges\[1\]: end 0x1000 is not above start 0x2000"):
        collapse.normalize_ranges([{"start": 0, "end": 1}, {"start": 0x2000, "end": 0x1000}])
    with pytest.raises(collapse.CollapseError, match=r"ranges\[0\].*must be a dict"):
        collapse.normalize_ranges([{"start": 1}])


@pytest.mark.parametrize("density, quota, retries, message", [
    (1.5, 0, 3, "min_density"), (-0.1, 0, 3, "min_density"), (0.5, -1, 3, "negative"),
    (0.5, HUGE - 1, 3, "below one huge page"), (0.5, 0, -1, "retries"),
])
def test_validate_options(density, quota, retries, message):
    with pytest.raises(collapse.CollapseError, match=message):
        collapse.validate_options(density, quota, retries, HUGE)


def test_validate_options_accepts_edges():
    collapse.validate_options(0.0, 0, 0, HUGE)
    collapse.validate_options(1.0, HUGE, 10, HUGE)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1 << 40), st.integers(1, 1 << 32))
def test_align_inward_property(start, length):
    end = start + length
    aligned = collapse.align_inward(start, end, HUGE)
    if aligned is None:
        # No whole huge page fits.
        first = -(-start // HUGE) * HUGE
        assert first + HUGE > end
        return
    lo, hi = aligned
    assert lo % HUGE == 0 and hi % HUGE == 0
    assert start <= lo < hi <= end
    assert lo - start < HUGE and end - hi < HUGE


@pytest.mark.parametrize("machine, abi, number", [
    ("x86_64", None, 440), ("aarch64", None, 440), ("riscv64", None, 440), ("ppc64le", None, 440),
    ("s390x", None, 440), ("armv7l", None, 440), ("loongarch64", None, 440), ("i686", None, 440),
    ("alpha", None, 550), ("mips64", "n64", 5440), ("mips", "o32", 4440), ("mips64", "n32", 6440),
    ("x86_64", "x32", 440 | 0x40000000),
])
def test_process_madvise_number(machine, abi, number):
    assert collapse.process_madvise_number(machine, abi) == number


# --------------------------------------------------------------------------
# planning

def test_plan_dense_sparse_and_threshold():
    mem = Memory()
    mem.fill(BASE, BASE + HUGE)  # 512/512
    mem.fill(BASE + HUGE, BASE + 2 * HUGE, step_pages=16)  # 32/512 (one page per 64 KiB)
    mem.fill(BASE + 2 * HUGE, BASE + 2 * HUGE + 256 * PAGE)  # exactly half
    mem.fill(BASE + 3 * HUGE, BASE + 3 * HUGE + 255 * PAGE)  # just below half
    mem.fill(BASE + 4 * HUGE, BASE + 4 * HUGE + 200 * PAGE)
    mem.fill(BASE + 4 * HUGE + 200 * PAGE, BASE + 4 * HUGE + 256 * PAGE, entry=pagemap.PM_SWAP)  # swapped counts
    planned = do_plan([(BASE, BASE + 6 * HUGE)], [vma(BASE, BASE + 8 * HUGE)], mem)
    assert states(planned) == ["collapse", "skipped_sparse", "collapse", "skipped_sparse", "collapse",
                               "skipped_sparse"]
    chunks = planned[0]["chunks"]
    assert (chunks[1].present, chunks[1].swapped) == (32, 0)
    assert "32 of 512 base pages resident (6.2% < 50.0%)" == chunks[1].reason
    assert (chunks[4].present, chunks[4].swapped) == (200, 56)
    # One pagemap read for the whole stretch of the range inside the mapping.
    assert mem.reads == [(BASE, BASE + 6 * HUGE)]


def test_plan_min_density_zero_still_needs_one_page():
    mem = Memory()
    mem.fill(BASE, BASE + PAGE)
    planned = do_plan([(BASE, BASE + 2 * HUGE)], [vma(BASE, BASE + 2 * HUGE)], mem, min_density=0.0)
    assert states(planned) == ["collapse", "skipped_sparse"]


def test_plan_density_one_needs_every_page():
    mem = Memory()
    mem.fill(BASE, BASE + HUGE)
    mem.fill(BASE + HUGE, BASE + 2 * HUGE - PAGE)
    planned = do_plan([(BASE, BASE + 2 * HUGE)], [vma(BASE, BASE + 2 * HUGE)], mem, min_density=1.0)
    assert states(planned) == ["collapse", "skipped_sparse"]


def test_plan_aligns_inward_and_notes_tiny_ranges():
    mem = Memory()
    mem.fill(BASE, BASE + 4 * HUGE)
    planned = do_plan([(BASE + 1, BASE + 3 * HUGE + 5), (BASE + 10, BASE + HUGE + 10)],
                      [vma(BASE, BASE + 4 * HUGE)], mem)
    first, tiny = planned
    assert (first["aligned_start"], first["aligned_end"]) == (BASE + HUGE, BASE + 3 * HUGE)
    assert [c.start for c in first["chunks"]] == [BASE + HUGE, BASE + 2 * HUGE]
    assert tiny["aligned_start"] is None and tiny["chunks"] == []
    summary = collapse.summarize(planned, HUGE)
    assert summary["ranges"][1]["note"] == "no whole huge page fits in this range"


def test_plan_unmapped_and_straddling_chunks():
    mem = Memory()
    mem.fill(BASE, BASE + 8 * HUGE)
    vmas = [
        vma(BASE, BASE + HUGE + HUGE // 2),  # chunk 1 straddles into the next mapping
        vma(BASE + HUGE + HUGE // 2, BASE + 3 * HUGE, flags=("rd", "wr", "nh")),
        # hole at chunk 3
        vma(BASE + 4 * HUGE, BASE + 5 * HUGE),
    ]
    planned = do_plan([(BASE, BASE + 5 * HUGE)], vmas, mem)
    assert states(planned) == ["collapse", "skipped_unmapped", "collapse", "skipped_unmapped", "collapse"]
    assert planned[0]["chunks"][1].reason == "not inside a single mapping"


def test_plan_overlapping_ranges_handle_each_chunk_once():
    mem = Memory()
    mem.fill(BASE, BASE + 4 * HUGE)
    planned = do_plan([(BASE, BASE + 3 * HUGE), (BASE + HUGE, BASE + 4 * HUGE)], [vma(BASE, BASE + 4 * HUGE)], mem)
    assert states(planned[1:]) == ["duplicate", "duplicate", "collapse"]
    summary = collapse.summarize(planned, HUGE)
    assert summary["chunks"]["tried"] == 4
    assert summary["ranges"][1]["duplicate"] == 2
    assert summary["bytes_planned"] == 4 * HUGE


def test_plan_quota_counts_only_chunks_to_try():
    mem = Memory()
    for i in range(6):
        if i != 1:
            mem.fill(BASE + i * HUGE, BASE + (i + 1) * HUGE)
    planned = do_plan([(BASE, BASE + 6 * HUGE)], [vma(BASE, BASE + 6 * HUGE)], mem, quota=3 * HUGE + HUGE // 2)
    assert states(planned) == ["collapse", "skipped_sparse", "collapse", "collapse", "skipped_quota",
                               "skipped_quota"]
    summary = collapse.summarize(planned, HUGE)
    assert summary["bytes_planned"] == 3 * HUGE
    assert summary["chunks"]["skipped_quota"] == 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, PER), min_size=1, max_size=24), st.floats(0.0, 1.0), st.integers(0, 30))
def test_plan_quota_and_density_properties(resident, density, quota_chunks):
    mem = Memory()
    for i, n in enumerate(resident):
        mem.fill(BASE + i * HUGE, BASE + i * HUGE + n * PAGE)
    end = BASE + len(resident) * HUGE
    planned = do_plan([(BASE, end)], [vma(BASE, end)], mem, min_density=density, quota=quota_chunks * HUGE)
    chosen = [c for c in planned[0]["chunks"] if c.state == "collapse"]
    dense = [i for i, n in enumerate(resident) if n and n / float(PER) >= density]
    if quota_chunks:
        assert len(chosen) == min(len(dense), quota_chunks)
    else:
        assert len(chosen) == len(dense)
    # The chunks kept are the first dense ones, in address order.
    assert [(c.start - BASE) // HUGE for c in chosen] == dense[:len(chosen)]
    for c in planned[0]["chunks"]:
        if c.state == "skipped_sparse":
            assert c.present == 0 or c.present / float(PER) < density


def test_plan_already_huge_with_kpageflags():
    mem = Memory()
    pfn0 = 0x80000
    mem.fill_thp(BASE, pfn0)
    for i in range(PER):  # chunk 1: contiguous PFNs but small pages (kpageflags: no THP)
        mem.pages[(BASE + HUGE) // PAGE + i] = present(0x100000 + i)
    kpf = FakeKpf(thp_flags(pfn0))
    planned = do_plan([(BASE, BASE + 2 * HUGE)], [vma(BASE, BASE + 2 * HUGE, anon_huge=HUGE)], mem, kpf)
    assert states(planned) == ["skipped_already_huge", "collapse"]
    # AnonHugePages 0 in the mapping: the folio is PTE-mapped, so collapsing it still helps.
    planned = do_plan([(BASE, BASE + 2 * HUGE)], [vma(BASE, BASE + 2 * HUGE, anon_huge=0)], mem, kpf)
    assert states(planned) == ["collapse", "collapse"]


def test_plan_already_huge_without_pfns_uses_smaps():
    mem = Memory()
    mem.fill(BASE, BASE + 4 * HUGE)  # present, PFN hidden (0)
    whole = vma(BASE, BASE + 2 * HUGE, anon_huge=2 * HUGE)
    partly = vma(BASE + 2 * HUGE, BASE + 4 * HUGE, anon_huge=HUGE)
    planned = do_plan([(BASE, BASE + 4 * HUGE)], [whole, partly], mem)
    # Whole mapping huge: skip. Partly huge: cannot tell which chunk, so the kernel decides.
    assert states(planned) == ["skipped_already_huge", "skipped_already_huge", "collapse", "collapse"]


# --------------------------------------------------------------------------
# execution

class FakeKernel:
    """process_madvise() semantics: per-chunk outcomes consumed in call order (0 = collapsed)."""

    def __init__(self, outcomes=None, gone=(), pidfd_errno=None):
        self.outcomes = {k: list(v) for k, v in (outcomes or {}).items()}
        self.calls = []
        self.gone = gone
        self.pidfd_errno = pidfd_errno
        self.closed = []

    def pidfd_open(self, pid):
        if pid in self.gone:
            raise OSError(errno.ESRCH, os.strerror(errno.ESRCH))
        if self.pidfd_errno:
            raise OSError(self.pidfd_errno, os.strerror(self.pidfd_errno))
        return 1000 + pid

    def close(self, fd):
        self.closed.append(fd)

    def process_madvise(self, pidfd, iovecs, advice):
        assert advice == collapse.MADV_COLLAPSE
        assert len(iovecs) <= collapse.IOV_MAX
        self.calls.append([iov[0] for iov in iovecs])
        done = 0
        for start, length in iovecs:
            assert length == HUGE and start % HUGE == 0
            queue = self.outcomes.get(start)
            err = queue.pop(0) if queue else 0
            if err:
                return (done, 0) if done else (-1, err)
            done += length
        return done, 0


def planned_dense(n, vma_flags=("rd", "wr")):
    mem = Memory()
    mem.fill(BASE, BASE + n * HUGE)
    return do_plan([(BASE, BASE + n * HUGE)], [vma(BASE, BASE + n * HUGE, flags=vma_flags)], mem)


def chunk(i):
    return BASE + i * HUGE


def test_execute_all_in_one_call():
    kernel = FakeKernel()
    result = collapse.execute(planned_dense(5), kernel, 7, HUGE)
    assert kernel.calls == [[chunk(i) for i in range(5)]]
    assert result["bytes_collapsed"] == 5 * HUGE
    assert result["chunks"]["collapsed"] == 5 and result["chunks"]["tried"] == 5
    assert result["failures"] == []


def test_execute_batches_at_iov_max():
    kernel = FakeKernel()
    result = collapse.execute(planned_dense(10), kernel, 7, HUGE, batch_max=4)
    assert [len(c) for c in kernel.calls] == [4, 4, 2]
    assert result["chunks"]["collapsed"] == 10


def test_execute_real_iov_max_batches():
    kernel = FakeKernel()
    n = collapse.IOV_MAX + 3
    result = collapse.execute(planned_dense(n), kernel, 7, HUGE)
    assert [len(c) for c in kernel.calls] == [collapse.IOV_MAX, 3]
    assert result["bytes_collapsed"] == n * HUGE


def test_execute_partial_return_asks_failing_chunk_alone_and_continues():
    kernel = FakeKernel({chunk(2): [errno.EINVAL, errno.EINVAL]})
    planned = planned_dense(5, vma_flags=("rd", "wr", "nh"))
    reasons = []

    def vma_reason(address):
        reasons.append(address)
        return "VM_NOHUGEPAGE is set"

    result = collapse.execute(planned, kernel, 7, HUGE, vma_reason=vma_reason)
    assert kernel.calls == [[chunk(i) for i in range(5)], [chunk(2)], [chunk(3), chunk(4)]]
    assert result["chunks"]["collapsed"] == 4
    assert result["chunks"]["failed_by_errno"] == {"EINVAL": 1}
    assert result["bytes_collapsed"] == 4 * HUGE
    failure, = result["failures"]
    assert failure["start"] == chunk(2) and failure["errno_name"] == "EINVAL" and failure["attempts"] == 1
    assert "VM_NOHUGEPAGE is set" in failure["hint"]
    assert reasons == [chunk(2)]
    assert result["ranges"][0]["failed_by_errno"] == {"EINVAL": 1}


def test_execute_first_chunk_fails_with_minus_one():
    kernel = FakeKernel({chunk(0): [errno.ENOMEM, errno.ENOMEM]})
    result = collapse.execute(planned_dense(3), kernel, 7, HUGE)
    assert kernel.calls == [[chunk(0), chunk(1), chunk(2)], [chunk(0)], [chunk(1), chunk(2)]]
    assert result["chunks"]["failed_by_errno"] == {"ENOMEM": 1}
    assert "no huge page could be allocated" in result["failures"][0]["hint"]


def test_execute_eagain_is_retried():
    slept = []
    kernel = FakeKernel({chunk(1): [errno.EAGAIN, errno.EAGAIN, errno.EAGAIN, 0]})
    result = collapse.execute(planned_dense(3), kernel, 7, HUGE, retries=3, sleep=slept.append)
    # batch (EAGAIN lost), alone: EAGAIN, EAGAIN, success; then the rest.
    assert kernel.calls == [[chunk(0), chunk(1), chunk(2)], [chunk(1)], [chunk(1)], [chunk(1)], [chunk(2)]]
    assert result["chunks"]["collapsed"] == 3
    assert result["chunks"]["retried"] == 2
    assert slept == [collapse.RETRY_FIRST_DELAY_S, 2 * collapse.RETRY_FIRST_DELAY_S]


def test_execute_eagain_gives_up_after_retries():
    kernel = FakeKernel({chunk(0): [errno.EAGAIN] * 10})
    result = collapse.execute(planned_dense(1), kernel, 7, HUGE, retries=2, sleep=lambda s: None)
    assert len(kernel.calls) == 1 + 3
    assert result["chunks"]["failed_by_errno"] == {"EAGAIN": 1}
    assert result["chunks"]["retried"] == 2
    assert result["failures"][0]["attempts"] == 3
    assert "retries exhausted" in result["failures"][0]["hint"]


def test_execute_no_retries():
    kernel = FakeKernel({chunk(0): [errno.EAGAIN] * 10})
    result = collapse.execute(planned_dense(1), kernel, 7, HUGE, retries=0, sleep=lambda s: None)
    assert len(kernel.calls) == 2
    assert result["chunks"]["failed_by_errno"] == {"EAGAIN": 1}


def test_execute_mixed_errnos_are_counted():
    kernel = FakeKernel({chunk(0): [errno.EINVAL] * 2, chunk(2): [errno.EBUSY] * 2, chunk(3): [errno.EINVAL] * 2})
    result = collapse.execute(planned_dense(5), kernel, 7, HUGE)
    assert result["chunks"]["failed_by_errno"] == {"EINVAL": 2, "EBUSY": 1}
    assert result["chunks"]["collapsed"] == 2
    assert result["chunks"]["tried"] == 5


@pytest.mark.parametrize("err, words, gone", [
    (errno.ESRCH, "exited during the collapse", True),
    (errno.EPERM, "CAP_SYS_NICE and ptrace read access", False),
    (errno.ENOSYS, "Linux 5.10", False),
    (errno.EBADF, "failed: Bad file descriptor (EBADF)", False),
])
def test_execute_fatal_errors_stop_with_partial_result(err, words, gone):
    kernel = FakeKernel({chunk(2): [err] * 2})
    with pytest.raises(collapse.CollapseError) as info:
        collapse.execute(planned_dense(4), kernel, 7, HUGE)
    e = info.value
    assert words in str(e)
    assert e.errno == err and e.process_gone is gone
    partial = e.details["partial"]
    # Chunks 0 and 1 were done by the batch call before chunk 2 failed.
    assert partial["chunks"]["collapsed"] == 2
    assert partial["bytes_collapsed"] == 2 * HUGE
    assert kernel.calls[-1] == [chunk(2)]


def test_execute_check_mode_calls_nothing():
    kernel = FakeKernel()
    result = collapse.execute(planned_dense(3), kernel, 7, HUGE, check_mode=True)
    assert kernel.calls == []
    assert result["bytes_collapsed"] == 0
    assert result["bytes_planned"] == 3 * HUGE
    assert result["chunks"]["tried"] == 3 and result["chunks"]["collapsed"] == 0


def test_chunk_hint_for_old_kernel(monkeypatch):
    monkeypatch.setattr(collapse.platform, "release", lambda: "5.15.0-91-generic")
    assert "predates MADV_COLLAPSE" in collapse._chunk_hint(errno.EINVAL, 0, None)
    monkeypatch.setattr(collapse.platform, "release", lambda: "6.18.44-fc")
    assert "predates" not in collapse._chunk_hint(errno.EINVAL, 0, None)
    assert collapse._kernel_before("6.0.9", (6, 1))
    assert not collapse._kernel_before("6.1", (6, 1))
    assert not collapse._kernel_before("7.3.4+deb13-cloud-amd64", (6, 1))


# --------------------------------------------------------------------------
# the whole run on a fake /proc

def fake_process(tmp_path, pid, vmas_text, pages, rollup_huge_kb=0):
    d = tmp_path / str(pid)
    d.mkdir()
    (d / "smaps").write_text(vmas_text)
    (d / "smaps_rollup").write_text("Rss: 1 kB\nAnonHugePages: %d kB\n" % rollup_huge_kb)
    with open(d / "pagemap", "wb") as f:
        for index, value in sorted(pages.items()):
            f.seek(index * 8)
            f.write(array("Q", [value]).tobytes())
    return d


def smaps_vma(start, end, anon_huge_kb=0, flags="rd wr mr mw me"):
    return ("%x-%x rw-p 00000000 00:00 0\nSize: %d kB\nAnonHugePages: %d kB\nVmFlags: %s\n"
            % (start, end, (end - start) // 1024, anon_huge_kb, flags))


def test_collapse_end_to_end_on_fake_proc(tmp_path):
    pages = {}
    for i in range(PER * 2):  # chunks 0 and 1 dense
        pages[BASE // PAGE + i] = present(0)
    for i in range(0, PER, 16):  # chunk 2 sparse
        pages[(BASE + 2 * HUGE) // PAGE + i] = present(0)
    pages[(BASE + 4 * HUGE) // PAGE] = 0  # file long enough
    fake_process(tmp_path, 77, smaps_vma(BASE, BASE + 4 * HUGE), pages)
    kernel = FakeKernel()
    result = collapse.collapse(77, [{"start": hex(BASE), "end": BASE + 3 * HUGE + 5}], kernel=kernel,
                               proc_root=str(tmp_path), huge=HUGE, page=PAGE,
                               kpageflags=FakeKpf(available=False))
    assert kernel.calls == [[chunk(0), chunk(1)]]
    assert kernel.closed == [1077]
    assert result["bytes_collapsed"] == 2 * HUGE
    assert result["chunks"]["skipped_sparse"] == 1
    assert result["anon_huge_bytes_before"] == 0
    assert result["anon_huge_bytes_after"] == 0  # the fake file does not change
    assert result["pid"] == 77 and result["huge_page_size"] == HUGE
    assert result["precise_huge_check"] is False
    assert result["ranges"][0]["start"] == BASE and result["ranges"][0]["aligned_end"] == BASE + 3 * HUGE


def test_collapse_missing_process(tmp_path):
    with pytest.raises(collapse.CollapseError, match="process 4242 does not exist") as info:
        collapse.collapse(4242, [{"start": 0, "end": HUGE}], kernel=FakeKernel(gone=(4242,)),
                          proc_root=str(tmp_path), huge=HUGE, page=PAGE)
    assert info.value.process_gone and info.value.errno == errno.ESRCH


def test_collapse_process_exits_before_proc_is_read(tmp_path):
    kernel = FakeKernel()
    with pytest.raises(collapse.CollapseError, match="exited while its /proc files were read") as info:
        collapse.collapse(4243, [{"start": 0, "end": HUGE}], kernel=kernel, proc_root=str(tmp_path),
                          huge=HUGE, page=PAGE, kpageflags=FakeKpf(available=False))
    assert info.value.process_gone
    assert kernel.closed == [1000 + 4243]


def test_collapse_proc_access_denied(tmp_path, monkeypatch):
    fake_process(tmp_path, 78, smaps_vma(BASE, BASE + HUGE), {BASE // PAGE: 0})

    def denied(pid, proc_root=procfs.PROC):
        raise procfs.ProcAccessDenied("/proc/78/smaps_rollup", errno.EACCES)

    monkeypatch.setattr(procfs, "anon_huge_bytes", denied)
    with pytest.raises(collapse.CollapseError, match="ptrace read access") as info:
        collapse.collapse(78, [{"start": BASE, "end": BASE + HUGE}], kernel=FakeKernel(), proc_root=str(tmp_path),
                          huge=HUGE, page=PAGE, kpageflags=FakeKpf(available=False))
    assert info.value.errno == errno.EACCES and not info.value.process_gone


@pytest.mark.parametrize("pid", [0, -5, True, "12"])
def test_collapse_bad_pid(pid, tmp_path):
    with pytest.raises(collapse.CollapseError, match="pid"):
        collapse.collapse(pid, [{"start": 0, "end": HUGE}], kernel=FakeKernel(), proc_root=str(tmp_path),
                          huge=HUGE, page=PAGE)


def test_collapse_pidfd_open_other_errors(tmp_path):
    with pytest.raises(collapse.CollapseError, match="Linux 5.3"):
        collapse.collapse(5, [{"start": 0, "end": HUGE}], kernel=FakeKernel(pidfd_errno=errno.ENOSYS),
                          proc_root=str(tmp_path), huge=HUGE, page=PAGE)
    with pytest.raises(collapse.CollapseError, match=r"pidfd_open\(5\) failed: .*EMFILE"):
        collapse.collapse(5, [{"start": 0, "end": HUGE}], kernel=FakeKernel(pidfd_errno=errno.EMFILE),
                          proc_root=str(tmp_path), huge=HUGE, page=PAGE)


# --------------------------------------------------------------------------
# the real system calls, harmlessly

def test_real_pidfd_open_of_a_reaped_child_is_esrch():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    kernel = collapse.Kernel()
    if os.path.exists("/proc/%d" % child.pid):
        pytest.skip("PID %d was reused already" % child.pid)
    with pytest.raises(OSError) as info:
        kernel.pidfd_open(child.pid)
    assert info.value.errno == errno.ESRCH


def test_real_process_madvise_plumbing_with_a_rejected_advice():
    """An advice number the kernel does not know comes back as EINVAL: the ctypes call reaches it."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        kernel = collapse.Kernel()
        fd = kernel.pidfd_open(child.pid)
        try:
            ret, err = kernel.process_madvise(fd, [(BASE, HUGE)], 12345)
        finally:
            kernel.close(fd)
        assert (ret, err) == (-1, errno.EINVAL)
    finally:
        child.kill()
        child.wait()


def test_execute_fatal_error_on_the_first_chunk_of_a_batch():
    kernel = FakeKernel({chunk(0): [errno.EPERM]})
    with pytest.raises(collapse.CollapseError, match="CAP_SYS_NICE") as info:
        collapse.execute(planned_dense(3), kernel, 7, HUGE)
    assert len(kernel.calls) == 1
    assert info.value.details["partial"]["chunks"]["collapsed"] == 0


def test_plan_zero_page_ptes_are_not_resident():
    """Memory only read maps the shared zero page: one PFN repeated. Such a chunk is empty, not dense
    (7.3 would collapse it into 2 MiB of zeros); with kpageflags a repeated KSM page is data."""
    zero_pfn, ksm_pfn = 0x5000, 0x6000
    mem = Memory()
    mem.fill(BASE, BASE + HUGE, entry=present(zero_pfn))  # read only: all zero page
    for i in range(PER):  # written: distinct PFNs in the first half, zero page in the rest
        mem.pages[(BASE + HUGE) // PAGE + i] = present(0x10000 + i) if i < 100 else present(zero_pfn)
    mem.fill(BASE + 2 * HUGE, BASE + 3 * HUGE, entry=present(ksm_pfn))  # KSM-merged data: repeats too
    ranges, vmas = [(BASE, BASE + 3 * HUGE)], [vma(BASE, BASE + 4 * HUGE)]
    by_repeat = do_plan(ranges, vmas, mem)
    assert states(by_repeat) == ["skipped_sparse"] * 3
    chunks = [c for r in by_repeat for c in r["chunks"]]
    assert chunks[0].present == 0 and chunks[1].present == 100
    assert "512 more map only the zero page" in chunks[0].reason
    exact = do_plan(ranges, vmas, mem, kpf=FakeKpf({zero_pfn: pagemap.KPF_ZERO_PAGE, ksm_pfn: te.KPF_KSM}))
    assert states(exact) == ["skipped_sparse", "skipped_sparse", "collapse"]
    # the same chunks with the PFNs hidden (not root) cannot be told apart from data
    hidden = Memory()
    hidden.fill(BASE, BASE + HUGE)
    assert states(do_plan([(BASE, BASE + HUGE)], vmas, hidden)) == ["collapse"]
