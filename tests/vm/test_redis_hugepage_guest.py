# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/hugepage.yml on real redis under GET load, short variant of issue 12's proof
(tests/vm/redis_proof.py; the full one is in docs/real-applications.md).

300 000 cold + 30 000 hot keys of 1000 B, redis found by name (hugepage_detect_name_pattern),
measured by the harness's ground truth (the hot keys' pages by soft-dirty, not DAMON): the hot
keys' memory in huge pages reaches HOT_SHARE_MIN, and the cold values made huge stay under
COLD_BLOAT_MAX of the cold memory (``redis_proof.cold_values_huge``).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.vm import redis_proof
from tests.vm.guest import Guest

pytestmark = [
    pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("LINUX_MM_DAMON_GUEST_TESTS") != "1",
                       reason="guest tests run with LINUX_MM_DAMON_GUEST_TESTS=1 (make test does)"),
]

COLD, HOT = 300_000, 30_000
HOT_SHARE_MIN = 0.80
COLD_BLOAT_MAX = 0.02
UNTIL_S = 120  # measured this long after the playbook started (the kdamond keeps collapsing after it)


# Measured 2026-11-26 (docs/real-applications.md, "Measured on redis"): 6.12.117 hot share 0.99, cold bloat 0.0 %
# (targets met); 7.3.4 hot share 0.94 / 0.89 / 0.94, other memory huge 1.9 / 5.6 / 3.7 %. Since 2026-11-27 the bloat
# judged is the cold values and zeros made huge (redis_proof.cold_values_huge): most of the rest is the bucket table
# every GET reads. On 7.3 DAMON's regions still mix cold values into hot ones now and then (the same document), so
# the 7.3 case states the targets and may fail.
@pytest.mark.parametrize("kernel", [
    pytest.param("damon-7.3", marks=pytest.mark.xfail(
        reason="issue 12: on 7.3 cold values beside hot memory are made huge in some runs (mixed DAMON regions)",
        strict=False)),
    "damon-6.12",
])
def test_redis_hot_keys_end_up_in_huge_pages(kernel, tmp_path):
    with Guest(kernel, memory_mb=2048) as g:
        res = redis_proof.proof(g, COLD, HOT, disable_thp=None, until_s=UNTIL_S, out_dir=tmp_path,
                                extra={"hugepage_timeout_s": 150})
    print(json.dumps(res, indent=1))
    assert res["dataset"]["dbsize"] == COLD + HOT
    assert res["before"]["hot_huge_share"] < 0.5  # THP madvise: redis's heap starts on base pages
    last = res.get("at_until") or res["after_run"]
    assert last["hot_huge_share"] >= HOT_SHARE_MIN, (last, res["messages"])
    assert res["cold_values_huge"] <= COLD_BLOAT_MAX, (last, res["cold_huge_contents"], res["messages"])
    assert any("redis-server" in m for m in res["messages"]), res["messages"]
