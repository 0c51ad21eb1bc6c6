# SPDX-License-Identifier: GPL-3.0-or-later
"""Speed-up on the host's real MMU (section `speedup`).

Touches only the benchmark's own processes: the chase workload maps, touches and madvises its own
memory, and a separate process collapses its hot range with this collection's user-space collapse
code (plugins/module_utils/_collapse.collapse -> process_madvise(MADV_COLLAPSE)). Nothing under the
host's /sys is written. THP `enabled` on the host is read (expected: madvise), never written.

Per run: process A without any madvise (4 KiB pages) is measured, then its hot range is collapsed
from outside and it is measured again; process B uses MADV_HUGEPAGE before first touch (huge pages
at fault). Throughput = median of the per-second hop rates in a window. The order of A and B
alternates between runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import MIB, build_workload, collections_path, log, machine, med, save_raw

COLLAPSE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.linux_mm.damon.plugins.module_utils import _collapse
pid, start, end = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t = time.monotonic()
res = _collapse.collapse(pid, [{"start": start, "end": end}], min_density=0.5)
res = dict((k, v) for k, v in res.items() if not isinstance(v, (list, dict)) or k in ("counts",))
res["wall_s"] = time.monotonic() - t
print(json.dumps(res, default=str))
"""
COVERAGE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap
print(_pagemap.range_huge_bytes(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
"""


class Chase:
    def __init__(self, binary, tmp, hot_mb, madvise, seed):
        self.json = Path(tmp) / ("w-%s.json" % madvise)
        self.logp = Path(tmp) / ("w-%s.log" % madvise)
        for p in (self.json, self.logp):
            if p.exists():
                p.unlink()
        self.proc = subprocess.Popen([str(binary), "--hot-mb", str(hot_mb), "--hot2-mb", "0", "--cold-mb", "64",
                                      "--madvise", madvise, "--out", str(self.json), "--log", str(self.logp),
                                      "--seed", str(seed)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not self.json.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chase workload did not start (rc %s)" % self.proc.poll())
            time.sleep(0.1)
        self.w = json.loads(self.json.read_text())

    def rates_since(self, t):
        out = []
        for line in self.logp.read_text().splitlines():
            if line.startswith("#"):
                continue
            ts, rate, unused = line.split()
            if float(ts) > t:
                out.append(float(rate))
        return out

    def measure(self, seconds, warm=1.0):
        time.sleep(warm)
        t = time.time()
        time.sleep(seconds + 0.2)
        rates = self.rates_since(t)
        return med(rates), rates

    def huge(self):
        done = subprocess.run([sys.executable, "-c", COVERAGE, collections_path(), str(self.w["pid"]),
                               str(self.w["hot"]["start"]), str(self.w["hot"]["end"])],
                              capture_output=True, text=True, check=True)
        return int(done.stdout.strip()) if done.stdout.strip() != "None" else None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # our own child, by pid
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run(runs=5, hot_mb=1024, window_s=5.0):
    binary = build_workload(static=False)
    m = machine()
    log("speedup: host THP enabled = %s (read only); %d runs, hot %d MiB, %.0f s windows"
        % (m.get("host_thp_enabled"), runs, hot_mb, window_s))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-speedup-") as tmp:
        for i in range(runs):
            row = {"run": i}
            order = ("4k", "fault") if i % 2 == 0 else ("fault", "4k")
            for which in order:
                if which == "4k":
                    w = Chase(binary, tmp, hot_mb, "none", seed=1000 + i)
                    try:
                        row["huge_4k"] = w.huge()
                        row["chase_4k"], row["rates_4k"] = w.measure(window_s)
                        done = subprocess.run([sys.executable, "-c", COLLAPSE, collections_path(), str(w.w["pid"]),
                                               str(w.w["hot"]["start"]), str(w.w["hot"]["end"])],
                                              capture_output=True, text=True, check=False)
                        if done.returncode:
                            raise RuntimeError("collapse failed: %s" % done.stderr[-2000:])
                        row["collapse"] = json.loads(done.stdout)
                        row["huge_collapsed"] = w.huge()
                        row["chase_collapsed"], row["rates_collapsed"] = w.measure(window_s)
                    finally:
                        w.stop()
                else:
                    w = Chase(binary, tmp, hot_mb, "hugepage", seed=1000 + i)
                    try:
                        row["huge_fault"] = w.huge()
                        row["chase_fault_thp"], row["rates_fault"] = w.measure(window_s)
                    finally:
                        w.stop()
            d = row["chase_fault_thp"] - row["chase_4k"]
            row["f_perf"] = (row["chase_collapsed"] - row["chase_4k"]) / d if d else None
            row["hot_bytes"] = hot_mb * MIB
            log("speedup run %d: 4k %.3g, collapsed %.3g (hot huge %s MiB, collapse %.2f s), fault-THP %.3g hops/s,"
                " F_perf %s" % (i, row["chase_4k"], row["chase_collapsed"], (row["huge_collapsed"] or 0) // MIB,
                                row["collapse"].get("wall_s", 0), row["chase_fault_thp"],
                                "%.2f" % row["f_perf"] if row["f_perf"] is not None else "n/a"))
            rows.append(row)

    def stats(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return {"median": med(vals), "min": min(vals) if vals else None, "max": max(vals) if vals else None}

    summary = {k: stats(k) for k in ("chase_4k", "chase_collapsed", "chase_fault_thp", "f_perf")}
    c4, cc, cf = (summary[k]["median"] for k in ("chase_4k", "chase_collapsed", "chase_fault_thp"))
    summary["f_perf_of_medians"] = (cc - c4) / (cf - c4) if cf != c4 else None
    out = {"runs": runs, "hot_mb": hot_mb, "window_s": window_s, "host_thp_enabled": m.get("host_thp_enabled"),
           "summary": summary, "rows": rows}
    save_raw("speedup", out)
    return out


if __name__ == "__main__":
    run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 5)
