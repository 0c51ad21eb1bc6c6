# SPDX-License-Identifier: GPL-3.0-or-later
"""Effectiveness in real guests (section `effectiveness`): seven configurations, same workload, same run.

One guest boot per kernel (damon-7.3: native DAMOS `collapse`; damon-6.12: user-space
process_madvise path); in it, for each configuration in CONFIGS order: reset (kill the
workload, stop every kdamond, THP setting of the configuration, drop caches, compact), start the
chase workload (hot 64 MiB chased, hot2 64 MiB chased instead after --shift-after, cold 256 MiB
touched sparsely once), start the in-guest sampler (bench/guest_sampler.py, 1 s), apply the
configuration's mechanism, and observe phase 1 + phase 2. Everything that writes DAMON or THP
sysfs happens inside the guest.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from pathlib import Path

from bench.common import BENCH, BUILD, MIB, REPO, build_workload, log, run_playbook, save_raw

CONFIGS = ("thp-never", "thp-always", "khugepaged-only", "ethp", "rfc-stepdown", "ours", "oracle")
KERNELS = ("damon-7.3", "damon-6.12")
HZ = 100  # USER_HZ of /proc/*/stat and /proc/stat
# THP `enabled` and workload flags per configuration (see bench/README.md).
THP = {"thp-never": "never", "thp-always": "always", "khugepaged-only": "madvise", "ethp": "madvise",
       "rfc-stepdown": "madvise", "ours": "madvise", "ours-damos": "madvise", "oracle": "never"}
FLAGS = {"khugepaged-only": "--late-madvise hugepage", "oracle": "--oracle"}
POLICY = {"rfc-stepdown": "stepdown", "ours": "adaptive", "ours-damos": "adaptive"}
# hugepage_tune's collapse path per configuration (ours: auto, i.e. user_collapse on 6.2+); ours-damos: the
# kernel's DAMOS collapse (7.2+), the default before 2026-11-27
PATH = {"ours-damos": "damos_collapse"}

WRAPPER = """#!/bin/sh
# bench: counts remote module executions (one Python start per module call), then runs python3
echo "$(date +%s.%N)" >> /run/bench/module_calls.log
exec /usr/bin/python3 "$@"
"""
RESET = r"""
set +e
[ -f /run/bench/w.json ] && kill $(python3 -c 'import json;print(json.load(open("/run/bench/w.json"))["pid"])') 2>/dev/null
[ -f /run/bench/sampler.pid ] && kill $(cat /run/bench/sampler.pid) 2>/dev/null
pkill -x chase; sleep 0.5
A=/sys/kernel/mm/damon/admin  # inside the QEMU guest: this script only ever runs through guest.ssh()
for s in $A/kdamonds/*/state; do [ -e "$s" ] && echo off > $s 2>/dev/null; done
echo 0 > $A/kdamonds/nr_kdamonds 2>/dev/null
[ -e /sys/module/damon_stat/parameters/enabled ] && echo N > /sys/module/damon_stat/parameters/enabled  # guest
# what an earlier configuration learned must not warm-start the next one (same application names)
rm -f /run/linux_mm_damon/learned.json /var/lib/linux_mm_damon/learned.json
rm -f /run/linux_mm_damon/ownership.json /run/bench/w.json /run/bench/samples.jsonl /run/bench/chase.log /run/bench/sampler.pid
echo %(thp)s > /sys/kernel/mm/transparent_hugepage/enabled  # guest
sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory
cat /sys/kernel/mm/transparent_hugepage/enabled
"""
GUEST_LIB = "/root/lmd"
# The module_utils range_huge_bytes needs, installed in the guest under an ansible_collections path.
EXACT_MODULE_UTILS = ("_sysfs_io.py", "_procfs.py", "_pagemap.py")
EXACT = r"""
import json, sys
sys.path.insert(0, "%s")
from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap
w = json.load(open("/run/bench/w.json"))
print(json.dumps(dict((p, _pagemap.range_huge_bytes(w["pid"], w[p]["start"], w[p]["end"])) for p in ("hot", "hot2", "cold"))))
""" % GUEST_LIB


def _samples(guest):
    text = guest.read("/run/bench/samples.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _calls(guest):
    out = guest.ssh("wc -l < /run/bench/module_calls.log 2>/dev/null || echo 0").stdout.strip()
    return int(out or 0)


class Controller(threading.Thread):
    """Runs the tune playbook again and again (a periodic controller) until `until` (host monotonic).
    ``pid``: the workload's PID, or a list of hugepage_tune ``apps``; ``host_budget_bytes`` as the module's."""

    def __init__(self, guest, inventory, policy, pid, until, workdir, interval_s, pause_s=2.0, host_budget_bytes=0,
                 path="auto"):
        super().__init__(daemon=True)
        self.guest, self.inventory, self.policy, self.path = guest, inventory, policy, path
        self.apps = pid if isinstance(pid, list) else [{"name": "chase", "pid": pid}]
        self.until, self.workdir, self.interval_s, self.pause_s = until, workdir, interval_s, pause_s
        self.host_budget_bytes = host_budget_bytes
        self.runs = []

    def run(self):
        n = 0
        while time.monotonic() < self.until - 8:
            calls0 = _calls(self.guest)
            t0 = time.time()
            extra = dict(bench_apps=self.apps, bench_policy=self.policy, bench_path=self.path,
                         bench_host_budget_bytes=self.host_budget_bytes,
                         bench_interval_s=self.interval_s, bench_max_iterations=20,
                         bench_timeout_s=max(5.0, self.until - time.monotonic() - 4))
            res = run_playbook(BENCH / "playbooks" / "tune.yml", self.inventory, extra,
                               self.workdir / "ansible.log", self.workdir / ("record-%d.jsonl" % n))
            tune = next((r["result"] for r in res["records"] if r["task"] == "Tune"), {})
            calls = _calls(self.guest) - calls0
            self.runs.append(dict(start=t0, end=time.time(), rc=res["rc"], wall_s=res["wall_s"],
                                  controller_cpu_s=res["cpu_s"], module_calls=calls,
                                  iterations=tune.get("iterations"), converged=tune.get("converged"),
                                  stopped=tune.get("stopped"), thresholds=tune.get("thresholds"),
                                  msg=tune.get("msg"), trace=tune.get("trace")))
            log("  %s run %d: rc %d, %s iterations, %d module calls, stopped %s, thresholds %s, %.1f s wall, %.2f s "
                "controller CPU" % (self.policy, n, res["rc"], tune.get("iterations"), calls, tune.get("stopped"),
                                    tune.get("thresholds"), res["wall_s"], res["cpu_s"]))
            n += 1
            time.sleep(self.pause_s)


def run_config(guest, kernel, config, inventory, workdir, phase1_s, phase2_s, write, interval_s):
    thp = guest.ssh(RESET % {"thp": THP[config]}, timeout=120).stdout.strip().splitlines()[-1:]
    total = phase1_s + phase2_s
    flags = "%s %s" % (FLAGS.get(config, ""), "--write" if write else "")
    guest.ssh("/root/chase --hot-mb 64 --hot2-mb 64 --cold-mb 256 --shift-after %g --duration %g --daemonize "
              "--out /run/bench/w.json --log /run/bench/chase.log %s" % (phase1_s, total + 60, flags),
              check=True, timeout=300)
    w = json.loads(guest.read("/run/bench/w.json"))
    guest.ssh("nohup python3 /root/guest_sampler.py /run/bench/w.json /run/bench/samples.jsonl 1 "
              ">/run/bench/sampler.log 2>&1 & echo $! > /run/bench/sampler.pid", check=True)
    start_mono = time.monotonic()
    end_mono = start_mono + total - (time.time() - w["t0"])  # the workload's clock started at t0 (guest clock)
    ctl, extra_info = None, {}
    if config in POLICY:
        ctl = Controller(guest, inventory, POLICY[config], w["pid"], end_mono, workdir, interval_s)
        ctl.start()
    elif config == "ethp":
        calls0 = _calls(guest)
        res = run_playbook(BENCH / "playbooks" / "ethp.yml", inventory, dict(bench_pid=w["pid"]),
                           workdir / "ansible.log", workdir / "record-ethp.jsonl")
        rec = next((r for r in res["records"] if r["task"] == "Ethp kdamond"), {})
        extra_info = dict(rc=res["rc"], module_calls=_calls(guest) - calls0, status=rec.get("status"),
                          msg=rec.get("result", {}).get("msg"), controller_cpu_s=res["cpu_s"])
        log("  ethp kdamond: rc %d, %s" % (res["rc"], rec.get("status")))
    while time.monotonic() < end_mono:
        time.sleep(1)
    if ctl:
        ctl.join(timeout=600)
    exact = json.loads(guest.python(EXACT, check=True).stdout)
    time.sleep(1.5)
    samples = _samples(guest)
    chase_log = guest.read("/run/bench/chase.log")
    guest.ssh("kill %d" % w["pid"])
    return dict(kernel=kernel, config=config, thp_enabled=thp, workload=w, samples=samples, exact_end=exact,
                chase_log=chase_log, controller_runs=ctl.runs if ctl else [], ethp=extra_info,
                phase1_s=phase1_s, phase2_s=phase2_s, write=write)


def prepare_guest(guest, binary, tmp):
    """The chase binary, the sampler, the module_utils of the exact check and the module-counting interpreter
    in a fresh benchmark guest; returns an inventory (in ``tmp``) whose interpreter counts module calls."""
    guest.ssh("mkdir -p /run/bench && : > /run/bench/module_calls.log", check=True)
    guest.put(binary.read_bytes(), "/root/chase", mode=0o755)
    guest.put((BENCH / "guest_sampler.py").read_bytes(), "/root/guest_sampler.py")
    target = GUEST_LIB + "/ansible_collections/linux_mm/damon/plugins/module_utils"
    guest.ssh("mkdir -p " + target, check=True)
    for name in EXACT_MODULE_UTILS:
        guest.put((REPO / "plugins" / "module_utils" / name).read_bytes(), "%s/%s" % (target, name))
    guest.put(WRAPPER, "/usr/local/bin/bench-python3", mode=0o755)
    inventory = tmp / "inventory.yml"
    guest.write_inventory(inventory)
    inventory.write_text(inventory.read_text().replace("/usr/bin/python3", "/usr/local/bin/bench-python3"))
    return inventory


def run_kernel(kernel, configs=CONFIGS, phase1_s=60, phase2_s=60, write=True, interval_s=3.0, shuffle=False):
    from tests.vm import images  # noqa: PLC0415
    from tests.vm.guest import Guest  # noqa: PLC0415

    binary = build_workload(static=True)
    images.ensure(kernel)
    workdir = BUILD / ("effectiveness-" + kernel)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ansible.log").write_text("")
    order = list(configs)
    if shuffle:
        random.shuffle(order)
    results = []
    with Guest(kernel) as guest, tempfile.TemporaryDirectory() as tmp:
        release = guest.uname().strip()
        log("%s: guest up, Linux %s, booted in %.0f s" % (kernel, release, guest.boot_seconds))
        inventory = prepare_guest(guest, binary, Path(tmp))
        khuge = guest.ssh("grep -H . /sys/kernel/mm/transparent_hugepage/khugepaged/{pages_to_scan,"
                          "scan_sleep_millisecs,max_ptes_none,alloc_sleep_millisecs}").stdout
        for config in order:
            log("%s: %s (phase 1 %d s, hot set moves, phase 2 %d s)" % (kernel, config, phase1_s, phase2_s))
            t = time.monotonic()
            r = run_config(guest, kernel, config, inventory, workdir, phase1_s, phase2_s, write, interval_s)
            r.update(release=release, khugepaged=khuge, wall_s=time.monotonic() - t)
            results.append(r)
            log("%s: %s done in %.0f s: end hot %d MiB, hot2 %d MiB, cold %d MiB huge (exact)" % (
                kernel, config, r["wall_s"], (r["exact_end"]["hot"] or 0) // MIB, (r["exact_end"]["hot2"] or 0) // MIB,
                (r["exact_end"]["cold"] or 0) // MIB))
    save_raw("effectiveness-" + kernel, {"kernel": kernel, "release": release, "order": order, "results": results})
    return results
