# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/schedule.yml: the systemd service + timer of a scheduled run, installed below a temporary root.

Nothing is installed on this machine: every run sets ``schedule_root`` to a temporary directory, where the
playbook writes the units and enables the timer by its ``timers.target.wants`` link, starting nothing. The units
are checked with ``systemd-analyze verify`` and ``systemd-analyze security --offline=yes`` when those exist, and the
service's own command line (ExecStart= with its Environment=) is run as written against an emulated host.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ansible_env
from tests.emulator import EmulatedSysfs

pytestmark = [pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SCHEDULE = REPO / "playbooks" / "schedule.yml"
NAME = "linux-mm-damon-hugepage"
USER = "damon-ops"  # need not exist: the playbook looks the user up only when it installs into /


def install(run_playbook, root, check=False, **extra):
    variables = dict(schedule_root=str(root), schedule_inventory="/etc/linux-mm-damon/hosts.yml",
                     schedule_user=USER)
    variables.update(extra)
    return run_playbook(SCHEDULE, extra_vars=variables, check=check, diff=check)


def units(root):
    system = Path(root) / "etc" / "systemd" / "system"
    return system / (NAME + ".service"), system / (NAME + ".timer")


def unit_values(path, key):
    """Every value of ``key=`` in a unit file, in order."""
    return [line.split("=", 1)[1] for line in path.read_text().splitlines() if line.startswith(key + "=")]


def systemd_words(line):
    """A command line or assignment split as systemd does for the quoting schedule.service.j2 writes:
    double quotes with backslash escapes, then %% and $$ back to % and $."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line)]


@pytest.mark.slow
def test_install_is_idempotent_enables_the_timer_and_removes_cleanly(run_playbook, tmp_path):
    root = tmp_path / "root"
    first = install(run_playbook, root)
    assert first.rc == 0, first.explain()
    service, timer = units(root)
    assert oct(service.stat().st_mode & 0o777) == "0o644" and oct(timer.stat().st_mode & 0o777) == "0o644"
    link = service.parent / "timers.target.wants" / (NAME + ".timer")
    assert os.readlink(str(link)) == "/etc/systemd/system/%s.timer" % NAME
    if shutil.which("systemctl"):  # systemd's own reading of the tree agrees that the timer is enabled
        enabled = subprocess.run(["systemctl", "--root=%s" % root, "is-enabled", NAME + ".timer"],
                                 capture_output=True, text=True, check=False)
        assert enabled.stdout.strip() == "enabled", (enabled.stdout, enabled.stderr)
    extra = json.loads((root / "etc" / NAME / "extra-vars.json").read_text())
    assert extra == {"hugepage_lock_busy": "skip", "report_dir": "/var/lib/%s/reports" % NAME}

    assert unit_values(service, "Type") == ["oneshot"] and unit_values(service, "User") == [USER]
    assert unit_values(service, "RemainAfterExit") == []  # so each elapse of the timer can start it again
    assert unit_values(service, "StateDirectory") == [NAME]
    argv = systemd_words(unit_values(service, "ExecStart")[0])
    assert argv == [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "/etc/linux-mm-damon/hosts.yml",
                    "-e", "@/etc/%s/extra-vars.json" % NAME, "linux_mm.damon.hugepage"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "read-only"),
                       ("PrivateTmp", "yes"), ("CapabilityBoundingSet", ""), ("TimeoutStartSec", "4h")):
        assert unit_values(service, key) == [value], key
    assert unit_values(timer, "OnCalendar") == ["hourly"] and unit_values(timer, "RandomizedDelaySec") == ["300"]
    assert unit_values(timer, "Persistent") == ["true"] and unit_values(timer, "WantedBy") == ["timers.target"]

    again = install(run_playbook, root)
    assert again.rc == 0 and again.changed == 0, again.explain()

    other = install(run_playbook, root, schedule_on_calendar="*-*-* 02:30:00", schedule_randomized_delay_s=900,
                    schedule_extra_vars={"hugepage_lock_busy": "skip", "hugepage_lock_timeout_s": 0,
                                         "target_hosts": "databases"})
    assert other.rc == 0 and other.changed, other.explain()
    assert unit_values(timer, "OnCalendar") == ["*-*-* 02:30:00"] and unit_values(timer, "RandomizedDelaySec") == ["900"]
    assert json.loads((root / "etc" / NAME / "extra-vars.json").read_text())["target_hosts"] == "databases"

    removed = run_playbook(SCHEDULE, extra_vars=dict(schedule_root=str(root), schedule_state="absent"))
    assert removed.rc == 0, removed.explain()
    assert not service.exists() and not timer.exists() and not os.path.lexists(str(link))
    assert not (root / "etc" / NAME).exists()


def test_check_mode_reports_the_changes_and_writes_nothing(run_playbook, tmp_path):
    root = tmp_path / "root"
    run = install(run_playbook, root, check=True)
    assert run.rc == 0 and run.changed, run.explain()
    assert "+OnCalendar=hourly" in run.stdout and "+Type=oneshot" in run.stdout  # the diff shows the units
    assert not root.exists()


@pytest.mark.parametrize("bad, said", [
    (dict(schedule_user="root"), "schedule_user (not root"),
    (dict(schedule_inventory="hosts.yml"), "schedule_inventory (an absolute path"),
])
def test_a_root_user_or_a_relative_inventory_is_refused(run_playbook, tmp_path, bad, said):
    run = install(run_playbook, tmp_path / "root", **bad)
    assert run.rc != 0 and said in run["Check the variables"]["msg"], run.explain()
    assert not (tmp_path / "root").exists()


def test_systemd_accepts_the_units_and_rates_the_service_hardened(run_playbook, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine, so the units cannot be verified here")
    root = tmp_path / "root"
    assert install(run_playbook, root, schedule_inventory="/etc/linux mm/hosts 100%.yml").rc == 0
    service, timer = units(root)
    verify = subprocess.run([analyze, "verify", str(service), str(timer)], capture_output=True, text=True,
                            check=False)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr  # no warning either
    assert systemd_words(unit_values(service, "ExecStart")[0])[2] == "/etc/linux mm/hosts 100%.yml"
    security = subprocess.run([analyze, "security", "--offline=yes", str(service)], capture_output=True,
                              text=True, check=False)
    level = re.search(r"Overall exposure level for %s\.service: (\d+\.\d+)" % NAME, security.stdout)
    if level is None and "offline" in security.stderr:
        pytest.skip("this systemd-analyze has no offline security check: %s" % security.stderr.strip())
    assert level, security.stdout + security.stderr
    assert float(level.group(1)) <= 3.0, security.stdout  # systemd rates up to 3.9 "OK"; 0 is the best


@pytest.mark.emulator
@pytest.mark.slow
def test_the_service_command_line_runs_the_hugepage_playbook(run_playbook, tmp_path, target_pid):
    """ExecStart= and Environment= of the rendered service, run as written, the paths below /var/lib and /etc
    moved into the temporary root: playbooks/hugepage.yml tunes the host and writes the report to report_dir."""
    root, state = tmp_path / "root", tmp_path / "state"
    inventory = tmp_path / "hosts.yml"
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        record = tmp_path / "rec"
        record.mkdir(mode=0o700)
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
            "hugepage_sysfs_root": emu.root, "hugepage_kernel_release": "6.12.117",
            "hugepage_ownership_file": str(record / "own.json"),
            "hugepage_learned_file": str(record / "learned.json"), "hugepage_apps": [{"name": "app", "pid": target_pid}],
            "hugepage_max_iterations": 1, "hugepage_interval_s": 0.2, "report_interval_s": 0.2,
            "report_plots": False}}}}))  # plots: test_hugepage_playbooks.py (1.5 s of CPU a run)
        assert install(run_playbook, root, schedule_inventory=str(inventory)).rc == 0
        service, unused = units(root)

        def moved(word):
            return word.replace("/var/lib/" + NAME, str(state)).replace("/etc/" + NAME + "/", "%s/etc/%s/" % (root, NAME))

        extra = root / "etc" / NAME / "extra-vars.json"
        extra.write_text(moved(extra.read_text()))
        env = ansible_env(PYTEST_ANSIBLE_JSON=tmp_path / "scheduled.json")
        for line in unit_values(service, "Environment"):
            for word in systemd_words(line):
                key, value = word.split("=", 1)
                env[key] = moved(value)
        assert env["ANSIBLE_LOCAL_TEMP"] == str(state / "tmp")
        argv = [moved(w) for w in systemd_words(unit_values(service, "ExecStart")[0])]
        state.mkdir(mode=0o700)  # systemd creates the StateDirectory= before the run
        run = subprocess.run(argv, cwd=str(state), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=400, check=False)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "localhost" in run.stdout and "failed=0" in run.stdout
        rows = json.loads((state / "reports" / "hugepage-report.json").read_text())["rows"]
        assert [(r["host"], r["app"]) for r in rows] == [("localhost", "app")]
