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
