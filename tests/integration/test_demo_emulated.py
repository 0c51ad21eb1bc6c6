# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo-emulated` runs the real flow: hugepage.yml (detect → tune → report), then stop.yml."""

from __future__ import annotations

import os

import pytest

from tests import demo_emulated

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.skipif(os.geteuid() != 0, reason="user-space collapse of another process and kpageflags need root")
def test_demo_emulated_detects_tunes_reports_and_stops(tmp_path):
    out = demo_emulated.run(out_dir=tmp_path, echo=False)
    log = (tmp_path / "ansible.log").read_text()
    for task in ("Detect the hot applications", "Tune the hotness threshold", "Write the machine-readable report",
                 "Remove the kdamonds of the feedback loop"):
        assert task in log
    assert out["apply_recap"]["localhost"]["changed"] > 0 and out["stop_recap"]["localhost"]["changed"] > 0

    workload = out["workload"]
    [row] = out["report"]  # detection found the workload and nothing else
    assert row["pid"] == workload["pid"] and row["app"].startswith("hotcold") and not row["exited"]
    assert row["path"] == "user_collapse" and row["hot_coverage"] == 1.0 and row["huge_bytes_cold"] == 0

    hot = workload["hot"][1] - workload["hot"][0]
    assert out["after"] == {"hot": hot, "cold": 0}  # the real pages of the real workload
    assert all(state == "off" for state in out["kdamonds_after_stop"])
