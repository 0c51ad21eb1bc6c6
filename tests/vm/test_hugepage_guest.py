# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/hugepage.yml in real guests: the hot part becomes huge pages, the cold part does not.

damon-7.3 takes the native DAMOS collapse path, damon-6.12 the user-space path
(stat scheme tried regions + process_madvise(MADV_COLLAPSE)). A second run
changes nothing on the guest and playbooks/stop.yml restores the prior state. Each runs in the
session's shared guest of its kind (tests/vm/shared.py), after the smoke and conformance tests.
"""

from __future__ import annotations

import os

import pytest

from tests import demo

pytestmark = [
    pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(1500),
    pytest.mark.skipif(os.environ.get("LINUX_MM_DAMON_GUEST_TESTS") != "1",
                       reason="guest tests run with LINUX_MM_DAMON_GUEST_TESTS=1 (make test does)"),
]


@pytest.mark.parametrize("kernel, path", [
    pytest.param("damon-7.3", "user_collapse", marks=pytest.mark.shares_guest("damon-7.3")),  # the default on 7.2+ too
    pytest.param("damon-6.12", "user_collapse", marks=pytest.mark.shares_guest("damon-6.12"))])
def test_hot_part_collapsed_cold_part_not_idempotent_and_stop_restores(kernel, path, tmp_path, shared_guest):
    out = demo.run(kernel=kernel, hot_mb=64, cold_mb=256, rerun=True, out_dir=tmp_path, guest=shared_guest)
    hot, cold = out["workload"]["hot"]["bytes"], out["workload"]["cold"]["bytes"]
    coverage = out["after"]["hot"] / hot
    bloat = out["after"]["cold"] / cold
    print("%s: hot coverage %.3f, cold huge fraction %.3f, threshold %s, %.0f s" % (
        kernel, coverage, bloat, out["report"]["threshold"], out["apply_seconds"]))
    assert out["report"]["path"] == path
    assert coverage >= 0.9, out
    assert bloat <= 0.1, out
    guest_host = [h for h in out["rerun_recap"] if h != "localhost"][0]
    assert out["rerun_recap"][guest_host]["changed"] == 0, out["rerun_recap"]
    assert out["restored"]["kdamonds"] == "0"
    assert out["restored"]["modules"] == out["prior"]["modules"]  # DAMON_STAT back on where it was
    assert out["restored"]["thp"] == out["prior"]["thp"]
