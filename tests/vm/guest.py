"""QEMU (TCG) guest lifecycle for the real-kernel test bed.

    from tests.vm.guest import Guest
    with Guest("damon-7.3") as g:          # builds/reuses the image, boots, waits for SSH
        r = g.ssh("uname -r")              # SSHResult(rc, stdout, stderr, seconds)
        g.write_inventory(tmp / "inventory.yml")
    # qemu is gone and the overlay deleted here, also after exceptions, SIGINT/SIGTERM,
    # and at interpreter exit.

Every run boots a fresh qcow2 overlay on top of the cached raw image, on a free loopback
port (``hostfwd=tcp:127.0.0.1:<port>-:22``).  The serial console goes to a log file that
is kept under ``<cache>/logs/`` (its tail is printed when a boot fails).

Attached guests (the default) run qemu as a child with PR_SET_PDEATHSIG=SIGKILL, so even
a SIGKILLed test runner leaves no qemu behind.  ``detach=True`` starts a daemonized qemu
that outlives the Python process (for molecule-style create/destroy in separate
processes); its state lives in ``<workdir>/state.json`` and ``Guest.from_state(dir)``
re-attaches to it.  CLI: ``python -m tests.vm.guest up|down|ssh|inventory``.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import images as _images
from ._common import (
    BOOT_MIN_FREE,
    BootError,
    NoFreePortError,
    SSHTimeoutError,
    VMError,
    cache_root,
    check_free_space,
    require_tools,
)

DEFAULT_BOOT_TIMEOUT = float(os.environ.get("LINUX_MM_DAMON_BOOT_TIMEOUT", "180"))
# nopcid pti=on: QEMU's TCG sets a PTE's accessed bit only when it refills its
# software TLB, which otherwise keeps a hot loop's translations for ever; without
# a TLB flush at every kernel entry DAMON sees every page of a hot region as idle
# (measured on 7.3: nr_accesses 0 of 20 without, 19-20 of 20 with). Real CPUs
# evict TLB entries by themselves.
KERNEL_APPEND = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 "
                 "transparent_hugepage=madvise panic=-1 nopcid pti=on")
SSH_OPTS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", "LogLevel=ERROR",
    "-o", "ServerAliveInterval=15",
    "-o", "ServerAliveCountMax=4",
]
MAX_KEPT_LOGS = 40

_LIVE: set = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


@dataclasses.dataclass
class SSHResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    command: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __iter__(self):  # rc, out, err = g.ssh(...)
        return iter((self.rc, self.stdout, self.stderr))


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on the loopback interface."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    except OSError as exc:
        raise NoFreePortError(
            f"no free TCP port on {host} for the guest's SSH forward ({exc}); stop other "
            "guests or services holding loopback ports, or widen net.ipv4.ip_local_port_range"
        ) from exc


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass
    os.setpgrp()  # keep terminal SIGINT away from qemu; we stop it ourselves


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pid_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stop_all(*_args) -> None:
    with _LIVE_LOCK:
        guests = list(_LIVE)
    for g in guests:
        try:
            g.stop()
        except Exception as exc:  # pragma: no cover - best effort at exit
            print(f"[guest] teardown of {g.name} failed: {exc}", file=sys.stderr)


def _on_signal(signum, frame):
    _stop_all()
    prev = _PREV_HANDLERS.get(signum)
    if callable(prev):
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_PREV_HANDLERS: dict = {}


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            _PREV_HANDLERS[sig] = signal.getsignal(sig)
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # pragma: no cover
            pass
    # SIGINT: Python raises KeyboardInterrupt, which runs __exit__/finally blocks.


def log_dir() -> Path:
    d = Path(os.environ.get("LINUX_MM_DAMON_LOG_DIR", cache_root() / "logs"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _prune_logs(d: Path) -> None:
    logs = sorted(d.glob("*.console.log"), key=lambda p: p.stat().st_mtime)
    for p in logs[:-MAX_KEPT_LOGS]:
        try:
            p.unlink()
        except OSError:
            pass


def sweep_stale(base: Path, min_age: float = 120.0) -> list:
    """Remove ``lmd-*`` work directories whose qemu is gone (left by a SIGKILLed runner).

    Directories younger than ``min_age`` seconds without a pidfile are left alone (another
    process may be booting them).  Returns the removed paths.
    """
    removed = []
    try:
        entries = list(Path(base).glob("lmd-*"))
    except OSError:
        return removed
    now = time.time()
    for d in entries:
        if not d.is_dir():
            continue
        try:
            pid = int((d / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            pid = None
        try:
            age = now - d.stat().st_mtime
        except OSError:
            continue
        if pid is not None and _pid_alive(pid) and "qemu" in _pid_cmdline(pid):
            continue
        if pid is None and age < min_age:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


class Guest:
    """One QEMU guest booted from a cached image on a throw-away qcow2 overlay."""

    def __init__(self, image_name: str = "damon-6.12", *, memory_mb: int = 2048, cpus: int = 2,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT, append: str = "",
                 image: "_images.Image | None" = None, detach: bool = False,
                 run_dir: str | None = None, qemu_args: tuple = (), control_master: bool = True,
                 boot_attempts: int | None = None):
        if image is None and image_name not in _images.RECIPES:
            raise VMError(f"unknown image {image_name!r}; known: {', '.join(_images.IMAGE_NAMES)}")
        self.name = image_name
        self.image = image
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.boot_timeout = boot_timeout
        self.append = append
        self.detach = detach
        self.run_dir = run_dir or os.environ.get("LINUX_MM_DAMON_RUN_DIR") or None
        self.qemu_args = tuple(qemu_args)
        self.control_master = control_master
        if boot_attempts is None:
            boot_attempts = int(os.environ.get("LINUX_MM_DAMON_BOOT_ATTEMPTS", "1") or 1)
        self.boot_attempts = max(1, boot_attempts)
        self.workdir: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self.console_log: Path | None = None
        self.boot_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._stopped = False

    # -- paths -------------------------------------------------------------
    @property
    def overlay(self) -> Path:
        return self.workdir / "overlay.qcow2"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "qemu.pid"

    @property
    def ssh_key(self) -> Path:
        return self.image.ssh_key

    @property
    def _control_path(self) -> Path:
        return self.workdir / "ssh.ctl"

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "Guest":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Guest":
        """Boot; a boot that times out or dies is retried ``boot_attempts`` times in all,
        each on a fresh overlay and port (``LINUX_MM_DAMON_BOOT_ATTEMPTS``, default 1)."""
        for attempt in range(1, self.boot_attempts + 1):
            try:
                return self._start_once()
            except (BootError, SSHTimeoutError) as exc:
                if attempt >= self.boot_attempts:
                    if attempt > 1:
                        raise type(exc)(f"{exc}\n(boot attempt {attempt} of {self.boot_attempts})") from exc
                    raise
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                print(f"[guest] {self.name}: boot attempt {attempt} of {self.boot_attempts} failed, "
                      f"retrying on a fresh overlay: {first}", file=sys.stderr, flush=True)
                self._reset()
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        """Forget a stopped attempt so ``_start_once`` can run again."""
        self.workdir = self.port = self.pid = self.console_log = self.boot_seconds = None
        self._proc = None
        self._stopped = False

    def _start_once(self) -> "Guest":
        tools = require_tools("qemu-system-x86_64", "qemu-img", "ssh")
        if self.image is None:
            self.image = _images.ensure(self.name)
        _install_handlers()
        base = Path(self.run_dir or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        sweep_stale(base)
        check_free_space(base, BOOT_MIN_FREE, f"the overlay of guest {self.name}")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"lmd-{self.name}-", dir=base))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.console_log = log_dir() / f"{self.name}-{stamp}-{os.getpid()}-{self.workdir.name[-6:]}.console.log"
        _prune_logs(self.console_log.parent)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            subprocess.run(
                [tools["qemu-img"], "create", "-q", "-f", "qcow2", "-b", str(self.image.rootfs),
                 "-F", "raw", str(self.overlay)],
                check=True, capture_output=True, text=True)
            t0 = time.monotonic()
            self._launch(tools["qemu-system-x86_64"])
            self._wait_for_ssh(t0)
            self.boot_seconds = round(time.monotonic() - t0, 2)
            self._save_state()
        except subprocess.CalledProcessError as exc:
            self.stop()
            raise VMError(f"`{' '.join(map(str, exc.cmd))}` failed: {exc.stderr}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _qemu_cmd(self, qemu: str, port: int) -> list:
        cmd = [
            qemu, "-accel", "tcg,thread=multi", "-cpu", "max",
            "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", f"{KERNEL_APPEND} {self.append}".strip(),
            "-drive", f"file={self.overlay},if=virtio,format=qcow2",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{self.console_log}",
            "-pidfile", str(self.pidfile),
            "-name", f"linux-mm-damon-{self.name}",
        ]
        if self.detach:
            cmd.append("-daemonize")
        return cmd + list(self.qemu_args)

    def _launch(self, qemu: str) -> None:
        last_err = ""
        for _attempt in range(4):
            port = free_port()
            cmd = self._qemu_cmd(qemu, port)
            errf = self.workdir / "qemu.stderr"
            with open(errf, "w") as err:
                if self.detach:
                    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, check=False)
                    rc = proc.returncode
                else:
                    self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err,
                                                  stderr=err, preexec_fn=_set_pdeathsig)
                    try:
                        rc = self._proc.wait(timeout=1.5)
                    except subprocess.TimeoutExpired:
                        rc = None
            last_err = errf.read_text(errors="replace").strip()
            if rc not in (None, 0):
                self._proc = None
                if "hostfwd" in last_err or "host forwarding" in last_err:
                    continue  # the port was taken between our probe and qemu: retry
                raise BootError(f"qemu-system-x86_64 exited at start (code {rc}): {last_err}\n"
                                f"command: {shlex.join(cmd)}")
            self.port = port
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    self.pid = int(self.pidfile.read_text().strip())
                    break
                except (OSError, ValueError):
                    time.sleep(0.1)
            if self.pid is None and self._proc is not None:
                self.pid = self._proc.pid
            if self.pid is None:
                raise BootError(f"qemu started but wrote no pidfile {self.pidfile}: {last_err}")
            return
        raise NoFreePortError(f"qemu could not bind a loopback port after 4 tries: {last_err}")

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def console_tail(self, lines: int = 60) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except (OSError, AttributeError):
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_for_ssh(self, t0: float) -> None:
        deadline = t0 + self.boot_timeout
        last = None
        while True:
            if not self._alive():
                err = ""
                try:
                    err = (self.workdir / "qemu.stderr").read_text(errors="replace").strip()
                except OSError:
                    pass
                raise BootError(
                    f"guest {self.name} died during boot after {time.monotonic() - t0:.0f}s "
                    f"(kernel panic or qemu error{': ' + err if err else ''}). "
                    f"Console log {self.console_log}, last lines:\n{self.console_tail()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                last = self._ssh_raw("true", timeout=min(20.0, max(remaining, 5.0)),
                                     connect_timeout=5, master=False)
                if last.rc == 0:
                    return
            except subprocess.TimeoutExpired:
                last = None
            time.sleep(1.0)
        console = self.console_tail()
        detail = f"last ssh error: {last.stderr.strip()}" if last is not None else "ssh never answered"
        if "login:" in console:
            raise SSHTimeoutError(
                f"guest {self.name} booted (console shows a login prompt) but SSH on "
                f"127.0.0.1:{self.port} did not accept key {self.ssh_key} within "
                f"{self.boot_timeout:.0f}s ({detail}). Rebuild the image "
                f"(python -m tests.vm.images build {self.name} --force) or raise "
                f"LINUX_MM_DAMON_BOOT_TIMEOUT. Console log {self.console_log}:\n{console}")
        raise BootError(
            f"guest {self.name} did not finish booting within {self.boot_timeout:.0f}s "
            f"({detail}). Under TCG a boot takes about 30 s on an idle 2-core machine; a "
            f"loaded host needs more (set LINUX_MM_DAMON_BOOT_TIMEOUT). Console log "
            f"{self.console_log}, last lines:\n{console}")

    def stop(self) -> None:
        """Kill qemu (by pidfile), delete the overlay and work directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.workdir is not None and self._control_path.exists():
            try:
                subprocess.run(["ssh", "-o", f"ControlPath={self._control_path}", "-O", "exit",
                                "guest"], capture_output=True, timeout=5, check=False)
            except (subprocess.TimeoutExpired, OSError):
                pass
        pid = self.pid
        if pid is None and self.workdir is not None:
            try:
                pid = int(self.pidfile.read_text().strip())
            except (OSError, ValueError):
                pid = None
        if pid is not None and _pid_alive(pid):
            cmdline = _pid_cmdline(pid)
            # Never signal a recycled pid: it must be our qemu, on our overlay.
            if "qemu" in cmdline and (self.workdir is None or str(self.workdir) in cmdline):
                for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        break
                    end = time.monotonic() + wait
                    while time.monotonic() < end:
                        if self._proc is not None:
                            if self._proc.poll() is not None:
                                break
                        elif not _pid_alive(pid):
                            break
                        time.sleep(0.05)
                    if not _pid_alive(pid):
                        break
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- state (detached guests) ------------------------------------------
    def _save_state(self) -> None:
        state = {
            "name": self.name, "pid": self.pid, "port": self.port,
            "image": str(self.image.path), "workdir": str(self.workdir),
            "console_log": str(self.console_log), "boot_seconds": self.boot_seconds,
            "ssh_key": str(self.ssh_key), "detach": self.detach,
        }
        (self.workdir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def from_state(cls, workdir: str | os.PathLike) -> "Guest":
        """Re-attach to a (detached) guest started by another process."""
        st = json.loads((Path(workdir) / "state.json").read_text())
        g = cls(st["name"], image=_images.Image(st["name"], Path(st["image"])),
                detach=st.get("detach", True))
        g.workdir = Path(st["workdir"])
        g.pid, g.port = st["pid"], st["port"]
        g.console_log = Path(st["console_log"])
        g.boot_seconds = st.get("boot_seconds")
        return g

    # -- ssh ---------------------------------------------------------------
    def ssh_base(self, connect_timeout: int = 10, master: bool | None = None) -> list:
        """The ssh command prefix (without the remote command) for this guest."""
        cmd = ["ssh", "-i", str(self.ssh_key), "-p", str(self.port), *SSH_OPTS,
               "-o", f"ConnectTimeout={connect_timeout}"]
        use_master = self.control_master if master is None else master
        if use_master and self.workdir is not None and len(str(self._control_path)) < 100:
            cmd += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_path}",
                    "-o", "ControlPersist=600"]
        return cmd + ["root@127.0.0.1"]

    def _ssh_raw(self, command: str, timeout: float, input: str | bytes | None = None,
                 connect_timeout: int = 10, master: bool | None = None) -> SSHResult:
        t = time.monotonic()
        binary = isinstance(input, bytes)
        proc = subprocess.run(self.ssh_base(connect_timeout, master) + ["--", command],
                              input=input, capture_output=True, timeout=timeout,
                              text=not binary, stdin=None if input is not None else subprocess.DEVNULL, check=False)
        out, err = proc.stdout, proc.stderr
        if binary:
            out, err = out.decode(errors="replace"), err.decode(errors="replace")
        return SSHResult(proc.returncode, out, err, round(time.monotonic() - t, 3), command)

    def ssh(self, command: str, timeout: float = 120, check: bool = False,
            input: str | bytes | None = None) -> SSHResult:
        """Run ``command`` (a shell string) as root in the guest."""
        if self.port is None or self._stopped:
            raise VMError(f"guest {self.name} is not running")
        try:
            res = self._ssh_raw(command, timeout, input)
        except subprocess.TimeoutExpired as exc:
            raise SSHTimeoutError(
                f"ssh command on guest {self.name} did not finish within {timeout}s: {command!r}"
            ) from exc
        if res.rc == 255 and not self._alive():
            raise BootError(f"guest {self.name} died (qemu exited) while running {command!r}; "
                            f"console log {self.console_log}:\n{self.console_tail()}")
        if check and res.rc != 0:
            raise VMError(f"`{command}` on guest {self.name} exited {res.rc}:\n"
                          f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}")
        return res

    def python(self, script: str, *args: str, timeout: float = 300, check: bool = False) -> SSHResult:
        """Run a Python script (text) with the guest's python3, passing ``args``."""
        return self.ssh("python3 - " + " ".join(shlex.quote(a) for a in args),
                        timeout=timeout, check=check, input=script)

    def put(self, data: bytes | str, remote: str, mode: int = 0o644) -> None:
        """Write ``data`` to the guest file ``remote``."""
        if isinstance(data, str):
            data = data.encode()
        q = shlex.quote(remote)
        self.ssh(f"cat > {q}.tmp && chmod {mode:o} {q}.tmp && mv {q}.tmp {q}",
                 input=data, check=True)

    def read(self, remote: str) -> str:
        return self.ssh(f"cat {shlex.quote(remote)}", check=True).stdout

    def uname(self) -> str:
        return self.ssh("uname -r", check=True).stdout.strip()

    # -- ansible -----------------------------------------------------------
    def inventory_vars(self) -> dict:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": " ".join(SSH_OPTS[:8]),
            "ansible_ssh_pipelining": True,
            "ansible_connection": "ssh",
            "linux_mm_damon_guest_image": self.name,
            "linux_mm_damon_guest_kernel": (self.image.kernel_release if self.image else ""),
        }

    def write_inventory(self, path: str | os.PathLike, host: str | None = None,
                        group: str = "guests") -> Path:
        """Write a YAML inventory with this guest as ``host`` in ``group``."""
        host = host or self.name.replace(".", "")
        inv = {"all": {"children": {group: {"hosts": {host: self.inventory_vars()}}}}}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import yaml  # noqa: PLC0415
            text = yaml.safe_dump(inv, default_flow_style=False, sort_keys=False)
        except ImportError:  # JSON is valid YAML
            text = json.dumps(inv, indent=2)
        path.write_text(text)
        return path


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.vm.guest")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="boot a detached guest; prints its state directory")
    up.add_argument("name", choices=_images.IMAGE_NAMES)
    up.add_argument("--inventory", help="also write an ansible inventory here")
    up.add_argument("--memory-mb", type=int, default=2048)
    up.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT)
    up.add_argument("--attempts", type=int, default=None,
                    help="boot attempts in all (default: $LINUX_MM_DAMON_BOOT_ATTEMPTS or 1)")
    up.add_argument("--state-file", help="also write the printed JSON here (for a later `down`)")
    down = sub.add_parser("down", help="stop a detached guest (no-op when it is gone)")
    down.add_argument("state_dir", help="the state directory, or the --state-file of `up`")
    sh = sub.add_parser("ssh", help="run a command in a detached guest")
    sh.add_argument("state_dir")
    sh.add_argument("command", nargs=argparse.REMAINDER)
    inv = sub.add_parser("inventory", help="write an inventory for a detached guest")
    inv.add_argument("state_dir")
    inv.add_argument("path")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            g = Guest(args.name, detach=True, memory_mb=args.memory_mb,
                      boot_timeout=args.boot_timeout, control_master=False,
                      boot_attempts=args.attempts)
            g.start()
            try:
                info = json.dumps({"state_dir": str(g.workdir), "port": g.port, "pid": g.pid,
                                   "boot_seconds": g.boot_seconds, "image": g.name,
                                   "kernel_release": g.image.kernel_release})
                if args.state_file:
                    Path(args.state_file).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.state_file).write_text(info + "\n")
                if args.inventory:
                    g.write_inventory(args.inventory)
            except BaseException:
                g.stop()  # nobody would know where this guest is
                raise
            with _LIVE_LOCK:
                _LIVE.discard(g)  # a detached guest outlives this process
            print(info)
        elif args.cmd == "down":
            state_dir = Path(args.state_dir)
            if state_dir.is_file():  # the --state-file of `up`
                try:
                    state_dir = Path(json.loads(state_dir.read_text())["state_dir"])
                except (ValueError, KeyError) as exc:
                    raise VMError(f"{args.state_dir} is not a state file written by `up`: {exc}") from exc
            if (state_dir / "state.json").exists():
                Guest.from_state(state_dir).stop()
        elif args.cmd == "ssh":
            g = Guest.from_state(args.state_dir)
            g.control_master = False
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            r = g.ssh(" ".join(cmd), timeout=600)
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
            return r.rc
        elif args.cmd == "inventory":
            Guest.from_state(args.state_dir).write_inventory(args.path)
    except VMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
