# SPDX-License-Identifier: GPL-3.0-or-later
"""A real application (section `redis`; issue 10 workload 4, issue 12 item 5): Debian's redis-server
with a dataset of about 1.4 GiB and the packaged ``redis-benchmark`` issuing GETs on the hot keys only,
so that its hot memory is wherever redis's allocator put it, not something we laid out.

One boot per kernel (the test bed's images, 4 GiB). Per configuration, in a fixed order rotated by
one per repetition: reset (as the effectiveness section, and redis stopped), THP ``enabled`` of the
configuration, redis started with ``--disable-thp no`` (otherwise redis turns THP off for itself
when ``enabled`` is ``always`` and ``thp-always`` would measure nothing), filled with cold keys
(``DEBUG POPULATE``) and hot keys, GET load started; then the configuration's mechanism and a
ground-truth sample every ``sample_s`` seconds for ``duration_s``.

Ground truth (``tests.vm.apps.redis_hot_memory``, soft-dirty, no DAMON): every hot key is rewritten
in place with its own first byte and the pages that became dirty are the hot keys' memory, whatever
the request rate. ``hot share``: those bytes in huge pages / those bytes; ``cold huge``: huge bytes in
the other chunks / their resident bytes (the issue's "cold huge pages <= 2 % of cold memory"). Each
sample rewrites the hot keys once (``hot_keys`` SETRANGE commands through one pipe), a write the GET
load does not make: it is counted out of the GET rate, and DAMON sees it as one more access to memory
that is hot anyway.

Configurations: ``thp-never`` (baseline: memory and GET rate), ``thp-always`` (huge pages at fault
and khugepaged), ``ethp`` (DAMON's published scheme, bench/playbooks/ethp.yml), ``rfc-stepdown`` and
``ours`` (bench/playbooks/tune.yml run again and again, like the effectiveness section), ``oracle``
(MADV_COLLAPSE of exactly the chunks the first sample found hot, through the collection's
``collapse`` module).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import (
    BENCH, BUILD, build_workload, fmt_median as fmt, load_raw, log, med, medians, run_playbook, save_raw,
)
from bench.effectiveness import POLICY, RESET, THP, Controller, prepare_guest
from bench.workloads import POLL, poll_ticks

KERNELS = ("damon-7.3", "damon-6.12")
CONFIGS = ("thp-never", "thp-always", "ethp", "rfc-stepdown", "ours", "oracle")
COLD_KEYS, HOT_KEYS = 1_200_000, 100_000
HUGE = 2 << 20
TARGET = 0.8  # issue 12: >= 0.80 of the hot keys' memory huge within 5 minutes, cold huge <= 2 %


def _reset(guest, config):
    from tests.vm import apps  # noqa: PLC0415
    apps.stop_redis(guest, load_pid=None)
    guest.ssh("pkill -x redis-benchmark; " + RESET % {"thp": THP[config]} + "\n: > /run/bench/module_calls.log",
              timeout=120)


def _threads_cpu(guest, pid):
    """CPU seconds so far of every kdamond and khugepaged thread, by (pid, name); None once redis is gone."""
    out = guest.ssh(POLL % pid).stdout.split("\n")
    if "gone" in out:
        return None
    return {key: ticks / 100 for key, ticks in poll_ticks(out).items()}


def _sample(guest, redis_pid, t0):
    from tests.vm import apps  # noqa: PLC0415
    from tests.vm.redis_proof import shares  # noqa: PLC0415
    ops0 = apps.redis_ops(guest)["total_commands_processed"]
    started = time.monotonic()
    truth = apps.redis_hot_memory(guest, redis_pid, hot_keys=HOT_KEYS, per_chunk=True)
    st = apps._status(guest, redis_pid)  # pylint: disable=protected-access
    return {"t": round(started - t0, 1), "measure_s": round(time.monotonic() - started, 1),
            "ops_before": ops0, "ops_after": apps.redis_ops(guest)["total_commands_processed"],
            "rss_anon_bytes": apps._kb(st.get("RssAnon", "")),  # pylint: disable=protected-access
            "threads_cpu": _threads_cpu(guest, redis_pid), "per_chunk": truth["per_chunk"], **shares(truth)}


def _cold_huge_contents(guest, redis_pid, rows):
    """What the huge chunks outside the hot keys' memory hold at the end, in sampled pages (every 8th page,
    ``redis_proof.page_kind``): cold values (and zeros) are memory made huge for nothing; pointers (the
    dictionary's bucket table, which every GET reads) and other structures (key names, dict entries) are
    redis's own, part of which GETs read and the write-based ground truth cannot see as hot."""
    from tests.vm.redis_proof import chunk_contents, content_totals  # noqa: PLC0415
    return content_totals(chunk_contents(guest, redis_pid, rows))


def get_rates(samples: list, call_times=None) -> list:
    """GETs per second between samples, leaving out each sample's own commands (its SETRANGEs and INFOs); with
    ``call_times``, only the intervals in which no module ran in the guest (under TCG one module call costs
    seconds of guest CPU, far more than on real hardware)."""
    out = []
    for a, b in zip(samples, samples[1:]):
        gets = b["ops_before"] - a["ops_after"]
        span = b["t"] - a["t"] - a["measure_s"]
        if span > 0 and not any(a["t"] <= c < b["t"] for c in call_times or ()):
            out.append(gets / span)
    return out


def _second_half_median(samples, call_times=None):
    half = samples[len(samples) // 2:]
    rates = get_rates(half, call_times)
    return round(med(rates), 0) if rates else None


def metrics(samples: list, call_times: list) -> dict:
    """One run's figures from its samples (``t`` seconds after the mechanism started) and the module
    calls' times (same clock): hot share at the end and time-weighted (mean over the samples after t=0),
    seconds and module calls until the first sample at or above TARGET, the largest cold huge share,
    the median GET rate of the second half (all of it, and the intervals without a module call), anonymous RSS
    at the end, kdamond/khugepaged CPU."""
    shares = [s["hot_huge_share"] or 0.0 for s in samples]
    reached = next((s["t"] for s in samples if (s["hot_huge_share"] or 0.0) >= TARGET), None)
    cpu = {"kdamond": 0.0, "khugepaged": 0.0}
    first, last = {}, {}
    for s in samples:
        for key, v in (s.get("threads_cpu") or {}).items():
            first.setdefault(key, v)
            last[key] = v
    for key, v in last.items():  # a kdamond started after the reset begins at zero; khugepaged was running
        name = "khugepaged" if "khugepaged" in key[1] else "kdamond"
        cpu[name] += v - first[key] if name == "khugepaged" else v
    return {"hot_share_end": shares[-1] if shares else None,
            "hot_share_mean": round(statistics.mean(shares[1:]), 3) if len(shares) > 1 else None,
            "t_target_s": reached,
            "calls_to_target": sum(1 for c in call_times if c <= reached) if reached is not None else None,
            "calls": len(call_times),
            "cold_huge_max": max((s["cold_bloat"] or 0.0) for s in samples) if samples else None,
            "cold_huge_bytes_end": samples[-1]["cold_huge_bytes"] if samples else None,
            "get_rate": _second_half_median(samples), "get_rate_quiet": _second_half_median(samples, call_times),
            "rss_anon_bytes_end": samples[-1]["rss_anon_bytes"] if samples else None,
            "kdamond_cpu_s": round(cpu["kdamond"], 2), "khugepaged_cpu_s": round(cpu["khugepaged"], 2)}


def _keys(obj, threads_cpu_key="threads_cpu"):
    """JSON keeps no tuple keys: the per-thread CPU readings are stored as "pid name"."""
    for s in obj:
        if s.get(threads_cpu_key):
            s[threads_cpu_key] = {"%s %s" % k: v for k, v in s[threads_cpu_key].items()}
    return obj


def run_config(guest, kernel, config, inventory, workdir, duration_s, sample_s, interval_s):
    from tests.vm import apps  # noqa: PLC0415
    _reset(guest, config)
    redis = apps.start_redis(guest, disable_thp="no")
    dataset = apps.fill_redis(guest, cold_keys=COLD_KEYS, hot_keys=HOT_KEYS)
    load = apps.start_redis_load(guest, hot_keys=HOT_KEYS)
    time.sleep(5)
    t0 = time.monotonic()
    guest_t0 = float(guest.ssh("date +%s.%N").stdout)
    samples = [_sample(guest, redis.pid, t0)]
    ctl, once = None, {}
    if config in POLICY:
        ctl = Controller(guest, inventory, POLICY[config], [{"name": "redis", "pid": redis.pid}], t0 + duration_s,
                         workdir, interval_s)
        ctl.start()
    elif config in ("ethp", "oracle"):
        extra = {"bench_pid": redis.pid}
        if config == "oracle":
            extra["bench_ranges"] = [{"start": int(c, 16), "end": int(c, 16) + HUGE}
                                     for c in samples[0]["hot_chunk_addrs"] or []]
        res = run_playbook(BENCH / "playbooks" / (config + ".yml"), inventory, extra, workdir / "ansible.log",
                           workdir / ("record-%s.jsonl" % config))
        once = {"rc": res["rc"], "controller_cpu_s": round(res["cpu_s"], 2),
                "status": [r.get("status") for r in res["records"]]}
    while time.monotonic() - t0 < duration_s:
        time.sleep(max(0.0, samples[-1]["t"] + sample_s - (time.monotonic() - t0)))
        samples.append(_sample(guest, redis.pid, t0))
        s = samples[-1]
        log("  %s t=%.0f s: hot share %s, cold huge %s (%d MiB), RSS %d MiB" % (
            config, s["t"], s["hot_huge_share"], s["cold_bloat"], s["cold_huge_bytes"] >> 20,
            s["rss_anon_bytes"] >> 20))
    if ctl:
        ctl.join(timeout=600)
    calls = [float(x) - guest_t0 for x in guest.read("/run/bench/module_calls.log").split()]
    m = metrics(samples, calls)
    contents = _cold_huge_contents(guest, redis.pid, samples[-1]["per_chunk"])
    m["cold_huge_cold_values_share"] = round(contents.get("cold values", 0) / sum(contents.values()), 3) \
        if contents else None
    m["controller_cpu_s"] = round(sum(r["controller_cpu_s"] for r in ctl.runs), 2) if ctl else once.get(
        "controller_cpu_s")
    hot_chunks = samples[-1].pop("hot_chunk_addrs", None)
    for s in samples:
        s.pop("hot_chunk_addrs", None)
        s.pop("per_chunk", None)
    apps.stop_redis(guest, load_pid=load)
    return {"kernel": kernel, "config": config, "dataset": dataset, "thp_enabled_status": redis.thp_enabled,
            "metrics": m, "samples": _keys(samples), "call_times": calls, "cold_huge_contents": contents, "hot_chunks_end": hot_chunks, "once": once,
            "controller_runs": [{k: r[k] for k in ("start", "end", "rc", "module_calls", "iterations", "stopped",
                                                   "thresholds", "msg")} for r in ctl.runs] if ctl else []}


def run_kernel(kernel, configs=CONFIGS, reps=1, duration_s=240, sample_s=30, interval_s=3.0, merge=False):
    """Every configuration ``reps`` times; raw results go to results/raw/redis-KERNEL.json after every run.
    ``merge`` keeps the earlier runs of the configurations not run now."""
    from tests.vm import images  # noqa: PLC0415
    from tests.vm.guest import Guest  # noqa: PLC0415

    images.ensure(kernel)
    workdir = BUILD / ("redis-" + kernel)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ansible.log").write_text("")
    earlier = (load_raw("redis-" + kernel) or {}).get("runs", []) if merge else []
    out = {"kernel": kernel, "duration_s": duration_s, "sample_s": sample_s, "reps": reps,
           "cold_keys": COLD_KEYS, "hot_keys": HOT_KEYS, "runs": [r for r in earlier if r["config"] not in configs]}
    with Guest(kernel, memory_mb=4096) as guest, tempfile.TemporaryDirectory() as tmp:
        out["release"] = guest.uname().strip()
        out["redis"] = guest.ssh("redis-server --version").stdout.strip()
        log("%s: guest up, Linux %s, booted in %.0f s" % (kernel, out["release"], guest.boot_seconds))
        inventory = prepare_guest(guest, build_workload(static=True), Path(tmp))
        for rep in range(reps):
            for config in configs[rep % len(configs):] + configs[:rep % len(configs)]:
                t = time.monotonic()
                r = run_config(guest, kernel, config, inventory, workdir, duration_s, sample_s, interval_s)
                r.update(rep=rep, wall_s=round(time.monotonic() - t, 1))
                out["runs"].append(r)
                save_raw("redis-" + kernel, out)
                m = r["metrics"]
                log("%s redis rep %d %s: hot share end %s mean %s, t%.0f %s s (%s calls), cold huge max %s, "
                    "%s GET/s, RSS %d MiB, kdamond %.1f s CPU" % (
                        kernel, rep, config, m["hot_share_end"], m["hot_share_mean"], TARGET * 100, m["t_target_s"],
                        m["calls_to_target"], m["cold_huge_max"], m["get_rate"], (m["rss_anon_bytes_end"] or 0) >> 20,
                        m["kdamond_cpu_s"]))
    return out


def _quiet_rate(run):
    """get_rate_quiet, also for runs recorded before the module calls' times were kept: without a controller
    nothing runs in the second half; with one it is unknown."""
    if "call_times" in run:
        return _second_half_median(run["samples"], run["call_times"])
    return None if run["config"] in POLICY else run["metrics"]["get_rate"]


METRICS = ("hot_share_end", "hot_share_mean", "t_target_s", "calls_to_target", "cold_huge_max",
           "cold_huge_cold_values_share", "cold_values_huge", "get_rate",
           "get_rate_quiet", "rss_anon_bytes_end", "kdamond_cpu_s", "controller_cpu_s")


def summarize(raw: dict) -> list:
    """latest.json ``redis``: one row per configuration with its runs' medians (min-max over repetitions),
    GET rate and anonymous RSS also as ratios to thp-never's median."""
    from tests.vm import redis_proof  # noqa: PLC0415
    runs = raw.get("runs", [])
    rows = []
    for config in dict.fromkeys(r["config"] for r in runs):
        per = [dict(r["metrics"], get_rate_quiet=_quiet_rate(r),
                    # the judged bloat, derived from the raw record (runs before it was defined included)
                    cold_values_huge=redis_proof.cold_values_huge(r.get("cold_huge_contents") or {},
                                                                  r["samples"][-1]))
               for r in runs if r["config"] == config]
        rows.append({"kernel": raw["release"], "image": raw["kernel"], "config": config, "runs": len(per),
                     "median": medians(per, METRICS)})
    base = next((r["median"] for r in rows if r["config"] == "thp-never"), {})
    for r in rows:
        for k in ("get_rate", "get_rate_quiet", "rss_anon_bytes_end"):
            if base.get(k) and r["median"].get(k) is not None:
                r["median"][k + "_vs_thp_never"] = round(r["median"][k] / base[k], 3)
    return rows


def markdown(rows: list) -> str:
    if not rows:
        return ""
    out = ["", "## redis under skewed GET load (bench/redis.py)", "",
           "Debian's redis-server, %s cold + %s hot keys of 1000 B, redis-benchmark GETs on the hot keys. Hot "
           "share: the hot keys' memory (soft-dirty ground truth) in huge pages; t80: seconds to 0.80 (sampled "
           "every 30 s) and the module calls until then; cold huge: the largest share of the other memory in huge "
           "pages; cold values huge: at the end, the share of the other memory that is huge and holds cold values "
           "or zeros (sampled pages; the rest of it is redis's own structures, e.g. the bucket table every GET "
           "reads, which a write-based truth cannot see; target <= 2 %%); GET/s (second half; "
           "also only the 30 s intervals in which no module ran in the guest) and anonymous RSS against thp-never in the same boot. Medians (min-max)." % (
               "{:,}".format(COLD_KEYS), "{:,}".format(HOT_KEYS)), "",
           "| kernel | config | runs | hot share end | time-weighted | t80 s | calls to t80 | cold huge | cold values "
           "huge | GET/s "
           "(× never) | GET/s without module calls (× never) | RSS MiB (× never) | kdamond CPU s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    for r in rows:
        m = r["median"]
        out.append("| %s | %s | %d | %s | %s | %s | %s | %s %% | %s %% | %s (%s) | %s (%s) | %s (%s) | %s |" % (
            r["kernel"], r["config"], r["runs"], fmt(m, "hot_share_end"), fmt(m, "hot_share_mean"),
            fmt(m, "t_target_s", nd=0), fmt(m, "calls_to_target", nd=0), fmt(m, "cold_huge_max", 100, 1),
            fmt(m, "cold_values_huge", 100, 1),
            fmt(m, "get_rate", nd=0), fmt(m, "get_rate_vs_thp_never"), fmt(m, "get_rate_quiet", nd=0),
            fmt(m, "get_rate_quiet_vs_thp_never"), fmt(m, "rss_anon_bytes_end", 1 / (1 << 20), 0),
            fmt(m, "rss_anon_bytes_end_vs_thp_never"), fmt(m, "kdamond_cpu_s", nd=1)))
    return "\n".join(out) + "\n"
