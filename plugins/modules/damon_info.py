#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: damon_info
short_description: Report what DAMON and transparent huge pages can do on a host
version_added: 0.1.0
description:
  - Reads, never writes, the DAMON sysfs interface, the exclusive DAMON modules and the transparent huge page
    settings of the host, and reports them as facts for later tasks.
  - Reports whether DAMON is available and, if not, why; the kernel's DAMON features, operations sets,
    DAMOS actions, filter types, quota goal metrics and C(state) commands; every kdamond with its state,
    configuration and whether this collection owns it; and whether user-space collapse
    (C(process_madvise) with C(MADV_COLLAPSE)) can work.
author: linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common
  - linux_mm.damon._common.info_module
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common.kernel_release
  - linux_mm.damon._common.ownership
seealso:
  - module: linux_mm.damon.kdamond
  - module: linux_mm.damon.thp
"""

EXAMPLES = r"""
- name: Read DAMON facts
  linux_mm.damon.damon_info:
  register: damon

- name: Use the native collapse action when the kernel has it
  ansible.builtin.debug:
    msg: "collapse path: {{ 'native' if 'collapse' in damon.features.actions else 'user space' }}"
"""

RETURN = r"""
kernel_release:
  description: Kernel release the features were derived from.
  returned: always
  type: str
  sample: 6.12.117+deb13-cloud-amd64
available:
  description: Whether the DAMON sysfs interface is present.
  returned: always
  type: bool
reason:
  description: Why DAMON is not available (null when it is).
  returned: always
  type: str
  sample: "this kernel (6.1.0-40-cloud-amd64) has no DAMON sysfs interface: ... (CONFIG_DAMON_SYSFS is not set)"
features:
  description: Feature flags, and the operations sets, actions, filter types, goal metrics and state words this kernel takes.
  returned: always
  type: dict
  sample: {flags: {collapse_action: false, tried_regions: true}, actions: [cold, hugepage, stat], operations: [fvaddr, paddr, vaddr]}
kdamonds:
  description: Every kdamond, with C(owned) and C(name) from this collection's ownership record.
  returned: always
  type: list
  elements: dict
  sample: [{index: 0, state: "on", pid: 812, owned: false, name: null, operations: paddr, actions: [pageout],
            target_pids: [], context: {}}]
exclusive_modules:
  description: The exclusive DAMON modules and whether each is loaded and enabled.
  returned: always
  type: dict
  sample: {damon_stat: {label: DAMON_STAT, present: true, enabled: true, path: /sys/module/damon_stat/parameters/enabled}}
thp:
  description: Transparent huge page and khugepaged settings (empty when the kernel has no THP).
  returned: always
  type: dict
  sample: {values: {enabled: madvise, defrag: madvise}, read_only: {hpage_pmd_size: 2097152}}
user_space_collapse:
  description: Whether C(process_madvise(MADV_COLLAPSE)) on other processes can work here, and what is missing.
  returned: always
  type: dict
  sample: {possible: true, missing: []}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import (
    OPERATIONS_SINCE, detect, exclusive_modules, parse_release,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import Ownership
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import digest, read_kdamonds
from ansible_collections.linux_mm.damon.plugins.module_utils._options import OWNERSHIP_OPTIONS, SYSFS_OPTIONS
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import CAP_SYS_NICE, CAP_SYS_PTRACE, effective_caps
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, read_optional
from ansible_collections.linux_mm.damon.plugins.module_utils._thp import ThpError, read_state

ARGUMENT_SPEC = dict(SYSFS_OPTIONS, **OWNERSHIP_OPTIONS)


def user_space_collapse(release):
    """process_madvise (5.10) with MADV_COLLAPSE (6.1) needs CAP_SYS_NICE and ptrace read access."""
    missing = []
    version = parse_release(release)
    if version is None or version < (6, 1):
        missing.append("MADV_COLLAPSE needs Linux 6.1 (this kernel is %s)" % release)
    caps = effective_caps()
    if not caps & (1 << CAP_SYS_NICE):
        missing.append("CAP_SYS_NICE is needed to call process_madvise on other processes")
    if not caps & (1 << CAP_SYS_PTRACE) and os.geteuid() != 0:
        missing.append("ptrace read access to the target processes is needed (run as root or the same user)")
    return {"possible": not missing, "missing": missing}


def _operations(features, kdamonds):
    for kd in kdamonds:
        avail = os.path.join(kd.path, "contexts", "0", "avail_operations")
        text = read_optional(avail)
        if text is not None:
            return sorted(text.split())
    return features.supported(OPERATIONS_SINCE)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    root = module.params["sysfs_root"]
    features = detect(root, module.params["kernel_release"])
    result = dict(changed=False, kernel_release=features.release, available=features.available,
                  reason=features.reason, kdamonds=[], exclusive_modules=exclusive_modules(root),
                  user_space_collapse=user_space_collapse(features.release))
    result["features"] = features.as_dict()
    try:
        own = Ownership.load(module.params["ownership_file"])
        if features.available:
            kdamonds = read_kdamonds(root, features)
            result["features"]["operations"] = _operations(features, kdamonds)
            for kd in kdamonds:
                entry = kd.summary()
                owned = own.owns(kd, digest(kd.tree))
                entry.update(owned=owned, name=own.slots[kd.index].get("name") if owned else None,
                             context=kd.context or {})
                result["kdamonds"].append(entry)
    except (SysfsError, ValueError) as e:
        module.fail_json(msg=str(e), **result)
    try:
        thp = read_state(root)
        result["thp"] = {"values": thp["values"], "choices": thp["choices"], "read_only": thp["read_only"]}
    except (ThpError, SysfsError) as e:
        result["thp"] = {}
        module.warn(str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
