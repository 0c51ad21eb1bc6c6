# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/hugepage.yml and stop.yml run from a schedule: overlapping runs on one emulated host.

Run A (playbooks/hugepage.yml) is stopped in the middle of its first feedback step, holding the host lock, by a
write the emulator holds back. While it hangs, other runs start as a schedule would start them:

- with ``hugepage_lock_busy: skip`` they end for the host without failing and name A as the holder (pid,
  module, since), change nothing and leave the host out of the fleet report (hugepage.yml and stop.yml);
- with the default ``fail`` they fail after ``hugepage_lock_timeout_s`` with the same holder in the message;
- with a long enough ``hugepage_lock_timeout_s`` they wait, and finish once A has let go;
- a run from which the lock is taken between two iterations of its loop is skipped there, and leaves a running,
  recorded kdamond that the next run carries on from;
- with ``skip``, any other failure of a task that takes the lock still fails the host.

docs/scheduling.md describes this behaviour; each claim it makes about overlapping runs is asserted here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ansible_env
from tests.emulator import EmulatedSysfs

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
HUGEPAGE = REPO / "playbooks" / "hugepage.yml"
STOP = REPO / "playbooks" / "stop.yml"
TUNE = "linux_mm.damon.hugepage : Tune the hotness threshold of each application"
SKIP_SAID = "linux_mm.damon.hugepage : Say why this run skips the host"
HUGEPAGE_PLAY = "Collapse the hot memory of the hot applications into huge pages"
OBSERVE = "linux_mm.damon.hugepage : Read DAMON statistics and huge-page use of each managed application"


class Run(object):
    """One ansible-playbook process of its own, started now; its task results go to <name>.json."""

    def __init__(self, tmp_path, name, playbook, extra_vars):
        self.tmp_path, self.name = tmp_path, name
        self.out = open(tmp_path / ("%s.out" % name), "w")
        env = ansible_env(PYTEST_ANSIBLE_JSON=tmp_path / ("%s.json" % name),
                          ANSIBLE_LOCAL_TEMP=tmp_path / (".ansible-local-%s" % name))
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", json.dumps({"ansible_python_interpreter": sys.executable}), "-e", json.dumps(extra_vars),
               str(playbook)]
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=str(tmp_path))

    def wait(self, timeout=300):
        rc = self.proc.wait(timeout=timeout)
        self.out.close()
        return rc

    @property
    def stdout(self):
        return (self.tmp_path / ("%s.out" % self.name)).read_text()

    def data(self):
        return json.loads((self.tmp_path / ("%s.json" % self.name)).read_text())

    def result(self, task):
        found = [t["hosts"]["localhost"] for t in self.data()["tasks"]
                 if t["name"] == task and "localhost" in t["hosts"]]
        assert found, "%s ran no task %r:\n%s" % (self.name, task, self.stdout[-4000:])
        return found[-1]

    def task_names(self):
        return [t["name"] for t in self.data()["tasks"]]

    def changed_in(self, play):
        """Names of the tasks of ``play`` that reported a change on localhost."""
        assert play in [t.get("play") for t in self.data()["tasks"]], "%s ran no play %r" % (self.name, play)
        return [t["name"] for t in self.data()["tasks"]
                if t.get("play") == play and (t["hosts"].get("localhost") or {}).get("changed")]

    def stats(self):
        return self.data()["stats"]["localhost"]


@pytest.fixture
def host(tmp_path, target_pids):
    """An emulated Linux 6.12 host, its ownership record and the variables a scheduled run gets."""
    record_dir = tmp_path / "rec"
    record_dir.mkdir(mode=0o700)
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        base = dict(hugepage_sysfs_root=emu.root, hugepage_kernel_release="6.12.117",
                    hugepage_ownership_file=str(record_dir / "own.json"),
                    hugepage_learned_file=str(record_dir / "learned.json"),
                    hugepage_apps=[{"name": "app", "pid": target_pids[0]}], hugepage_max_iterations=1,
                    hugepage_interval_s=0.2, report_interval_s=0.2, ansible_become=False,
                    report_plots=False)  # plots: test_hugepage_playbooks.py (1.5 s of CPU a run)
        yield emu, base


def hold_the_lock(tmp_path, emu, base):
    """Run A: playbooks/hugepage.yml, hung at its first sysfs write, inside its first hugepage_step (lock held)."""
    emu.hang_writer_at(0)
    holder = Run(tmp_path, "holder", HUGEPAGE, dict(base, report_dir=str(tmp_path / "report-holder")))
    deadline = time.monotonic() + 240
    while not emu.faults()["hung"]:
        assert holder.proc.poll() is None, holder.stdout[-4000:]
        assert time.monotonic() < deadline, "run A reached no sysfs write:\n" + holder.stdout[-4000:]
        time.sleep(0.05)
    return holder, emu.faults()["hung"][0]


def holder_named(msg, record, hung):
    """The message names the lock file and the holder: its pid (the hung writer), module and since when."""
    want = r"another linux_mm\.damon run holds the host lock %s\.lock: pid %d \(hugepage_step\) since " \
           r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" % (re.escape(record), hung["pid"])
    return re.search(want, msg) is not None


def test_a_scheduled_run_skips_a_host_whose_lock_another_run_holds_and_the_holder_finishes(tmp_path, host):
    emu, base = host
    record = base["hugepage_ownership_file"]
    holder, hung = hold_the_lock(tmp_path, emu, base)
    writes = emu.write_count()
    try:
        skip = dict(base, hugepage_lock_busy="skip", hugepage_lock_timeout_s=1, report_dir=str(tmp_path / "report-skip"))
        skipped = Run(tmp_path, "skipped", HUGEPAGE, skip)
        assert skipped.wait() == 0, skipped.stdout[-4000:]
        said = skipped.result(SKIP_SAID)["msg"]
        assert said.startswith("localhost: skipped (hugepage_lock_busy: skip): "), said
        assert holder_named(said, record, hung), said
        assert "; waited 1 s (lock_timeout_s). Runs on one host take turns: let it finish, or raise lock_timeout_s. " \
            "This run does nothing more on this host; the next run tries again." in said, said
        assert said in skipped.stdout  # what a scheduled run prints (journal, cron mail, AWX job output)
        tuned = skipped.result(TUNE)
        assert tuned["_status"] == "ok" and not tuned.get("changed") and tuned["lock_busy"] is True, tuned
        assert skipped.stats()["failures"] == 0, skipped.stats()
        assert skipped.changed_in(HUGEPAGE_PLAY) == []
        assert skipped.result(OBSERVE)["_status"] == "skipped"  # the report leaves the host out ...
        report = json.loads((tmp_path / "report-skip" / "hugepage-report.json").read_text())
        assert report["rows"] == []  # ... and is still written
        assert "linux_mm.damon.hugepage : Show the outcome of the feedback loop" not in skipped.task_names()

        # stop.yml in skip mode: the same, and the holder's kdamond is not touched
        stop = Run(tmp_path, "stop-skipped", STOP, skip)
        assert stop.wait() == 0, stop.stdout[-4000:]
        assert holder_named(stop.result(SKIP_SAID)["msg"], record, hung)
        assert stop.stats()["failures"] == 0 and stop.stats()["changed"] == 0, stop.stats()
        assert stop.result("linux_mm.damon.hugepage : Remove the kdamonds of the feedback loop and re-enable DAMON "
                           "modules it stopped")["_status"] == "ok"
        assert "linux_mm.damon.hugepage : Restore the THP settings that the start entry point changed" \
            not in stop.task_names()  # the run ended for the host at the first busy task

        # the default (hugepage_lock_busy: fail): the host fails, naming the same holder
        failed = Run(tmp_path, "failed", HUGEPAGE,
                     dict(base, hugepage_lock_timeout_s=1, report_dir=str(tmp_path / "report-failed")))
        assert failed.wait() != 0
        msg = failed.result(TUNE)["msg"]
        assert failed.result(TUNE)["_status"] == "failed" and holder_named(msg, record, hung), msg
        assert failed.result(TUNE)["lock_busy"] is True
        assert SKIP_SAID not in failed.task_names()
        assert emu.write_count() == writes  # none of them wrote to the host
    finally:
        emu.release()
    assert holder.wait() == 0, holder.stdout[-4000:]
    assert holder.result(TUNE)["_status"] == "ok"
    rows = json.loads((tmp_path / "report-holder" / "hugepage-report.json").read_text())["rows"]
    assert [(r["host"], r["app"]) for r in rows] == [("localhost", "app")]


def _module_processes(name):
    """PIDs of processes running the AnsiballZ wrapper of module ``name``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if b"AnsiballZ_%s.py" % name.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_an_overlapping_run_waits_for_the_host_lock_and_then_finishes(tmp_path, host):
    """hugepage_lock_busy: skip with a timeout long enough: the run waits for the holder instead of skipping."""
    emu, base = host
    holder, hung = hold_the_lock(tmp_path, emu, base)
    waiting_since = None
    try:
        waiter = Run(tmp_path, "waiter", HUGEPAGE,
                     dict(base, hugepage_lock_busy="skip", hugepage_lock_timeout_s=240,
                          report_dir=str(tmp_path / "report-waiter")))
        deadline = time.monotonic() + 240
        while waiting_since is None:  # the waiter's own hugepage_step has started and waits for the lock
            if [p for p in _module_processes("hugepage_step") if p != hung["pid"]]:
                waiting_since = time.monotonic()
            assert waiter.proc.poll() is None, waiter.stdout[-4000:]
            assert time.monotonic() < deadline, "the second run's hugepage_step never started"
            time.sleep(0.1)
        time.sleep(2)
        assert waiter.proc.poll() is None  # still waiting while the holder hangs
    finally:
        emu.release()
    assert holder.wait() == 0, holder.stdout[-4000:]
    assert waiter.wait() == 0, waiter.stdout[-4000:]
    assert waiter.result(TUNE)["_status"] == "ok" and SKIP_SAID not in waiter.task_names()


def test_a_run_skipped_in_the_middle_of_its_loop_leaves_a_consistent_host_the_next_run_carries_on_from(
        tmp_path, host):
    """The lock is taken from the run between two iterations of its feedback loop (by this test process, the
    moment the run's first step lets go of it): the run is skipped there, its kdamond keeps running, owned and
    recorded, and the next run finishes."""
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
    from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import HostLock, LockTimeout
    from tests.helpers.host_state import record_agrees

    emu, base = host
    record = base["hugepage_ownership_file"]
    lock = record + ".lock"
    run = Run(tmp_path, "midloop", HUGEPAGE,
              dict(base, hugepage_lock_busy="skip", hugepage_lock_timeout_s=0, hugepage_max_iterations=5,
                   hugepage_interval_s=0.5, report_dir=str(tmp_path / "report-midloop")))
    deadline = time.monotonic() + 240
    while True:  # the run's first hugepage_step holds the lock (HostLock names itself in the file)
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stdout[-4000:]
        try:
            with open(lock) as f:
                if '"hugepage_step"' in f.read():
                    break
        except OSError:
            pass
        time.sleep(0.005)
    taken = None
    while taken is None:  # take it the moment that step lets go of it
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stdout[-4000:]
        try:
            taken = HostLock(lock, "test-holder", 0).__enter__()
        except LockTimeout:
            time.sleep(0.002)
    try:
        assert run.wait() == 0, run.stdout[-4000:]
        said = run.result(SKIP_SAID)["msg"]
        assert re.search(r"holds the host lock %s: pid %d \(test-holder\) since " % (re.escape(lock), os.getpid()),
                         said), said
        assert run.result("linux_mm.damon.hugepage : Skip this host while another run holds its host lock "
                          "(in the feedback loop)")["_status"] == "ok"
        slots, kds = record_agrees(emu.root, detect(emu.root, "6.12.117"), record)  # no pending intent
        running = [kds[int(k)] for k, s in slots.items() if s["name"] == "hugepage:app"]
        assert len(running) == 1 and running[0].running, slots
        assert [t["pid"] for t in running[0].context["targets"]] == [base["hugepage_apps"][0]["pid"]]
    finally:
        taken.__exit__(None, None, None)
    again = Run(tmp_path, "again", HUGEPAGE, dict(base, report_dir=str(tmp_path / "report-again")))
    assert again.wait() == 0, again.stdout[-4000:]
    assert again.result(TUNE)["_status"] == "ok"


def test_skip_covers_a_busy_lock_only_other_failures_still_fail(tmp_path, host):
    """With hugepage_lock_busy: skip, a step that fails for another reason under the lock (DAMON_RECLAIM runs and
    hugepage_exclusive_modules is fail) still fails the host."""
    unused, base = host
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_reclaim": True}}) as emu:
        run = Run(tmp_path, "exclusive", HUGEPAGE,
                  dict(base, hugepage_sysfs_root=emu.root, hugepage_lock_busy="skip", hugepage_lock_timeout_s=0,
                       report_dir=str(tmp_path / "report-exclusive")))
        assert run.wait() != 0
        tuned = run.result(TUNE)
        assert tuned["_status"] == "failed" and "DAMON_RECLAIM" in tuned["msg"], tuned
        assert tuned["lock_busy"] is False, tuned
        assert SKIP_SAID not in run.task_names()
