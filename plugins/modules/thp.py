#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: thp
short_description: Manage transparent huge page and khugepaged settings
version_added: 0.1.0
description:
  - Sets the transparent huge page (THP) policy under C(/sys/kernel/mm/transparent_hugepage)
    and the tunables of the C(khugepaged) thread under its C(khugepaged/) directory.
  - Only the settings given are managed; the others are left as they are.
  - Selector files such as C(enabled) read like C(always [madvise] never), the word in brackets
    being the current one. The accepted words are read from the file itself, since kernels
    differ; a word the kernel does not list is rejected before anything is written.
  - Every value is validated before the first write. Writes go straight to sysfs, khugepaged
    tunables first and O(enabled) last.
  - Settings made through sysfs do not survive a reboot.
  - Needs root (C(become) true) except in check mode; without it the task fails before it takes the host lock or
    writes anything.
author:
  - linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common
  - linux_mm.damon._common.attributes
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common.ownership
  - linux_mm.damon._common.host_lock
options:
  save_previous:
    description:
      - Before the first write to a file, record its old value in the ownership record (O(ownership_file)),
        unless a value for that file is recorded already, so the record keeps what the host had before
        linux_mm.damon first changed it. O(restore=true) writes these values back.
    type: bool
    default: true
  restore:
    description:
      - Write back the values recorded by earlier runs with O(save_previous=true), then forget them.
        Settings recorded for files this kernel lacks are skipped. Nothing recorded means nothing to do.
      - Mutually exclusive with the settings options.
    type: bool
    default: false
  enabled:
    description:
      - THP policy for anonymous memory, written to C(enabled).
      - Usually one of V(always), V(madvise) or V(never); the kernel's own list is authoritative.
    type: str
  defrag:
    description:
      - Whether page faults stall for direct reclaim and compaction to get a huge page,
        written to C(defrag).
      - Usually one of V(always), V(defer), V(defer+madvise), V(madvise) or V(never).
    type: str
  shmem_enabled:
    description:
      - THP policy for shmem and tmpfs mappings, written to C(shmem_enabled).
      - Usually one of V(always), V(within_size), V(advise), V(never), V(deny) or V(force).
      - Linux 4.8 and later.
    type: str
  use_zero_page:
    description:
      - Whether read faults on anonymous memory map the huge zero page, written to C(use_zero_page).
    type: bool
  khugepaged:
    description:
      - Tunables of the khugepaged thread, which collapses small pages into huge pages in the background.
    type: dict
    suboptions:
      defrag:
        description:
          - Whether khugepaged may reclaim and compact memory to allocate a huge page.
        type: bool
      pages_to_scan:
        description:
          - Number of pages scanned on each pass. At least 1.
        type: int
      scan_sleep_millisecs:
        description:
          - Milliseconds to sleep between passes.
        type: int
      alloc_sleep_millisecs:
        description:
          - Milliseconds to sleep after a huge page allocation failed.
        type: int
      max_ptes_none:
        description:
          - Number of unmapped small pages a collapsed range may contain (they are filled with zeroes,
            which costs memory).
          - At most one less than the number of small pages in a huge page (511 with 4 KiB pages and
            2 MiB huge pages).
        type: int
      max_ptes_swap:
        description:
          - Number of swapped-out small pages khugepaged may read back in to collapse a range.
          - Same upper bound as O(khugepaged.max_ptes_none). Linux 4.5 and later.
        type: int
      max_ptes_shared:
        description:
          - Number of small pages shared between processes a collapsed range may contain.
          - Same upper bound as O(khugepaged.max_ptes_none). Linux 5.8 and later.
        type: int
notes:
  - Asking for a setting whose file this kernel lacks is an error that names the file.
  - If a write fails, the result lists the writes already applied in RV(applied); running the task
    again converges.
seealso:
  - name: Transparent Hugepage Support
    description: The kernel's description of these files.
    link: https://docs.kernel.org/admin-guide/mm/transhuge.html
"""

EXAMPLES = r"""
- name: Huge pages only where applications ask for them
  linux_mm.damon.thp:
    enabled: madvise
    defrag: defer+madvise

- name: Let khugepaged collapse faster and avoid zero-filled bloat
  linux_mm.damon.thp:
    khugepaged:
      pages_to_scan: 65536
      scan_sleep_millisecs: 1000
      max_ptes_none: 409

- name: Show what would change without writing
  linux_mm.damon.thp:
    enabled: never
  check_mode: true
  diff: true
  register: thp_preview

- name: Read the current settings only
  linux_mm.damon.thp:
  register: thp_now

- name: Put back what the host had before linux_mm.damon changed it
  linux_mm.damon.thp:
    restore: true
"""

RETURN = r"""
lock_busy:
  description:
    - V(true) when the task failed only because another run held the host lock for longer than O(lock_timeout_s);
      nothing was changed. The hugepage role's C(hugepage_lock_busy=skip) ends its run for such a host on it.
  returned: failure
  type: bool
  sample: false
saved:
  description:
    - The old values recorded in the ownership record after this run, by file (relative to
      C(transparent_hugepage/)); empty after O(restore=true).
  returned: always
  type: dict
  sample: {enabled: madvise, "khugepaged/pages_to_scan": "4096"}
thp:
  description:
    - All THP and khugepaged settings after the run, including read-only ones.
    - In check mode, the settings as they are, since nothing was written.
    - A file the kernel does not have is V(null).
  returned: always
  type: dict
  contains:
    enabled:
      description: Current THP policy for anonymous memory.
      type: str
      sample: madvise
    defrag:
      description: Current fault-time defrag policy.
      type: str
      sample: madvise
    shmem_enabled:
      description: Current THP policy for shmem and tmpfs.
      type: str
      sample: never
    use_zero_page:
      description: Whether the huge zero page is used.
      type: bool
      sample: true
    hpage_pmd_size:
      description: Size of a PMD-mapped huge page in bytes (read-only).
      type: int
      sample: 2097152
    shrink_underused:
      description: Whether underused huge pages are split under memory pressure (Linux 6.12 and later; reported only).
      type: bool
      sample: true
    khugepaged:
      description: khugepaged tunables and its read-only counters C(pages_collapsed) and C(full_scans).
      type: dict
      sample:
        defrag: true
        pages_to_scan: 4096
        scan_sleep_millisecs: 10000
        alloc_sleep_millisecs: 60000
        max_ptes_none: 511
        max_ptes_swap: 64
        max_ptes_shared: 256
        pages_collapsed: 0
        full_scans: 0
    choices:
      description: Words each selector file accepts on this kernel.
      type: dict
      sample:
        enabled: [always, madvise, never]
        defrag: [always, defer, defer+madvise, madvise, never]
        shmem_enabled: [always, within_size, advise, never, deny, force]
changes:
  description:
    - Writes made (or, in check mode, that would be made), in order, with the file's value before
      and the value written.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan
      before: "4096"
      after: "65536"
    - path: /sys/kernel/mm/transparent_hugepage/enabled
      before: always
      after: madvise
applied:
  description: Writes that succeeded before a write failed; running the task again completes the rest.
  returned: failure of a write
  type: list
  elements: dict
  sample:
    - path: /sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan
      before: "4096"
      after: "65536"
failed_write:
  description:
    - The write that failed, with its errno. The path is also named in the message.
  returned: failure of a write
  type: dict
  sample: {path: /sys/kernel/mm/transparent_hugepage/enabled, value: never, errno: 22, errno_name: EINVAL}
failed_read:
  description: The read that failed (V(value) is V(null)), with its errno.
  returned: failure of a read
  type: dict
  sample: {path: /sys/kernel/mm/transparent_hugepage/defrag, value: null, errno: 13, errno_name: EACCES}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import LockTimeout
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import HOST_STATE_ERRORS, Ownership, locked_record
from ansible_collections.linux_mm.damon.plugins.module_utils._options import LOCK_OPTIONS, OWNERSHIP_OPTIONS, SYSFS_OPTIONS
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import fail_unless_root, needs_root
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError
from ansible_collections.linux_mm.damon.plugins.module_utils._thp import (
    ThpError,
    apply,
    desired_from_params,
    expected_values,
    full_view,
    plan,
    public_change,
    read_read_only,
    read_state,
    desired_from_saved,
    remember_before,
    validate,
)

SETTING_OPTIONS = ("enabled", "defrag", "shmem_enabled", "use_zero_page", "khugepaged")


ARGUMENT_SPEC = dict(
    enabled=dict(type="str"),
    defrag=dict(type="str"),
    shmem_enabled=dict(type="str"),
    use_zero_page=dict(type="bool"),
    khugepaged=dict(type="dict", options=dict(
        defrag=dict(type="bool"), pages_to_scan=dict(type="int"), scan_sleep_millisecs=dict(type="int"),
        alloc_sleep_millisecs=dict(type="int"), max_ptes_none=dict(type="int"), max_ptes_swap=dict(type="int"),
        max_ptes_shared=dict(type="int"))),
    save_previous=dict(type="bool", default=True),
    restore=dict(type="bool", default=False),
    sysfs_root=SYSFS_OPTIONS["sysfs_root"],
    **dict(OWNERSHIP_OPTIONS, **LOCK_OPTIONS)
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[["restore", key] for key in SETTING_OPTIONS])
    p = module.params
    try:
        if not p["restore"] and all(p[key] is None for key in SETTING_OPTIONS):
            result = _run(module, Ownership.load(p["ownership_file"]))  # only reads: no lock needed
        elif module.check_mode and needs_root("thp", "write THP settings"):
            result = _run(module, Ownership(p["ownership_file"]))  # a preview; the record is root's
        else:
            if not module.check_mode:  # before the host lock and the record, which are root's too
                fail_unless_root(module, "thp", "write THP settings")
            with locked_record(p["ownership_file"], "thp", p["lock_timeout_s"], module.check_mode) as own:
                result = _run(module, own)
    except HOST_STATE_ERRORS as e:
        module.fail_json(msg=str(e), lock_busy=isinstance(e, LockTimeout))
    module.exit_json(**result)


def _run(module, own):
    """Plan and apply under the host lock; the old values are in the record before the first write."""
    p = module.params
    try:
        state = read_state(p["sysfs_root"])
        desired = desired_from_saved(own.thp_saved) if p["restore"] else desired_from_params(p)
        validate(desired, state)
    except ThpError as e:
        module.fail_json(msg=str(e))
    except SysfsError as e:
        module.fail_json(msg=str(e), failed_read=e.as_dict())

    planned = plan(state, desired)
    result = dict(changed=bool(planned.changes), changes=[public_change(c) for c in planned.changes])
    if module._diff:
        result["diff"] = dict(before=planned.before, after=planned.after)
    if p["restore"] and not module.check_mode and own.thp_saved:
        own.thp_saved = {}  # restored below, or already back to what it was
        own.dirty = True
    elif p["save_previous"] and planned.changes:
        remember_before(own.thp_saved, planned.changes)
    result["saved"] = dict(own.thp_saved)

    if module.check_mode or not planned.changes:
        result["thp"] = full_view(state["values"], state["choices"], state["read_only"])
        return result

    own.save()  # the values to restore are on disk before the first write
    applied = []
    try:
        apply(planned, applied)
    except SysfsError as e:
        if applied:
            done = "%d earlier write(s) were applied (see applied); running the task again converges" % len(applied)
        else:
            done = "nothing was written"
        module.fail_json(msg="%s; %s" % (e, done), changed=bool(applied), applied=applied,
                         changes=result["changes"], failed_write=e.as_dict())

    try:
        read_only = read_read_only(state["dir"])
    except (ThpError, SysfsError):
        read_only = state["read_only"]
    result["thp"] = full_view(expected_values(state, desired), state["choices"], read_only)
    return result


if __name__ == "__main__":
    main()
