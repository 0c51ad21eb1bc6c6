# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host state under real ansible-playbook processes: overlapping runs, SIGKILL, a reboot, a read-only record.

Each case here failed before the host lock and the intent record (issue 8):
two runs at once both claimed slot 0, a kill after 'on' left a kdamond nobody
could manage, a record from before a reboot made us stop a stranger's kdamond.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ansible_env
from tests.emulator import EmulatedSysfs
from tests.helpers.host_state import record_agrees

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "kernel/mm/damon/admin/kdamonds"
KERNEL = "6.12.0"


def read(root, rel):
    with open(os.path.join(root, ADMIN, rel)) as f:
        return f.read().strip()


def write(root, rel, value):
    with open(os.path.join(root, ADMIN, rel), "w") as f:
        f.write(value)


@pytest.fixture
def record(tmp_path):
    directory = tmp_path / "rec"
    directory.mkdir(mode=0o700)
    return str(directory / "own.json")


def kdamond_args(emu, record, name, pid, threshold, state="running", pool_size=1):
    return dict(name=name, state=state, sysfs_root=emu.root, kernel_release=KERNEL, ownership_file=record,
                pool_size=pool_size, targets=[{"pid": pid}], lock_timeout_s=300,
                schemes=[{"action": "stat", "access_pattern": {"min_size": 2097152, "min_nr_accesses": threshold}}])


def playbook_file(tmp_path, name, tasks):
    path = tmp_path / ("%s.json" % name)
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return str(path)


def start_playbook(path, tmp_path, name):
    """An ansible-playbook process of its own; its results go to <name>.json (tests/conftest.py's callback)."""
    out = open(tmp_path / ("%s.out" % name), "w")
    env = ansible_env(PYTEST_ANSIBLE_JSON=tmp_path / ("%s.json" % name),
                      ANSIBLE_LOCAL_TEMP=tmp_path / (".ansible-local-%s" % name))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", json.dumps({"ansible_python_interpreter": sys.executable}), path]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            cwd=str(tmp_path))


def results(tmp_path, name):
    """Result dicts of every task (loop items flattened), in order."""
    data = json.loads((tmp_path / ("%s.json" % name)).read_text())
    out = []
    for task in data["tasks"]:
        res = task["hosts"]["localhost"]
        out.extend(res.get("results") or [res])
    return out


def check_record_agrees(emu, record):
    from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
    return record_agrees(emu.root, detect(emu.root, KERNEL), record)


def test_simultaneous_playbooks_lose_no_update_and_mix_no_configuration(
        emulator_trials, tmp_path, record, target_pids):
    """``runs`` (4) ansible-playbook processes started together, each ``emulator_trials`` trials of create/commit
    on its own kdamond, the odd ones removing theirs at the end, beside a foreign kdamond.

    Four runs hold every pairing two runs would (a keeper beside a remover, on adjacent slots) and more
    contention besides; a separate two-run case made the same assertions for 40 s of CPU (issue 11)."""
    runs = 4
    trials = emulator_trials
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        seed = playbook_file(tmp_path, "seed", [{"linux_mm.damon.kdamond": kdamond_args(
            emu, record, "seed", target_pids[0], 1, state="stopped", pool_size=runs + 2)}])
        assert start_playbook(seed, tmp_path, "seed").wait() == 0, (tmp_path / "seed.out").read_text()
        foreign = runs + 1  # the last idle slot: someone else starts a kdamond there
        for rel, value in (("contexts/nr_contexts", "1"), ("contexts/0/operations", "paddr"),
                           ("contexts/0/schemes/nr_schemes", "1"), ("contexts/0/schemes/0/action", "pageout"),
                           ("state", "on")):
            write(emu.root, "%d/%s" % (foreign, rel), value)
        foreign_pid = read(emu.root, "%d/pid" % foreign)

        procs = []
        for i in range(runs):
            tasks = [{"name": "trial", "loop": list(range(1, trials + 1)),
                      "linux_mm.damon.kdamond": dict(kdamond_args(emu, record, "run%d" % i, target_pids[i], 0),
                                                     schemes=[{"action": "stat", "access_pattern": {
                                                         "min_size": 2097152, "min_nr_accesses": "{{ item }}"}}])}]
            if i % 2:
                tasks.append({"name": "remove", "linux_mm.damon.kdamond": kdamond_args(
                    emu, record, "run%d" % i, target_pids[i], 0, state="absent")})
            procs.append(start_playbook(playbook_file(tmp_path, "run%d" % i, tasks), tmp_path, "run%d" % i))
        assert [p.wait(timeout=800) for p in procs] == [0] * runs, [
            (tmp_path / ("run%d.out" % i)).read_text()[-3000:] for i in range(runs)]

        slots, kds = check_record_agrees(emu, record)
        names = dict((s["name"], int(k)) for k, s in slots.items() if s["name"])
        assert sorted(names) == sorted(["seed"] + ["run%d" % i for i in range(runs) if i % 2 == 0]), slots
        for i in range(0, runs, 2):
            kd = kds[names["run%d" % i]]
            ctx = kd.context
            assert kd.running and [t["pid"] for t in ctx["targets"]] == [target_pids[i]], kd.describe()
            assert [s["access_pattern"]["min_nr_accesses"] for s in ctx["schemes"]] == [trials], ctx["schemes"]
        assert read(emu.root, "%d/pid" % foreign) == foreign_pid and str(foreign) not in slots
        for i in range(runs):  # every trial reported ok; the first of each made a change
            res = results(tmp_path, "run%d" % i)
            assert all(not r.get("failed") for r in res), [r.get("msg") for r in res if r.get("failed")]


@pytest.fixture
def emulator_trials():
    """Trials per concurrent run: 10 in ``make test-fast`` (each costs about a second of CPU per run);
    ``LINUX_MM_DAMON_CONCURRENCY_TRIALS=20`` (the count before issue 11) or more for a longer stress."""
    return int(os.environ.get("LINUX_MM_DAMON_CONCURRENCY_TRIALS") or 10)


def test_sigkill_of_ansible_playbook_at_a_write_then_rerun_converges(tmp_path, record, target_pids):
    """A real SIGKILL of the module process (the emulator kills the writer at write n): the re-run
    converges, and state: absent can still remove the kdamond. kill_at_from_end 1 is the 'on' write.

    The kill points share one emulator and one dry run that counts the writes (they were three
    parametrized tests repeating both, issue 11); each starts from an empty host and no record."""
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        args = kdamond_args(emu, record, "hot", target_pids[0], 4, pool_size=2)
        play = playbook_file(tmp_path, "apply", [{"linux_mm.damon.kdamond": args}])
        absent = playbook_file(tmp_path, "absent", [{"linux_mm.damon.kdamond": dict(args, state="absent")}])
        # the re-run, then the same task again in the same play (a module process of its own): nothing to change
        rerun_and_check = playbook_file(tmp_path, "rerun-and-check", [{"linux_mm.damon.kdamond": args}] * 2)

        assert start_playbook(play, tmp_path, "dry").wait() == 0
        total = emu.write_count()
        assert start_playbook(absent, tmp_path, "undo").wait() == 0
        for kill_at_from_end in (1, 2, 5):
            write(emu.root, "nr_kdamonds", "0")
            os.unlink(record)
            emu.reset_faults()

            emu.kill_writer_at(total - kill_at_from_end)
            name = "-%d" % kill_at_from_end
            assert start_playbook(play, tmp_path, "killed" + name).wait() != 0, kill_at_from_end
            emu.clear_faults()
            assert start_playbook(rerun_and_check, tmp_path, "rerun" + name).wait() == 0, (
                kill_at_from_end, (tmp_path / ("rerun%s.out" % name)).read_text()[-3000:])
            assert results(tmp_path, "rerun" + name)[1]["changed"] is False, kill_at_from_end
            slots, kds = check_record_agrees(emu, record)
            assert slots["0"]["name"] == "hot" and kds[0].running, kill_at_from_end
            assert start_playbook(absent, tmp_path, "gone" + name).wait() == 0, kill_at_from_end
            assert results(tmp_path, "gone" + name)[0]["changed"] and read(emu.root, "nr_kdamonds") == "0", \
                kill_at_from_end  # only our slots: all go


def test_a_record_from_before_a_reboot_never_stops_a_new_kdamond_with_an_old_pid(tmp_path, record, target_pids):
    """After a reboot a foreign kdamond got the pid our old record names: it is left alone."""
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        write(emu.root, "nr_kdamonds", "1")
        for rel, value in (("0/contexts/nr_contexts", "1"), ("0/contexts/0/operations", "paddr"), ("0/state", "on")):
            write(emu.root, rel, value)
        pid = int(read(emu.root, "0/pid"))
        with open(record, "w") as f:
            json.dump({"version": 2, "boot_id": "a-boot-before-this-one",
                       "slots": {"0": {"name": "hot", "pid": pid, "digest": None}}}, f)
        absent = playbook_file(tmp_path, "absent", [{"linux_mm.damon.kdamond": dict(
            kdamond_args(emu, record, "hot", target_pids[0], 4), state="absent")}])
        assert start_playbook(absent, tmp_path, "absent").wait() == 0
        res = results(tmp_path, "absent")[0]
        assert not res["changed"] and any("earlier boot" in w for w in res.get("warnings", [])), res
        assert read(emu.root, "0/state") == "on" and int(read(emu.root, "0/pid")) == pid
        assert json.load(open(record))["slots"] == {}


def test_a_read_only_record_fails_before_any_sysfs_write(tmp_path, record, target_pids):
    """The record's place cannot be written (here: its directory is a file system mounted read-only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root")
    directory = os.path.dirname(record)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,mode=700", "tmpfs", directory], check=True)
    try:
        with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
            play = playbook_file(tmp_path, "apply", [{"linux_mm.damon.kdamond": kdamond_args(
                emu, record, "hot", target_pids[0], 4)}])
            emu.reset_faults()
            assert start_playbook(play, tmp_path, "ro").wait() != 0
            res = results(tmp_path, "ro")[0]
            assert "%s.lock beside ownership_file: Read-only file system" % record in res["msg"], res["msg"]
            assert emu.write_count() == 0 and read(emu.root, "nr_kdamonds") == "0"
    finally:
        subprocess.run(["umount", directory], check=False)


def test_a_waiting_run_names_the_holder(tmp_path, record, target_pids):
    """A run that cannot get the host lock in lock_timeout_s fails and says who holds it."""
    with EmulatedSysfs(kernel="6.12", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        args = kdamond_args(emu, record, "hot", target_pids[0], 4)
        emu.hang_writer_at(0)
        holder = start_playbook(playbook_file(tmp_path, "holder", [{"linux_mm.damon.kdamond": args}]),
                                tmp_path, "holder")
        hung = emu.wait_hung(timeout=120)
        waiter = start_playbook(playbook_file(tmp_path, "waiter", [{"linux_mm.damon.kdamond": dict(
            args, name="other", lock_timeout_s=1)}]), tmp_path, "waiter")
        assert waiter.wait(timeout=120) != 0
        failed = results(tmp_path, "waiter")[0]
        msg = failed["msg"]
        assert "holds the host lock %s.lock: pid %d (kdamond) since " % (record, hung["pid"]) in msg, msg
        assert failed["lock_busy"] is True, failed
        emu.release()
        assert holder.wait(timeout=120) == 0
