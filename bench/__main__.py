# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench` / `python -m bench`: effectiveness in guests, host speed-up, control-plane cost, report.

python -m bench                          all sections, then the report
python -m bench --only speedup           one section (repeatable: --only control --only report)
python -m bench --quick                  fewer repetitions and shorter phases (a smoke run)
python -m bench --only follow --kernel damon-6.12 --follow-configs ours,ours-between
python -m bench --only control-ssh --fleet 50,200,1000
python -m bench --only workloads --kernel damon-7.3 --workloads graded,behind --reps 3
python -m bench --only workloads --kernel damon-7.3 --workloads level-2,level-4,level-8,level-12,level-20 \
    --configs ours,rfc-stepdown --reps 1 --duration-s 150 --calibrate-s 60 --merge
python -m bench --only redis --kernel damon-7.3 --configs ours,thp-always --reps 1
Sections: effectiveness (both guest kernels, or --kernel), follow (scheduled runs while the hot set moves,
both guest kernels or --kernel), workloads (graded and large hot sets against a ground truth the workload
does not report), redis (a real application under skewed GET load), speedup, control, control-ssh (the fleet over real SSH), report.
Raw per-section data go to bench/results/raw/; the report assembles latest.json/latest.md/*.png
from whatever raw files exist.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import control_plane, control_ssh, effectiveness, follow, redis, report, speedup, workloads
from bench.common import RESULTS, log, save_raw

SECTIONS = ("effectiveness", "follow", "workloads", "redis", "speedup", "control", "control-ssh", "report")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--quick", action="store_true", help="short phases, fewer runs, smaller fleets")
    ap.add_argument("--kernel", action="append", choices=effectiveness.KERNELS, help="guest kernels (default both)")
    ap.add_argument("--configs", help="comma-separated configurations of the effectiveness, workloads or redis "
                    "section (default all of the section's)")
    ap.add_argument("--follow-configs", help="comma-separated follow configurations (default all five)")
    ap.add_argument("--workloads", help="comma-separated workloads of the workloads section (default all: %s)"
                    % ",".join(workloads.WORKLOADS))
    ap.add_argument("--reps", type=int, help="workloads, redis: repetitions per configuration (default 3, quick 1)")
    ap.add_argument("--duration-s", type=float, help="workloads, redis: seconds per run (default 180 and 240, "
                    "quick 90 and 120)")
    ap.add_argument("--calibrate-s", type=float, help="workloads: seconds of each workload's calibration run "
                    "(default --duration-s)")
    ap.add_argument("--merge", action="store_true", help="workloads, redis: keep the earlier raw runs of the "
                    "workloads and configurations not run now")
    ap.add_argument("--phase-s", type=float, help="seconds per workload phase (default 60, quick 40)")
    ap.add_argument("--runs", type=int, help="speed-up repetitions (default 7, quick 3)")
    ap.add_argument("--hot-mb", type=int, default=1024, help="speed-up hot set (default 1024 MiB)")
    ap.add_argument("--fleet", help="comma-separated fleet sizes (default control 50,100,200; control-ssh 50,200,1000)")
    ap.add_argument("--ssh-settings", help="control-ssh: comma-separated settings (default: all five up to 200 "
                    "hosts, only the documented %s above)" % control_ssh.DOCUMENTED)
    ap.add_argument("--ssh-iterations", type=int, default=2, help="control-ssh: max_iterations per host (default 2)")
    ap.add_argument("--forks", type=int, default=25)
    args = ap.parse_args(argv)
    sections = args.only or list(SECTIONS)
    phase = args.phase_s or (40 if args.quick else 60)
    runs = args.runs or (3 if args.quick else 7)
    fleet = tuple(int(x) for x in args.fleet.split(",")) if args.fleet else (50, 100, 200)
    started = time.monotonic()
    timings = {}
    for section in SECTIONS:
        if section not in sections:
            continue
        t = time.monotonic()
        log("=== section %s" % section)
        if section == "effectiveness":
            configs = tuple(args.configs.split(",")) if args.configs else effectiveness.CONFIGS
            for kernel in args.kernel or effectiveness.KERNELS:
                effectiveness.run_kernel(kernel, configs=configs, phase1_s=phase, phase2_s=phase)
        elif section == "follow":
            configs = tuple(args.follow_configs.split(",")) if args.follow_configs else follow.CONFIGS
            for kernel in args.kernel or follow.KERNELS:
                follow.run_kernel(kernel, configs=configs)
        elif section == "workloads":
            for kernel in args.kernel or workloads.KERNELS:
                workloads.run_kernel(
                    kernel, workloads=tuple(args.workloads.split(",")) if args.workloads else tuple(workloads.WORKLOADS),
                    configs=tuple(args.configs.split(",")) if args.configs else workloads.CONFIGS,
                    reps=args.reps or (1 if args.quick else 3), duration_s=args.duration_s or (90 if args.quick else 180),
                    merge=args.merge, calibrate_s=args.calibrate_s)
        elif section == "redis":
            for kernel in args.kernel or redis.KERNELS:
                redis.run_kernel(kernel, configs=tuple(args.configs.split(",")) if args.configs else redis.CONFIGS,
                                 reps=args.reps or (1 if args.quick else 3),
                                 duration_s=args.duration_s or (120 if args.quick else 240), merge=args.merge)
        elif section == "speedup":
            speedup.run(runs=runs, hot_mb=args.hot_mb)
        elif section == "control":
            control_plane.run(sizes=fleet, forks=args.forks)
        elif section == "control-ssh":
            sizes = tuple(int(x) for x in args.fleet.split(",")) if args.fleet else (
                (10, 50) if args.quick else (50, 200, 1000))
            settings = tuple(args.ssh_settings.split(",")) if args.ssh_settings else None
            control_ssh.run(sizes=sizes, settings=settings, forks=args.forks, iterations=args.ssh_iterations)
        elif section == "report":
            report.build()
        timings[section] = round(time.monotonic() - t, 1)
        log("=== section %s done in %.0f s" % (section, timings[section]))
    timings["total"] = round(time.monotonic() - started, 1)
    if "report" not in sections:
        return 0
    save_raw("timings-last", {"sections": sections, "timings_s": timings, "quick": args.quick, "phase_s": phase,
                              "runs": runs, "fleet": fleet, "forks": args.forks})
    log("total %.0f s; results in %s" % (timings["total"], RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
