# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real-application harness (tests/vm/apps.py) works in a guest: a short variant.

redis: dataset of the requested size, GETs on the hot keys only (no misses), and the
ground truth finds the hot keys' memory in a few 2 MiB chunks apart from the cold ones.
PostgreSQL: pgbench load runs, and _thp_eligibility reports its shared_buffers (shmem) as
misaligned -- placed while shmem_enabled is never -- so it cannot get huge pages.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.vm import apps
from tests.vm.guest import Guest
from tests.vm.test_collapse_facts_guest import BLOCKERS, _install_module_utils

pytestmark = [
    pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("LINUX_MM_DAMON_GUEST_TESTS") != "1",
                       reason="guest tests run with LINUX_MM_DAMON_GUEST_TESTS=1 (make test does)"),
]

COLD, HOT, VALUE = 200_000, 20_000, 1000


@pytest.fixture(scope="module")
def guest():
    with Guest("damon-7.3", memory_mb=2048) as g:
        _install_module_utils(g)
        yield g


def test_redis_harness(guest):
    r = apps.start_redis(guest, disable_thp="no")
    load = None
    try:
        ds = apps.fill_redis(guest, cold_keys=COLD, hot_keys=HOT, value_size=VALUE)
        print("dataset", ds)
        assert ds["dbsize"] == COLD + HOT
        assert ds["rss_anon_bytes"] >= (COLD + HOT) * VALUE
        load = apps.start_redis_load(guest, hot_keys=HOT, value_size=VALUE)
        first = apps.redis_ops(guest)
        deadline = time.monotonic() + 120
        while True:  # the load generator is running: requests keep arriving, all of them hits
            time.sleep(2)
            now = apps.redis_ops(guest)
            if now.get("keyspace_hits", 0) > first.get("keyspace_hits", 0) + 100 or time.monotonic() > deadline:
                break
        assert now["keyspace_hits"] > first.get("keyspace_hits", 0) + 100, (first, now)
        assert now.get("keyspace_misses", 0) == 0
        gt = apps.redis_hot_memory(guest, r.pid, hot_keys=HOT)
        print("ground truth", json.dumps(gt))
        hot_mem = gt["hot"]["touched_bytes"]
        # the hot keys' values and objects, and little else
        assert HOT * VALUE * 0.9 <= hot_mem <= HOT * VALUE * 2, gt
        # they sit together: a handful of chunks, far fewer than the resident memory has
        assert 3 <= gt["hot"]["chunks"] <= 3 * HOT * VALUE // (2 << 20) + 8, gt
        assert gt["cold"]["resident_bytes"] >= 4 * gt["hot"]["resident_bytes"], gt
        assert gt["hot_huge_fraction"] is not None
        # the harness's process-level report: only glibc's thread stacks are marked nh
        reasons = [b["reason"] for b in json.loads(guest.python(BLOCKERS, str(r.pid), check=True).stdout)]
        assert reasons in ([], ["vma_nohugepage"])
    finally:
        apps.stop_redis(guest, load_pid=load)


def test_postgres_harness(guest):
    pg = apps.start_postgres(guest, shared_buffers="64MB")
    load = None
    try:
        ds = apps.fill_pgbench(guest, scale=2)
        print("dataset", ds)
        assert ds["db_bytes"] > 20 << 20
        load = apps.start_pgbench_load(guest, scale=2, clients=2)
        xact = "psql -At -c \"select xact_commit from pg_stat_database where datname='bench'\" bench"
        before = int(apps._ssh(guest, apps._as_postgres(xact)))
        time.sleep(10)
        assert int(apps._ssh(guest, apps._as_postgres(xact))) > before + 10
        pids = apps.postgres_pids(guest, pg.pid)
        got = json.loads(guest.python(BLOCKERS, str(pg.pid), check=True).stdout)
        print("postgres blockers", got)
        maps = apps._ssh(guest, f"cat /proc/{pg.pid}/maps")
        huge = 2 << 20
        shared = [[int(x, 16) for x in line.split()[0].split("-")] for line in maps.splitlines()
                  if " rw-s " in line and ("/dev/zero" in line or "/SYSV" in line)]
        assert any(e - s >= 32 << 20 for s, e in shared), maps   # shared_buffers: MAP_SHARED anonymous = shmem
        # mappings that could hold a whole 2 MiB chunk but are placed misaligned (offset 0)
        misaligned = [[s, e] for s, e in shared if s % huge and -(-s // huge) * huge + huge <= e]
        # shmem_enabled is never: the kernel did not align it (unless by chance), and then
        # nothing can make it huge until PostgreSQL restarts with shmem THP enabled
        reported = [m for b in got if b["reason"] == "shmem_misaligned" for m in b["mappings"]]
        assert reported == misaligned, (got, shared)
        assert len(pids) > 3
    finally:
        apps.stop_postgres(guest, load_pid=load)
