# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/rollout.yml: batches with a health gate, against a fleet of EMULATED hosts (tests/helpers/fleet.py).

Every inventory host has its own emulated Linux 6.12 DAMON sysfs, its own hotcold workload
(whose hot part the emulator shows as hot) and its own ownership record; the hugepage role
collapses the real workload's hot part with process_madvise (root).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse
from tests.helpers.fleet import APP, EmulatedFleet

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(600)]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the hugepage role collapses another process's memory and "
                                "reads /proc/kpageflags: root")

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "rollout.yml"
RECORD_SCHEMA = json.loads((REPO / "docs" / "schemas" / "rollout-record.schema.json").read_text())
MIB = 1 << 20
GATE = "linux_mm.damon.rollout : Show the health gate of the batch"
STOP = "linux_mm.damon.rollout : Stop the rollout"


def rollout(run_playbook, fleet, records, check=False, **extra):
    """Run playbooks/rollout.yml on the fleet, records in ``records``."""
    extra = dict(dict(rollout_record_dir=str(records), ansible_become=False), **extra)
    return run_playbook(PLAYBOOK, inventory=str(fleet.inventory), extra_vars=extra, check=check)


def gates(run):
    """The gate message of every batch that reached its gate, in order (one host of each batch shows it)."""
    return [next(iter(t["hosts"].values()))["msg"] for t in run.tasks if t["name"] == GATE]


def stopped(run):
    """The message of the task that stopped the rollout (None when it did not run or was skipped)."""
    for task in run.tasks:
        if task["name"] == STOP:
            for result in task["hosts"].values():
                if result["_status"] == "failed":
                    return result["msg"]
    return None


def record(records, host):
    return json.loads((records / ("%s.json" % host)).read_text())


@needs_root
def test_a_rollout_that_passes_every_batch_writes_the_records_and_a_host_whose_coverage_fell_stops_the_next(
        run_playbook, tmp_path):
    """Check mode, then a rollout that passes every batch and records each host; check mode again compares with
    the records and rewrites none. Then h1's application restarts with MADV_NOHUGEPAGE (no huge page possible), so
    the next rollout's canary gate finds its coverage at 0 and stops before h2. (Two tests before, each with its
    own fleet and first rollout.)"""
    records = tmp_path / "records"
    with EmulatedFleet(tmp_path, ["h1", "h2", "h3", "h4"]) as fleet:
        predicted = rollout(run_playbook, fleet, records, check=True)
        assert predicted.rc == 0, predicted.explain()
        assert not records.exists()  # check mode writes no record
        assert all(fleet.kdamonds(h) == [] for h in fleet.names)

        run = rollout(run_playbook, fleet, records)
        assert run.rc == 0, run.explain()
        # a canary, then 10 % of 4 hosts (1), then the rest
        passed = ["Rollout gate passed for batch 1: h1 (1 host).", "Rollout gate passed for batch 2: h2 (1 host).",
                  "Rollout gate passed for batch 3: h3, h4 (2 hosts)."]
        assert [g[0] for g in gates(run)] == passed
        assert stopped(run) is None
        for host in fleet.names:
            assert fleet.running(host) == 1, (host, fleet.kdamonds(host))
            rec = record(records, host)
            jsonschema.validate(rec, RECORD_SCHEMA)
            assert rec["host"] == host and rec["hot_coverage"] == 1.0 and rec["huge_bytes_cold"] == 0, rec
            assert rec["hot_bytes"] == 8 * MIB and rec["apps"][APP]["status"] == "converged", rec
            assert rec["apps"][APP]["pid"] == fleet.workloads[host].pid

        before = dict((h, record(records, h)) for h in fleet.names)
        predicted = rollout(run_playbook, fleet, records, check=True)  # compares with the records, rewrites none
        assert predicted.rc == 0 and [g[0] for g in gates(predicted)] == passed, predicted.explain()
        assert dict((h, record(records, h)) for h in fleet.names) == before
        later_writes = dict((h, fleet.emulators[h].write_count()) for h in ("h2", "h3", "h4"))

        fleet.restart("h1", nohugepage=True)
        second = rollout(run_playbook, fleet, records)
        assert second.rc != 0, second.explain()
        [gate] = gates(second)
        assert gate[0] == "Rollout gate FAILED for batch 1: h1 (1 host); the rollout stops here.", gate
        since = "(previous run %s)" % before["h1"]["recorded_at"]
        assert ("h1: coverage: hot coverage 0.000 (0.0 MiB of 8.0 MiB hot in huge pages) < 1.000 %s - tolerance 0.05"
                % since) in gate, gate
        assert ("h1: app_coverage: app: hot coverage 0.000 (0.0 MiB of 8.0 MiB hot in huge pages) < 1.000 %s - "
                "tolerance 0.05" % since) in gate, gate
        assert gate[-1] == "Not rolled out: h2, h3, h4.", gate
        assert stopped(second)[-1].startswith("The batch's kdamonds keep running (rollout_stop_on_failure is false)")
        assert "ansible-playbook -i INVENTORY linux_mm.damon.stop --limit h1 (the inventory" in stopped(second)[-1]

        # the later batches never ran
        assert dict((h, fleet.emulators[h].write_count()) for h in ("h2", "h3", "h4")) == later_writes
        assert dict((h, record(records, h)) for h in fleet.names) == before  # gate failed: kept
        assert fleet.running("h1") == 1  # default rollout_stop_on_failure false: the batch keeps its kdamond


@needs_root
def test_cold_bloat_stops_the_rollout_and_the_batch(run_playbook, tmp_path):
    """h3's application has its cold part in huge pages (collapsed before the rollout): 16 MiB > the 4 MiB limit.
    Batches h1, then h2 + h3, then h4; rollout_max_fail_percentage 50, so only the gate can stop the rollout."""
    records = tmp_path / "records"
    with EmulatedFleet(tmp_path, ["h1", "h2", "h3", "h4"], per_host={"h3": {"cold_stride_kb": 4}}) as fleet:
        w = fleet.workloads["h3"]
        assert _collapse.collapse(w.pid, [{"start": w.cold[0], "end": w.cold[1]}])["bytes_collapsed"] == 16 * MIB
        run = rollout(run_playbook, fleet, records, rollout_batches=[1, 2], rollout_max_fail_percentage=50,
                      rollout_max_cold_huge_bytes=4 * MIB, rollout_stop_on_failure=True)
        assert run.rc != 0, run.explain()
        canary, gate = gates(run)  # no third gate
        assert canary[0] == "Rollout gate passed for batch 1: h1 (1 host).", canary
        assert gate[0] == "Rollout gate FAILED for batch 2: h2, h3 (2 hosts); the rollout stops here.", gate
        assert gate[1] == ("h3: cold_bloat: 16.0 MiB in huge pages in cold chunks (app 16.0 MiB) > "
                           "rollout_max_cold_huge_bytes 4.0 MiB"), gate
        assert gate[-1] == "Not rolled out: h4.", gate
        message = stopped(run)
        assert message[:len(gate)] == gate and message[-1] == "The hugepage role's stop entry point ran on h2, h3.", message

        for host in ("h2", "h3"):  # each had a kdamond; stop removed it
            started = [x for x in fleet.emulators[host].writes()
                       if x["path"].endswith("/state") and x["value"].strip() == "on"]
            assert started and fleet.running(host) == 0, (host, fleet.kdamonds(host))
        assert fleet.running("h1") == 1  # an earlier batch that passed keeps its kdamond
        assert not fleet.touched("h4") and fleet.kdamonds("h4") == []  # the later batch never ran
        assert [p.name for p in records.glob("*.json")] == ["h1.json"]  # only a passed gate writes records


@needs_root
def test_failed_hosts_count_against_max_fail_percentage(run_playbook, tmp_path):
    """h2 runs a kernel without DAMON, so the hugepage role fails there; batches: h1, then h2 + h3, then h4."""
    records = tmp_path / "records"
    batches = dict(rollout_batches=[1, 2])  # the last size repeats
    with EmulatedFleet(tmp_path, ["h1", "h2", "h3", "h4"], kernels={"h2": ("6.1", "6.1.0")}) as fleet:
        within = rollout(run_playbook, fleet, records, rollout_max_fail_percentage=50, **batches)
        assert within.rc != 0, within.explain()  # h2 failed ...
        assert within.stats["h2"]["failures"] == 1 and within.stats["h3"]["failures"] == 0
        gate = gates(within)  # ... but the rollout went through
        assert [g[0] for g in gate] == ["Rollout gate passed for batch 1: h1 (1 host).",
                                        "Rollout gate passed for batch 2: h2, h3 (2 hosts).",
                                        "Rollout gate passed for batch 3: h4 (1 host)."], gate
        assert gate[1][1].startswith("h2: failed: Stop when the kernel has no DAMON: "), gate
        assert "failed hosts: 1 of 2 (50 %), rollout_max_fail_percentage 50" in gate[1]
        assert sorted(p.name for p in records.glob("*.json")) == ["h1.json", "h3.json", "h4.json"]
        kept = dict((h, record(records, h)) for h in ("h3", "h4"))
        h4_writes = fleet.emulators["h4"].write_count()

        beyond = rollout(run_playbook, fleet, records, rollout_max_fail_percentage=0, **batches)
        assert beyond.rc != 0, beyond.explain()
        first, second = gates(beyond)  # no third gate: batch 3 never ran
        assert first[0] == "Rollout gate passed for batch 1: h1 (1 host).", first  # no regression against its record
        assert beyond.stats["h1"]["changed"] == 0  # a converged host: nothing to change
        assert second[0] == "Rollout gate FAILED for batch 2: h2, h3 (2 hosts); the rollout stops here.", second
        assert "failed hosts: 1 of 2 (50 %), rollout_max_fail_percentage 0 -- exceeded" in second
        assert second[-1] == "Not rolled out: h4.", second
        assert stopped(beyond)[:len(second)] == second
        assert fleet.emulators["h4"].write_count() == h4_writes  # the host of batch 3 was not touched again
        assert dict((h, record(records, h)) for h in ("h3", "h4")) == kept  # the batch failed its gate: kept


def failures(run):
    """Messages of every failed task result."""
    return [r["msg"] for t in run.tasks for r in t["hosts"].values() if r["_status"] == "failed"]


def test_bad_variables_fail_clearly_before_any_host_is_touched(run_playbook, tmp_path):
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    with EmulatedFleet(tmp_path, ["h1", "h2"]) as fleet:
        runs = {}
        runs["ranges"] = rollout(run_playbook, fleet, a_file, rollout_batches=[0, "150%", "abc", 2],
                                 rollout_max_fail_percentage=120)
        runs["types"] = rollout(run_playbook, fleet, tmp_path / "records", rollout_coverage_tolerance="lots",
                                rollout_stop_on_failure="maybe")
        runs["string"] = rollout(run_playbook, fleet, "relative/records", rollout_batches="1,10%",
                                 hugepage_lock_busy="skip")
        for run in runs.values():
            assert run.rc != 0, run.explain()
            assert "PLAY [Roll out the hugepage role" not in run.stdout  # the rollout play never started
        ranges = failures(runs["ranges"])
        assert len(ranges) == 2 and ranges[0].split(": ", 1)[1] == (
            'rollout_batches must be a non-empty list of batch sizes, each a number of hosts (1 or more) or a '
            'percentage of the hosts from 1%% to 100%%, e.g. [1, "10%%", "100%%"]; not valid: ["150%%", "abc", 0]; '
            'rollout_max_fail_percentage must be within 0..100, got 120; '
            'rollout_record_dir %s exists and is not a directory' % a_file), ranges
        types = " ".join(failures(runs["types"]))
        assert "rollout_coverage_tolerance" in types and "rollout_stop_on_failure" in types, types
        string = failures(runs["string"])[0]
        assert "rollout_batches must be a non-empty list" in string, string
        assert "rollout_record_dir must be an absolute path on the controller (or start with ~), got relative/records" \
            in string, string
        assert "hugepage_lock_busy skip ends a host whose host lock another run holds without failing it" in string
        assert not (tmp_path / "records").exists()

        # the rollout variables are fine now; h2 (not the canary) has a bad hugepage role variable
        fleet.host_vars["h2"] = {"hugepage_policy": "fastest"}
        fleet.write_inventory()
        bad_role_var = rollout(run_playbook, fleet, tmp_path / "records")
        assert bad_role_var.rc != 0, bad_role_var.explain()
        [message] = failures(bad_role_var)
        assert "hugepage_policy" in message and "fastest" in message and "adaptive, stepdown" in message, message
        assert "PLAY [Roll out the hugepage role" not in bad_role_var.stdout

        for host in fleet.names:
            assert not fleet.touched(host) and fleet.kdamonds(host) == [], host
