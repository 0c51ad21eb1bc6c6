#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: collapse
short_description: Collapse memory ranges of a process into huge pages with process_madvise(MADV_COLLAPSE)
version_added: 0.1.0
description:
  - Collapses the given virtual address ranges of process O(pid) into PMD-sized transparent huge pages
    (2 MiB on x86-64) from user space, with the C(pidfd_open) and C(process_madvise) system calls
    (advice C(MADV_COLLAPSE)). This is what the DAMOS C(collapse) action of Linux 7.2 does in the kernel,
    for kernels without that action (Linux 6.1 to 7.1), typically on the hot regions DAMON reported.
  - Each range is shrunk inward to whole huge pages and cut into huge-page-sized chunks. A chunk is
    skipped when it is not inside a single mapping, when it is already one huge page, or when fewer than
    O(min_density) of its base pages are resident or swapped out, read from C(/proc/PID/pagemap)
    (C(MADV_COLLAPSE) fills holes with zero pages, so collapsing a sparse chunk costs memory).
  - The remaining chunks are collapsed in the order given, one iovec per chunk and up to 1024 (IOV_MAX)
    per call, until O(quota_bytes) is used up. A chunk that fails is asked again alone to learn its error;
    C(EAGAIN) is retried O(retries) times. The errors are counted per errno in RV(chunks.failed_by_errno)
    and listed in RV(failures). Failed chunks do not fail the task.
  - C(MADV_COLLAPSE) works whatever the system-wide THP policy is (even C(never)), but not on mappings
    marked C(MADV_NOHUGEPAGE) or with THP disabled by C(prctl).
  - Needs root (C(become) true) or C(CAP_SYS_NICE); without it the task fails before any call, except in check mode,
    which only reads the target's C(smaps) and C(pagemap). O(ranges) are intersected with the target's mappings, so
    a range as large as the whole address space costs what the process maps, not what the range spans.
author:
  - linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common.attributes
attributes:
  check_mode:
    support: full
    description: Reads the process and reports the chunks it would collapse, without calling C(process_madvise).
  diff_mode:
    support: full
    description: Returns C(AnonHugePages) of the process before and after (predicted in check mode).
  idempotent:
    support: full
    description:
      - Chunks that are already huge pages are skipped, so a second run reports C(changed=false) unless the
        memory changed in between.
  platform:
    support: full
    platforms: posix
    description: Linux 6.1 or later (C(MADV_COLLAPSE)); the module reads C(/proc) and calls C(process_madvise).
options:
  pid:
    description:
      - Process whose memory is collapsed.
    type: int
    required: true
  ranges:
    description:
      - Virtual address ranges of the process, for example the DAMON regions of a C(stat) scheme's
        C(tried_regions). Overlapping ranges are fine; each huge page is handled once.
    type: list
    elements: dict
    required: true
    suboptions:
      start:
        description:
          - First address of the range, as an integer or a string (hexadecimal with C(0x), like
            V(0x7f3a00000000), or decimal). Rounded up to a huge-page boundary.
        type: raw
        required: true
      end:
        description:
          - End of the range (exclusive), in the same forms as O(ranges[].start). Rounded down to a
            huge-page boundary.
        type: raw
        required: true
  min_density:
    description:
      - Smallest fraction (0 to 1) of a chunk's base pages that must be resident or swapped out for the chunk
        to be collapsed. With 4 KiB pages, V(0.5) needs 256 of the 512 pages of a 2 MiB chunk.
      - V(0) collapses every mapped chunk with at least one resident page (the kernel needs one).
    type: float
    default: 0.5
  quota_bytes:
    description:
      - Most bytes to hand to C(MADV_COLLAPSE) in this run, counted per chunk tried (like a DAMOS size
        quota); chunks beyond it are reported as RV(chunks.skipped_quota). Suffixes like V(64M) are accepted.
      - V(0) means no limit. Otherwise at least one huge page.
    type: bytes
    default: 0
  retries:
    description:
      - How many times to retry a chunk that failed with C(EAGAIN) (a transient failure, for example a
        page that could not be isolated), with a short backoff.
    type: int
    default: 3
notes:
  - C(process_madvise) needs C(CAP_SYS_NICE) and ptrace read access to the target (C(PTRACE_MODE_READ));
    run the task as root. Without C(CAP_SYS_ADMIN) the page frame numbers of C(pagemap) are hidden, so
    already-huge chunks can only be recognised when their whole mapping is huge (see RV(precise_huge_check)).
  - Zero pages mapped by read faults count as resident for O(min_density).
  - C(process_madvise) exists since Linux 5.10 and C(MADV_COLLAPSE) since 6.1. The system call number is
    440 on every architecture with the unified system call table (alpha and MIPS have their own).
seealso:
  - module: linux_mm.damon.hot_processes
  - module: linux_mm.damon.kdamond
  - name: process_madvise(2)
    description: The system call and its permission rules.
    link: https://man7.org/linux/man-pages/man2/process_madvise.2.html
  - name: Transparent Hugepage Support
    description: The kernel's description of MADV_COLLAPSE.
    link: https://docs.kernel.org/admin-guide/mm/transhuge.html
"""

EXAMPLES = r"""
- name: Collapse the hot part of a process, skipping chunks less than 75 % resident
  linux_mm.damon.collapse:
    pid: 4242
    ranges:
      - start: "0x7f3a00000000"
        end: "0x7f3a02000000"
    min_density: 0.75
  become: true
  register: collapsed

- name: Collapse the regions a DAMON stat scheme reported, at most 256 MiB per run
  linux_mm.damon.collapse:
    pid: "{{ app_pid }}"
    ranges: "{{ hot_regions }}"  # a list of {start, end}
    quota_bytes: 256M
  become: true

- name: See what would be collapsed
  linux_mm.damon.collapse:
    pid: 4242
    ranges:
      - {start: 139886848000000, end: 139886881554432}
  check_mode: true
  register: preview
"""

RETURN = r"""
pid:
  description: The target process.
  returned: always
  type: int
  sample: 4242
bytes_collapsed:
  description: Bytes of the chunks C(MADV_COLLAPSE) reported as collapsed (0 in check mode).
  returned: always
  type: int
  sample: 33554432
bytes_planned:
  description: Bytes of the chunks that passed the checks and the quota (tried, or in check mode to be tried).
  returned: always
  type: int
  sample: 33554432
chunks:
  description: Huge-page-sized chunks by outcome.
  returned: always
  type: dict
  contains:
    tried:
      description: Chunks handed (in check mode, to be handed) to C(MADV_COLLAPSE).
      type: int
      sample: 16
    collapsed:
      description: Chunks collapsed.
      type: int
      sample: 16
    skipped_sparse:
      description: Chunks below O(min_density).
      type: int
      sample: 32
    skipped_already_huge:
      description: Chunks already backed by one huge page.
      type: int
      sample: 0
    skipped_unmapped:
      description: Chunks not inside a single mapping (a hole, or a boundary between mappings).
      type: int
      sample: 0
    skipped_quota:
      description: Chunks left out because O(quota_bytes) was used up.
      type: int
      sample: 0
    retried:
      description: C(EAGAIN) retries made.
      type: int
      sample: 0
    failed_by_errno:
      description: Failed chunks per errno name, for example C(EINVAL) (mapping not eligible), C(ENOMEM)
        (no huge page available), C(EAGAIN) (still transient after the retries), C(EBUSY) (memory cgroup charge).
      type: dict
      sample: {EINVAL: 2}
ranges:
  description: Per range given, in order, the aligned bounds and the same counters as RV(chunks).
  returned: always
  type: list
  elements: dict
  sample:
    - start: 139886848000000
      end: 139886881554432
      aligned_start: 139886848000000
      aligned_end: 139886881554432
      bytes_planned: 33554432
      bytes_collapsed: 33554432
      tried: 16
      collapsed: 16
      skipped_sparse: 0
      skipped_already_huge: 0
      skipped_unmapped: 0
      skipped_quota: 0
      duplicate: 0
      failed_by_errno: {}
failures:
  description: Chunks that failed, with the errno and a hint at the cause.
  returned: always
  type: list
  elements: dict
  sample:
    - start: 139886848000000
      end: 139886850097152
      errno: 22
      errno_name: EINVAL
      attempts: 1
      message: Invalid argument (EINVAL)
      hint: "the mapping is not eligible for MADV_COLLAPSE: VM_NOHUGEPAGE is set (madvise MADV_NOHUGEPAGE)"
anon_huge_bytes_before:
  description: C(AnonHugePages) of C(/proc/PID/smaps_rollup) before the run, in bytes.
  returned: when the process could be read
  type: int
  sample: 0
anon_huge_bytes_after:
  description: C(AnonHugePages) of C(/proc/PID/smaps_rollup) after the run (in check mode, as before).
  returned: success
  type: int
  sample: 33554432
huge_page_size:
  description: Size of a PMD-mapped huge page on this host, in bytes (the chunk size).
  returned: success
  type: int
  sample: 2097152
precise_huge_check:
  description:
    - Whether chunks already backed by a huge page were recognised exactly (page frame numbers and
      C(/proc/kpageflags) readable, which needs C(CAP_SYS_ADMIN)).
  returned: success
  type: bool
  sample: true
elapsed_s:
  description: Wall-clock seconds the module spent reading and collapsing.
  returned: success
  type: float
  sample: 0.102
process_gone:
  description: V(true) when the task failed because the process does not exist or exited during the run.
  returned: failure
  type: bool
  sample: true
errno:
  description: Error number of the failure that stopped the run.
  returned: failure of a system call or a /proc read
  type: int
  sample: 3
errno_name:
  description: Symbolic name of RV(errno).
  returned: failure of a system call or a /proc read
  type: str
  sample: ESRCH
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._collapse import CollapseError, collapse
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import CAP_SYS_NICE, fail_unless_root
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import errno_name


ARGUMENT_SPEC = dict(
    pid=dict(type="int", required=True),
    ranges=dict(type="list", elements="dict", required=True, options=dict(
        start=dict(type="raw", required=True), end=dict(type="raw", required=True))),
    min_density=dict(type="float", default=0.5),
    quota_bytes=dict(type="bytes", default=0),
    retries=dict(type="int", default=3),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    if not module.check_mode:  # check mode only reads the target's smaps and pagemap
        fail_unless_root(module, "collapse", "collapse another process's memory with process_madvise(MADV_COLLAPSE)",
                         enough_cap=CAP_SYS_NICE, pid=p["pid"])

    try:
        result = collapse(
            pid=p["pid"],
            ranges=p["ranges"],
            min_density=p["min_density"],
            quota_bytes=p["quota_bytes"],
            retries=p["retries"],
            check_mode=module.check_mode,
        )
    except CollapseError as e:
        failed = dict(e.details.pop("partial", {}) or {})
        failed.update(e.details)
        if e.errno is not None:
            failed["errno"] = e.errno
            failed["errno_name"] = errno_name(e.errno)
        failed["process_gone"] = e.process_gone
        failed["pid"] = p["pid"]
        module.fail_json(msg=str(e), changed=bool(failed.get("bytes_collapsed")), **failed)

    if module.check_mode:
        result["changed"] = result["bytes_planned"] > 0
        predicted = result["anon_huge_bytes_before"] + result["bytes_planned"]
    else:
        result["changed"] = result["bytes_collapsed"] > 0
        predicted = result["anon_huge_bytes_after"]
    if module._diff:
        result["diff"] = dict(
            before=dict(anon_huge_bytes=result["anon_huge_bytes_before"]),
            after=dict(anon_huge_bytes=predicted),
        )
    failed_by_errno = result["chunks"]["failed_by_errno"]
    if failed_by_errno:
        module.warn("%d chunk(s) could not be collapsed: %s; see failures" % (
            sum(failed_by_errno.values()),
            ", ".join("%s x%d" % (k, v) for k, v in sorted(failed_by_errno.items()))))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
