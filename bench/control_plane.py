# SPDX-License-Identifier: GPL-3.0-or-later
"""Control-plane cost (section `control`): a fleet of emulated hosts tuned by one controller.

Each host is `ansible_connection: local` with its own DAMON sysfs emulator mount (FUSE, kernel 7.3,
one Python process per host), its own ownership file, and the same application: one real sleeping
process of the benchmark (a private anonymous mapping, untouched) whose address ranges the emulator's
access model declares hot (32 MiB, 35 % of samples) and cold (64 MiB). The tune playbook
(bench/playbooks/tune.yml, policy adaptive) runs over 50, 100 and 200 hosts with fixed forks.

Counting: `ansible_python_interpreter` is a wrapper that appends one line per remote module
execution, with that execution's user+system CPU (/usr/bin/time), to a log. Controller CPU = CPU of
the whole ansible-playbook process tree (wait4 rusage) minus the CPU of the module executions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bench.common import BENCH, BUILD, MIB, log, run_playbook, save_raw

WRAPPER = """#!/bin/sh
# bench: one line per module execution: its user and system CPU seconds
exec /usr/bin/time -a -o %(log)s -f "%%U %%S" %(python)s "$@"
"""
SLEEPER = r"""
import mmap, sys, time
m = mmap.mmap(-1, 100 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
import ctypes
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
start = (addr + (2 << 20) - 1) // (2 << 20) * (2 << 20)
print(start, flush=True)
time.sleep(1e6)
"""


def _sleeper():
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True)
    start = int(proc.stdout.readline())
    return proc, start


def _model(pid, start):
    return [{"pid": pid, "regions": [{"start": start, "size": 32 * MIB, "rate": 0.35},
                                     {"start": start + 32 * MIB, "size": 64 * MIB, "rate": 0.0}]}]


def run(sizes=(50, 100, 200), forks=25, interval_s=0.3, speed=20.0, max_iterations=20):
    from tests.emulator import EmulatedSysfs  # noqa: PLC0415

    work = BUILD / "control"
    work.mkdir(parents=True, exist_ok=True)
    (work / "ansible.log").write_text("")
    calls_log = work / "module_calls.log"
    wrapper = work / "bench-python"
    wrapper.write_text(WRAPPER % {"log": calls_log, "python": sys.executable})
    wrapper.chmod(0o755)
    fleet = []
    for hosts in sizes:
        # fresh emulators per fleet size, running at `speed` from the mount on: no state carried
        # over and no speed writes afterwards (a write to .emulator/speed once hung; see README)
        emus = []
        t = time.monotonic()
        sleeper, start = _sleeper()
        try:
            for i in range(hosts):
                emu = EmulatedSysfs(kernel="7.3", scenario={"speed": speed, "targets": _model(sleeper.pid, start)},
                                    start_timeout=120)
                emu.start()
                emus.append(emu)
            log("control: %d emulator mounts up in %.0f s" % (hosts, time.monotonic() - t))
            inv = {"all": {"hosts": {}}}
            for i in range(hosts):
                own = work / ("own-%d.json" % i)
                if own.exists():
                    own.unlink()
                inv["all"]["hosts"]["h%03d" % i] = {
                    "ansible_connection": "local", "ansible_python_interpreter": str(wrapper),
                    "sysfs_root": emus[i].root, "kernel_release": "7.3.4", "ownership_file": str(own)}
            inventory = work / ("inventory-%d.json" % hosts)
            inventory.write_text(json.dumps(inv))
            calls_log.write_text("")
            extra = dict(bench_apps=[{"name": "app", "pid": sleeper.pid}], bench_policy="adaptive",
                         bench_interval_s=interval_s, bench_max_iterations=max_iterations, bench_timeout_s=600)
            res = run_playbook(BENCH / "playbooks" / "tune.yml", inventory, extra, work / "ansible.log",
                               work / ("record-%d.jsonl" % hosts), forks=forks, timeout=3600)
        finally:
            os.kill(sleeper.pid, signal.SIGTERM)
            sleeper.wait()
            for emu in emus:
                try:
                    emu.stop()
                except Exception:  # noqa: BLE001 - teardown of many mounts: keep going
                    pass
        lines = [ln.split() for ln in calls_log.read_text().splitlines() if ln.strip()]
        module_cpu = sum(float(a) + float(b) for a, b in (x[-2:] for x in lines))
        tunes = [r for r in res["records"] if r["task"] == "Tune"]
        iterations = sum(r["result"].get("iterations", 0) for r in tunes)
        ok = sum(1 for r in tunes if r["status"] == "ok")
        converged = sum(1 for r in tunes if r["result"].get("converged"))
        controller_cpu = res["cpu_s"] - module_cpu
        row = dict(hosts=hosts, forks=forks, wall_s=res["wall_s"], rc=res["rc"], hosts_ok=ok,
                   hosts_converged=converged, iterations=iterations, module_calls=len(lines),
                   module_calls_per_iteration=len(lines) / iterations if iterations else None,
                   ansible_cpu_s=res["cpu_s"], module_cpu_s=module_cpu, controller_cpu_s=controller_cpu,
                   cpu_s_per_host=controller_cpu / hosts,
                   controller_cpu_ms_per_host_iteration=1000 * controller_cpu / iterations if iterations else None,
                   wall_s_per_host=res["wall_s"] / hosts, interval_s=interval_s, emulator_speed=speed,
                   failures=[r["result"].get("msg") for r in tunes if r["status"] != "ok"][:3])
        fleet.append(row)
        save_raw("control", {"fleet": fleet})
        log("control: %d hosts, forks %d: %.0f s wall, %d/%d ok, %d converged, %d iterations, %d module calls, "
            "controller %.1f s CPU (%.3f s/host, %.1f ms per host-iteration), modules %.1f s CPU" % (
                hosts, forks, res["wall_s"], ok, hosts, converged, iterations, len(lines), controller_cpu,
                row["cpu_s_per_host"], row["controller_cpu_ms_per_host_iteration"] or 0, module_cpu))
    out = {"fleet": fleet}
    save_raw("control", out)
    return out


if __name__ == "__main__":
    run(sizes=tuple(int(x) for x in sys.argv[1:]) or (50, 100, 200))
