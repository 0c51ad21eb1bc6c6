"""Smoke tests of the QEMU test bed: every image boots, has the expected kernel and DAMON
presence, runs the hotcold workload and damo, and leaves nothing behind.

The smoke test of each image uses the session's shared guest of that kind (tests/vm/shared.py):
the conformance probe and the hugepage guest test run in the same boot. That the guest left no
qemu process, work directory or overlay is checked when the shared guest stops, after the last
test of its kind (a leftover fails that test's teardown); the other tests here check teardown
on an exception and on signals with guests of their own.

Skipped unless LINUX_MM_DAMON_GUEST_TESTS=1 (see tests/vm/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.vm.guest import Guest, _pid_alive
from tests.vm.shared import qemu_processes_on as _qemu_processes_on

pytestmark = [pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(1200)]

REPO_ROOT = Path(__file__).resolve().parents[2]

CASES = [
    ("damon-6.12", "6.12.", True),
    ("damon-7.3", "7.3.", True),
    ("no-damon", "6.1.", False),
]


@pytest.mark.parametrize("name,release_prefix,has_damon",
                         [pytest.param(*c, marks=pytest.mark.shares_guest(c[0])) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_guest_boots_and_runs_the_workload_damo_and_ansible(name, release_prefix, has_damon, tmp_path, shared_guest):
    g = shared_guest
    assert g.name == name
    assert g.overlay.exists() and _pid_alive(g.pid)
    print(f"{name}: boot-to-SSH {g.boot_seconds}s on port {g.port}")

    release = g.uname()
    assert release.startswith(release_prefix), release
    assert release == g.image.kernel_release

    r = g.ssh("test -d /sys/kernel/mm/damon/admin/kdamonds")
    assert (r.rc == 0) == has_damon, r
    if not has_damon:
        assert g.ssh("test -e /sys/kernel/mm/damon").rc != 0

    thp = g.read("/sys/kernel/mm/transparent_hugepage/enabled").strip()
    assert thp == "always [madvise] never"

    # The static workload: private anonymous hot/cold regions, JSON with exact ranges.
    g.ssh("/usr/local/bin/hotcold --hot-mb 16 --cold-mb 48 --daemonize "
          "--out /run/hotcold.json", check=True, timeout=120)
    info = json.loads(g.read("/run/hotcold.json"))
    assert info["hot"]["end"] - info["hot"]["start"] == 16 << 20
    assert info["cold"]["end"] - info["cold"]["start"] == 48 << 20
    assert info["hot"]["start"] % (2 << 20) == 0
    maps = g.read(f"/proc/{info['pid']}/maps")
    hot_vma = f"{info['hot']['start']:x}-{info['hot']['end']:x} rw-p"
    cold_vma = f"{info['cold']['start']:x}-{info['cold']['end']:x} rw-p"
    assert hot_vma in maps and cold_vma in maps, maps
    rollup = g.read(f"/proc/{info['pid']}/smaps_rollup")
    anon_kb = int(next(line.split()[1] for line in rollup.splitlines()
                       if line.startswith("Anonymous:")))
    assert anon_kb >= (16 + 48) * 1024
    assert g.ssh(f"kill {info['pid']}").rc == 0

    # damo from the PyPI wheel runs with the guest's python3.
    r = g.ssh("damo version", timeout=120)
    assert r.rc == 0 and r.stdout.strip() == "3.4.3", r

    # The inventory works for ansible (pipelining, key, interpreter).
    inv = g.write_inventory(tmp_path / "inventory.yml")
    ansible = Path(sys.executable).with_name("ansible")
    if ansible.exists():
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False")
        p = subprocess.run([str(ansible), "all", "-i", str(inv), "-m", "ansible.builtin.ping"],
                           capture_output=True, text=True, timeout=300, env=env, check=False)
        assert p.returncode == 0 and "pong" in p.stdout, p.stdout + p.stderr
    # workdir, overlay and qemu gone: checked when the shared guest stops (tests/vm/shared.py)


def test_teardown_on_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with Guest("damon-6.12") as g:
            workdir, pid = g.workdir, g.pid
            raise RuntimeError("boom")
    assert not workdir.exists()
    assert not _pid_alive(pid)
    assert _qemu_processes_on(workdir) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_teardown_on_signal(sig, tmp_path):
    """A test runner killed by SIGTERM/SIGINT while its guest boots leaves no qemu/overlay.

    The signal arrives as soon as the real qemu runs (during the SSH wait, the longest
    phase of every boot), so the test costs seconds, not a full boot.
    """
    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from tests.vm.guest import Guest
        with Guest("damon-6.12", run_dir={str(run_dir)!r}, boot_attempts=1) as g:
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        pid = workdir = None
        while pid is None:
            assert proc.poll() is None, "guest runner exited early"
            assert time.monotonic() < deadline, "qemu did not start"
            for pidfile in run_dir.glob("lmd-damon-6.12-*/qemu.pid"):
                try:
                    pid, workdir = int(pidfile.read_text().strip()), pidfile.parent
                except ValueError:
                    pass
            time.sleep(0.2)
        time.sleep(1.0)
        assert _pid_alive(pid) and "qemu" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    end = time.monotonic() + 30
    while pid is not None and _pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _pid_alive(pid)
    assert not workdir.exists()
    assert _qemu_processes_on(workdir) == []
