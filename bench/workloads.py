# SPDX-License-Identifier: GPL-3.0-or-later
"""Workloads that discriminate (section `workloads`): graded and large hot sets against an independent
ground truth, every configuration, repeated.

One boot per kernel (the test bed's images, 4 GiB). Per workload (bench/workload/graded.c, fixed
seed; every access writes, because the ground truth sees writes only: bench/ground_truth.py):

- ``graded``: 1 GiB, 2 MiB chunks accessed with Zipf(1.2) probabilities at 100 000 accesses/s in
  total, hot chunks scattered through the range (workload 1 of issue 10);
- ``behind``: 512 MiB hot (uniform, as fast as it runs) at high addresses behind 1 GiB of cold
  memory with one page per 64 KiB touched once (workload 2);
- ``moving``: ``graded`` whose hot set is redrawn half way (workload 5).

First a calibration run finds the hot, warm and cold chunks from soft-dirty windows
(bench/ground_truth.py); then, per repetition, every configuration in a fixed order rotated by one
per repetition: reset (as the effectiveness section), the same workload, pagetrack once a second
(which chunks are huge), the configuration's mechanism, observe. ``oracle`` collapses exactly the
calibrated hot chunks at the start of each phase.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import ground_truth
from bench.common import BENCH, BUILD, build_workload, log, run_playbook, save_raw
from bench.effectiveness import POLICY, RESET, THP, Controller, prepare_guest

KERNELS = ("damon-7.3", "damon-6.12")
CONFIGS = ("thp-always", "khugepaged-only", "ethp", "rfc-stepdown", "ours", "oracle")
SEED = 20261126
WORKLOADS = {
    "graded": {"args": "--mode zipf --size-mb 1024 --zipf-s 1.2 --rate 100000 --write", "moves": False},
    "behind": {"args": "--mode behind --cold-mb 1024 --hot-mb 512 --write", "moves": False},
    "moving": {"args": "--mode zipf --size-mb 1024 --zipf-s 1.2 --rate 100000 --write", "moves": True},
}
FLAGS = {"khugepaged-only": "--late-madvise hugepage", "oracle": "--oracle /run/bench/oracle.txt"}
# Is the workload alive, and the CPU ticks (utime+stime) of every kdamond/khugepaged thread now: a kdamond
# thread exits with its kdamond, so _finish keeps the last reading of each.
POLL = ("kill -0 %d || echo gone; for p in $(pgrep -x khugepaged; pgrep '^kdamond'); do "
        "echo $p $(cut -d' ' -f2,14,15 /proc/$p/stat 2>/dev/null); done")


def _start(guest, workload, duration_s, flags=""):
    spec = WORKLOADS[workload]
    shift = duration_s / 2 if spec["moves"] else 0
    guest.ssh("/root/graded %s --seed %d --shift-after %g --duration %g --daemonize --out /run/bench/w.json "
              "--log /run/bench/graded.log %s" % (spec["args"], SEED, shift, duration_s, flags), check=True, timeout=600)
    return json.loads(guest.read("/run/bench/w.json"))


def _track(guest, w, written):
    guest.ssh("nohup /root/pagetrack %d %d %d /run/bench/pt.jsonl --interval 1 %s >/run/bench/pt.log 2>&1 &"
              % (w["pid"], w["start"], w["end"], "--written" if written else ""), check=True)


def _finish(guest, w, duration_s):
    """Waits for the workload's end; returns the pagetrack rows, the phase bounds (guest clock) and the
    CPU seconds of the kdamond and khugepaged threads meanwhile."""
    deadline = time.monotonic() + duration_s + 120
    first, last = {}, {}
    while time.monotonic() < deadline:
        out = guest.ssh(POLL % w["pid"]).stdout.split("\n")
        for line in out:
            f = line.split()
            if len(f) == 4:
                key = (f[0], f[1])  # pid, (comm)
                last[key] = int(f[2]) + int(f[3])
                first.setdefault(key, last[key])
        if "gone" in out:
            break
        time.sleep(3)
    time.sleep(1.5)  # pagetrack notices the exit
    cpu = {"kdamond": 0.0, "khugepaged": 0.0}
    for (pid, name), ticks in last.items():
        cpu["khugepaged" if "khugepaged" in name else "kdamond"] += (ticks - first[(pid, name)]) / 100
    text = guest.read("/run/bench/graded.log")
    shift = next((float(ln.split()[2]) for ln in text.splitlines() if ln.startswith("# shift")), None)
    end = next((float(ln.split()[2]) for ln in text.splitlines() if ln.startswith("# end")), w["t0"] + duration_s)
    rows = [json.loads(ln) for ln in guest.read("/run/bench/pt.jsonl").splitlines() if ln.strip()]
    return rows, ground_truth.phase_bounds(w, shift, end), cpu


def calibrate(guest, workload, duration_s):
    guest.ssh(RESET % {"thp": "never"} + "\npkill -x graded; pkill -x pagetrack; rm -f /run/bench/pt.jsonl",
              timeout=120)
    w = _start(guest, workload, duration_s)
    _track(guest, w, written=True)
    rows, bounds, _ = _finish(guest, w, duration_s)
    classes = ground_truth.classify(rows, bounds)
    cpu = rows[-1]["cpu_s"] if rows else None
    return {"workload": w, "bounds": bounds, "classes": classes, "tracker_cpu_s": cpu,
            "windows_s": statistics.median(r["window_s"] for r in rows) if rows else None,
            "rank_agreement": ground_truth.rank_agreement(classes, w["order"]),
            "access_rate": _rates(guest)}


def _rates(guest):
    """The workload's own accesses per second (its log), median: the sampling's perturbation shows here."""
    vals = [float(ln.split()[1]) for ln in guest.read("/run/bench/graded.log").splitlines()
            if ln and not ln.startswith("#")]
    return statistics.median(vals) if vals else None


def run_config(guest, kernel, workload, config, calib, inventory, workdir, duration_s, interval_s):
    guest.ssh(RESET % {"thp": THP[config]} + "\npkill -x graded; pkill -x pagetrack; rm -f /run/bench/pt.jsonl; "
              ": > /run/bench/module_calls.log", timeout=120)
    if config == "oracle":
        guest.put("\n".join(",".join(map(str, c["hot"])) for c in calib["classes"]) + "\n", "/run/bench/oracle.txt")
    w = _start(guest, workload, duration_s, FLAGS.get(config, ""))
    _track(guest, w, written=False)
    ctl, ethp = None, {}
    if config in POLICY:
        until = time.monotonic() + duration_s - (time.time() - w["t0"])
        ctl = Controller(guest, inventory, POLICY[config], w["pid"], until, workdir, interval_s)
        ctl.start()
    elif config == "ethp":
        res = run_playbook(BENCH / "playbooks" / "ethp.yml", inventory, {"bench_pid": w["pid"]},
                           workdir / "ansible.log", workdir / "record-ethp.jsonl")
        ethp = {"rc": res["rc"], "controller_cpu_s": res["cpu_s"]}
    rows, bounds, cpu = _finish(guest, w, duration_s)
    if ctl:
        ctl.join(timeout=600)
    calls = [float(x) for x in guest.read("/run/bench/module_calls.log").split()]
    samples = ground_truth.series(rows, calib["classes"], bounds)
    m = ground_truth.metrics(samples, calib["classes"], bounds, calls)
    m.update(kdamond_cpu_s=round(cpu["kdamond"], 2), khugepaged_cpu_s=round(cpu["khugepaged"], 2),
             controller_cpu_s=round(sum(r["controller_cpu_s"] for r in ctl.runs), 2) if ctl else ethp.get("controller_cpu_s"),
             access_rate=_rates(guest))
    return {"kernel": kernel, "workload": workload, "config": config, "metrics": m, "samples": samples,
            "controller_runs": [{k: r[k] for k in ("start", "end", "rc", "module_calls", "iterations", "stopped",
                                                   "thresholds", "msg", "trace")} for r in ctl.runs] if ctl else [],
            "ethp": ethp}


def run_kernel(kernel, workloads=tuple(WORKLOADS), configs=CONFIGS, reps=1, duration_s=180, interval_s=3.0):
    """Calibrate and run every configuration ``reps`` times per workload; raw results go to
    results/raw/workloads-KERNEL.json after every run, so an interrupted section keeps what it measured."""
    from tests.vm import images  # noqa: PLC0415
    from tests.vm.guest import Guest  # noqa: PLC0415

    chase = build_workload(static=True)
    binaries = {name: build_workload(static=True, name=name) for name in ("graded", "pagetrack")}
    images.ensure(kernel)
    workdir = BUILD / ("workloads-" + kernel)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ansible.log").write_text("")
    out = {"kernel": kernel, "duration_s": duration_s, "reps": reps, "seed": SEED, "workloads": {}}
    with Guest(kernel, memory_mb=4096) as guest, tempfile.TemporaryDirectory() as tmp:
        out["release"] = guest.uname().strip()
        log("%s: guest up, Linux %s, booted in %.0f s" % (kernel, out["release"], guest.boot_seconds))
        inventory = prepare_guest(guest, chase, Path(tmp))
        for name, path in binaries.items():
            guest.put(path.read_bytes(), "/root/" + name, mode=0o755)
        for workload in workloads:
            t = time.monotonic()
            calib = calibrate(guest, workload, duration_s)
            log("%s %s: calibrated in %.0f s: hot %s, warm %s, cold %s chunks per phase; rank agreement %s; "
                "%.0f accesses/s" % (kernel, workload, time.monotonic() - t, [len(c["hot"]) for c in calib["classes"]],
                                     [len(c["warm"]) for c in calib["classes"]],
                                     [len(c["cold"]) for c in calib["classes"]], calib["rank_agreement"],
                                     calib["access_rate"] or 0))
            entry = out["workloads"][workload] = {"calibration": calib, "runs": []}
            for rep in range(reps):
                order = list(configs[rep % len(configs):] + configs[:rep % len(configs)])
                for config in order:
                    t = time.monotonic()
                    r = run_config(guest, kernel, workload, config, calib, inventory, workdir, duration_s, interval_s)
                    r.update(rep=rep, wall_s=round(time.monotonic() - t, 1))
                    entry["runs"].append(r)
                    save_raw("workloads-" + kernel, out)
                    m = r["metrics"]
                    log("%s %s rep %d %s: hot coverage end %s mean %s, t90 %s s, cold huge %d MiB (%s), calls %s "
                        "(to 90 %%: %s), kdamond %.1f s CPU" % (
                            kernel, workload, rep, config, m["hot_coverage_end"], m["hot_coverage_mean"],
                            m["t90_s_per_phase"], m["cold_huge_bytes"] >> 20, m["cold_bloat_share"], m["calls"],
                            m["calls_to_90"], m["kdamond_cpu_s"]))
    save_raw("workloads-" + kernel, out)
    return out




METRICS = ("hot_coverage_end", "hot_coverage_time_weighted", "cold_bloat_share", "t90_s", "calls_to_90",
           "kdamond_cpu_s", "controller_cpu_s")


def summarize(raw: dict) -> list:
    """latest.json ``workloads``: one entry per workload and configuration of one kernel's raw file, each
    with its runs and their median. Time-weighted coverage is the run's mean hot coverage over the
    oracle's in the same repetition (the oracle's median when that repetition has none)."""
    rows = []
    for workload, entry in raw["workloads"].items():
        runs = entry["runs"]
        oracle = {r["rep"]: r["metrics"]["hot_coverage_mean"] for r in runs if r["config"] == "oracle"}
        oracle_med = statistics.median(oracle.values()) if oracle else None
        for config in dict.fromkeys(r["config"] for r in runs):
            per = []
            for r in (x for x in runs if x["config"] == config):
                m = dict(r["metrics"], rep=r["rep"])
                ref = oracle.get(r["rep"], oracle_med)
                m["hot_coverage_time_weighted"] = (round(m["hot_coverage_mean"] / ref, 3)
                                                   if ref and m["hot_coverage_mean"] is not None else None)
                per.append({k: m.get(k) for k in ("rep",) + METRICS + ("cold_huge_bytes", "hot_coverage_mean")})
            median = {}
            for k in METRICS:
                vals = [p[k] for p in per if p[k] is not None]
                median[k] = statistics.median(vals) if vals else None
                if len(vals) > 1:
                    median[k + "_range"] = [min(vals), max(vals)]
            rows.append({"workload": workload, "kernel": raw["release"], "image": raw["kernel"], "config": config,
                         "runs": per, "median": median})
    return rows


def markdown(rows: list) -> str:
    if not rows:
        return ""
    out = ["", "## Workloads against a soft-dirty ground truth (bench/workloads.py)", "",
           "Medians over repetitions (min-max when more than one). Time-weighted = mean hot coverage / the "
           "oracle's. t90: seconds to 90 % of the hot chunks huge. Cold bloat: worst cold huge bytes / cold bytes.",
           "", "| workload | kernel | config | runs | hot end | time-weighted | t90 s | cold bloat | calls to 90 % "
           "| kdamond CPU s |", "|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(m, k, scale=1.0, nd=2):
        v = m.get(k)
        if v is None:
            return "—"
        s = "%.*f" % (nd, v * scale)
        if k + "_range" in m:
            lo, hi = m[k + "_range"]
            s += " (%.*f-%.*f)" % (nd, lo * scale, nd, hi * scale)
        return s
    for r in rows:
        m = r["median"]
        out.append("| %s | %s | %s | %d | %s | %s | %s | %s %% | %s | %s |" % (
            r["workload"], r["kernel"], r["config"], len(r["runs"]), fmt(m, "hot_coverage_end"),
            fmt(m, "hot_coverage_time_weighted"), fmt(m, "t90_s", nd=0), fmt(m, "cold_bloat_share", 100),
            fmt(m, "calls_to_90", nd=0), fmt(m, "kdamond_cpu_s", nd=1)))
    return "\n".join(out) + "\n"
