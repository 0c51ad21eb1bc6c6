"""Replay tests/vm/probe_sysfs.py against the emulator and compare with the real guests.

tests/vm/fixtures/damon-<version>.json were recorded by running the same probe inside
Debian guests (6.12.117 and 7.3.4). The probe's paths are redirected from ``/sys`` to
the emulator's mount; everything a real kernel decides (file set, modes, defaults,
accepted words, errnos, nr_* semantics, state transitions) must match. Values that
depend on the run (pids, times, statistics, tried-region addresses) are left out.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.emulator import REPO_ROOT

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

PROBE = REPO_ROOT / "tests" / "vm" / "probe_sysfs.py"
FIXTURES = REPO_ROOT / "tests" / "vm" / "fixtures"

RUN_DEPENDENT_KEYS = {"time", "kernel", "image", "probe_seconds", "probe_stderr", "write_log",
                      "sys_kernel_mm", "pid_read_on", "off_seconds", "stats_before_update",
                      "stats_after_update", "stats_without_update_after_2s"}
RUN_DEPENDENT_FILES = re.compile(r"(^|/)(pid|pid_target|kdamond_pid|total_bytes|nr_tried|sz_tried|"
                                 r"nr_applied|sz_applied|sz_ops_filter_passed|qt_exceeds|nr_snapshots|"
                                 r"estimated_memory_bandwidth|memory_idle_ms_percentiles|"
                                 r"aggr_interval_us)$")


def normalise(data: dict) -> dict:
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


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_probe_matches_the_real_kernel(mount, kernel):
    fixture = FIXTURES / ("damon-%s.json" % kernel)
    if not PROBE.exists() or not fixture.exists():
        pytest.skip("tests/vm probe or fixture not present")
    m = mount(kernel, {"speed": 1})
    source = PROBE.read_text()
    redirected = source.replace('"/sys', '"' + m.root)
    assert '"/sys' not in redirected  # nothing may reach the host's sysfs
    run = subprocess.run([sys.executable, "-"], input=redirected, capture_output=True, text=True,
                         timeout=100, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    ours = normalise(json.loads(run.stdout))
    real = normalise(json.loads(fixture.read_text()))
    assert sorted(ours) == sorted(real)
    for key in sorted(real):
        assert ours[key] == real[key], key
