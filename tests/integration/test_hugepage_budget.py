# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host budget smaller than the hot memory of its applications goes to the most accessed memory first
(issue 10, workload 3), and the user-space path caps each application's huge-page bytes by its budget itself,
hottest chunks first, without raising the threshold (which made a saturated 7.3 guest confirm nothing).

Two real ``hotcold`` processes (idle after touching their memory, so the collapse is real) on an emulated
Linux 6.12 DAMON whose model gives their dense parts different access rates.
"""

from __future__ import annotations

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap, _procfs
from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

MIB = 1 << 20


def model(w, rates):
    """The workload's dense part in equal pieces at ``rates`` (a share of 5 ms samples), the rest never touched."""
    piece = (w.hot[1] - w.hot[0]) // len(rates)
    regions = [{"start": w.hot[0] + i * piece, "end": w.hot[0] + (i + 1) * piece, "rate": rate}
               for i, rate in enumerate(rates)]
    regions.append({"start": w.cold[0], "end": w.cold[1], "rate": 0.0})
    return {"pid": w.pid, "regions": regions}


def test_the_host_budget_goes_to_the_hottest_memory_of_all_applications_first(run_playbook, tmp_path):
    with HotCold(hot_mb=32, cold_mb=64, idle=True) as fast, HotCold(hot_mb=32, cold_mb=64, idle=True) as slow:
        scenario = {"speed": 20, "modules": {"damon_stat": False},
                    "targets": [model(fast, [0.9]), model(slow, [0.6, 0.25])]}
        with EmulatedSysfs(kernel="6.12", scenario=scenario) as emu:
            args = dict(apps=[{"name": "fast", "pid": fast.pid}, {"name": "slow", "pid": slow.pid}],
                        host_budget_bytes=40 * MIB, sysfs_root=emu.root, kernel_release="6.12.117",
                        ownership_file=str(tmp_path / "own.json"), interval_s=0.5, exclusive_modules="stop",
                        auto_intervals={"mode": "off"}, max_iterations=12, timeout_s=300)
            run = run_playbook([{"hosts": "localhost", "gather_facts": False,
                                 "tasks": [{"name": "tune", "linux_mm.damon.hugepage_tune": args}]}])
            assert run.rc == 0, run.explain()
            out = run[0]
            half = (slow.hot[0] + slow.hot[1]) // 2
            huge = {"fast": _pagemap.range_huge_bytes(fast.pid, *fast.hot),
                    "slow hotter half": _pagemap.range_huge_bytes(slow.pid, slow.hot[0], half),
                    "slow cooler half": _pagemap.range_huge_bytes(slow.pid, half, slow.hot[1]),
                    "cold": _pagemap.range_huge_bytes(fast.pid, *fast.cold) + _pagemap.range_huge_bytes(slow.pid, *slow.cold)}
            # 32 MiB at 0.9 of the samples first, then 8 MiB of the 16 MiB at 0.6; nothing at 0.25 or 0
            assert huge == {"fast": 32 * MIB, "slow hotter half": 8 * MIB, "slow cooler half": 0, "cold": 0}, (
                huge, out["trace"])
            assert _procfs.anon_huge_bytes(fast.pid) + _procfs.anon_huge_bytes(slow.pid) <= 40 * MIB
            assert out["stopped"] == "converged", out["msg"]
            # the threshold separates hot from cold: the budget did not raise it above the 0.25 piece
            reasons = [a.get("reason") or "" for entry in out["trace"] for a in entry["apps"].values()]
            assert out["thresholds"]["slow"] <= 5 and not [r for r in reasons if "budget" in r], reasons
            assert out["trace"][-1]["apps"]["slow"]["budget_bytes"] == 8 * MIB, out["trace"][-1]
