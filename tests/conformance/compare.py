"""Run tests/vm/probe_sysfs.py on the DAMON sysfs emulator or in a real guest, normalise
the JSON records and compare them with a readable diff.

The probe is one scripted sequence of sysfs operations (build a tree, set values, bad
writes, every ``state`` word, ``nr_*`` rewrites, on/commit/off, stats updates) that takes
a sysfs root and prints a JSON record. Everything a kernel decides (file set, modes,
defaults, accepted words and values, errnos, ``nr_*`` semantics, state transitions) must
be equal; values that legitimately differ between runs (pids, times, statistics,
tried-region addresses, the host's uname) are dropped by :func:`normalise`.

    python -m tests.conformance.compare --kernel 7.3 [--against fixture|guest]

prints the differences between the emulator and the recorded fixture (fast) or a live
guest (boots QEMU), and exits 1 when there are any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = REPO_ROOT / "tests" / "vm" / "probe_sysfs.py"
FIXTURES = REPO_ROOT / "tests" / "vm" / "fixtures"
GUARD_DIR = REPO_ROOT / "tests" / "guard"
KERNELS = ("6.12", "7.3")  # emulator profile == guest image damon-<kernel>

RUN_DEPENDENT_KEYS = {"time", "kernel", "image", "probe_seconds", "probe_stderr", "write_log",
                      "sys_kernel_mm", "pid_read_on", "off_seconds", "stats_before_update",
                      "stats_after_update", "stats_without_update_after_2s"}
RUN_DEPENDENT_FILES = re.compile(r"(^|/)(pid|pid_target|kdamond_pid|total_bytes|nr_tried|sz_tried|"
                                 r"nr_applied|sz_applied|sz_ops_filter_passed|qt_exceeds|nr_snapshots|"
                                 r"estimated_memory_bandwidth|memory_idle_ms_percentiles|"
                                 r"aggr_interval_us)$")
MAX_DIFF_LINES = 200


def normalise(data: dict) -> dict:
    """Drop what legitimately differs between two runs of the probe."""
    out = {}
    for key, value in data.items():
        if key in RUN_DEPENDENT_KEYS:
            continue
        if key == "state_words_on":
            value = {w: r["result"] for w, r in value.items()}
        if isinstance(value, dict) and (key.startswith("tree") or key.startswith("module_params")):
            value = _normalise_dump(value)
        out[key] = value
    return out


def _normalise_dump(dump: dict) -> dict:
    result = {}
    for rel, entry in dump.items():
        if isinstance(entry, dict) and "type" not in entry:  # module_params: {module: dump}
            result[rel] = _normalise_dump(entry)
            continue
        if re.search(r"tried_regions/\d", rel):
            continue  # which regions were tried depends on the workload
        entry = dict(entry)
        if RUN_DEPENDENT_FILES.search(rel):
            entry.pop("value", None)
        result[rel] = entry
    return result


def _flatten(value, prefix: str, out: dict) -> dict:
    if isinstance(value, dict) and value:
        for k in value:
            _flatten(value[k], "%s/%s" % (prefix, k) if prefix else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _flatten(v, "%s[%d]" % (prefix, i), out)
    else:
        out[prefix] = value
    return out


def differences(emulated: dict, real: dict, real_name: str = "kernel") -> list:
    """Readable lines, one per differing leaf: ``section path: kernel X, emulator Y``."""
    lines = []
    for key in sorted(set(emulated) | set(real)):
        if key not in real:
            lines.append("%s: only the emulator records this section" % key)
            continue
        if key not in emulated:
            lines.append("%s: only the %s records this section" % (key, real_name))
            continue
        if emulated[key] == real[key]:
            continue
        ours, theirs = _flatten(emulated[key], "", {}), _flatten(real[key], "", {})
        for leaf in sorted(set(ours) | set(theirs)):
            where = "%s %s" % (key, leaf) if leaf else key
            if leaf not in theirs:
                lines.append("%s: only in the emulator (%s)" % (where, _show(ours[leaf])))
            elif leaf not in ours:
                lines.append("%s: missing in the emulator (%s: %s)" % (where, real_name, _show(theirs[leaf])))
            elif ours[leaf] != theirs[leaf]:
                lines.append("%s: %s %s, emulator %s" % (where, real_name, _show(theirs[leaf]), _show(ours[leaf])))
    return lines


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def report(lines: list, title: str) -> str:
    """The diff as a message: title, count, then at most MAX_DIFF_LINES lines."""
    if not lines:
        return "%s: no differences" % title
    shown = lines[:MAX_DIFF_LINES]
    more = len(lines) - len(shown)
    text = "%s: %d difference(s)\n  " % (title, len(lines)) + "\n  ".join(shown)
    if more:
        text += "\n  ... and %d more" % more
    return text


def run_on_emulator(kernel: str, timeout: float = 240) -> dict:
    """Mount the emulator profile ``kernel`` (clock at real speed) and run the probe on it."""
    from tests.emulator import EmulatedSysfs  # pylint: disable=import-outside-toplevel

    env = dict(os.environ)  # the host sysfs write guard loads in the probe's interpreter too
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                            if p and p != str(GUARD_DIR)])
    with EmulatedSysfs(kernel=kernel, scenario={"speed": 1}) as emu:
        run = subprocess.run([sys.executable, str(PROBE), emu.root], capture_output=True, text=True,
                             timeout=timeout, check=False, env=env, stdin=subprocess.DEVNULL)
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError("probe on the %s emulator failed (rc %d):\n%s" % (kernel, run.returncode, run.stderr[-3000:]))
    return json.loads(run.stdout)


def run_in_guest(guest, timeout: float = 600) -> dict:
    """Run the probe as root inside a booted :class:`tests.vm.guest.Guest`."""
    run = guest.python(PROBE.read_text(), timeout=timeout)
    if run.rc != 0 or not run.stdout.strip():
        raise RuntimeError("probe in guest %s failed (rc %d):\nstdout: %s\nstderr: %s"
                           % (guest.name, run.rc, run.stdout[-2000:], run.stderr[-3000:]))
    return json.loads(run.stdout)


def fixture(kernel: str) -> dict:
    return json.loads((FIXTURES / ("damon-%s.json" % kernel)).read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.conformance.compare", description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--kernel", action="append", choices=KERNELS, help="default: all")
    ap.add_argument("--against", choices=("fixture", "guest"), default="fixture")
    ap.add_argument("--save", metavar="DIR", help="also write the raw JSON records here")
    args = ap.parse_args(argv)
    failed = 0
    for kernel in args.kernel or KERNELS:
        emulated = run_on_emulator(kernel)
        if args.against == "guest":
            from tests.vm.guest import Guest  # pylint: disable=import-outside-toplevel

            with Guest("damon-" + kernel) as g:
                real = run_in_guest(g)
        else:
            real = fixture(kernel)
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            for name, data in (("emulator", emulated), (args.against, real)):
                (Path(args.save) / ("%s-%s.json" % (kernel, name))).write_text(json.dumps(data, indent=1, sort_keys=True))
        lines = differences(normalise(emulated), normalise(real), "kernel" if args.against == "guest" else "fixture")
        print(report(lines, "emulator %s vs %s damon-%s" % (kernel, args.against, kernel)))
        failed += bool(lines)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
