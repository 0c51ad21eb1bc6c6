"""Process-level behaviour: vaddr auto-off, mounting and unmounting, the CLI, THP files."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.emulator import EmulatedSysfs, REPO_ROOT
from tests.unit.emulator.helpers import stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

K0 = "kdamonds/0"


def mounted(path) -> bool:
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_vaddr_kdamond_turns_off_when_its_processes_exit(mount, sleeper, kernel):
    m = mount(kernel, {"modules": {"damon_stat": False}})
    first, second = sleeper(), sleeper()
    stage_vaddr(m, first.pid)
    m.must(K0 + "/contexts/0/targets/nr_targets", 2)
    m.must(K0 + "/contexts/0/targets/0/pid_target", first.pid)
    m.must(K0 + "/contexts/0/targets/1/pid_target", second.pid)
    m.must(K0 + "/state", "on")
    first.kill()
    first.wait()
    m.advance(1)
    assert m.read(K0 + "/state") == "on"  # one target is still alive
    second.kill()
    second.wait()
    assert m.read(K0 + "/state") == "off"
    assert m.read(K0 + "/pid") == "-1"
    assert m.status()["kdamonds"][0]["stopped_reason"] == "all target processes exited"
    # the stopped ctx is kept: commands that need a running kdamond fail as on a stopped one
    assert m.write(K0 + "/state", "update_schemes_stats") == ("ECANCELED" if kernel == "7.3" else "EINVAL")


def test_paddr_kdamond_keeps_running(mount):
    m = mount("7.3", {"modules": {"damon_stat": False}})
    m.must("kdamonds/nr_kdamonds", 1)
    m.must(K0 + "/contexts/nr_contexts", 1)
    c0 = K0 + "/contexts/0"
    m.must(c0 + "/operations", "paddr")
    m.must(c0 + "/targets/nr_targets", 1)
    m.must(c0 + "/targets/0/regions/nr_regions", 1)
    m.must(c0 + "/targets/0/regions/0/start", 1 << 32)
    m.must(c0 + "/targets/0/regions/0/end", 1 << 33)
    m.must(K0 + "/state", "on")
    m.advance(5)
    assert m.read(K0 + "/state") == "on"


def test_unmount_leaves_nothing_behind():
    with EmulatedSysfs(kernel="7.3") as emu:
        root, tmpdir, pid = emu.root, emu.tmpdir, emu.proc.pid
        assert mounted(root)
    assert not mounted(root)
    assert not os.path.exists(tmpdir)
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_unmount_on_exception():
    with pytest.raises(RuntimeError):
        with EmulatedSysfs(kernel="6.12") as emu:
            root = emu.root
            raise RuntimeError("boom")
    assert not mounted(root)


def test_unmount_after_the_emulator_died():
    with EmulatedSysfs(kernel="7.3") as emu:
        root = emu.root
        emu.proc.kill()
        emu.proc.wait(timeout=10)
    assert not mounted(root)


def test_bad_scenario_fails_fast():
    with pytest.raises(RuntimeError, match="bad scenario"):
        with EmulatedSysfs(kernel="7.3", scenario={"kdamonds": [{"contexts": [{"operations": "bogus"}]}]}):
            pass


def test_cli_runs_in_the_foreground_until_unmounted():
    with tempfile.TemporaryDirectory() as tmp:
        scenario = os.path.join(tmp, "scenario.yaml")
        with open(scenario, "w") as f:
            f.write("speed: 0\nthp:\n  enabled: never\n")
        mnt = os.path.join(tmp, "sys")
        os.mkdir(mnt)
        proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--kernel", "7.3",
                                 "--scenario", scenario, "--exclusive", "damon_stat=N", mnt],
                                cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(os.path.join(mnt, "kernel/mm/damon/admin")):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            with open(os.path.join(mnt, "kernel/mm/transparent_hugepage/enabled")) as f:
                assert f.read() == "always madvise [never]\n"
            with open(os.path.join(mnt, "module/damon_stat/parameters/enabled")) as f:
                assert f.read() == "N\n"
            subprocess.run(["fusermount3", "-u", mnt], check=True, timeout=10)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt], timeout=10, check=False)


def test_thp_files(mount):
    m = mount("7.3")
    thp = os.path.join(m.root, "kernel/mm/transparent_hugepage")
    assert m.read(thp + "/enabled") == "always [madvise] never"
    assert m.read(thp + "/defrag") == "always defer defer+madvise [madvise] never"
    assert m.write(thp + "/enabled", "sometimes") == "EINVAL"
    m.must(thp + "/enabled", "always\n")
    assert m.read(thp + "/enabled") == "[always] madvise never"
    m.must(thp + "/defrag", "defer+madvise")
    assert m.read(thp + "/defrag") == "always defer [defer+madvise] madvise never"
    assert m.read(thp + "/hpage_pmd_size") == "2097152"
    assert m.write(thp + "/hpage_pmd_size", "4096") == "open:EACCES"
    assert m.write(thp + "/use_zero_page", "2") == "EINVAL"
    assert m.write(thp + "/khugepaged/max_ptes_none", "512") == "EINVAL"
    assert m.write(thp + "/khugepaged/pages_to_scan", "0") == "EINVAL"
    m.must(thp + "/khugepaged/pages_to_scan", "8192")
    assert m.read(thp + "/khugepaged/pages_to_scan") == "8192"
    assert m.read(thp + "/hugepages-2048kB/enabled") == "always [inherit] madvise never"
    assert m.status()["thp"]["enabled"] == "always"
