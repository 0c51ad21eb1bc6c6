# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A redis-like application (issue 12): hot memory accessed far less often than every 5 ms sample.

Modelled on redis 8.0.2 in the 7.3 guest (measured: docs/real-applications.md): 1.5 GiB that is never
touched, its hot keys' memory scattered in 8 MiB pieces accessed in 1-4 % of 5 ms samples
(``rate_sample_us: 5000``: the share grows with the sampling interval, as on a real kernel),
cold pieces of the same density between them, and a few tiny very hot structures inside the
cold memory. At 5 ms / 100 ms the warm memory shows 0-1 of 20 samples: indistinguishable from
cold. The loop must widen the intervals (the kernel's intervals_goal on 7.3, the controller on
6.12), collapse the warm chunks and nothing else, and say so.

The process behind it is a real ``hotcold`` workload (idle after touching its memory): its
dense "hot" region holds the warm and the dense cold pieces, its sparse "cold" region the rest,
so the 6.12 user-space path collapses real memory.
"""

from __future__ import annotations

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap
from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(900)]

MIB = 1 << 20
PIECE = 8 * MIB
RATES = (0.01, 0.02, 0.03, 0.04)


def redis_like(w):
    """(model target, warm pieces, dense cold pieces) over the workload's memory."""
    regions, warm, cold = [], [], []
    for i, start in enumerate(range(w.hot[0], w.hot[1], PIECE)):
        piece = (start, start + PIECE)
        if i % 2 == 0:
            warm.append(piece)
            regions.append({"start": start, "end": start + PIECE, "rate": RATES[(i // 2) % 4], "rate_sample_us": 5000})
        else:
            cold.append(piece)
            regions.append({"start": start, "end": start + PIECE, "rate": 0.0})
    cursor = w.cold[0]
    for offset in (300 * MIB + 12288, 700 * MIB + 4096, 1100 * MIB + 40960):  # tiny, very hot, inside cold chunks
        tiny = w.cold[0] + offset
        regions.append({"start": cursor, "end": tiny, "rate": 0.0})
        regions.append({"start": tiny, "end": tiny + 16384, "rate": 1.0})
        cursor = tiny + 16384
    regions.append({"start": cursor, "end": w.cold[1], "rate": 0.0})
    return {"pid": w.pid, "regions": regions}, warm, cold


def tune(emu, own, pid, kernel, **options):
    args = dict(apps=[{"name": "redis-server", "pid": pid}], sysfs_root=emu.root, kernel_release=kernel,
                ownership_file=str(own), interval_s=0.5, exclusive_modules="stop", max_iterations=20, timeout_s=600)
    args.update(options)
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "tune", "linux_mm.damon.hugepage_tune": args}]}]


def real_huge(pid, pieces):
    return [_pagemap.range_huge_bytes(pid, s, e) for s, e in pieces]


@pytest.mark.parametrize("kernel,release", [("7.3", "7.3.4"), ("6.12", "6.12.117")])
def test_warm_chunks_collapse_cold_ones_do_not(run_playbook, tmp_path, kernel, release):
    with HotCold(hot_mb=192, cold_mb=1536, idle=True) as w:
        model, warm, cold = redis_like(w)
        with EmulatedSysfs(kernel=kernel, scenario={"speed": 20, "modules": {"damon_stat": False},
                                                    "targets": [model]}) as emu:
            run = run_playbook(tune(emu, tmp_path / "own.json", w.pid, release))
            assert run.rc == 0, run.explain()
            out = run[0]
            assert out["stopped"] == "converged" and out["status"] == {"redis-server": "converged"}, out["msg"]
            intervals = out["intervals"]["redis-server"]
            assert intervals["mode"] == ("kernel" if kernel == "7.3" else "controller")
            assert intervals["sample_us"] > 5000 and intervals["aggr_us"] == 20 * intervals["sample_us"]
            # user-space collapse of the real process's memory (the default path on both kernels)
            assert real_huge(w.pid, warm) == [PIECE] * len(warm), out["trace"]
            assert real_huge(w.pid, cold) == [0] * len(cold)
            assert _pagemap.range_huge_bytes(w.pid, *w.cold) == 0
            assert "redis-server: threshold" in out["msg"]

            again = run_playbook(tune(emu, tmp_path / "own.json", w.pid, release))
            assert again.rc == 0 and not again[0]["changed"], again.explain()


@pytest.mark.parametrize("options", [{"auto_intervals": {"mode": "off"}}, {"policy": "stepdown"}])
def test_at_fixed_5ms_intervals_nothing_is_collapsed(run_playbook, tmp_path, options):
    """What the collection did before: the warm memory is invisible at 5 ms / 100 ms. Adaptive now says
    so in words; the RFC's step-down (no interval adaptation of its own) collapses nothing warm either."""
    with HotCold(hot_mb=192, cold_mb=1536, idle=True) as w:
        model, warm, cold = redis_like(w)
        with EmulatedSysfs(kernel="7.3", scenario={"speed": 20, "modules": {"damon_stat": False},
                                                   "targets": [model]}) as emu:
            run = run_playbook(tune(emu, tmp_path / "own.json", w.pid, "7.3.4",
                                    **dict(options, auto_intervals={"mode": "off"})))
            assert run.rc == 0, run.explain()
            out = run[0]
            assert real_huge(w.pid, warm) == [0] * len(warm)
            if options.get("policy") != "stepdown":
                assert out["stopped"] == "nothing_hot" and not out["converged"]
                assert out["messages"][0].startswith("redis-server: no memory touched in more than"), out["messages"]


def test_no_application_left_is_not_converged(run_playbook, tmp_path):
    with EmulatedSysfs(kernel="7.3") as emu:
        run = run_playbook(tune(emu, tmp_path / "own.json", 1, "7.3.4", apps=[]))
        assert run.rc == 0, run.explain()
        assert run[0]["stopped"] == "no_apps" and not run[0]["converged"]
        assert run[0]["msg"] == "no applications to tune"
