# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/control_ssh.py end to end, small: 2 emulated hosts (one emulator process) over a private
sshd on 127.0.0.1, 1 iteration, the documented setting (pipelining, ControlPersist, strategy linux_mm.damon.linear_blocking)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]


def test_fleet_of_two_over_real_ssh(tmp_path):
    needed = {"/usr/sbin/sshd (Debian openssh-server, .ci/bootstrap-host bench)": os.access("/usr/sbin/sshd", os.X_OK),
              "ssh and ssh-keygen (openssh-client)": bool(shutil.which("ssh") and shutil.which("ssh-keygen")),
              "/usr/bin/time": os.access("/usr/bin/time", os.X_OK),
              "FUSE (/dev/fuse, fusermount3)": os.path.exists("/dev/fuse") and bool(shutil.which("fusermount3"))}
    missing = [what for what, ok in needed.items() if not ok]
    if missing:
        pytest.skip("the SSH control-plane harness needs %s" % ", ".join(missing))
    # os.environ is inherited: the host sysfs guard (tests/conftest.py) is on PYTHONPATH for the harness and
    # ansible-playbook; the module processes sshd starts get it from the harness's wrapper interpreter.
    done = subprocess.run([sys.executable, "-m", "bench.control_ssh", "--hosts", "2", "--iterations", "1",
                           "--settings", "pipelining+persist+blocking", "--work", str(tmp_path), "--no-save"],
                          cwd=str(REPO), env=dict(os.environ), capture_output=True, text=True, timeout=50,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (row,) = json.loads(done.stdout[done.stdout.index("\n[\n") + 1:])  # after the log lines
    assert (row["hosts"], row["hosts_ok"], row["iterations"], row["module_calls"]) == (2, 2, 2, 2)
    assert row["connections"] == 2  # one SSH connection per host: its ControlPersist master
    assert row["masters"] >= 2 and row["controller_cpu_s"] > 0 and row["wall_s_per_iteration"] > 0
    assert row["settings"]["pipelining"] and row["settings"]["persist"]
    assert row["settings"]["strategy"] == "linux_mm.damon.linear_blocking"
    # each host had its own ownership file and learned state
    owned = sorted(p.parent.name for p in tmp_path.glob("own/pipelining+persist+blocking/*/ownership.json"))
    assert owned == ["h000", "h001"]
    log = (tmp_path / "ssh" / "sshd.log").read_text()
    assert log.count("Accepted publickey") == 2 and "from 127.0.0.1" in log
