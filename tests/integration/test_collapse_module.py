# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.collapse through real ansible-playbook runs on the host.

process_madvise(MADV_COLLAPSE) only changes the target process, and every
target here is a hotcold workload (tests/workloads/hotcold.c) this test
started, so running it on the host is safe. Nothing is written to sysfs; the
host's THP ``enabled`` file is only read to decide whether a 4 KiB baseline
can exist (it cannot with ``always``, where faults already map huge pages).

Huge-page coverage of an exact range is measured per 2 MiB chunk with
pagemap + /proc/kpageflags (root), and cross-checked with the mapping's
AnonHugePages in smaps (the workload keeps hot and cold in separate mappings).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap as pagemap
from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import parse_release
from tests.workloads import HotCold, WorkloadUnavailable, build
from tests.helpers.playbooks import run_tasks
from tests.helpers.unprivileged import NOBODY, run_module_as_nobody

MIB = 1 << 20
HUGE = pagemap.pmd_size()
THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _skip_reason():
    if platform.system() != "Linux":
        return "MADV_COLLAPSE is Linux only"
    if os.geteuid() != 0:
        return "process_madvise() needs CAP_SYS_NICE and the exact coverage check needs root"
    if (parse_release(platform.release()) or (0, 0)) < (6, 1):
        return "kernel %s predates MADV_COLLAPSE (6.1)" % platform.release()
    try:
        with open(THP_ENABLED) as f:  # read only
            enabled = f.read()
    except OSError:
        return "no transparent huge page support (%s missing)" % THP_ENABLED
    if "[always]" in enabled:
        return "THP enabled=always: page faults already map huge pages, so no 4 KiB baseline exists"
    if pagemap.KPageFlags().available is False:
        return "/proc/kpageflags is not readable"
    try:
        build("hotcold")
    except WorkloadUnavailable as e:
        return str(e)
    return None


SKIP = _skip_reason()
if SKIP:
    pytestmark.append(pytest.mark.skip(reason=SKIP))


@pytest.fixture
def workload():
    with HotCold(hot_mb=32, cold_mb=64, cold_stride_kb=64) as w:
        yield w


def coverage(pid, rng):
    value = pagemap.range_huge_bytes(pid, rng[0], rng[1], HUGE)
    assert value is not None
    return value


def vma_of(pid, rng):
    vma = procfs.find_vma(procfs.read_smaps(pid), rng[0], rng[1])
    assert vma is not None, "range %r is not one mapping" % (rng,)
    return vma


def collapse_task(pid, ranges, **options):
    return {"linux_mm.damon.collapse": dict(options, pid=pid, ranges=ranges)}


def hexrange(rng):
    return {"start": hex(rng[0]), "end": hex(rng[1])}


def test_hot_range_becomes_huge_and_second_run_changes_nothing(run_playbook, workload):
    pid, hot, cold = workload.pid, workload.hot, workload.cold
    assert coverage(pid, hot) == 0
    rss_before = vma_of(pid, hot).fields["Rss"]

    first, second = run_tasks(run_playbook, [
        collapse_task(pid, [hexrange(hot)]),
        collapse_task(pid, [{"start": hot[0], "end": hot[1]}]),
    ])

    assert first["_status"] == "ok", first
    assert first["changed"] is True
    assert first["bytes_collapsed"] == 32 * MIB
    assert first["chunks"]["collapsed"] == 16 and first["chunks"]["tried"] == 16
    assert first["chunks"]["failed_by_errno"] == {}
    assert first["anon_huge_bytes_after"] - first["anon_huge_bytes_before"] >= 32 * MIB
    assert first["precise_huge_check"] is True
    assert first["ranges"][0]["aligned_start"] == hot[0] and first["ranges"][0]["aligned_end"] == hot[1]
    print("\ncollapse of the %d MiB hot range: %d bytes in %.3f s (module time)"
          % ((hot[1] - hot[0]) // MIB, first["bytes_collapsed"], first["elapsed_s"]))

    # Measured independently: every chunk is one huge page, smaps agrees, memory did not grow.
    assert coverage(pid, hot) == 32 * MIB
    hot_vma = vma_of(pid, hot)
    assert hot_vma.anon_huge_bytes == 32 * MIB
    assert hot_vma.fields["Rss"] == rss_before
    assert coverage(pid, cold) == 0

    assert second["_status"] == "ok", second
    assert second["changed"] is False
    assert second["bytes_collapsed"] == 0
    assert second["chunks"]["skipped_already_huge"] == 16
    assert second["chunks"]["tried"] == 0


def test_sparse_cold_range_is_skipped(run_playbook, workload):
    pid, hot, cold = workload.pid, workload.hot, workload.cold
    cold_rss = vma_of(pid, cold).fields["Rss"]
    assert cold_rss == 64 * MIB // 16  # one 4 KiB page per 64 KiB

    result, = run_tasks(run_playbook, [collapse_task(pid, [hexrange(hot), hexrange(cold)])])

    assert result["_status"] == "ok", result
    assert result["chunks"]["collapsed"] == 16
    assert result["chunks"]["skipped_sparse"] == 32
    hot_detail, cold_detail = result["ranges"]
    assert hot_detail["collapsed"] == 16 and hot_detail["skipped_sparse"] == 0
    assert cold_detail["skipped_sparse"] == 32 and cold_detail["tried"] == 0
    assert coverage(pid, cold) == 0
    cold_vma = vma_of(pid, cold)
    assert cold_vma.anon_huge_bytes == 0
    assert cold_vma.fields["Rss"] == cold_rss  # no zero-filled bloat

    # With the density check off the cold range would be collapsed (and bloated): check mode shows it.
    preview, = run_tasks(run_playbook, [collapse_task(pid, [hexrange(cold)], min_density=0)], check=True)
    assert preview["chunks"]["tried"] == 32 and preview["bytes_planned"] == 64 * MIB
    assert coverage(pid, cold) == 0


def test_check_mode_changes_nothing(run_playbook, workload):
    pid, hot = workload.pid, workload.hot
    before = procfs.anon_huge_bytes(pid)

    result, = run_tasks(run_playbook, [collapse_task(pid, [hexrange(hot)])], check=True, diff=True)

    assert result["_status"] == "ok", result
    assert result["changed"] is True  # it would collapse
    assert result["bytes_collapsed"] == 0
    assert result["bytes_planned"] == 32 * MIB
    assert result["chunks"]["tried"] == 16 and result["chunks"]["collapsed"] == 0
    assert result["diff"] == {"before": {"anon_huge_bytes": before},
                              "after": {"anon_huge_bytes": before + 32 * MIB}}
    assert coverage(pid, hot) == 0
    assert procfs.anon_huge_bytes(pid) == before


def test_quota_limits_bytes(run_playbook, workload):
    pid, hot = workload.pid, workload.hot

    result, = run_tasks(run_playbook, [collapse_task(pid, [hexrange(hot)], quota_bytes="8M")])

    assert result["_status"] == "ok", result
    assert result["bytes_collapsed"] == 8 * MIB
    assert result["chunks"]["collapsed"] == 4
    assert result["chunks"]["skipped_quota"] == 12
    assert coverage(pid, hot) == 8 * MIB
    assert coverage(pid, (hot[0], hot[0] + 8 * MIB)) == 8 * MIB  # the first chunks, in order


def test_nohugepage_mapping_fails_per_chunk_with_einval(run_playbook):
    with HotCold(hot_mb=8, cold_mb=2, nohugepage=True) as w:
        result, = run_tasks(run_playbook, [collapse_task(w.pid, [hexrange(w.hot)])])
        assert coverage(w.pid, w.hot) == 0
    assert result["_status"] == "ok", result
    assert result["changed"] is False
    assert result["chunks"]["failed_by_errno"] == {"EINVAL": 4}
    assert result["chunks"]["collapsed"] == 0
    failure = result["failures"][0]
    assert failure["errno_name"] == "EINVAL" and failure["start"] == w.hot[0]
    assert "VM_NOHUGEPAGE" in failure["hint"]
    assert any("could not be collapsed" in warning for warning in result.get("warnings", []))


def test_nonexistent_pid_fails_clearly(run_playbook):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    pid = child.pid
    if os.path.exists("/proc/%d" % pid):
        pytest.skip("PID %d was reused" % pid)

    result, = run_tasks(run_playbook, [collapse_task(pid, [{"start": "0x7f0000000000", "end": "0x7f0000400000"}])])

    assert result["_status"] == "failed"
    assert result["msg"] == "process %d does not exist" % pid
    assert result["process_gone"] is True
    assert result["errno_name"] == "ESRCH"
    assert "Traceback" not in json.dumps(result)


@pytest.mark.parametrize("options, message", [
    ({"min_density": 1.5}, "min_density: 1.5 is not a fraction between 0 and 1"),
    ({"quota_bytes": "1M"}, "quota_bytes: 1048576 is below one huge page"),
    ({"ranges": [{"start": "0x2000000", "end": "0x1000000"}]}, "ranges[0]: end 0x1000000 is not above start 0x2000000"),
    ({"ranges": [{"start": "bogus", "end": "0x1000000"}]}, "ranges[0].start: 'bogus' is not an address"),
    ({"retries": -1}, "retries: -1 is negative"),
])
def test_bad_input_fails_clearly(run_playbook, workload, options, message):
    task = collapse_task(workload.pid, [hexrange(workload.hot)])
    task["linux_mm.damon.collapse"].update(options)
    result, = run_tasks(run_playbook, [task])
    assert result["_status"] == "failed"
    assert message in result["msg"]
    assert coverage(workload.pid, workload.hot) == 0


def test_without_cap_sys_nice_fails_up_front(collections_root, world_readable_dir):
    """The module run as nobody on nobody's own process: ptrace access yes, CAP_SYS_NICE no."""
    with HotCold(hot_mb=4, cold_mb=2, user=NOBODY) as w:
        result = run_module_as_nobody(collections_root, world_readable_dir, "collapse.py",
                                      {"pid": w.pid, "ranges": [hexrange(w.hot)]}, timeout=60)
        assert coverage(w.pid, w.hot) == 0
    assert result["failed"] is True, result
    # said up front, before any process_madvise() call or /proc read of the target
    assert "needs root (become: true)" in result["msg"] and "without CAP_SYS_NICE" in result["msg"], result
    assert result["pid"] == w.pid and "chunks" not in result
