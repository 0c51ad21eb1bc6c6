# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet over time (section `follow`): the hugepage role run on a schedule while the hot set moves.

One guest boot per kernel; in it, for each configuration: reset (as the effectiveness section), then a
chase workload (hot 64 MiB, hot2 64 MiB chased instead after 200 s, cold 256 MiB touched once) that is
restarted at 360 s (a new process, new addresses; its hot set moves again 120 s later), and a schedule
that fires every EVERY_S seconds:

- ``ours``: the role (bench/playbooks/follow.yml) with the application declared by selector
  (``name_pattern: ^chase$``), default options: on 6.12 nothing collapses between runs;
- ``ours-between``: the same with ``hugepage_between_runs: hugepage`` (6.2-7.1: khugepaged over the
  regions a DAMOS hugepage scheme marks); on 7.3 it is the same as ``ours``;
- ``rfc-stepdown``: the role with ``hugepage_policy: stepdown``;
- ``ethp``: DAMON's published ethp scheme (bench/playbooks/ethp.yml) for the current PID;
- ``khugepaged-only``: the workload MADV_HUGEPAGEs everything; nothing is scheduled.

The in-guest sampler (bench/guest_sampler.py) measures the huge-page bytes of the exact hot, hot2 and
cold ranges every second. Time-weighted hot coverage is the mean over samples of the huge share of the
range being chased (the oracle, which collapses exactly that range at once, is 1.0 by construction but
for the seconds after each move). Cold bloat share is the largest cold huge-page bytes seen over cold bytes.
The first scheduled run after a converged one with no move in between finds nothing changed: its
hugepage_step calls and ``changed`` are reported as ``idle_run_step_calls`` and ``idle_run_changed``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.common import BENCH, BUILD, MIB, build_workload, log, run_playbook, save_raw
from bench.effectiveness import EXACT, RESET, _calls, prepare_guest

CONFIGS = ("ours", "ours-between", "rfc-stepdown", "ethp", "khugepaged-only")
KERNELS = ("damon-6.12", "damon-7.3")
DURATION_S = 600
EVERY_S = 120
SHIFT_S = 200  # the first process moves its hot set after this long
RESTART_S = 360  # then it is replaced by a new process, which moves its hot set after SHIFT2_S
SHIFT2_S = 120
COLD_BYTES = 256 * MIB
THP = {"ours": "madvise", "ours-between": "madvise", "rfc-stepdown": "madvise", "ethp": "madvise",
       "khugepaged-only": "madvise"}
ROLE_VARS = {"ours": {}, "ours-between": {"hugepage_between_runs": "hugepage"},
             "rfc-stepdown": {"hugepage_policy": "stepdown"}}
TUNE_TASK = "Tune the hotness threshold of each application"


def _start_chase(guest, shift_s, duration_s, flags):
    guest.ssh("rm -f /run/bench/w.json; /root/chase --hot-mb 64 --hot2-mb 64 --cold-mb 256 --shift-after %g "
              "--duration %g --daemonize --out /run/bench/w.json --log /run/bench/chase.log %s"
              % (shift_s, duration_s, flags), check=True, timeout=300)
    w = json.loads(guest.read("/run/bench/w.json"))
    guest.ssh("nohup python3 /root/guest_sampler.py /run/bench/w.json /run/bench/samples-%d.jsonl 1 "
              ">/run/bench/sampler.log 2>&1 & echo $! > /run/bench/sampler.pid" % w["pid"], check=True)
    return w


def _scheduled_run(guest, config, inventory, workdir, n, pid):
    calls0 = _calls(guest)
    if config == "ethp":
        res = run_playbook(BENCH / "playbooks" / "ethp.yml", inventory, dict(bench_pid=pid),
                           workdir / "ansible.log", workdir / ("record-%d.jsonl" % n))
        tune = {}
    else:
        extra = dict(ROLE_VARS[config], hugepage_interval_s=3.0, hugepage_timeout_s=EVERY_S - 20)
        res = run_playbook(BENCH / "playbooks" / "follow.yml", inventory, {"bench_role_vars": extra},
                           workdir / "ansible.log", workdir / ("record-%d.jsonl" % n))
        tune = next((r["result"] for r in res["records"] if r["task"].endswith(TUNE_TASK)), {})
    return dict(rc=res["rc"], wall_s=round(res["wall_s"], 1), controller_cpu_s=round(res["cpu_s"], 2),
                module_calls=_calls(guest) - calls0, step_calls=tune.get("iterations"), changed=tune.get("changed"),
                stopped=tune.get("stopped"), thresholds=tune.get("thresholds"))


def run_config(guest, kernel, config, inventory, workdir):
    thp = guest.ssh(RESET % {"thp": THP[config]} + "\nrm -f /var/lib/linux_mm_damon/learned.json /run/bench/samples-*",
                    timeout=120).stdout.strip().splitlines()[-1:]
    flags = "--write" + (" --late-madvise hugepage" if config == "khugepaged-only" else "")
    t0 = time.monotonic()
    workloads = [dict(_start_chase(guest, SHIFT_S, RESTART_S + 30, flags), started_s=0.0)]
    runs, n, restarted = [], 0, False
    while time.monotonic() - t0 < DURATION_S:
        now = time.monotonic() - t0
        if not restarted and now >= RESTART_S:
            guest.ssh("kill %d; sleep 1" % workloads[-1]["pid"])
            workloads.append(dict(_start_chase(guest, SHIFT2_S, DURATION_S - now + 60, flags), started_s=now))
            log("  %s: restarted the workload at %.0f s: pid %d" % (config, now, workloads[-1]["pid"]))
            restarted = True
            continue
        if config != "khugepaged-only" and now >= n * EVERY_S:
            run = dict(_scheduled_run(guest, config, inventory, workdir, n, workloads[-1]["pid"]), at_s=round(now, 1))
            runs.append(run)
            log("  %s run %d at %.0f s: rc %d, %s step calls, changed %s, stopped %s, %d module calls, %.0f s" % (
                config, n, now, run["rc"], run["step_calls"], run["changed"], run["stopped"], run["module_calls"],
                run["wall_s"]))
            n += 1
            continue
        time.sleep(1)
    exact = json.loads(guest.python(EXACT, check=True).stdout)
    time.sleep(1.5)
    samples = {}
    for w in workloads:
        text = guest.ssh("cat /run/bench/samples-%d.jsonl" % w["pid"]).stdout
        samples[w["pid"]] = [json.loads(line) for line in text.splitlines() if line.strip()]
    guest.ssh("kill %d" % workloads[-1]["pid"])
    return dict(kernel=kernel, config=config, thp_enabled=thp, workloads=workloads, samples=samples, runs=runs,
                exact_end=exact)


def _idle(previous, run):
    """Nothing changed for ``run``: the previous run converged and nothing moved from its end to this one's."""
    moves = (SHIFT_S, RESTART_S, RESTART_S + SHIFT2_S)
    since, until = previous["at_s"] + previous["wall_s"], run["at_s"] + run["wall_s"]
    return previous["stopped"] == "converged" and not any(since <= m <= until for m in moves)


def summarize(result):
    """Time-weighted hot coverage, cold bloat share and the idle run of one configuration's result."""
    shares, cold_max = [], 0
    for index, w in enumerate(result["workloads"]):
        shift_at = w["t0"] + (SHIFT_S if index == 0 else SHIFT2_S)
        for s in result["samples"].get(w["pid"], result["samples"].get(str(w["pid"]), [])):
            current = "hot" if s["t"] < shift_at else "hot2"
            size = w[current]["end"] - w[current]["start"]
            shares.append(min(1.0, (s.get(current) or 0) / float(size)))
            cold_max = max(cold_max, s.get("cold") or 0)
    idle = next((r for p, r in zip(result["runs"], result["runs"][1:]) if _idle(p, r)), None)
    out = {"kernel": result.get("release"), "config": result["config"],
           "hot_coverage_time_weighted": round(sum(shares) / len(shares), 3) if shares else None,
           "cold_bloat_share": round(cold_max / float(COLD_BYTES), 4), "cold_huge_max_mib": cold_max // MIB,
           "scheduled_runs": len(result["runs"]),
           "step_calls_per_run": [r["step_calls"] for r in result["runs"]],
           "module_calls_per_run": [r["module_calls"] for r in result["runs"]]}
    if result["config"] == "ours":
        out.update(idle_run_step_calls=idle and idle["step_calls"], idle_run_changed=idle and idle["changed"])
    return out


def run_kernel(kernel, configs=CONFIGS):
    from tests.vm import images  # noqa: PLC0415
    from tests.vm.guest import Guest  # noqa: PLC0415

    binary = build_workload(static=True)
    images.ensure(kernel)
    workdir = BUILD / ("follow-" + kernel)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ansible.log").write_text("")
    results = []
    with Guest(kernel) as guest, tempfile.TemporaryDirectory() as tmp:
        release = guest.uname().strip()
        log("%s: guest up, Linux %s, booted in %.0f s" % (kernel, release, guest.boot_seconds))
        inventory = prepare_guest(guest, binary, Path(tmp))
        for config in configs:
            log("%s: %s (%d s, schedule every %d s, hot set moves at %d s, restart at %d s, moves at %d s)" % (
                kernel, config, DURATION_S, EVERY_S, SHIFT_S, RESTART_S, RESTART_S + SHIFT2_S))
            r = run_config(guest, kernel, config, inventory, workdir)
            r["release"] = release
            results.append(r)
            s = summarize(r)
            log("%s: %s: time-weighted hot coverage %s, cold bloat %.2f %% (%d MiB), step calls per run %s" % (
                kernel, config, s["hot_coverage_time_weighted"], 100 * s["cold_bloat_share"], s["cold_huge_max_mib"],
                s["step_calls_per_run"]))
    save_raw("follow-" + kernel, {"kernel": kernel, "release": release, "results": results})
    return results
