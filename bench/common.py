# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers of the benchmark: paths, the workload build, ansible-playbook runs with accounting."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"
BUILD = REPO / "build" / "bench"
MIB = 1 << 20

sys.path.insert(0, str(REPO))


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def build_workload(static=True, name="chase") -> Path:
    """bench/workload/NAME.c -> build/bench/NAME[-static]."""
    BUILD.mkdir(parents=True, exist_ok=True)
    src = BENCH / "workload" / (name + ".c")
    out = BUILD / (name + "-static" if static else name)
    inputs = (src, BENCH / "workload" / "common.h")
    if out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in inputs):
        return out
    cmd = [shutil.which("gcc") or "cc", "-O2", "-Wall", "-Wextra", "-std=gnu11"] + (["-static"] if static else []) + [
        "-o", str(out), str(src), "-lm"]
    subprocess.run(cmd, check=True)
    return out


def collections_path() -> str:
    from tests.tooling import collection_tree  # noqa: PLC0415
    return str(collection_tree.build().parents[2])


def ansible_env(record: Path | None = None, **extra) -> dict:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callbacks"),
               ANSIBLE_CALLBACKS_ENABLED="bench_record", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    if record is not None:
        env["BENCH_RECORD"] = str(record)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_playbook(playbook: Path, inventory: Path, extra: dict, logfile: Path, record: Path, forks: int = 5,
                 timeout: float = 1800, env_extra: dict | None = None) -> dict:
    """Run ansible-playbook; returns rc, wall_s, cpu_s (the whole process tree, via wait4) and the records."""
    if record.exists():
        record.unlink()
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-f", str(forks),
           "-e", json.dumps(extra), str(playbook)]
    t0 = time.monotonic()
    with open(logfile, "a") as out:
        out.write("\n$ %s\n" % " ".join(cmd))
        out.flush()
        proc = subprocess.Popen(cmd, env=ansible_env(record, **(env_extra or {})), stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    records = []
    if record.exists():
        records = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "records": records}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(per: list, keys) -> dict:
    """Per key, the median over the runs ``per`` (dicts) that have it, ``KEY_range`` [min, max] when
    there are several, and ``KEY_runs`` [runs with it, runs] when some lack it (e.g. never reached a target)."""
    out = {}
    for k in keys:
        vals = [p[k] for p in per if p.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
        if len(vals) > 1:
            out[k + "_range"] = [min(vals), max(vals)]
        if vals and len(vals) < len(per):
            out[k + "_runs"] = [len(vals), len(per)]
    return out


def fmt_median(m: dict, k: str, scale: float = 1.0, nd: int = 2) -> str:
    """A summary's median ``m[k]`` for a table, with its min-max over repetitions when there are several."""
    v = m.get(k)
    if v is None:
        return "—"
    s = "%.*f" % (nd, v * scale)
    if k + "_range" in m:
        lo, hi = m[k + "_range"]
        s += " (%.*f-%.*f)" % (nd, lo * scale, nd, hi * scale)
    if k + "_runs" in m:
        s += " in %d of %d runs" % tuple(m[k + "_runs"])
    return s


def machine() -> dict:
    info = {"host_kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_total_kib"] = int(f.readline().split()[1])
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:  # read only
            info["host_thp_enabled"] = f.read().strip()
    except OSError:
        pass
    info["python"] = platform.python_version()
    return info


def save_raw(name: str, data) -> Path:
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / (name + ".json")
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def load_raw(name: str):
    path = RAW / (name + ".json")
    return json.loads(path.read_text()) if path.exists() else None


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
