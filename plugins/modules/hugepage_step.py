#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: hugepage_step
short_description: One step of the huge-page feedback loop for the hot applications of a host
version_added: 0.1.0
description:
  - Gives each application in O(apps) its own kdamond (from a pool of slots this collection owns) with a
    C(stat) scheme over all its memory and, depending on O(path), a C(collapse) or C(hugepage) scheme at the
    application's hotness threshold. Thresholds of running kdamonds change with C(commit), never a restart.
  - Then waits O(interval_s), refreshes the scheme statistics and tried regions, and returns per application
    the access distribution (bytes per C(nr_accesses)), the scheme statistics and the huge-page bytes in its
    memory and in its cold memory.
  - On the V(user_collapse) path it collapses the regions at or above the threshold itself with
    C(process_madvise(MADV_COLLAPSE)) (dense 2 MiB chunks only, within O(quota_bytes) and the application's budget).
  - Applications that exited, and with O(prune) the ones no longer listed, have their kdamonds removed.
  - The M(linux_mm.damon.hugepage_tune) action calls this module once per iteration; it can also be used alone.
author: linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common
  - linux_mm.damon._common.attributes
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common.kernel_release
  - linux_mm.damon._common.ownership
  - linux_mm.damon._common.host_lock
  - linux_mm.damon._common.hugepage_loop
options:
  apps:
    description: The applications to manage.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the application (its kdamond is recorded as C(hugepage:NAME)).
        type: str
        required: true
      pid:
        description: PID of the application's process.
        type: int
        required: true
      threshold:
        description:
          - Hotness threshold, the minimum C(nr_accesses) of regions to collapse.
          - When omitted, the threshold of the application's running kdamond is kept, or O(initial_threshold) is used.
        type: int
      budget_bytes:
        description: Most huge-page bytes the user-space path collapses for this application per step (V(0) unlimited).
        type: int
        default: 0
  state:
    description:
      - V(present) configures and observes the applications.
      - V(observed) only observes the applications this loop already manages (O(apps) is ignored), for reports.
      - V(absent) removes every kdamond this loop created (and re-enables exclusive DAMON modules it stopped).
    type: str
    choices: [present, observed, absent]
    default: present
  initial_threshold:
    description: Threshold of applications that have no kdamond yet and no O(apps[].threshold). Defaults to the largest possible C(nr_accesses).
    type: int
  prune:
    description: Remove the kdamonds of applications this loop manages that are not in O(apps).
    type: bool
    default: true
seealso:
  - module: linux_mm.damon.hugepage_tune
  - module: linux_mm.damon.kdamond
"""

EXAMPLES = r"""
- name: Collapse the hot memory of one application at threshold 10
  linux_mm.damon.hugepage_step:
    apps:
      - name: db
        pid: "{{ db_pid }}"
        threshold: 10
    exclusive_modules: stop
  register: step

- name: Remove every kdamond of the feedback loop
  linux_mm.damon.hugepage_step:
    state: absent
"""

RETURN = r"""
path:
  description: The collapse path in use.
  returned: always
  type: str
  sample: user_collapse
apps:
  description: Per application, what was configured and observed.
  returned: always
  type: list
  elements: dict
  sample:
    - name: db
      pid: 1234
      exited: false
      kdamond: 0
      threshold: 10
      max_nr_accesses: 20
      histogram: [[0, 67108864], [16, 33554432]]
      hot_bytes: 33554432
      scheme_stats: {nr_tried: 4, sz_tried: 33554432, nr_applied: 4, sz_applied: 33554432, qt_exceeds: 0}
      collapsed: null
      huge_bytes: 33554432
      huge_bytes_hot: 33554432
      huge_bytes_cold: 0
dropped:
  description: Applications whose kdamonds were removed (exited or no longer listed).
  returned: always
  type: list
  elements: str
writes:
  description: The sysfs configuration writes, in order (planned ones in check mode).
  returned: always
  type: list
  elements: dict
applied:
  description: The configuration writes carried out.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._collapse import CollapseError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import KdamondError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import HOST_STATE_ERRORS, locked_record
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import pid_alive, validate_hugepage_args
from ansible_collections.linux_mm.damon.plugins.module_utils._hugepage import LOOP_ARGUMENT_SPEC, Step, choose_path, wait
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError

ARGUMENT_SPEC = dict(
    apps=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), pid=dict(type="int", required=True),
        threshold=dict(type="int"), budget_bytes=dict(type="int", default=0))),
    state=dict(type="str", choices=["present", "observed", "absent"], default="present"),
    initial_threshold=dict(type="int"),
    prune=dict(type="bool", default=True),
    **LOOP_ARGUMENT_SPEC
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, apps=[], dropped=[], writes=[], applied=[], path=None)
    features = detect(p["sysfs_root"], p["kernel_release"])
    if not features.available:
        module.fail_json(msg=features.reason, **result)
    try:  # names, PIDs (no kernel threads), kernel integer types, sample_us >= 1, finite floats
        warnings = validate_hugepage_args(p, [])
    except SpecError as e:
        module.fail_json(msg=str(e), **result)
    for warning in warnings:
        module.warn(warning)
    names = [a["name"] for a in p["apps"]]
    attrs = p["monitoring_attrs"]
    max_nr = attrs["aggr_us"] // max(attrs["sample_us"], 1)
    started = time.monotonic()
    try:
        path = result["path"] = choose_path(features, p["path"])
        with locked_record(p["ownership_file"], "hugepage_step", p["lock_timeout_s"], module.check_mode) as own:
            for note in own.notes:
                module.warn(note)
            step = Step(p["sysfs_root"], features, own, path, attrs, p["quota_bytes"], p["exclusive_modules"],
                        p["pool_size"], module.check_mode)
            if p["state"] == "observed":
                apps = step.watched()
                names = [a["name"] for a in apps]
                entries = dict((a["name"], dict(a, exited=not pid_alive(a["pid"]))) for a in apps)
            else:
                apps = [] if p["state"] == "absent" else p["apps"]
                initial = max_nr if p["initial_threshold"] is None else p["initial_threshold"]
                entries, result["dropped"] = step.configure(apps, initial, prune=p["prune"] or p["state"] == "absent")
            if apps:
                if not module.check_mode:
                    wait(p["interval_s"], started)
                step.observe(entries, apps, collapse=p["state"] == "present")
    except HOST_STATE_ERRORS + (SpecError, KdamondError, ValueError, CollapseError) as e:
        module.fail_json(msg=str(e), **result)
    except SysfsError as e:
        module.fail_json(msg="%s (%d writes applied before it; re-run to converge)" % (e, len(step.applied)),
                         failed_write=e.as_dict(), writes=step.writes, applied=step.applied,
                         **dict((k, v) for k, v in result.items() if k not in ("writes", "applied")))
    result.update(apps=[entries[n] for n in names], writes=step.writes, applied=step.applied)
    collapsed = sum((e.get("collapsed") or {}).get("bytes", 0) for e in result["apps"])
    result["changed"] = bool(step.writes) or collapsed > 0
    module.exit_json(**result)


if __name__ == "__main__":
    main()
