"""Fault injection: the Faults state machine directly, then through a FUSE mount."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.emulator.faults import Faults, parse_errno
from tests.unit.emulator.helpers import stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

STATE = "kernel/mm/damon/admin/kdamonds/0/state"
NR = "kernel/mm/damon/admin/kdamonds/nr_kdamonds"


def write(f: Faults, rel, data="1", pid=1234, kernel_errno=None):
    """One write through the fault layer as fs.write does it: the resulting errno or None."""
    index, code = f.before_write(rel, data, pid)
    if code is None:
        code = kernel_errno
        f.after_write(index, rel, data, pid, code)
    return code


# --- the state machine, no FUSE -------------------------------------------------

def test_parse_errno():
    assert parse_errno("EBUSY") == errno.EBUSY == parse_errno(errno.EBUSY) == parse_errno("16")
    assert parse_errno("erange") == errno.ERANGE
    for bad in ("ENOTANERRNO", 0, -1, True, None):
        with pytest.raises(ValueError):
            parse_errno(bad)


def test_inject_by_glob_count_after_and_value():
    f = Faults()
    f.command({"op": "inject", "path": "kernel/mm/damon/admin/kdamonds/*/state", "errno": "EBUSY", "count": 2})
    f.command({"op": "inject", "path": "/" + NR, "errno": "ENOMEM", "after": 1})
    f.command({"op": "inject", "path": "**/pid_target", "errno": "ERANGE", "value": "42"})
    assert write(f, STATE, "on") == errno.EBUSY
    assert write(f, STATE, "on") == errno.EBUSY
    assert write(f, STATE, "on") is None  # count exhausted
    assert write(f, NR) is None  # after=1 lets the first through
    assert write(f, NR) == write(f, NR) == errno.ENOMEM
    target = "kernel/mm/damon/admin/kdamonds/0/contexts/0/targets/0/pid_target"
    assert write(f, target, "42\n") == errno.ERANGE
    assert write(f, target, "43") is None
    assert write(f, "kernel/mm/damon/admin/kdamonds/1/state", "on") is None
    assert f.status()["write_count"] == 9
    assert [w["result"] for w in f.writes()][:3] == ["EBUSY", "EBUSY", "ok"]
    assert f.writes()[0]["fault"] == "inject" and f.writes()[2]["fault"] is None


def test_fail_after_counts_only_successful_writes():
    f = Faults()
    write(f, NR)  # before arming: not counted
    f.command({"op": "fail_after", "n": 2, "errno": "EIO"})
    assert write(f, NR) is None
    assert write(f, STATE, kernel_errno=errno.EINVAL) == errno.EINVAL  # a kernel failure is no success
    assert write(f, NR) is None
    assert write(f, NR) == errno.EIO
    assert write(f, STATE) == errno.EIO
    f.command({"op": "clear"})
    assert write(f, NR) is None
    assert f.status()["write_count"] == 7  # clear keeps the counter
    f.command({"op": "reset"})
    assert f.status()["write_count"] == 0 and f.writes() == []


def test_read_only():
    f = Faults()
    f.command({"op": "read_only", "on": True})
    assert f.check_open(STATE) == errno.EROFS
    assert write(f, STATE) == errno.EROFS
    f.command({"op": "read_only", "on": False})
    assert f.check_open(STATE) is None and write(f, STATE) is None


def test_latency_global_and_per_path():
    slept = []
    f = Faults(sleep=slept.append)
    f.command({"op": "latency", "seconds": 0.5})
    f.command({"op": "latency", "seconds": 2, "path": "*/state"})
    write(f, NR)
    write(f, STATE)
    assert slept == [0.5, 2.0]
    for bad in (-1, float("nan"), 10**6):
        with pytest.raises(ValueError):
            f.command({"op": "latency", "seconds": bad})


def test_kill_point_counts_from_arming_and_kills_the_writer():
    killed = []
    f = Faults(kill=lambda pid, sig: killed.append((pid, sig)))
    write(f, NR)
    f.command({"op": "kill_at", "n": 1})
    assert write(f, NR, pid=777) is None  # index 1: the 0th write after arming
    assert write(f, STATE, "on", pid=777) == errno.EINTR  # never takes effect
    assert killed == [(777, signal.SIGKILL)]
    assert write(f, STATE, "on", pid=777) is None  # fires once
    hit = f.status()["kill_points"][0]["hit"]
    assert hit["index"] == 2 and hit["pid"] == 777 and hit["path"] == STATE and hit["killed"] == 777


def test_hang_point_blocks_until_release():
    f = Faults()
    f.command({"op": "hang_at", "n": 0})
    results = []
    t = threading.Thread(target=lambda: results.append(write(f, STATE, "on")))
    t.start()
    for unused in range(500):
        if f.status()["hung"]:
            break
        t.join(0.01)
    assert f.status()["hung"][0]["path"] == STATE
    assert write(f, NR) is None  # other writes go on meanwhile
    f.command({"op": "release", "errno": "EBUSY"})
    t.join(10)
    assert results == [errno.EBUSY] and f.status()["hung"] == []


@pytest.mark.parametrize("cmd", [{"op": "nope"}, {"path": "x"}, {"op": "inject", "path": "x", "errno": "EFOO"},
                                 {"op": "inject", "path": "x", "errno": "EBUSY", "count": 0},
                                 {"op": "kill_at", "n": -1}, {"op": "kill_at", "n": 0, "signal": 999},
                                 {"op": "fail_after", "n": -3},
                                 {"op": "inject_read", "path": "x", "errno": "EBUSY", "value": "1"}])
def test_bad_commands(cmd):
    with pytest.raises((ValueError, KeyError)):
        Faults().command(cmd)


# --- through FUSE ----------------------------------------------------------------

WRITER = r"""
import os, sys
root = sys.argv[1]
for rel, value in [("kdamonds/nr_kdamonds", "1"), ("kdamonds/0/contexts/nr_contexts", "1"),
                   ("kdamonds/0/contexts/0/operations", "paddr"),
                   ("kdamonds/0/contexts/0/targets/nr_targets", "1")]:
    fd = os.open(os.path.join(root, "kernel/mm/damon/admin", rel), os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    except OSError as e:
        print("failed", rel, e.errno, flush=True)
    os.close(fd)
print("done", flush=True)
"""


def run_writer(m):
    return subprocess.run([sys.executable, "-c", WRITER, m.root], capture_output=True, text=True, timeout=30,
                          check=False)


def test_errno_injection_latency_and_counter_through_fuse(mount):
    m = mount("7.3")
    m.inject("kernel/mm/damon/admin/kdamonds/nr_kdamonds", "EBUSY", count=1)
    m.inject("kernel/mm/damon/admin/kdamonds/*/contexts/0/operations", errno.EINVAL, value="vaddr")
    assert m.write("kdamonds/nr_kdamonds", 1) == "EBUSY"
    assert m.read("kdamonds/nr_kdamonds") == "0"  # nothing happened
    m.must("kdamonds/nr_kdamonds", 1)
    m.must("kdamonds/0/contexts/nr_contexts", 1)
    assert m.write("kdamonds/0/contexts/0/operations", "vaddr") == "EINVAL"
    m.must("kdamonds/0/contexts/0/operations", "paddr")
    assert m.write("kdamonds/0/contexts/0/operations", "bogus") == "EINVAL"  # the kernel's own error
    assert m.write_count() == 6
    log = m.writes()
    assert [w["result"] for w in log] == ["EBUSY", "ok", "ok", "EINVAL", "ok", "EINVAL"]
    assert [w["fault"] for w in log] == ["inject", None, None, "inject", None, None]
    assert log[0]["pid"] == os.getpid() and log[0]["path"] == "kernel/mm/damon/admin/kdamonds/nr_kdamonds"
    m.set_write_latency(0.2, "kernel/mm/damon/admin/kdamonds/nr_kdamonds")
    assert m.faults()["path_latency"] == [{"path": "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "seconds": 0.2}]
    m.clear_faults()
    assert m.faults()["rules"] == [] and m.write_count() == 6
    m.reset_faults()
    assert m.write_count() == 0
    with pytest.raises(OSError) as e:
        m.inject("x", "ENOTANERRNO")
    assert e.value.errno == errno.EINVAL
    # writes to .emulator/ are not counted
    m.advance(1)
    assert m.write_count() == 0


def test_read_injection_fails_the_show_and_sysfs_io_retries_it(mount):
    from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import read_text

    m = mount("7.3")
    m.must("kdamonds/nr_kdamonds", 1)
    m.inject_read("kernel/mm/damon/admin/kdamonds/*/pid", "EBUSY", count=3)
    pid = os.path.join(m.root, "kernel/mm/damon/admin/kdamonds/0/pid")
    with pytest.raises(OSError) as e:
        with open(pid) as f:
            f.read()
    assert e.value.errno == errno.EBUSY
    assert m.read("kdamonds/0/state") == "off"  # other files read as usual
    assert read_text(pid, sleep=lambda s: None) == "-1"  # two more EBUSY, retried
    assert m.faults()["read_rules"][0]["fired"] == 3 and m.write_count() == 1  # reads get no index


def test_fail_after_and_read_only_through_fuse(mount):
    m = mount("7.3")
    m.fail_writes_after(2, "ENOMEM")
    out = run_writer(m)
    assert "failed kdamonds/0/contexts/0/operations %d" % errno.ENOMEM in out.stdout
    assert m.read("kdamonds/0/contexts/nr_contexts") == "1"
    assert m.read("kdamonds/0/contexts/0/operations") == "vaddr"
    m.clear_faults()
    m.read_only(True)
    assert m.write("kdamonds/nr_kdamonds", 2) == "open:EROFS"
    assert m.read("kdamonds/nr_kdamonds") == "1"  # reads still work
    m.read_only(False)
    m.must("kdamonds/nr_kdamonds", 2)


@pytest.mark.parametrize("k", [0, 2, 3])
def test_kill_writer_at_index(mount, k):
    """What a kill-point sweep does: count a run's writes, then kill it at write k."""
    m = mount("7.3")
    assert "done" in run_writer(m).stdout
    total = m.write_count()
    assert total == 4
    m.must("kdamonds/nr_kdamonds", 0)
    m.kill_writer_at(k)
    out = run_writer(m)
    assert out.returncode == -signal.SIGKILL and "done" not in out.stdout
    hit = m.faults()["kill_points"][0]["hit"]
    assert hit["index"] == total + 1 + k and hit["killed"] == hit["pid"] != os.getpid()
    # writes before k took effect, write k did not
    nr = m.read("kdamonds/nr_kdamonds")
    assert nr == ("0" if k == 0 else "1")
    if k == 3:
        assert m.read("kdamonds/0/contexts/0/operations") == "paddr"
        assert m.read("kdamonds/0/contexts/0/targets/nr_targets") == "0"
    assert m.writes()[-1]["fault"] == "kill point"


def test_hang_writer_at_index(mount, sleeper):
    m = mount("7.3", {"modules": {"damon_stat": False}})
    proc = sleeper()
    stage_vaddr(m, proc.pid)
    m.hang_writer_at(0)
    child = subprocess.Popen([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write('on')",
                              os.path.join(m.admin, "kdamonds/0/state")])
    try:
        hung = m.wait_hung(timeout=20)
        assert hung["path"].endswith("kdamonds/0/state") and hung["value"] == "on" and hung["pid"] == child.pid
        assert m.read("kdamonds/0/state") == "off"  # reads go on while the write hangs
        m.release()
        assert child.wait(timeout=20) == 0
        assert m.read("kdamonds/0/state") == "on"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
