# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo-emulated` — the flow of `make demo` on an EMULATED DAMON kernel: seconds, no guest.

The same playbooks as `make demo`, against an emulated Linux 6.12 DAMON sysfs
(the FUSE emulator in tests/emulator), never the host's:

1. a real hot/cold workload runs on this host (a hot part written continuously,
   a larger cold part touched once); the emulator's access model makes DAMON
   see its hot part as hot and its cold part as cold;
2. ``playbooks/hugepage.yml`` (the ``linux_mm.damon.hugepage`` role) reads
   DAMON's features, detects the hot application with ``hot_processes`` (real
   CPU time from /proc, narrowed to this workload so concurrent processes are
   never picked), runs the ``hugepage_tune`` feedback loop, which configures a
   kdamond per application and collapses the regions DAMON reports hot with
   ``process_madvise(MADV_COLLAPSE)`` — real huge pages of the real workload,
   the user-space collapse path of Linux 6.2 to 7.1 — and then, through
   ``playbooks/report.yml``, which it imports, writes the fleet report;
3. ``playbooks/stop.yml`` removes the kdamonds again.

Before and after, it measures how much of the workload's hot and cold part is
backed by huge pages, per 4 KiB page from /proc/PID/pagemap and /proc/kpageflags
(as ``make demo`` does inside its guest). Needs root: MADV_COLLAPSE on another
process needs CAP_SYS_NICE, and kpageflags needs CAP_SYS_ADMIN.

``run()`` returns what was measured; tests/integration/test_demo_emulated.py runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.emulator import EmulatedSysfs  # noqa: E402  pylint: disable=wrong-import-position
from tests.tooling import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from tests.workloads import HotCold  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS_ROOT = collection_tree.build().parents[2]
sys.path.insert(0, str(COLLECTIONS_ROOT))
# The collection's own page measurement (what hugepage_step reports), imported as the tests do.
from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap  # noqa: E402  pylint: disable=C0413,E0401

MIB = 1 << 20
KERNEL, KERNEL_RELEASE = "6.12", "6.12.117"
OUT_DIR = REPO / "build" / "demo-emulated"


def playbook(name, extra, log, echo=True):
    """Run playbooks/NAME on localhost; returns localhost's PLAY RECAP counters. Output goes to LOG (and stdout)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_DISPLAY_SKIPPED_HOSTS="False", PYTHONUNBUFFERED="1")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", json.dumps(dict(extra, ansible_python_interpreter=sys.executable)), str(REPO / "playbooks" / name)]
    print("$ ansible-playbook playbooks/%s" % name, flush=True)
    lines = []
    with subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log, "a") as out:
        for line in proc.stdout:
            out.write(line)
            lines.append(line)
            if echo:
                print("    " + line, end="", flush=True)
    if proc.returncode:
        raise RuntimeError("ansible-playbook %s failed (rc %d); see %s" % (name, proc.returncode, log))
    recap = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)", "".join(lines), re.M)
    return dict((host, {"ok": int(ok), "changed": int(changed)}) for host, ok, changed in recap)


def measure(workload):
    """Huge-page bytes of the workload's hot and cold part (real pages, pagemap + kpageflags)."""
    return dict((part, _pagemap.range_huge_bytes(workload.pid, *getattr(workload, part)) or 0) for part in ("hot", "cold"))


def out_file(pid):
    """The --out file on the workload's command line: unique to this run, so it names this process only."""
    args = Path("/proc/%d/cmdline" % pid).read_bytes().decode().split("\0")
    return args[args.index("--out") + 1]


def run(hot_mb=32, cold_mb=64, speed=20.0, interval_s=0.5, out_dir=OUT_DIR, echo=True):
    """Workload, emulator, hugepage.yml (detect → tune → report), stop.yml; returns what was measured."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "ansible.log"
    log.write_text("")
    with HotCold(hot_mb=hot_mb, cold_mb=cold_mb) as workload, tempfile.TemporaryDirectory() as tmp:
        # The access model: DAMON sees the hot part accessed in half of its samples, the cold part never.
        scenario = {"speed": speed, "targets": [{"pid": workload.pid, "regions": [
            {"start": workload.hot[0], "end": workload.hot[1], "rate": 0.5},
            {"start": workload.cold[0], "end": workload.cold[1], "rate": 0.0}]}]}
        with EmulatedSysfs(kernel=KERNEL, scenario=scenario) as emu:
            print("Emulated Linux %s DAMON sysfs at %s (virtual time x%g); workload pid %d: hot %d MiB written"
                  " continuously, cold %d MiB touched once" % (KERNEL, emu.root, speed, workload.pid, hot_mb, cold_mb),
                  flush=True)
            out = {"kernel": KERNEL, "workload": {"pid": workload.pid, "hot": workload.hot, "cold": workload.cold},
                   "before": measure(workload)}
            extra = dict(
                hugepage_sysfs_root=emu.root, hugepage_kernel_release=KERNEL_RELEASE,
                hugepage_ownership_file=os.path.join(tmp, "ownership.json"),
                hugepage_learned_file=os.path.join(tmp, "learned.json"),
                # Detection stays the real module on real /proc; the pattern (this workload's own --out
                # file) keeps busy processes of anyone else out, the filters are lowered for a small demo.
                hugepage_apps=[], hugepage_detect_top=1, hugepage_detect_min_anon_rss_bytes=MIB,
                hugepage_detect_min_cpu_pct=1.0, hugepage_detect_cmdline_pattern=re.escape(out_file(workload.pid)),
                hugepage_interval_s=interval_s, hugepage_exclusive_modules="stop",
                report_dir=str(out_dir), report_interval_s=interval_s / 2, ansible_become=False)
            out["apply_recap"] = playbook("hugepage.yml", extra, log, echo)
            out["after"] = measure(workload)
            out["report"] = json.loads((out_dir / "hugepage-report.json").read_text())["rows"]
            out["stop_recap"] = playbook("stop.yml", extra, log, echo)
            status = emu.status()
            out["kdamonds_after_stop"] = [k["state"] for k in status["kdamonds"]]
            out["virtual_seconds"] = status.get("time")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hot-mb", type=int, default=32)
    parser.add_argument("--cold-mb", type=int, default=64)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("make demo-emulated needs root: collapsing another process's memory with process_madvise"
                 " needs CAP_SYS_NICE and reading /proc/kpageflags CAP_SYS_ADMIN")
    try:
        out = run(args.hot_mb, args.cold_mb)
    except RuntimeError as e:
        sys.exit(str(e))
    hot = out["workload"]["hot"][1] - out["workload"]["hot"][0]
    before, after = out["before"], out["after"]
    print("\nHuge pages in the workload (pid %d), measured per 4 KiB page (pagemap + kpageflags):"
          % out["workload"]["pid"])
    print("  %-26s %14s %14s" % ("", "before", "after"))
    print("  %-26s %13.0f%% %13.0f%%" % ("hot part in huge pages", 100.0 * before["hot"] / hot,
                                         100.0 * after["hot"] / hot))
    print("  %-26s %10.0f MiB %10.0f MiB" % ("cold part in huge pages", before["cold"] / MIB, after["cold"] / MIB))
    for row in out["report"]:
        print("Fleet report row %s/%s: path %s, threshold %s (least nr_accesses per aggregation interval a region"
              " needs to be collapsed), hot coverage %.3f (huge share of the regions DAMON found hot)"
              % (row["host"], row["app"], row["path"], row["threshold"], row["hot_coverage"] or 0))
    print("After playbooks/stop.yml: kdamonds %s" % (out["kdamonds_after_stop"] or "none"))
    print("Fleet report: %s; ansible output: %s" % (OUT_DIR / "hugepage-report.json", OUT_DIR / "ansible.log"))


if __name__ == "__main__":
    main()
