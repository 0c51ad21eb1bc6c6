# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why MADV_COLLAPSE fails, verified in the guests (docs/real-applications.md).

One factor at a time on private anonymous chunks (tests/vm/collapse_facts.py), then on
redis-server's real heap: every EINVAL chunk of redis is one without a page table or one in
a VM_NOHUGEPAGE mapping, and plugins/module_utils/_thp_eligibility.py, run in the guest,
reports the same blockers.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.vm import apps
from tests.vm.guest import Guest

pytestmark = [
    pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("LINUX_MM_DAMON_GUEST_TESTS") != "1",
                       reason="guest tests run with LINUX_MM_DAMON_GUEST_TESTS=1 (make test does)"),
]

HERE = Path(__file__).resolve().parent
MODULE_UTILS = HERE.parents[1] / "plugins" / "module_utils"
GUEST_LIB = "/root/lmd/ansible_collections/linux_mm/damon/plugins/module_utils"

CENSUS = r'''
import collections, ctypes, errno, json, os, struct, sys
pid = int(sys.argv[1])
H, P = 2 << 20, 4096
libc = ctypes.CDLL(None, use_errno=True)
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
pidfd = libc.syscall(434, pid, 0)
T = "/sys/kernel/tracing"
if not os.path.exists(T + "/events"):
    os.system("mount -t tracefs nodev " + T)
EV = T + "/events/huge_memory/mm_khugepaged_scan_pmd/enable"
vmas, cur = [], None
for line in open("/proc/%d/smaps" % pid):
    f = line.split()
    if "-" in f[0] and ":" not in f[0]:
        s, e = (int(x, 16) for x in f[0].split("-"))
        cur = {"s": s, "e": e, "anon": f[1] == "rw-p" and f[4] == "0" and len(f) == 5, "flags": ""}
        vmas.append(cur)
    elif f[0] == "VmFlags:":
        cur["flags"] = f[1:]
pm = open("/proc/%d/pagemap" % pid, "rb")
counts = collections.Counter()
for v in vmas:
    if not v["anon"] or v["e"] - v["s"] < 4 * H:
        continue
    for c in range(-(-v["s"] // H) * H, v["e"] // H * H, H):
        pm.seek(c // P * 8)
        present = sum(1 for x in struct.unpack("512Q", pm.read(4096)) if x >> 63 & 1)
        open(T + "/trace", "w").write(""); open(EV, "w").write("1")
        r = libc.syscall(440, pidfd, (Iov * 1)(Iov(c, H)), 1, 25, 0)
        err = "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
        open(EV, "w").write("0")
        tr = [l.split("status=")[1].split(",")[0] for l in open(T + "/trace") if "scan_pmd" in l]
        key = "%s|%s|%s|%s" % ("nh" if "nh" in v["flags"] else "-", "empty" if present == 0 else "resident",
                               err, tr[0] if tr else "no_scan")
        counts[key] += 1
print(json.dumps(dict(counts)))
'''

BLOCKERS = r'''
import json, sys
sys.path.insert(0, "/root/lmd")
from ansible_collections.linux_mm.damon.plugins.module_utils import _thp_eligibility as t
print(json.dumps(t.blockers(int(sys.argv[1]))))
'''


def _install_module_utils(g):
    """All of plugins/module_utils (whatever imports whatever) under /root/lmd in the guest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(MODULE_UTILS.glob("*.py")):
            tar.add(f, arcname=f.name)
    g.ssh(f"mkdir -p {GUEST_LIB} && tar -x -C {GUEST_LIB}", input=buf.getvalue(), check=True)


def _collect(kernel: str) -> dict:
    with Guest(kernel, memory_mb=2048) as g:
        facts = json.loads(g.python((HERE / "collapse_facts.py").read_text(), timeout=600,
                                    check=True).stdout.strip().splitlines()[-1])
        _install_module_utils(g)
        # redis with THP madvise (the guests' mode): its heap, chunk by chunk
        r = apps.start_redis(g)
        apps.fill_redis(g, cold_keys=100_000, hot_keys=0)
        apps.redis_cli(g, "FLUSHALL")            # frees -> jemalloc purges (MADV_DONTNEED)
        apps.fill_redis(g, cold_keys=50_000, hot_keys=0)
        facts["redis_madvise"] = {
            "thp_enabled": r.thp_enabled,
            "blockers": json.loads(g.python(BLOCKERS, str(r.pid), check=True).stdout),
            "chunks": json.loads(g.python(CENSUS, str(r.pid), timeout=600, check=True).stdout),
        }
        apps.stop_redis(g)
        # redis with THP always: its default disable-thp yes calls prctl(PR_SET_THP_DISABLE)
        g.ssh("echo always > /sys/kernel/mm/transparent_hugepage/enabled", check=True)
        r = apps.start_redis(g)
        facts["redis_always_default"] = {
            "thp_enabled": r.thp_enabled,
            "blockers": json.loads(g.python(BLOCKERS, str(r.pid), check=True).stdout)}
        apps.stop_redis(g)
        r = apps.start_redis(g, disable_thp="no")
        facts["redis_always_disable_thp_no"] = {"thp_enabled": r.thp_enabled}
        apps.stop_redis(g)
    print(json.dumps(facts, indent=1))
    return facts


# Where the kernels differ (tracepoint status names, and what an emptied or read-only chunk does)
KERNEL = {
    "damon-7.3": {"no_table": "no_pte_table", "walk_continues": True,
                  "dontneed_whole": ("EINVAL", "no_pte_table"),      # CONFIG_PT_RECLAIM frees the table
                  "only_read": ("ok", "succeeded")},                  # zero-filled 2 MiB
    "damon-6.12": {"no_table": "pmd_none", "walk_continues": False,  # SCAN_PMD_NONE stops the walk
                   "dontneed_whole": ("EINVAL", "no_writable_page"),  # table kept, SCAN_PAGE_RO
                   "only_read": ("EINVAL", "no_writable_page")},
}
EMPTY_SCANS = {"no_pte_table", "pmd_none", "no_writable_page"}


@pytest.mark.parametrize("kernel", ["damon-7.3", "damon-6.12"])
def test_madv_collapse_failure_causes(kernel):
    f = _collect(kernel)
    k = KERNEL[kernel]
    ch = f["chunks"]
    # madvise mode, no MADV_HUGEPAGE: smaps says not eligible, MADV_COLLAPSE works anyway
    assert f["enabled"].split("[")[1].startswith("madvise")
    assert ch["all_written"]["thp_eligible"] == "0"
    assert "hg" not in ch["all_written"]["vm_flags"].split()
    assert ch["all_written"]["one_call"]["result"] == "ok"
    # a chunk never touched has no page table: the whole call fails with EINVAL; 7.3 still
    # collapses the chunks after it, 6.12 stops there; per chunk only that one fails
    nt = ch["never_touched"]
    assert nt["one_call"]["result"] == "EINVAL"
    assert nt["one_call"]["scan"][2] == k["no_table"]
    assert len(nt["one_call"]["scan"]) == (4 if k["walk_continues"] else 3)
    assert nt["per_chunk"]["result"] == ["ok", "ok", "EINVAL", "ok"]
    # a chunk emptied by MADV_DONTNEED, and a chunk that was only read (zero page)
    for case in ("dontneed_whole", "only_read"):
        result, scan = k[case]
        assert ch[case]["per_chunk"]["result"][2] == result, case
        assert ch[case]["per_chunk"]["scan"][2] == scan, case
    # a chunk with one resident page is collapsed: zero-filled up to 2 MiB (bloat)
    assert ch["one_page_written"]["one_call"]["result"] == "ok"
    assert ch["dontneed_all_but_one"]["one_call"]["result"] == "ok"
    assert ch["one_page_written"]["rss_anon_growth_kb"] >= 2048 - 4
    assert ch["free_whole"]["one_call"]["result"] == "ok"      # lazy-free pages collapse
    # VM_NOHUGEPAGE: refused before any scan
    assert ch["nohugepage"]["per_chunk"]["result"][2] == "EINVAL"
    # prctl(PR_SET_THP_DISABLE): THP_enabled 0, everything refused
    assert f["prctl"] == {"THP_enabled": "0", "collapse": "EINVAL"}
    # shmem: a mapping misaligned to its offset never collapses; an aligned one does, even
    # under shmem_enabled=never (forced collapse); only non-never settings align new mappings
    sh = f["shmem"]
    for setting in ("never", "advise"):
        assert sh[setting + "/misaligned"]["result"] == "EINVAL"
        assert sh[setting + "/aligned"]["result"] == "ok"
        assert sh[setting + "/aligned"]["shmem_pmd_mapped"] == "4096 kB"
    assert sh["advise/default_placement_aligned"] == 4
    assert sh["never/default_placement_aligned"] < 4
    # redis: every EINVAL chunk is an empty one (no page table / no writable page) or in a nh mapping
    for key, n in f["redis_madvise"]["chunks"].items():
        nh, resident, err, scan = key.split("|")
        if err == "EINVAL":
            assert nh == "nh" or (resident == "empty" and scan in EMPTY_SCANS), (key, n)
    assert f["redis_madvise"]["thp_enabled"] == "1"
    assert [b["reason"] for b in f["redis_madvise"]["blockers"]] == ["vma_nohugepage"]  # thread stacks
    # THP always: redis's default disable-thp yes disables THP for the whole process
    assert f["redis_always_default"]["thp_enabled"] == "0"
    assert [b["reason"] for b in f["redis_always_default"]["blockers"]] == ["process_thp_disabled"]
    assert f["redis_always_disable_thp_no"]["thp_enabled"] == "1"
