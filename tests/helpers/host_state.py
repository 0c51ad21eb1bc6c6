# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks shared by the host-state tests (kill-point sweeps, concurrent runs)."""

from __future__ import annotations

import json

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import digest, read_kdamonds


def record_agrees(sysfs_root, features, record):
    """Assert every recorded slot is what the live tree shows (no pending intent; pid or digest
    matching); return ``(slots, kdamonds)``."""
    with open(record) as f:
        slots = json.load(f)["slots"]
    kds = read_kdamonds(sysfs_root, features)
    for key, slot in slots.items():
        kd = kds[int(key)]
        assert slot.get("intent") is None, (key, slot)
        if kd.running:
            assert slot["pid"] == kd.pid, (key, slot, kd.describe())
        else:
            assert slot["digest"] == digest(kd.tree), (key, slot, kd.describe())
    return slots, kds
