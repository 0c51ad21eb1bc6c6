# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    """Options and attributes shared by the collection's modules."""

    DOCUMENTATION = r"""
options:
  sysfs_root:
    description:
      - Mount point of sysfs on the managed host.
      - Only change it to point a module at a DAMON sysfs emulator or a copy of the tree.
    type: path
    default: /sys
"""

    # Modules whose behaviour depends on the kernel version.
    KERNEL_RELEASE = r"""
options:
  kernel_release:
    description:
      - Kernel release to assume when mapping kernel versions to DAMON features, for example V(6.12.0).
      - Defaults to the release of the running kernel. Set it only when O(sysfs_root) points at an
        emulated or copied tree of another kernel.
    type: str
"""

    # Modules that read or write the ownership record.
    OWNERSHIP = r"""
options:
  ownership_file:
    description:
      - Absolute path of the JSON file on the host that records which kdamonds this collection owns, which
        exclusive DAMON modules it stopped and which THP settings it changed; its structure is published as
        C(docs/schemas/ownership-record.schema.json).
      - Its directory must belong to the user running the module and must not be writable by group or others.
      - A lock file beside it (the same name plus C(.lock)) makes runs on one host take turns.
      - The record carries the boot id; a record from an earlier boot keeps none of its kdamonds.
    type: path
    default: /run/linux_mm_damon/ownership.json
"""

    # Modules that change host state: they hold the host lock from loading the record to saving it.
    HOST_LOCK = r"""
options:
  lock_timeout_s:
    description:
      - How long to wait for another linux_mm.damon run on the same host to release the host lock before
        failing with a message that names the holder (pid, module, since when).
      - That failure names the lock file, the holder's pid, module and start time and how long the run waited, and
        returns C(lock_busy=true), so a play can tell a busy host from a failed one; the hugepage role's
        C(hugepage_lock_busy=skip) ends its run for such a host without failing it.
        V(0) tries once without waiting.
      - A holder that dies (killed, OOM, lost connection) releases the lock at once.
    type: float
    default: 120.0
"""

    # Options shared by hugepage_step and the hugepage_tune action, which passes them on.
    HUGEPAGE_LOOP = r"""
options:
  between_runs:
    description:
      - What keeps collapsing hot memory while no run is in progress. On the V(damos_collapse) and V(khugepaged)
        paths the kernel's own scheme always does.
      - On the V(user_collapse) path (the default on Linux 6.2+) V(none) collapses only during runs; V(hugepage) adds a DAMOS
        C(hugepage) scheme at the threshold, so khugepaged collapses the regions it marks between runs (with THP
        C(enabled) V(madvise) or V(always)), and a C(nohugepage) scheme that unmarks regions not accessed for
        5 minutes. V(auto) is V(none).
      - On the other paths the value changes nothing, so one setting serves a fleet with mixed kernels.
    type: str
    choices: [auto, none, hugepage]
    default: auto
  learned_file:
    description:
      - Absolute path of the JSON file on the host that keeps, per application name, what the loop learned (the
        threshold as a share of samples, the monitoring intervals, the collapse path and the last decisions that
        changed them); its structure is published as C(docs/schemas/learned-state.schema.json).
      - A new kdamond for an application named there (after a reboot, or after its process was down during a run)
        starts from those values instead of the initial threshold. Written under the host lock, atomically, and
        only when a learned value changes; never in check mode.
      - Its directory must belong to the user running the module and must not be writable by group or others.
      - Default C(learned.json) beside O(ownership_file) (under C(/run), so it lasts until a reboot); the
        C(linux_mm.damon.hugepage) role keeps it in C(/var/lib/linux_mm_damon/) so it survives reboots.
    type: path
  path:
    description:
      - How hot regions become huge pages. V(auto) picks V(user_collapse) on Linux 6.2+ (the step collapses the
        hot 2 MiB chunks itself with C(process_madvise(MADV_COLLAPSE)), hottest first, each once it read hot in two
        snapshots, the step's and the one before) and V(khugepaged) (the
        C(hugepage) action, slow) otherwise.
      - V(damos_collapse) (Linux 7.2+) leaves collapsing to a DAMOS C(collapse) scheme, which keeps working
        between runs but acts on whole DAMON regions, cold chunks in a partly hot region included; measured in
        the 7.3 guest it made cold memory huge and stopped short of the hot memory (C(docs/real-applications.md)),
        so V(auto) does not pick it.
    type: str
    choices: [auto, damos_collapse, user_collapse, khugepaged]
    default: auto
  interval_s:
    description: Seconds to observe DAMON after configuring, before the statistics are read.
    type: float
    default: 5.0
  monitoring_attrs:
    description: Monitoring attributes of every application's kdamond.
    type: dict
    default: {}
    suboptions:
      sample_us:
        description: Sampling interval in microseconds.
        type: int
        default: 5000
      aggr_us:
        description: Aggregation interval in microseconds. The largest possible C(nr_accesses) is C(aggr_us / sample_us).
        type: int
        default: 100000
      min_nr_regions:
        description: Minimum number of regions.
        type: int
        default: 10
      max_nr_regions:
        description: Maximum number of regions.
        type: int
        default: 1000
  quota_bytes:
    description: Most bytes collapsed per second per application (DAMOS size quota, or per step on the user-space path); V(0) unlimited.
    type: int
    default: 134217728
  pool_size:
    description: Number of kdamond slots to create at once when more are needed (see M(linux_mm.damon.kdamond)).
    type: int
    default: 4
  exclusive_modules:
    description: What to do when an exclusive DAMON module runs (see M(linux_mm.damon.kdamond)).
    type: str
    choices: [fail, stop]
    default: fail
"""

    # Modules that change the host.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Computes the writes it would make and reports them without writing.
  diff_mode:
    support: full
    description: Returns the settings before and after as structured data.
  idempotent:
    support: full
    description: A second run with the same arguments changes nothing and reports C(changed=false).
  platform:
    support: full
    platforms: posix
    description: Linux hosts only; the module works on the sysfs files under O(sysfs_root).
"""

    # Read-only modules.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: N/A
    description: Diff mode makes no difference to a read-only module.
    details: The module changes nothing, so there is no diff.
  idempotent:
    support: full
    description: The module only reads.
  platform:
    support: full
    platforms: posix
    description: Linux hosts only; the module works on the sysfs files under O(sysfs_root).
"""

    # Members of the action group linux_mm.damon.damon (meta/runtime.yml): the modules that take O(sysfs_root).
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/linux_mm.damon.damon) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - linux_mm.damon.damon
"""
