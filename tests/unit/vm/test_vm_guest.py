"""Fast tests of the guest lifecycle with stub qemu/ssh binaries: boot failures, SSH
timeouts, port retries, teardown, inventory.  No real VM is started."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.vm import guest as guest_mod
from tests.vm import images
from tests.vm._common import BootError, NoFreePortError, SSHTimeoutError, VMError

STUB_QEMU = textwrap.dedent("""\
    #!{python}
    import os, sys, time
    args = sys.argv[1:]
    mode = os.environ.get("STUB_QEMU_MODE", "hang")
    def arg(flag):
        return args[args.index(flag) + 1]
    counter = os.environ.get("STUB_QEMU_COUNTER")
    if mode == "hostfwd" and counter:
        n = int(open(counter).read() or 0) if os.path.exists(counter) else 0
        open(counter, "w").write(str(n + 1))
        if n < int(os.environ.get("STUB_QEMU_FAILS", "1")):
            sys.stderr.write("qemu-system-x86_64: Could not set up host forwarding rule 'tcp:...'\\n")
            sys.exit(1)
    if mode == "fail":
        sys.stderr.write("qemu-system-x86_64: could not load kernel\\n")
        sys.exit(1)
    log = arg("-serial")[len("file:"):]
    with open(arg("-pidfile"), "w") as f:
        f.write(str(os.getpid()))
    with open(log, "w") as f:
        f.write("[    0.000000] Linux version stub\\n")
        if mode == "login":
            f.write("Debian GNU/Linux 13 damon612 ttyS0\\n\\ndamon612 login: \\n")
        if mode == "panic":
            f.write("Kernel panic - not syncing: VFS: Unable to mount root fs\\n")
    if mode == "panic":
        sys.exit(0)
    time.sleep(300)
""")

STUB_SSH = textwrap.dedent("""\
    #!{python}
    import os, sys
    args = sys.argv[1:]
    if "-O" in args:
        sys.exit(0)
    if os.environ.get("STUB_SSH_MODE", "refuse") == "refuse":
        sys.stderr.write("ssh: connect to host 127.0.0.1 port 2222: Connection refused\\n")
        sys.exit(255)
    data = sys.stdin.read() if not sys.stdin.isatty() else ""
    sys.stdout.write("CMD:" + args[-1] + "\\n" + data)
    sys.exit(0)
""")

STUB_QEMU_IMG = textwrap.dedent("""\
    #!{python}
    import sys
    open(sys.argv[-1], "w").write("qcow2 stub")
""")


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _write_exe(bindir / "qemu-system-x86_64", STUB_QEMU)
    _write_exe(bindir / "qemu-img", STUB_QEMU_IMG)
    _write_exe(bindir / "ssh", STUB_SSH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LINUX_MM_DAMON_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run.mkdir()
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    for f in ("rootfs.raw", "vmlinuz", "initrd.img", "id_ed25519", "id_ed25519.pub"):
        (img_dir / f).write_text("x")
    (img_dir / "manifest.json").write_text('{"kernel_release": "6.12.0-stub", "key": "k"}')
    img = images.Image("damon-6.12", img_dir)
    return {"run": run, "image": img, "tmp": tmp_path}


def _guest(stubs, **kw):
    kw.setdefault("boot_timeout", 3)
    return guest_mod.Guest("damon-6.12", image=stubs["image"], run_dir=str(stubs["run"]), **kw)


def _leftovers(run: Path) -> list:
    return sorted(p.name for p in run.iterdir())


def test_boot_timeout_reports_console_and_cleans_up(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "hang")
    g = _guest(stubs)
    with pytest.raises(BootError) as exc:
        g.start()
    msg = str(exc.value)
    assert "did not finish booting within 3s" in msg
    assert "LINUX_MM_DAMON_BOOT_TIMEOUT" in msg
    assert "Linux version stub" in msg  # console tail
    assert "Connection refused" in msg
    assert not guest_mod._pid_alive(g.pid)
    assert _leftovers(stubs["run"]) == []
    assert g.console_log.exists()  # the console log is kept


def test_ssh_timeout_when_console_shows_login(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "login")
    g = _guest(stubs)
    with pytest.raises(SSHTimeoutError, match="login prompt") as exc:
        g.start()
    assert "--force" in str(exc.value)
    assert _leftovers(stubs["run"]) == []
    assert not guest_mod._pid_alive(g.pid)


def test_guest_dying_during_boot(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "panic")
    g = _guest(stubs, boot_timeout=30)
    t = time.monotonic()
    with pytest.raises(BootError, match="died during boot") as exc:
        g.start()
    assert time.monotonic() - t < 20
    assert "Kernel panic" in str(exc.value)
    assert _leftovers(stubs["run"]) == []


def test_qemu_start_failure(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "fail")
    with pytest.raises(BootError, match="could not load kernel"):
        _guest(stubs).start()
    assert _leftovers(stubs["run"]) == []


def test_port_race_is_retried(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "hostfwd")
    monkeypatch.setenv("STUB_QEMU_COUNTER", str(stubs["tmp"] / "count"))
    monkeypatch.setenv("STUB_QEMU_FAILS", "2")
    monkeypatch.setenv("STUB_SSH_MODE", "ok")
    with _guest(stubs) as g:
        assert g.port and guest_mod._pid_alive(g.pid)
    assert (stubs["tmp"] / "count").read_text() == "3"


def test_port_race_gives_up(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "hostfwd")
    monkeypatch.setenv("STUB_QEMU_COUNTER", str(stubs["tmp"] / "count"))
    monkeypatch.setenv("STUB_QEMU_FAILS", "99")
    with pytest.raises(NoFreePortError, match="after 4 tries"):
        _guest(stubs).start()
    assert _leftovers(stubs["run"]) == []


def test_running_guest_ssh_put_inventory_and_teardown(stubs, monkeypatch, tmp_path):
    monkeypatch.setenv("STUB_QEMU_MODE", "hang")
    monkeypatch.setenv("STUB_SSH_MODE", "ok")
    with _guest(stubs) as g:
        pid, workdir = g.pid, g.workdir
        assert workdir.parent == stubs["run"] and g.overlay.exists()
        assert (workdir / "state.json").exists()
        r = g.ssh("uname -r")
        assert r.ok and r.stdout.startswith("CMD:uname -r")
        rc, out, _err = g.ssh("true")
        assert rc == 0
        g.put("hello", "/tmp/x")
        r = g.python("print(1)", "--flag")
        assert "CMD:python3 - --flag" in r.stdout and "print(1)" in r.stdout
        inv = yaml.safe_load(g.write_inventory(tmp_path / "inv" / "hosts.yml").read_text())
        host = inv["all"]["children"]["guests"]["hosts"]["damon-612"]
        assert host["ansible_host"] == "127.0.0.1" and host["ansible_port"] == g.port
        assert host["ansible_python_interpreter"] == "/usr/bin/python3"
        assert host["ansible_ssh_pipelining"] is True
        assert host["ansible_ssh_private_key_file"] == str(stubs["image"].ssh_key)
        assert "StrictHostKeyChecking=no" in host["ansible_ssh_common_args"]
        # Re-attaching from the state file sees the same guest.
        again = guest_mod.Guest.from_state(workdir)
        assert (again.pid, again.port) == (g.pid, g.port)
    assert not guest_mod._pid_alive(pid)
    assert not workdir.exists()
    with pytest.raises(VMError, match="not running"):
        g.ssh("true")
    g.stop()  # idempotent


def test_teardown_on_exception_inside_with(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "hang")
    monkeypatch.setenv("STUB_SSH_MODE", "ok")
    with pytest.raises(KeyboardInterrupt):
        with _guest(stubs) as g:
            pid = g.pid
            raise KeyboardInterrupt
    assert not guest_mod._pid_alive(pid)
    assert _leftovers(stubs["run"]) == []


def test_stop_all_at_exit(stubs, monkeypatch):
    monkeypatch.setenv("STUB_QEMU_MODE", "hang")
    monkeypatch.setenv("STUB_SSH_MODE", "ok")
    g = _guest(stubs).start()
    assert g in guest_mod._LIVE
    guest_mod._stop_all()
    assert not guest_mod._pid_alive(g.pid)
    assert g not in guest_mod._LIVE


def test_stop_never_kills_an_unrelated_pid(stubs, tmp_path):
    g = _guest(stubs)
    g.workdir = tmp_path / "wd"
    g.workdir.mkdir()
    g.pid = os.getpid()  # not a qemu: stop() must leave it alone
    g.stop()
    assert guest_mod._pid_alive(os.getpid())


def test_sweep_stale_removes_dead_workdirs(stubs, tmp_path):
    run = stubs["run"]
    dead = run / "lmd-damon-6.12-dead"
    dead.mkdir()
    (dead / "qemu.pid").write_text("999999999")
    young = run / "lmd-damon-6.12-young"
    young.mkdir()  # no pidfile yet, just created: another process may be booting it
    old = run / "lmd-damon-6.12-old"
    old.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    other = run / "unrelated"
    other.mkdir()
    removed = guest_mod.sweep_stale(run)
    assert sorted(p.name for p in removed) == ["lmd-damon-6.12-dead", "lmd-damon-6.12-old"]
    assert young.exists() and other.exists()


def test_unknown_image_name():
    with pytest.raises(VMError, match="unknown image"):
        guest_mod.Guest("nope")


def test_qemu_command_line(stubs):
    g = _guest(stubs)
    g.workdir = stubs["tmp"] / "wd"
    g.console_log = stubs["tmp"] / "console.log"
    cmd = g._qemu_cmd("qemu-system-x86_64", 2222)
    joined = " ".join(cmd)
    assert "-accel tcg,thread=multi -cpu max" in joined
    assert "-m 2048 -smp 2" in joined
    assert "transparent_hugepage=madvise" in joined and "console=ttyS0" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined
    assert f"file={g.workdir}/overlay.qcow2,if=virtio,format=qcow2" in joined
    assert "-daemonize" not in cmd
    g.detach = True
    assert "-daemonize" in g._qemu_cmd("qemu-system-x86_64", 2222)


def test_boot_is_retried_then_fails_with_the_attempt_count(stubs, monkeypatch, capsys):
    monkeypatch.setenv("STUB_QEMU_MODE", "hang")
    g = _guest(stubs, boot_timeout=2, boot_attempts=2)
    with pytest.raises(BootError, match="boot attempt 2 of 2") as exc:
        g.start()
    assert "did not finish booting within 2s" in str(exc.value)
    assert "boot attempt 1 of 2 failed, retrying on a fresh overlay" in capsys.readouterr().err
    assert _leftovers(stubs["run"]) == []  # both attempts cleaned up
    assert not guest_mod._pid_alive(g.pid)


def test_boot_retry_succeeds_on_a_fresh_overlay(stubs, monkeypatch, tmp_path):
    # The first qemu "panics" at once, the second one boots: the guest comes up.
    flag = tmp_path / "first-done"
    real_launch = guest_mod.Guest._launch

    def launch(self, qemu):
        os.environ["STUB_QEMU_MODE"] = "hang" if flag.exists() else "panic"
        flag.touch()
        return real_launch(self, qemu)

    monkeypatch.setenv("STUB_QEMU_MODE", "panic")
    monkeypatch.setenv("STUB_SSH_MODE", "ok")
    monkeypatch.setattr(guest_mod.Guest, "_launch", launch)
    with _guest(stubs, boot_timeout=10, boot_attempts=2) as g:
        assert guest_mod._pid_alive(g.pid) and g.ssh("true").ok
        assert _leftovers(stubs["run"]) == [g.workdir.name]  # the failed attempt left nothing
    assert _leftovers(stubs["run"]) == []


def test_boot_attempts_from_the_environment(monkeypatch, stubs):
    monkeypatch.setenv("LINUX_MM_DAMON_BOOT_ATTEMPTS", "3")
    assert _guest(stubs).boot_attempts == 3
    monkeypatch.delenv("LINUX_MM_DAMON_BOOT_ATTEMPTS")
    assert _guest(stubs).boot_attempts == 1
