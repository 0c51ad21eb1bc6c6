# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo` — the main job on the embedded default: a real Linux 7.3 DAMON kernel in QEMU.

Boots the damon-7.3 Debian guest (building its image from Debian packages the first time) and,
by default (``--app redis``), starts Debian's redis-server with 300 000 cold and 30 000 hot keys
of 1000 B and the packaged redis-benchmark issuing GETs on the hot keys only, so its hot memory is
wherever redis's allocator put it. It measures which of redis's memory is hot without DAMON (the
pages a rewrite of every hot key dirties, tests/vm/redis_proof.py), runs playbooks/hugepage.yml
with redis found by name, measures again right after the run and at 180 s, says what the cold
memory made huge holds (cold values, or redis's own structures such as the bucket table every GET
reads), checks issue 12's targets and runs playbooks/stop.yml.

``--app hotcold``: the synthetic workload instead (private anonymous memory: a hot part written
continuously, a larger cold part touched once), measured per 4 KiB page over its exact ranges
(pagemap + kpageflags). Two coverage figures, measured differently: the table's "hot part in huge
pages" is this demo's own measurement over the workload's exact hot range; the fleet report's
``hot_coverage`` is the huge-page share of the 2 MiB chunks DAMON sees at or above the threshold,
which may reach past the hot range. The summary prints both and says which is which.

It says what it is doing while it waits: the seconds a guest has been booting (with the last
line of its console), and every line of ansible-playbook's output as it comes (also kept in
``build/demo*/ansible.log``), with a note when a task has been quiet for a while.

Options: ``--kernel damon-6.12`` (DAMON without ``intervals_goal``: the loop widens the intervals);
``--policy stepdown`` (hotcold).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tooling import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from tests.vm import images, redis_proof  # noqa: E402  pylint: disable=wrong-import-position
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


# The DAMON modules the kernel runs alone (starting them, or a sysfs kdamond beside them, is EBUSY).
DAMON_MODULES = (("damon_reclaim", "DAMON_RECLAIM"), ("damon_lru_sort", "DAMON_LRU_SORT"), ("damon_stat", "DAMON_STAT"))
MODULE_SWITCHES = "grep -H . /sys/module/damon_*/parameters/enabled 2>/dev/null"


def module_switches(grep_output):
    """{"DAMON_STAT": "on", ...} from ``grep -H . .../damon_*/parameters/enabled`` (modules not built in are left out)."""
    seen = dict(re.findall(r"/sys/module/(damon_\w+)/parameters/enabled:(\S+)", grep_output))
    return dict((label, "on" if seen[name] in ("Y", "1") else "off") for name, label in DAMON_MODULES if name in seen)


def switches_text(switches):
    return ", ".join("%s %s" % item for item in switches.items()) or "none built into this kernel"


class Heartbeat:
    """Calls ``say(seconds)`` from a thread every ``every`` seconds while the ``with`` block runs,
    skipping a beat whenever ``poke()`` was called since the last one."""

    def __init__(self, say, every=10.0):
        self.say, self.every = say, every
        self._stop = threading.Event()
        self._start = self._last = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poke(self):
        self._last = time.monotonic()

    def _run(self):
        while not self._stop.wait(min(1.0, self.every / 4)):
            now = time.monotonic()
            if now - self._last >= self.every:
                self._last = now
                self.say(now - self._start)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def console_tail(path, width=70):
    """The last line the guest's kernel or systemd printed (what the boot is busy with)."""
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, TypeError):
        return ""
    return lines[-1][:width] if lines else ""


def boot(kernel, echo=print, every=10.0):
    """Start the guest, saying every ``every`` seconds how long it has been booting and what its console shows."""
    guest = Guest(kernel)

    def say(seconds):
        tail = console_tail(guest.console_log)
        echo("  booting the %s guest (QEMU TCG, about 100 s): %3.0f s%s" % (
            kernel, seconds, ("  | " + tail) if tail else ""), flush=True)

    echo("Booting the %s guest..." % kernel, flush=True)
    with Heartbeat(say, every):
        guest.start()
    return guest


def playbook(name, inventory, extra, log, echo=print, quiet_s=30.0, timeout_s=1200):
    """Run playbooks/NAME against the guest, echoing each output line as it comes (and keeping it in LOG);
    returns the PLAY RECAP counters per host."""
    # Skipped hosts stay displayed: without them the default callback prints a task's header only
    # once a result comes, so a long task would not show which one it is while it runs.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_tree.build().parents[2]), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_DISPLAY_SKIPPED_HOSTS="True", PYTHONUNBUFFERED="1")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", json.dumps(extra),
           str(REPO / "playbooks" / name)]
    echo("$ ansible-playbook playbooks/%s   (also in %s)" % (name, log), flush=True)
    lines, task = [], ["(starting)"]
    started = time.monotonic()
    with subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log, "a") as out:

        def quiet(seconds):
            if seconds > timeout_s:
                task[0] = "stopped: it ran longer than %.0f s" % timeout_s
                echo("    ... %s" % task[0], flush=True)
                proc.kill()
                return
            echo("    ... %s: still running after %.0f s of the playbook" % (task[0], seconds), flush=True)

        with Heartbeat(quiet, every=quiet_s) as beat:
            for line in proc.stdout:
                beat.poke()
                out.write(line)
                out.flush()
                lines.append(line)
                if line.startswith("TASK ["):
                    task[0] = line.split("]", 1)[0] + "]"
                echo("    " + line, end="", flush=True)
    if proc.returncode:
        raise RuntimeError("ansible-playbook %s failed (rc %d after %.0f s%s); see %s" % (
            name, proc.returncode, time.monotonic() - started,
            ", " + task[0] if task[0].startswith("stopped:") else "", log))
    recap = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)", "".join(lines), re.M)
    return dict((host, {"ok": int(ok), "changed": int(changed)}) for host, ok, changed in recap)


def run(kernel="damon-7.3", policy="adaptive", hot_mb=64, cold_mb=256, rerun=False, out_dir=REPO / "build" / "demo",
        echo=print, guest=None):
    """Boot the guest, run the workload and the playbooks; return what was measured.

    ``guest``: an already running :class:`Guest` of image ``kernel`` to use instead (the guest tests share
    one boot per kind, tests/vm/shared.py); it is left running, with the workload stopped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "ansible.log"
    log.write_text("")
    own_guest = guest is None
    if own_guest:
        echo("Preparing the %s guest image (built from Debian packages the first time, then cached)..." % kernel,
             flush=True)
        images.ensure(kernel)
        guest = boot(kernel, echo)
    elif guest.name != kernel:
        raise ValueError("the guest given runs image %s, not %s" % (guest.name, kernel))
    workload = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            echo("Guest up: Linux %s (booted in %.0f s)" % (guest.uname(), guest.boot_seconds), flush=True)
            target = GUEST_LIB + "/ansible_collections/linux_mm/damon/plugins/module_utils"
            guest.ssh("mkdir -p " + target, check=True)
            for name in MEASURE_MODULE_UTILS:
                guest.put((MODULE_UTILS / name).read_bytes(), "%s/%s" % (target, name))
            guest.ssh("hotcold --hot-mb %d --cold-mb %d --daemonize --out /run/hotcold.json" % (hot_mb, cold_mb),
                      check=True)
            workload = json.loads(guest.read("/run/hotcold.json"))
            echo("Workload pid %d: hot %d MiB written continuously, cold %d MiB touched once" % (
                workload["pid"], workload["hot"]["bytes"] // MIB, workload["cold"]["bytes"] // MIB), flush=True)
            prior = {"modules": module_switches(guest.ssh(MODULE_SWITCHES).stdout),
                     "thp": guest.read("/sys/kernel/mm/transparent_hugepage/enabled")}
            out = {"kernel": kernel, "policy": policy, "workload": workload, "before": measure(guest)}

            inventory = Path(tmp) / "inventory.yml"
            guest.write_inventory(inventory)
            # declared by selector, as a fleet would: each run finds the process again by name
            extra = dict(hugepage_applications=[{"name": "hotcold", "name_pattern": "^hotcold$"}], hugepage_policy=policy,
                         hugepage_exclusive_modules="stop", hugepage_interval_s=3.0, hugepage_max_iterations=12,
                         report_dir=str(out_dir))
            started = time.monotonic()
            out["apply_recap"] = playbook("hugepage.yml", inventory, extra, log, echo)
            out["apply_seconds"] = time.monotonic() - started
            out["after"] = measure(guest)
            out["report"] = json.loads((out_dir / "hugepage-report.json").read_text())["rows"][0]
            if rerun:
                out["rerun_recap"] = playbook("hugepage.yml", inventory, extra, log, echo)
            playbook("stop.yml", inventory, extra, log, echo)
            out["restored"] = {"modules": module_switches(guest.ssh(MODULE_SWITCHES).stdout),
                               "thp": guest.read("/sys/kernel/mm/transparent_hugepage/enabled"),
                               "kdamonds": guest.read("/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds").strip()}
            out["prior"] = prior
            out["out_dir"] = str(out_dir)
    finally:
        if own_guest:
            guest.stop()
        elif workload is not None:  # a shared guest goes on to other tests: stop what this run started
            guest.ssh("kill %d" % workload["pid"])
    return out


def threshold_text(threshold, of):
    """"9 of 20 samples (45 %)": the threshold as the samples of one aggregation interval it needs."""
    if threshold is None:
        return "unchanged"
    if not of:
        return "%s samples" % threshold
    if threshold > of:
        return "%d of %d samples (above all of them: collapse nothing)" % (threshold, of)
    return "%d of %d samples (%.0f %%)" % (threshold, of, 100.0 * threshold / of)


def summary(out, kernel, policy):
    """The lines ``make demo`` ends with."""
    hot, cold = out["workload"]["hot"]["bytes"], out["workload"]["cold"]["bytes"]
    before, after, report = out["before"], out["after"], out["report"]
    lines = [
        "",
        "Huge pages in the workload's own ranges (%s, policy %s, path %s, %.0f s), measured by this demo per"
        " 4 KiB page (pagemap + kpageflags):" % (kernel, policy, report["path"], out["apply_seconds"]),
        "  %-26s %14s %14s" % ("", "before", "after"),
        "  %-26s %13.0f%% %13.0f%%" % ("hot part in huge pages", 100.0 * before["hot"] / hot, 100.0 * after["hot"] / hot),
        "  %-26s %10.0f MiB %10.0f MiB" % ("cold part in huge pages", before["cold"] / MIB, after["cold"] / MIB),
        "  (%d MiB hot, %d MiB cold; cold huge pages are bloat)" % (hot // MIB, cold // MIB),
        "Threshold: %s. A 2 MiB chunk counts as hot when DAMON saw it accessed in at least that many of the"
        " samples of one aggregation interval." % threshold_text(report["threshold"], report.get("max_nr_accesses")),
    ]
    if report.get("hot_coverage") is not None:
        seen = report["hot_bytes"]
        if seen > hot:
            why = "DAMON's hot chunks take in %d MiB beyond the workload's hot part" % ((seen - hot) // MIB)
        elif seen < hot:
            why = "DAMON saw %d MiB of the workload's hot part below the threshold" % ((hot - seen) // MIB)
        else:
            why = "DAMON's hot chunks are as large as the workload's hot part"
        lines.append(
            "Fleet report hot_coverage %.3f: the huge-page share of the %d MiB DAMON sees hot (%d MiB huge), not of"
            " the workload's %d MiB hot part measured above; %s." % (
                report["hot_coverage"], seen // MIB, (report["huge_bytes_hot"] or 0) // MIB, hot // MIB, why))
    lines += [
        "DAMON modules the kernel runs alone: before %s; after playbooks/stop.yml %s. Kdamonds left: %s." % (
            switches_text(out["prior"]["modules"]), switches_text(out["restored"]["modules"]),
            out["restored"]["kdamonds"]),
        "Fleet report: %s; ansible output: %s" % (
            Path(out["out_dir"]) / "hugepage-report.json", Path(out["out_dir"]) / "ansible.log"),
    ]
    return lines


# The redis demo's dataset: issue 12's proof at a quarter of its size (tests/vm/test_redis_hugepage_guest.py
# runs the same), so that it fits the guest's 2 GiB and a few minutes.
REDIS_COLD_KEYS, REDIS_HOT_KEYS = 300_000, 30_000
REDIS_UNTIL_S = 180.0
# issue 12's targets: >= 0.80 of the hot keys' memory in huge pages, <= 2 % of the cold memory made huge
HOT_SHARE_TARGET, COLD_TARGET = 0.80, 0.02


def run_redis(kernel="damon-7.3", cold_keys=REDIS_COLD_KEYS, hot_keys=REDIS_HOT_KEYS, until_s=REDIS_UNTIL_S,
              out_dir=REPO / "build" / "demo-redis", echo=print):
    """Boot the guest, start Debian's redis-server under GET load on its hot keys, run playbooks/hugepage.yml
    (redis found by name), measure with the ground truth of tests/vm/redis_proof.py, then playbooks/stop.yml."""
    echo("Preparing the %s guest image (built from Debian packages the first time, then cached)..." % kernel,
         flush=True)
    images.ensure(kernel)
    guest = boot(kernel, echo)
    try:
        echo("Guest up: Linux %s (booted in %.0f s)" % (guest.uname(), guest.boot_seconds), flush=True)
        echo("Starting redis-server with %d cold and %d hot keys of 1000 B, and redis-benchmark issuing GETs on the"
             " hot keys only..." % (cold_keys, hot_keys), flush=True)
        prior = module_switches(guest.ssh(MODULE_SWITCHES).stdout)
        out = redis_proof.proof(guest, cold_keys, hot_keys, until_s=until_s, out_dir=out_dir,
                                extra={"hugepage_timeout_s": 150}, echo=echo, ansible_echo=echo)
        with tempfile.TemporaryDirectory() as tmp:
            inventory = guest.write_inventory(Path(tmp) / "inventory.yml")
            playbook("stop.yml", inventory, out["extra_vars"], Path(out["log"]), echo)
        out["prior_modules"] = prior
        out["restored"] = {"modules": module_switches(guest.ssh(MODULE_SWITCHES).stdout),
                           "kdamonds": guest.read("/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds").strip()}
    finally:
        guest.stop()
    return out


def redis_summary(out, kernel):
    """The lines ``make demo`` ends with (redis)."""
    before, last = out["before"], out.get("at_until") or out["after_run"]
    row = (out.get("report_rows") or [{}])[0]
    hot, judged = last["hot_huge_share"] or 0.0, out.get("cold_values_huge")
    lines = [
        "",
        "redis-server on Linux %s (%s), %d keys; measured by the demo's ground truth (the pages a rewrite of every"
        " hot key dirties; not DAMON):" % (out["kernel"], kernel, out["dataset"]["dbsize"]),
        "  %-44s %10s %10s" % ("", "before", "at %.0f s" % last.get("at_s", 0)),
        "  %-44s %9.0f%% %9.0f%%" % ("the hot keys' memory in huge pages", 100 * (before["hot_huge_share"] or 0), 100 * hot),
        "  %-44s %9.1f%% %9.1f%%" % (
            "the other memory in huge pages", 100 * (before["cold_bloat"] or 0), 100 * (last["cold_bloat"] or 0)),
        "  %-44s %10s %9s" % ("  of which cold values or zeros (bloat)", "", "—" if judged is None else "%.1f%%" % (100 * judged)),
        "  (the rest of the other memory made huge is redis's own structures, e.g. the bucket table every GET reads)",
        "Targets (issue 12): hot keys' memory >= %.0f %% huge: %s; cold values made huge <= %.0f %%: %s." % (
            100 * HOT_SHARE_TARGET, "met" if hot >= HOT_SHARE_TARGET else "MISSED", 100 * COLD_TARGET,
            "met" if judged is not None and judged <= COLD_TARGET else "MISSED"),
        "Threshold: %s on the %s path." % (threshold_text(row.get("threshold"), row.get("max_nr_accesses")),
                                           row.get("path", "?")),
    ]
    lines += ["The run said: %s" % m.split('"msg": ', 1)[1].strip().strip('"') for m in out.get("messages", [])
              if m.startswith('"msg": ') and "iterations" in m]
    lines += [
        "DAMON modules the kernel runs alone: before %s; after playbooks/stop.yml %s. Kdamonds left: %s." % (
            switches_text(out["prior_modules"]), switches_text(out["restored"]["modules"]),
            out["restored"]["kdamonds"]),
        "Fleet report: %s; ansible output: %s" % (
            Path(out["extra_vars"]["report_dir"]) / "hugepage-report.json", out["log"]),
    ]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="redis", choices=["redis", "hotcold"],
                        help="redis: Debian's redis-server under GET load (default); hotcold: the synthetic workload")
    parser.add_argument("--kernel", default="damon-7.3", choices=["damon-7.3", "damon-6.12"])
    parser.add_argument("--policy", default="adaptive", choices=["adaptive", "stepdown"], help="hotcold only")
    parser.add_argument("--hot-mb", type=int, default=64, help="hotcold only")
    parser.add_argument("--cold-mb", type=int, default=256, help="hotcold only")
    args = parser.parse_args(argv)
    try:
        if args.app == "redis":
            print("\n".join(redis_summary(run_redis(args.kernel), args.kernel)))
            return
        out = run(args.kernel, args.policy, args.hot_mb, args.cold_mb)
    except RuntimeError as e:
        sys.exit(str(e))
    print("\n".join(summary(out, args.kernel, args.policy)))


if __name__ == "__main__":
    main()
