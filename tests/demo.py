# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo` — the main job on the embedded default: a real Linux 7.3 DAMON kernel in QEMU.

Boots the damon-7.3 Debian guest (building its image from Debian packages the
first time), starts a hot/cold workload inside it (private anonymous memory: a
hot part written continuously, a larger cold part touched once), measures how
much of each part is backed by huge pages (pagemap + kpageflags, per 4 KiB
page), runs playbooks/hugepage.yml against the guest, measures again, prints
the before/after table, and runs playbooks/stop.yml.

Options: ``--kernel damon-6.12`` (user-space collapse path), ``--policy stepdown``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tooling import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from tests.vm import images  # noqa: E402  pylint: disable=wrong-import-position
from tests.vm.guest import Guest  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1 << 20
MODULE_UTILS = REPO / "plugins" / "module_utils"
GUEST_LIB = "/root/lmd"
# The module_utils range_huge_bytes needs, installed in the guest under an ansible_collections path.
MEASURE_MODULE_UTILS = ("_sysfs_io.py", "_procfs.py", "_pagemap.py")
# Runs in the guest: huge-page bytes of the workload's exact hot and cold ranges.
MEASURE = """
import json, sys
sys.path.insert(0, "%s")
from ansible_collections.linux_mm.damon.plugins.module_utils import _pagemap
w = json.load(open("/run/hotcold.json"))
print(json.dumps(dict((part, _pagemap.range_huge_bytes(w["pid"], w[part]["start"], w[part]["end"]))
                      for part in ("hot", "cold"))))
""" % GUEST_LIB


def measure(guest):
    return json.loads(guest.python(MEASURE, check=True).stdout)


def playbook(name, inventory, extra, log):
    """Run playbooks/NAME against the guest; returns the guest host's PLAY RECAP counters."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_tree.build().parents[2]), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", json.dumps(extra),
           str(REPO / "playbooks" / name)]
    print("$ ansible-playbook playbooks/%s   (output in %s)" % (name, log), flush=True)
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200,
                          check=False)
    with open(log, "a") as out:
        out.write(done.stdout)
    if done.returncode:
        raise RuntimeError("ansible-playbook %s failed (rc %d); see %s" % (name, done.returncode, log))
    recap = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)", done.stdout, re.M)
    return dict((host, {"ok": int(ok), "changed": int(changed)}) for host, ok, changed in recap)


def run(kernel="damon-7.3", policy="adaptive", hot_mb=64, cold_mb=256, rerun=False, out_dir=REPO / "build" / "demo"):
    """Boot the guest, run the workload and the playbooks; return what was measured."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "ansible.log"
    log.write_text("")
    print("Preparing the %s guest image (built from Debian packages the first time, then cached)..." % kernel,
          flush=True)
    images.ensure(kernel)
    with Guest(kernel) as guest, tempfile.TemporaryDirectory() as tmp:
        print("Guest up: Linux %s (booted in %.0f s)" % (guest.uname(), guest.boot_seconds), flush=True)
        target = GUEST_LIB + "/ansible_collections/linux_mm/damon/plugins/module_utils"
        guest.ssh("mkdir -p " + target, check=True)
        for name in MEASURE_MODULE_UTILS:
            guest.put((MODULE_UTILS / name).read_bytes(), "%s/%s" % (target, name))
        guest.ssh("hotcold --hot-mb %d --cold-mb %d --daemonize --out /run/hotcold.json" % (hot_mb, cold_mb),
                  check=True)
        workload = json.loads(guest.read("/run/hotcold.json"))
        print("Workload pid %d: hot %d MiB written continuously, cold %d MiB touched once" % (
            workload["pid"], workload["hot"]["bytes"] // MIB, workload["cold"]["bytes"] // MIB), flush=True)
        modules = "cat /sys/module/damon_*/parameters/enabled 2>/dev/null | tr -d '\\n'"
        prior = {"modules": guest.ssh(modules).stdout, "thp": guest.read("/sys/kernel/mm/transparent_hugepage/enabled")}
        out = {"kernel": kernel, "policy": policy, "workload": workload, "before": measure(guest)}

        inventory = Path(tmp) / "inventory.yml"
        guest.write_inventory(inventory)
        extra = dict(hugepage_apps=[{"name": "hotcold", "pid": workload["pid"]}], hugepage_policy=policy,
                     hugepage_exclusive_modules="stop", hugepage_interval_s=3.0, hugepage_max_iterations=12,
                     report_dir=str(out_dir))
        started = time.monotonic()
        out["apply_recap"] = playbook("hugepage.yml", inventory, extra, log)
        out["apply_seconds"] = time.monotonic() - started
        out["after"] = measure(guest)
        out["report"] = json.loads((out_dir / "hugepage-report.json").read_text())["rows"][0]
        if rerun:
            out["rerun_recap"] = playbook("hugepage.yml", inventory, extra, log)
        playbook("stop.yml", inventory, extra, log)
        out["restored"] = {"modules": guest.ssh(modules).stdout,
                           "thp": guest.read("/sys/kernel/mm/transparent_hugepage/enabled"),
                           "kdamonds": guest.read("/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds").strip()}
        out["prior"] = prior
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default="damon-7.3", choices=["damon-7.3", "damon-6.12"])
    parser.add_argument("--policy", default="adaptive", choices=["adaptive", "stepdown"])
    parser.add_argument("--hot-mb", type=int, default=64)
    parser.add_argument("--cold-mb", type=int, default=256)
    args = parser.parse_args(argv)
    try:
        out = run(args.kernel, args.policy, args.hot_mb, args.cold_mb)
    except RuntimeError as e:
        sys.exit(str(e))
    hot, cold = out["workload"]["hot"]["bytes"], out["workload"]["cold"]["bytes"]
    before, after, report = out["before"], out["after"], out["report"]
    print("\nHuge-page coverage of the workload (%s, policy %s, path %s, threshold %s of 20, %.0f s):" % (
        args.kernel, args.policy, report["path"], report["threshold"], out["apply_seconds"]))
    print("  %-26s %14s %14s" % ("", "before", "after"))
    print("  %-26s %13.0f%% %13.0f%%" % ("hot part in huge pages", 100.0 * before["hot"] / hot, 100.0 * after["hot"] / hot))
    print("  %-26s %10.0f MiB %10.0f MiB" % ("cold part in huge pages", before["cold"] / MIB, after["cold"] / MIB))
    print("  (%d MiB hot, %d MiB cold; cold huge pages are bloat)" % (hot // MIB, cold // MIB))
    print("After playbooks/stop.yml: nr_kdamonds %s, DAMON module switches %s (before: %s)" % (
        out["restored"]["kdamonds"], out["restored"]["modules"] or "-", out["prior"]["modules"] or "-"))
    print("Fleet report: %s" % (REPO / "build" / "demo" / "hugepage-report.json"))


if __name__ == "__main__":
    main()
