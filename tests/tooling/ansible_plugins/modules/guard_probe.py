# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only module: try to open a path for writing and report what happened.

tests/unit/test_guard.py points it at a path that cannot exist
(``/sys/kernel/mm/damon/admin/kdamonds/9999/state``) to prove that the host
sysfs guard is active inside Ansible's module processes.
"""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: guard_probe
short_description: Test-only probe of the host sysfs guard
description: [Opens O(path) for writing without writing anything and reports the error.]
options:
  path: {type: str, required: true, description: [File to open for writing.]}
author: [linux_mm.damon contributors]
"""


def main():
    module = AnsibleModule(argument_spec={"path": {"type": "str", "required": True}})
    error = None
    try:
        with open(module.params["path"], "a", encoding="utf-8"):
            pass
    except OSError as exc:
        error = {"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
    module.exit_json(changed=False, error=error,
                     guard_installed=bool(getattr(sys, "_linux_mm_damon_host_sysfs_guard", False)))


if __name__ == "__main__":
    main()
