# SPDX-License-Identifier: GPL-3.0-or-later
"""Workloads that discriminate (section `workloads`): graded and large hot sets against an independent
ground truth, every configuration, repeated.

One boot per kernel (the test bed's images, 4 GiB). Per workload (bench/workload/graded.c, fixed
seed; every access writes, because the ground truth sees writes only: bench/ground_truth.py):

- ``graded``: 1 GiB, 2 MiB chunks accessed with Zipf(1.2) probabilities at 100 000 accesses/s in
  total, hot chunks scattered through the range (workload 1 of issue 10);
- ``behind``: 512 MiB hot (uniform, as fast as it runs) at high addresses behind 1 GiB of cold
  memory with one page per 64 KiB touched once (workload 2);
- ``moving``: ``graded`` whose hot set is redrawn half way (workload 5);
- ``level-K`` (K = 2, 4, 8, 12, 20): 32 MiB hot behind 256 MiB of sparse cold memory, the hot pages
  accessed at the rate DAMON's default sampling sees in K of 20 samples, for calls to 90 % against
  hotness (``levels_markdown``; run with ``--configs ours,rfc-stepdown``);
- ``several``: three 256 MiB Zipf processes at 200 000, 50 000 and 12 500 accesses/s under a host
  budget of half their calibrated hot memory (workload 3): ``budget_precision`` says whether the huge
  pages went to the hottest chunks (bench/ground_truth.budget_use).

First a calibration run finds the hot, warm and cold chunks from soft-dirty windows
(bench/ground_truth.py); then, per repetition, every configuration in a fixed order rotated by one
per repetition: reset (as the effectiveness section), the same workload, pagetrack once a second
(which chunks are huge), the configuration's mechanism, observe. ``oracle`` collapses exactly the
calibrated hot chunks at the start of each phase.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from bench import ground_truth
from bench.common import (
    BENCH, BUILD, build_workload, fmt_median as fmt, load_raw, log, medians, run_playbook, save_raw,
)
from bench.effectiveness import PATH, POLICY, RESET, THP, Controller, prepare_guest

KERNELS = ("damon-7.3", "damon-6.12")
CONFIGS = ("thp-always", "khugepaged-only", "ethp", "rfc-stepdown", "ours", "ours-damos", "oracle")
SEED = 20261126
ZIPF = "--mode zipf --zipf-s 1.2 --write"
# Per workload: one graded.c argument string per process; ``moves``: the hot set is redrawn half way;
# ``budget_share``: host huge-page budget as a share of the calibrated hot bytes (0: none).
WORKLOADS = {
    "graded": {"procs": [ZIPF + " --size-mb 1024 --rate 100000"], "moves": False},
    "behind": {"procs": ["--mode behind --cold-mb 1024 --hot-mb 512 --write"], "moves": False},
    "moving": {"procs": [ZIPF + " --size-mb 1024 --rate 100000"], "moves": True},
    # workload 3: three applications of different hotness, a host budget of half their hot memory
    "several": {"procs": [ZIPF + " --size-mb 256 --rate 200000", ZIPF + " --size-mb 256 --rate 50000",
                          ZIPF + " --size-mb 256 --rate 12500"], "moves": False, "budget_share": 0.5},
}
# Calls to 90 % against hotness (issue 10): 32 MiB hot behind 256 MiB of sparse cold memory, each hot page
# accessed at the rate at which DAMON's default sampling (5 ms per sample, 20 samples per aggregation) finds it
# accessed in LEVEL of 20 samples: accesses to a page at random times (rate lam per second) leave its accessed
# bit set at a sample with probability 1 - exp(-lam * 5 ms); level 20 runs as fast as it can.
LEVEL_HOT_MB, LEVEL_COLD_MB, LEVELS = 32, 256, (2, 4, 8, 12, 20)
DEFAULT_SAMPLE_S, DEFAULT_SAMPLES = 0.005, 20
PAGE = 4096


def level_rate(level):
    """Accesses per second over the whole hot set that DAMON's default sampling sees at ``level`` of 20."""
    if level >= DEFAULT_SAMPLES:
        return 0
    per_page = -math.log(1 - level / DEFAULT_SAMPLES) / DEFAULT_SAMPLE_S
    return round(per_page * (LEVEL_HOT_MB << 20) / PAGE)


def sampled_level(rate):
    """The level of 20 that an achieved rate gives at the default sampling (inverse of level_rate)."""
    per_page = rate / ((LEVEL_HOT_MB << 20) / PAGE)
    return DEFAULT_SAMPLES * (1 - math.exp(-per_page * DEFAULT_SAMPLE_S))


WORKLOADS.update(("level-%d" % k, {
    "procs": ["--mode behind --cold-mb %d --hot-mb %d --write --rate %d" % (LEVEL_COLD_MB, LEVEL_HOT_MB, level_rate(k))],
    "moves": False, "level": k}) for k in LEVELS)
LEVEL_WORKLOADS = tuple("level-%d" % k for k in LEVELS)
LEVEL_CONFIGS = ("ours", "rfc-stepdown")
FLAGS = {"khugepaged-only": "--late-madvise hugepage", "oracle": "--oracle /run/bench/oracle-%d.txt"}
# Are the workloads alive, and the CPU ticks (utime+stime) of every kdamond/khugepaged thread now: a kdamond
# thread exits with its kdamond, so _finish keeps the last reading of each.
POLL = ("kill -0 %s 2>/dev/null || echo gone; for p in $(pgrep -x khugepaged; pgrep '^kdamond'); do "
        "echo $p $(cut -d' ' -f2,14,15 /proc/$p/stat 2>/dev/null); done")


def poll_ticks(lines):
    """{(pid, "(comm)"): CPU ticks} from the lines POLL printed (the "gone" lines left out)."""
    return {(f[0], f[1]): int(f[2]) + int(f[3]) for f in (ln.split() for ln in lines) if len(f) == 4}


def _start(guest, workload, duration_s, config=""):
    """Starts the workload's processes (seeds SEED, SEED+1, ...); returns their JSON descriptions."""
    spec = WORKLOADS[workload]
    shift = duration_s / 2 if spec["moves"] else 0
    ws = []
    for i, args in enumerate(spec["procs"]):
        flags = FLAGS.get(config, "").replace("%d", str(i))
        guest.ssh("/root/graded %s --seed %d --shift-after %g --duration %g --daemonize --out /run/bench/w-%d.json "
                  "--log /run/bench/graded-%d.log %s" % (args, SEED + i, shift, duration_s, i, i, flags),
                  check=True, timeout=600)
        ws.append(json.loads(guest.read("/run/bench/w-%d.json" % i)))
    return ws


def _track(guest, ws, written):
    for i, w in enumerate(ws):
        guest.ssh("nohup /root/pagetrack %d %d %d /run/bench/pt-%d.jsonl --interval 1 %s >/run/bench/pt-%d.log 2>&1 &"
                  % (w["pid"], w["start"], w["end"], i, "--written" if written else "", i), check=True)


def _merge(per_proc: list, t0: float) -> list:
    """One row per second from the processes' pagetrack rows: their chunks side by side (process 0 first),
    so ground_truth sees one range; a second in which some process has no row is left out."""
    buckets = {}
    for i, rows in enumerate(per_proc):
        for r in rows:
            buckets.setdefault(int(r["t"] - t0), {}).setdefault(i, r)
    out = []
    for sec in sorted(buckets):
        got = buckets[sec]
        if len(got) < len(per_proc):
            continue
        row = {"t": got[0]["t"], "res": [], "huge": "", "cpu_s": sum(r["cpu_s"] for r in got.values())}
        if "acc" in got[0]:
            row.update(acc=[], window_s=got[0]["window_s"])
        for i in range(len(per_proc)):
            row["res"] += got[i]["res"]
            row["huge"] += got[i]["huge"]
            if "acc" in row:
                row["acc"] += got[i]["acc"]
        out.append(row)
    return out


def _finish(guest, ws, duration_s):
    """Waits for the workloads' end; returns the merged pagetrack rows, the phase bounds (guest clock, from
    process 0) and the CPU seconds of the kdamond and khugepaged threads meanwhile."""
    deadline = time.monotonic() + duration_s + 120
    first, last = {}, {}
    pids = " ".join(str(w["pid"]) for w in ws)
    while time.monotonic() < deadline:
        out = guest.ssh("for p in %s; do %s; done" % (pids, POLL % "$p")).stdout.split("\n")
        for key, ticks in poll_ticks(out).items():
            last[key] = ticks
            first.setdefault(key, ticks)
        if out.count("gone") == len(ws):
            break
        time.sleep(3)
    time.sleep(1.5)  # pagetrack notices the exit
    cpu = {"kdamond": 0.0, "khugepaged": 0.0}
    for (pid, name), ticks in last.items():
        cpu["khugepaged" if "khugepaged" in name else "kdamond"] += (ticks - first[(pid, name)]) / 100
    text = guest.read("/run/bench/graded-0.log")
    shift = next((float(ln.split()[2]) for ln in text.splitlines() if ln.startswith("# shift")), None)
    end = next((float(ln.split()[2]) for ln in text.splitlines() if ln.startswith("# end")), ws[0]["t0"] + duration_s)
    per_proc = [[json.loads(ln) for ln in guest.read("/run/bench/pt-%d.jsonl" % i).splitlines() if ln.strip()]
                for i in range(len(ws))]
    return _merge(per_proc, ws[0]["t0"]), ground_truth.phase_bounds(ws[0], shift, end), cpu


def _reset(guest, thp):
    guest.ssh(RESET % {"thp": thp} + "\npkill -x graded; pkill -x pagetrack; rm -f /run/bench/pt-*.jsonl; "
              ": > /run/bench/module_calls.log", timeout=120)


def calibrate(guest, workload, duration_s):
    _reset(guest, "never")
    ws = _start(guest, workload, duration_s)
    _track(guest, ws, written=True)
    rows, bounds, _cpu = _finish(guest, ws, duration_s)
    classes = ground_truth.classify(rows, bounds)
    hot = len(classes[0]["hot"]) * ground_truth.CHUNK
    budget = WORKLOADS[workload].get("budget_share", 0) * hot // ground_truth.CHUNK * ground_truth.CHUNK
    # the cross-check with the workload's own ranks needs one rank order: single-process workloads
    order = [ws[0]["order"][p] for p in range(len(classes))] if len(ws) == 1 else None
    return {"workload": ws, "chunks_per_process": [w["chunks"] for w in ws], "bounds": bounds, "classes": classes,
            "tracker_cpu_s": rows[-1]["cpu_s"] if rows else None, "host_budget_bytes": int(budget),
            "windows_s": statistics.median(r["window_s"] for r in rows) if rows else None,
            "rank_agreement": ground_truth.rank_agreement(classes, order) if order else None,
            "access_rate": _rates(guest, len(ws))}


def _rates(guest, procs):
    """Each workload process's own accesses per second (its log), median: the sampling's perturbation shows here."""
    out = []
    for i in range(procs):
        vals = [float(ln.split()[1]) for ln in guest.read("/run/bench/graded-%d.log" % i).splitlines()
                if ln and not ln.startswith("#")]
        out.append(statistics.median(vals) if vals else None)
    return out[0] if procs == 1 else out


def _oracle_files(guest, calib):
    """Per process and phase, the chunks the oracle collapses: the hot ones, or under a host budget the
    hottest chunks (by calibrated level) that fit in it."""
    chunks, budget = calib["chunks_per_process"], calib["host_budget_bytes"]
    for i in range(len(chunks)):
        lo, lines = sum(chunks[:i]), []
        for cls in calib["classes"]:
            chosen = cls["hot"]
            if budget:
                chosen = sorted(chosen, key=lambda c: -cls["level"][c])[:budget // ground_truth.CHUNK]
            lines.append(",".join(str(c - lo) for c in sorted(chosen) if lo <= c < lo + chunks[i]))
        guest.put("\n".join(lines) + "\n", "/run/bench/oracle-%d.txt" % i)


def run_config(guest, kernel, workload, config, calib, inventory, workdir, duration_s, interval_s):
    _reset(guest, THP[config])
    if config == "oracle":
        _oracle_files(guest, calib)
    ws = _start(guest, workload, duration_s, config)
    _track(guest, ws, written=False)
    ctl, ethp = None, {}
    if config in POLICY:
        until = time.monotonic() + duration_s - (time.time() - ws[0]["t0"])
        apps = [{"name": "app%d" % i, "pid": w["pid"]} for i, w in enumerate(ws)]
        ctl = Controller(guest, inventory, POLICY[config], apps, until, workdir, interval_s,
                         host_budget_bytes=calib["host_budget_bytes"], path=PATH.get(config, "auto"))
        ctl.start()
    elif config == "ethp":
        res = run_playbook(BENCH / "playbooks" / "ethp.yml", inventory, {"bench_targets": [{"pid": w["pid"]} for w in ws]},
                           workdir / "ansible.log", workdir / "record-ethp.jsonl")
        ethp = {"rc": res["rc"], "controller_cpu_s": res["cpu_s"]}
    rows, bounds, cpu = _finish(guest, ws, duration_s)
    if ctl:
        ctl.join(timeout=600)
    calls = [float(x) for x in guest.read("/run/bench/module_calls.log").split()]
    samples = ground_truth.series(rows, calib["classes"], bounds)
    m = ground_truth.metrics(samples, calib["classes"], bounds, calls)
    huge_end = rows[-1]["huge"] if rows else ""  # which chunks were huge at the end, kept for later scoring
    m.update(ground_truth.budget_use(huge_end, calib["classes"][-1]), huge_end=huge_end)
    m.update(kdamond_cpu_s=round(cpu["kdamond"], 2), khugepaged_cpu_s=round(cpu["khugepaged"], 2),
             controller_cpu_s=round(sum(r["controller_cpu_s"] for r in ctl.runs), 2) if ctl else ethp.get("controller_cpu_s"),
             access_rate=_rates(guest, len(ws)))
    return {"kernel": kernel, "workload": workload, "config": config, "metrics": m, "samples": samples,
            "controller_runs": [{k: r[k] for k in ("start", "end", "rc", "module_calls", "iterations", "stopped",
                                                   "thresholds", "msg", "trace")} for r in ctl.runs] if ctl else [],
            "ethp": ethp}


def run_kernel(kernel, workloads=tuple(WORKLOADS), configs=CONFIGS, reps=1, duration_s=180, interval_s=3.0,
               merge=False, calibrate_s=None):
    """Calibrate and run every configuration ``reps`` times per workload; raw results go to
    results/raw/workloads-KERNEL.json after every run, so an interrupted section keeps what it measured.
    ``merge`` keeps the earlier runs of that file for the workloads and configurations not run now (each
    scored against its own calibration; marked ``earlier_calibration``). ``calibrate_s``: seconds of the
    calibration run (default ``duration_s``)."""
    from tests.vm import images  # noqa: PLC0415
    from tests.vm.guest import Guest  # noqa: PLC0415

    chase = build_workload(static=True)
    binaries = {name: build_workload(static=True, name=name) for name in ("graded", "pagetrack")}
    images.ensure(kernel)
    workdir = BUILD / ("workloads-" + kernel)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ansible.log").write_text("")
    out = {"kernel": kernel, "duration_s": duration_s, "reps": reps, "seed": SEED, "workloads": {}}
    earlier = (load_raw("workloads-" + kernel) or {}).get("workloads", {}) if merge else {}
    out["workloads"].update((w, e) for w, e in earlier.items() if w not in workloads)
    with Guest(kernel, memory_mb=4096) as guest, tempfile.TemporaryDirectory() as tmp:
        out["release"] = guest.uname().strip()
        log("%s: guest up, Linux %s, booted in %.0f s" % (kernel, out["release"], guest.boot_seconds))
        inventory = prepare_guest(guest, chase, Path(tmp))
        for name, path in binaries.items():
            guest.put(path.read_bytes(), "/root/" + name, mode=0o755)
        for workload in workloads:
            t = time.monotonic()
            calib = calibrate(guest, workload, calibrate_s or duration_s)
            classes = calib["classes"]
            log("%s %s: calibrated in %.0f s: hot %s, warm %s, cold %s chunks per phase; rank agreement %s; "
                "%s accesses/s" % (kernel, workload, time.monotonic() - t, [len(c["hot"]) for c in classes],
                                   [len(c["warm"]) for c in classes], [len(c["cold"]) for c in classes],
                                   calib["rank_agreement"], calib["access_rate"]))
            kept = [dict(r, earlier_calibration=True) for r in earlier.get(workload, {}).get("runs", [])
                    if r["config"] not in configs]
            entry = out["workloads"][workload] = {"calibration": calib, "runs": kept}
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


METRICS = ("hot_coverage_end", "access_coverage_end", "hot_coverage_time_weighted", "cold_bloat_share",
           "cold_huge_share", "t90_s", "calls_to_90", "kdamond_cpu_s", "controller_cpu_s", "budget_precision")


def _metrics(run: dict, calib: dict) -> dict:
    """A run's metrics, brought to today's definitions for runs recorded before: the end figures without a
    sample taken after the workload exited, cold bloat in zero-filled pages (their ``cold_bloat_share`` was
    the share of cold chunks made huge)."""
    m = dict(run["metrics"])
    samples = ground_truth.live(run.get("samples") or [])
    if samples and len(samples) < len(run["samples"]):  # recorded before metrics() left out the exit sample
        m["hot_coverage_end"] = round(samples[-1]["hot_coverage"], 3) if samples[-1]["hot_coverage"] is not None else None
        if samples[-1].get("access_coverage") is not None:
            m["access_coverage_end"] = round(samples[-1]["access_coverage"], 3)
    if "cold_huge_share" not in m and calib:
        m["cold_huge_share"] = m.get("cold_bloat_share")
        m["cold_bloat_share"] = ground_truth.bloat_share(m.get("cold_zero_filled_bytes") or 0, calib["classes"][0])
    return m


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
                m = dict(_metrics(r, entry.get("calibration")), rep=r["rep"])
                ref = oracle.get(r["rep"], oracle_med)
                m["hot_coverage_time_weighted"] = (round(m["hot_coverage_mean"] / ref, 3)
                                                   if ref and m["hot_coverage_mean"] is not None else None)
                per.append({k: m.get(k) for k in ("rep",) + METRICS + ("cold_huge_bytes", "hot_coverage_mean", "access_rate")})
            rows.append({"workload": workload, "kernel": raw["release"], "image": raw["kernel"], "config": config,
                         "runs": per, "median": medians(per, METRICS)})
    return rows


def markdown(rows: list) -> str:
    if not rows:
        return ""
    out = ["", "## Workloads against a soft-dirty ground truth (bench/workloads.py)", "",
           "Medians over repetitions (min-max when more than one). Time-weighted = mean hot coverage / the "
           "oracle's. t90: seconds to 90 % of the hot chunks huge. Cold bloat: the zero-filled 4 KiB pages "
           "collapses added to cold chunks / the cold chunks' resident bytes; cold huge: cold chunks made huge / "
           "cold chunks (both at the sample with the most cold huge chunks).",
           "Access coverage: the share of the calibrated writes that land in huge chunks at the end.",
           "", "| workload | kernel | config | runs | hot end | access coverage | time-weighted | t90 s | cold bloat "
           "| cold huge | calls to 90 % | kdamond CPU s | budget precision |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    for r in rows:
        m = r["median"]
        out.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s %% | %s %% | %s | %s | %s |" % (
            r["workload"], r["kernel"], r["config"], len(r["runs"]), fmt(m, "hot_coverage_end"),
            fmt(m, "access_coverage_end"), fmt(m, "hot_coverage_time_weighted"), fmt(m, "t90_s", nd=0), fmt(m, "cold_bloat_share", 100),
            fmt(m, "cold_huge_share", 100), fmt(m, "calls_to_90", nd=0), fmt(m, "kdamond_cpu_s", nd=1),
            fmt(m, "budget_precision")))
    return "\n".join(out) + "\n"


def levels_markdown(rows: list) -> str:
    """Calls to 90 % of the hot chunks huge against the hotness level, ours beside the RFC's step-down."""
    by = dict(((r["kernel"], r["workload"], r["config"]), r) for r in rows if r["workload"] in LEVEL_WORKLOADS)
    if not by:
        return ""
    out = ["", "### Calls to 90 % against hotness (`level-K` workloads)", "",
           "%d MiB hot behind %d MiB of sparse cold memory; each hot page accessed at the rate DAMON's default "
           "sampling (5 ms, 20 samples per aggregation) sees in K of 20 samples. Achieved: the level the workload's "
           "own access rate gives (median of its runs). Calls: remote module calls until 90 %% of the hot chunks "
           "were huge (— never)." % (LEVEL_HOT_MB, LEVEL_COLD_MB), "",
           "| kernel | level | achieved | %s |" % " | ".join(
               "%s hot end | %s t90 s | %s calls to 90 %%" % (c, c, c) for c in LEVEL_CONFIGS),
           "|---|---|---|%s" % ("---|---|---|" * len(LEVEL_CONFIGS))]
    for kernel, workload in sorted(set(k[:2] for k in by), key=lambda k: (k[0], WORKLOADS[k[1]]["level"])):
        rates = [run["access_rate"] for c in LEVEL_CONFIGS for run in by.get((kernel, workload, c), {}).get("runs", [])
                 if run.get("access_rate")]
        achieved = "%.1f" % sampled_level(statistics.median(rates)) if rates else "—"
        cells = []
        for c in LEVEL_CONFIGS:
            m = by.get((kernel, workload, c), {}).get("median", {})
            cells += [fmt(m, "hot_coverage_end"), fmt(m, "t90_s", nd=0), fmt(m, "calls_to_90", nd=0)]
        out.append("| %s | %d | %s | %s |" % (kernel, WORKLOADS[workload]["level"], achieved, " | ".join(cells)))
    return "\n".join(out) + "\n"
