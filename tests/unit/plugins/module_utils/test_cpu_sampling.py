# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_cpu_sampling.py."""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils import _cpu_sampling as cpu


def test_rank_by_cpu_is_deterministic():
    first = {1: {"utime": 1, "stime": 0, "starttime": 5}, 2: {"utime": 0, "stime": 0, "starttime": 5}}
    second = {2: {"utime": 3, "stime": 0, "starttime": 5}, 1: {"utime": 4, "stime": 0, "starttime": 5},
              3: {"utime": 0, "stime": 3, "starttime": 9}}
    assert cpu.rank_by_cpu(first, second) == [(3, 1), (3, 2), (3, 3)]


def test_sample_cpu_of_the_real_proc():
    stats, when = cpu.sample_cpu()
    assert os.getpid() in stats
    assert when > 0
