#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kdamond
short_description: Declare the desired state of a DAMON kdamond this collection owns
version_added: 0.1.0
description:
  - Configures one kdamond of the Linux kernel's DAMON sysfs interface (C(/sys/kernel/mm/damon/admin))
    with one monitoring context, its targets and its DAMOS schemes, and turns it on or off.
  - Computes the minimal, correctly ordered list of sysfs writes from the live tree to the desired one.
    An C(nr_*) file is written only when its value changes, because the kernel recreates all children
    (with zero values) on every such write. A running kdamond takes changes with C(commit), never with off/on.
  - The kdamond is identified by O(name) in an ownership record on the host. Kdamonds this collection did
    not create are never changed, stopped or renumbered; when they make a change impossible, the module fails
    and names them.
  - Features the running kernel lacks fail with a message naming the kernel that adds them.
author: linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common
  - linux_mm.damon._common.attributes
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common.kernel_release
  - linux_mm.damon._common.ownership
  - linux_mm.damon._common.host_lock
options:
  name:
    description:
      - Name of the kdamond in the ownership record. The module finds its slot index by this name.
    type: str
    required: true
  state:
    description:
      - V(running) configures the kdamond and turns it on (or commits the changes if it already runs).
      - V(stopped) configures it and turns it off.
      - V(absent) turns it off, removes its context and gives its slot back to the pool of idle slots
        this collection owns. When no other kdamond is left, C(nr_kdamonds) is set to 0.
    type: str
    choices: [running, stopped, absent]
    default: running
  operations:
    description: Monitoring operations set.
    type: str
    choices: [vaddr, fvaddr, paddr]
    default: vaddr
  refresh_ms:
    description:
      - Period in milliseconds at which the kernel refreshes statistics files by itself (Linux 6.17+). V(0) disables it.
    type: int
    default: 0
  monitoring_attrs:
    description: Monitoring attributes of the context.
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
      update_us:
        description: Operations update interval in microseconds.
        type: int
        default: 1000000
      min_nr_regions:
        description: Minimum number of monitoring regions (at least 3).
        type: int
        default: 10
      max_nr_regions:
        description: Maximum number of monitoring regions.
        type: int
        default: 1000
      intervals_goal:
        description: Automatic tuning of the sampling and aggregation intervals (Linux 6.15+).
        type: dict
        suboptions:
          access_bp:
            description: Target ratio of observed to possible access events, in basis points.
            type: int
            default: 0
          aggrs:
            description: Number of aggregations per tuning step; V(0) disables tuning.
            type: int
            default: 0
          min_sample_us:
            description: Lower bound of the tuned sampling interval.
            type: int
            default: 0
          max_sample_us:
            description: Upper bound of the tuned sampling interval.
            type: int
            default: 0
  targets:
    description: Monitoring targets.
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: PID of the process to monitor (V(vaddr) and V(fvaddr)). It must exist.
        type: int
      regions:
        description: Fixed monitoring regions (required for V(fvaddr) and V(paddr)); they must not overlap.
        type: list
        elements: dict
        default: []
        suboptions:
          start:
            description: Start address.
            type: int
            required: true
          end:
            description: End address (exclusive).
            type: int
            required: true
  schemes:
    description: DAMOS schemes of the context.
    type: list
    elements: dict
    default: []
    suboptions:
      action:
        description:
          - DAMOS action keyword, for example V(stat), V(hugepage), V(collapse) (Linux 7.2+), V(pageout).
          - The module checks it against the running kernel and names the kernel that adds it.
        type: str
        required: true
      access_pattern:
        description: Access pattern of the regions the action applies to. Bounds are inclusive.
        type: dict
        default: {}
        suboptions:
          min_size:
            description: Minimum region size in bytes.
            type: int
            default: 0
          max_size:
            description: Maximum region size in bytes.
            type: int
            default: 18446744073709551615
          min_nr_accesses:
            description: Minimum number of sampled accesses per aggregation interval.
            type: int
            default: 0
          max_nr_accesses:
            description: Maximum number of sampled accesses per aggregation interval.
            type: int
            default: 4294967295
          min_age:
            description: Minimum age in aggregation intervals.
            type: int
            default: 0
          max_age:
            description: Maximum age in aggregation intervals.
            type: int
            default: 4294967295
      apply_interval_us:
        description: How often the action is applied, in microseconds; V(0) means every aggregation interval (Linux 6.7+).
        type: int
        default: 0
      target_nid:
        description: Destination NUMA node of V(migrate_hot) and V(migrate_cold) (Linux 6.11+).
        type: int
        default: -1
      quotas:
        description: Quotas that bound how much the action may do per reset interval.
        type: dict
        default: {}
        suboptions:
          ms:
            description: Time quota in milliseconds; V(0) is unlimited.
            type: int
            default: 0
          bytes:
            description: Size quota in bytes; V(0) is unlimited.
            type: int
            default: 0
          reset_interval_ms:
            description: Quota reset interval in milliseconds.
            type: int
            default: 0
          goal_tuner:
            description: Quota goal tuning algorithm (Linux 7.1+).
            type: str
            choices: [consist, temporal]
            default: consist
          weights:
            description: Prioritisation weights used when the quota is exceeded.
            type: dict
            default: {}
            suboptions:
              sz_permil:
                description: Weight of the region size.
                type: int
                default: 0
              nr_accesses_permil:
                description: Weight of the access frequency.
                type: int
                default: 0
              age_permil:
                description: Weight of the age.
                type: int
                default: 0
          goals:
            description: Quota auto-tuning goals (Linux 6.8+).
            type: list
            elements: dict
            default: []
            suboptions:
              metric:
                description: Goal metric keyword (V(user_input), V(some_mem_psi_us), ...).
                type: str
                default: user_input
              target_value:
                description: Target value of the metric.
                type: int
                default: 0
              current_value:
                description:
                  - Initial current value for V(user_input) goals. A feedback loop updates it while DAMON runs,
                    so the module writes it only when it creates the goal.
                type: int
                default: 0
              nid:
                description: NUMA node for node metrics (Linux 6.16+).
                type: int
                default: 0
              path:
                description: Memory cgroup path for memcg metrics (Linux 6.19+).
                type: str
                default: ''
      watermarks:
        description: Watermarks that activate or deactivate the scheme.
        type: dict
        default: {}
        suboptions:
          metric:
            description: Watermark metric.
            type: str
            choices: [none, free_mem_rate]
            default: none
          interval_us:
            description: Check interval in microseconds.
            type: int
            default: 0
          high:
            description: High watermark (permil).
            type: int
            default: 0
          mid:
            description: Middle watermark (permil).
            type: int
            default: 0
          low:
            description: Low watermark (permil).
            type: int
            default: 0
      filters:
        description:
          - DAMOS filters. On Linux 6.15+ V(addr) and V(target) filters go to C(core_filters), the others to
            C(ops_filters); older kernels use C(filters).
        type: list
        elements: dict
        default: []
        suboptions:
          type:
            description: Filter type (V(anon), V(memcg), V(addr), V(target), V(young), V(hugepage_size), V(unmapped), V(active)).
            type: str
            required: true
          matching:
            description: Whether the filter applies to memory that matches (V(true)) or that does not.
            type: bool
            default: false
          allow:
            description: Allow (V(true)) or reject the filtered memory (Linux 6.14+; older kernels only reject).
            type: bool
            default: false
          memcg_path:
            description: Memory cgroup path for V(memcg) filters.
            type: str
            default: ''
          addr_start:
            description: Start address for V(addr) filters.
            type: int
            default: 0
          addr_end:
            description: End address for V(addr) filters.
            type: int
            default: 0
          target_idx:
            description: Target index for V(target) filters.
            type: int
            default: 0
          min:
            description: Lower bound for V(hugepage_size) filters.
            type: int
            default: 0
          max:
            description: Upper bound for V(hugepage_size) filters.
            type: int
            default: 0
      max_nr_snapshots:
        description: Deactivate the scheme after this many snapshots; V(0) never (Linux 7.0+).
        type: int
        default: 0
  exclusive_modules:
    description:
      - What to do when an exclusive DAMON module (DAMON_RECLAIM, DAMON_LRU_SORT, DAMON_STAT) runs, since the
        kernel then refuses to start sysfs kdamonds.
      - V(fail) stops with a message naming the module.
      - V(stop) disables it, records that, and re-enables it when none of this collection's kdamonds runs any more.
    type: str
    choices: [fail, stop]
    default: fail
  pool_size:
    description:
      - When a new slot is needed, grow C(nr_kdamonds) to at least this many slots and keep the extra ones as
        idle slots this collection owns. The kernel refuses to change C(nr_kdamonds) while any kdamond runs, so
        create the slots for kdamonds that will start later together with the first one.
      - Between V(1) and V(64).
    type: int
    default: 1
notes:
  - Requires root on the managed host.
seealso:
  - module: linux_mm.damon.damon_info
"""

EXAMPLES = r"""
- name: Count hot regions of a process with a stat scheme
  linux_mm.damon.kdamond:
    name: hot-app
    targets:
      - pid: "{{ app_pid }}"
    schemes:
      - action: stat
        access_pattern:
          min_size: 2097152
          min_nr_accesses: 5

- name: Collapse hot regions into huge pages (Linux 7.2+)
  linux_mm.damon.kdamond:
    name: hot-app
    exclusive_modules: stop
    targets:
      - pid: "{{ app_pid }}"
    schemes:
      - action: collapse
        access_pattern:
          min_size: 2097152
          min_nr_accesses: 10
        quotas:
          bytes: 134217728
          reset_interval_ms: 1000

- name: Remove it
  linux_mm.damon.kdamond:
    name: hot-app
    state: absent
"""

RETURN = r"""
lock_busy:
  description:
    - V(true) when the task failed only because another run held the host lock for longer than O(lock_timeout_s);
      nothing was changed. The hugepage role's C(hugepage_lock_busy=skip) ends its run for such a host on it.
  returned: failure
  type: bool
  sample: false
kdamond:
  description: The kdamond after the run (omitted when O(state=absent)).
  returned: success and state is not absent
  type: dict
  sample:
    index: 1
    state: "on"
    pid: 4242
    refresh_ms: 0
    context: {operations: vaddr, targets: [{pid: 1234, regions: []}], schemes: [{action: stat}]}
writes:
  description: The sysfs writes in order, as path and value (planned ones in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{path: /sys/kernel/mm/damon/admin/kdamonds/1/contexts/0/schemes/0/access_pattern/nr_accesses/min, value: "5"},
           {path: /sys/kernel/mm/damon/admin/kdamonds/1/state, value: commit}]
applied:
  description: The writes that were carried out; on failure, the ones done before the failing write.
  returned: always
  type: list
  elements: dict
failed_write:
  description: The write that failed, with its errno.
  returned: failure of a write
  type: dict
  sample: {path: /sys/kernel/mm/damon/admin/kdamonds/0/state, value: "on", errno: 16, errno_name: EBUSY}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import (
    KdamondError, apply_plan, current, plan_kdamond,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import LockTimeout
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import HOST_STATE_ERRORS, locked_record
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import validate_kdamond
from ansible_collections.linux_mm.damon.plugins.module_utils._options import (
    AGGR_US, EXCLUSIVE_OPTIONS, LOCK_OPTIONS, MAX_NR_REGIONS, MIN_NR_REGIONS, OWNERSHIP_OPTIONS, SAMPLE_US,
    SYSFS_OPTIONS, UPDATE_US,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import fail_unless_root
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError


def _int(default=0):
    return dict(type="int", default=default)


ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["running", "stopped", "absent"], default="running"),
    operations=dict(type="str", choices=["vaddr", "fvaddr", "paddr"], default="vaddr"),
    refresh_ms=_int(),
    monitoring_attrs=dict(type="dict", default={}, options=dict(
        sample_us=_int(SAMPLE_US), aggr_us=_int(AGGR_US), update_us=_int(UPDATE_US),
        min_nr_regions=_int(MIN_NR_REGIONS), max_nr_regions=_int(MAX_NR_REGIONS),
        intervals_goal=dict(type="dict", options=dict(
            access_bp=_int(), aggrs=_int(), min_sample_us=_int(), max_sample_us=_int())),
    )),
    targets=dict(type="list", elements="dict", default=[], options=dict(
        pid=dict(type="int"),
        regions=dict(type="list", elements="dict", default=[], options=dict(
            start=dict(type="int", required=True), end=dict(type="int", required=True))),
    )),
    schemes=dict(type="list", elements="dict", default=[], options=dict(
        action=dict(type="str", required=True),
        access_pattern=dict(type="dict", default={}, options=dict(
            min_size=_int(), max_size=_int(2 ** 64 - 1), min_nr_accesses=_int(),
            max_nr_accesses=_int(2 ** 32 - 1), min_age=_int(), max_age=_int(2 ** 32 - 1))),
        apply_interval_us=_int(),
        target_nid=_int(-1),
        quotas=dict(type="dict", default={}, options=dict(
            ms=_int(), bytes=_int(), reset_interval_ms=_int(),
            goal_tuner=dict(type="str", choices=["consist", "temporal"], default="consist"),
            weights=dict(type="dict", default={}, options=dict(
                sz_permil=_int(), nr_accesses_permil=_int(), age_permil=_int())),
            goals=dict(type="list", elements="dict", default=[], options=dict(
                metric=dict(type="str", default="user_input"), target_value=_int(), current_value=_int(),
                nid=_int(), path=dict(type="str", default=""))),
        )),
        watermarks=dict(type="dict", default={}, options=dict(
            metric=dict(type="str", choices=["none", "free_mem_rate"], default="none"),
            interval_us=_int(), high=_int(), mid=_int(), low=_int())),
        filters=dict(type="list", elements="dict", default=[], options=dict(
            type=dict(type="str", required=True), matching=dict(type="bool", default=False),
            allow=dict(type="bool", default=False), memcg_path=dict(type="str", default=""),
            addr_start=_int(), addr_end=_int(), target_idx=_int(), min=_int(), max=_int())),
        max_nr_snapshots=_int(),
    )),
    pool_size=_int(1),
    **dict(EXCLUSIVE_OPTIONS, **OWNERSHIP_OPTIONS, **LOCK_OPTIONS, **SYSFS_OPTIONS)
)


def _context(params):
    return dict((k, params[k]) for k in ("operations", "monitoring_attrs", "targets", "schemes"))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, writes=[], applied=[])
    try:  # options outside the context; the context is checked by plan_kdamond, also before any write
        validate_kdamond(p["name"], p["refresh_ms"], p["pool_size"])
    except SpecError as e:
        module.fail_json(msg=str(e), **result)
    features = detect(p["sysfs_root"], p["kernel_release"])
    if not features.available:
        module.fail_json(msg=features.reason, **result)
    fail_unless_root(module, "kdamond", "write DAMON sysfs files", **result)  # the admin files and the lock are root's
    try:
        with locked_record(p["ownership_file"], "kdamond", p["lock_timeout_s"], module.check_mode) as own:
            _run(module, features, own, result)
    except HOST_STATE_ERRORS as e:
        module.fail_json(msg=str(e), lock_busy=isinstance(e, LockTimeout), **result)
    module.exit_json(**result)


def _run(module, features, own, result):
    """Plan and apply under the host lock; fails the module on any error."""
    p = module.params
    try:
        plan = plan_kdamond(p["sysfs_root"], features, own, p["name"], p["state"], _context(p),
                            refresh_ms=p["refresh_ms"], exclusive=p["exclusive_modules"], pool_size=p["pool_size"])
    except (SpecError, KdamondError) as e:
        module.fail_json(msg=str(e), **result)
    except SysfsError as e:
        module.fail_json(msg=str(e), failed_write=None, **result)
    for warning in own.notes + plan.warnings:
        module.warn(warning)
    result["writes"] = [dict(path=path, value=value) for path, value in plan.writes]
    result["changed"] = bool(plan.writes)
    if module._diff:
        result["diff"] = dict(before=plan.before or {}, after=plan.after or {},
                              before_header="kdamond %s" % p["name"], after_header="kdamond %s" % p["name"])
    if module.check_mode or not plan.writes:
        result["kdamond"] = plan.after if p["state"] != "absent" else None
        if plan.before and p["state"] != "absent" and not plan.writes:
            result["kdamond"] = current(p["sysfs_root"], features, plan)
        return
    try:
        apply_plan(p["sysfs_root"], features, own, plan, result["applied"])
    except SysfsError as e:
        module.fail_json(msg="%s (%d of %d writes applied before it; re-run to converge)" % (
            e, len(result["applied"]), len(plan.writes)), failed_write=e.as_dict(), **result)
    if p["state"] != "absent":
        result["kdamond"] = current(p["sysfs_root"], features, plan)


if __name__ == "__main__":
    main()
