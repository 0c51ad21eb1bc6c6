"""DAMON sysfs emulator: a FUSE ``/sys`` look-alike of a chosen kernel's DAMON and THP files.

Typical use in a test::

    from tests.emulator import EmulatedSysfs

    with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "targets": [...]}) as emu:
        damon = os.path.join(emu.root, "kernel/mm/damon/admin")
        ...                      # write kdamonds/nr_kdamonds, state, ... as on a real host
        emu.advance(5)           # 5 s of virtual time: stats and tried regions move
        emu.status()             # .emulator/status.json: live stats, huge-page bytes per range
        emu.inject("kernel/mm/damon/admin/kdamonds/*/state", "EBUSY", count=2)   # faults.py
        emu.kill_writer_at(3)    # SIGKILL whoever does the 4th write from now, before it lands

See README.md beside this file for the scenario format, the control files and what is
approximate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import scenario as scenario_mod
from .profiles import Profile

__all__ = ["EmulatedSysfs", "MultiHostSysfs", "build_kernel", "FOREIGN_PADDR_KDAMOND"]

FOREIGN_PADDR_KDAMOND = scenario_mod.FOREIGN_PADDR_KDAMOND
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_kernel(kernel="7.3", scenario=None, modules: Optional[dict] = None, speed=None):
    """The in-process emulated kernel (no FUSE): for unit tests of the model itself."""
    from .emulator import EmulatedKernel

    data = scenario_mod.load(scenario)
    if modules:
        data["modules"] = dict(data.get("modules", {}), **modules)
    if speed is not None:
        data["speed"] = speed
    emu = EmulatedKernel(Profile.for_kernel(kernel), data)
    enabled = [m for m, on in emu.modules.status().items() if on]
    if len(enabled) > 1:
        raise ValueError("only one exclusive DAMON module can run at a time, got %s" % enabled)
    with emu.lock:
        scenario_mod.apply_kdamonds(emu, data.get("kdamonds", []))
    return emu


def _mounted(path: str) -> bool:
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f if len(line.split()) > 1)


class EmulatedSysfs:
    """Run the emulator in a subprocess on a temporary FUSE mount (a context manager).

    ``root`` is a directory that looks like ``/sys``. Never hangs: start-up, every
    control operation and teardown have timeouts; teardown unmounts (``fusermount3
    -u``, then lazy ``-uz``), kills the process and removes the temporary directory,
    also when the body raised.
    """

    def __init__(self, kernel="7.3", scenario=None, mountpoint: Optional[str] = None,
                 start_timeout: float = 20.0, exclusive: Optional[dict] = None):
        self.kernel = str(kernel)
        self.scenario = scenario_mod.load(scenario)
        if exclusive:
            self.scenario["modules"] = dict(self.scenario.get("modules", {}), **exclusive)
        self._given_mountpoint = mountpoint
        self.start_timeout = start_timeout
        self.tmpdir: Optional[str] = None
        self.root: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self.log_path: Optional[str] = None

    # --- lifecycle ------------------------------------------------------------
    def __enter__(self) -> "EmulatedSysfs":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="damon-emu-")
        self.root = self._given_mountpoint or os.path.join(self.tmpdir, "sys")
        os.makedirs(self.root, exist_ok=True)
        scenario_path = os.path.join(self.tmpdir, "scenario.json")
        with open(scenario_path, "w") as f:
            json.dump(self.scenario, f)
        self.log_path = os.path.join(self.tmpdir, "emulator.log")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.emulator", "--kernel", self.kernel,
                 "--scenario", scenario_path, "--exit-with-parent"] + self._extra_args() + [self.root],
                cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        ready = os.path.join(self._ready_root(), ".emulator", "time")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited with %s: %s" % (self.proc.returncode, self._log_tail()))
            if _mounted(self.root) and os.path.exists(ready):
                return
            time.sleep(0.02)
        raise TimeoutError("emulator did not mount %s within %.0fs: %s"
                           % (self.root, self.start_timeout, self._log_tail()))

    def _extra_args(self) -> list:
        return []

    def _ready_root(self) -> str:
        return self.root

    def stop(self) -> None:
        if self.root and _mounted(self.root) and self.proc is not None and self.proc.poll() is None:
            try:  # release hung writes so their writers can exit and the mount can go
                self.clear_faults()
            except OSError:
                pass
        if self.root and _mounted(self.root):
            for args in (["fusermount3", "-u", self.root], ["fusermount3", "-uz", self.root]):
                try:
                    subprocess.run(args, timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                if not _mounted(self.root):
                    break
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        if self.root and _mounted(self.root):  # the process died without unmounting
            subprocess.run(["fusermount3", "-uz", self.root], timeout=10,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if self.tmpdir and not (self.root and _mounted(self.root)):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    # --- control files ------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def damon(self) -> str:
        """``<root>/kernel/mm/damon/admin``."""
        return self.path("kernel", "mm", "damon", "admin")

    def advance(self, seconds: float) -> None:
        with open(self.path(".emulator", "advance"), "w") as f:
            f.write("%r\n" % float(seconds))

    def time(self) -> float:
        with open(self.path(".emulator", "time")) as f:
            return float(f.read())

    def status(self) -> dict:
        with open(self.path(".emulator", "status.json")) as f:
            return json.load(f)

    def set_model(self, targets: list) -> None:
        """Replace the access model's targets (e.g. once a workload's pid is known)."""
        with open(self.path(".emulator", "model"), "w") as f:
            f.write(json.dumps(targets))

    def set_speed(self, speed: float) -> None:
        with open(self.path(".emulator", "speed"), "w") as f:
            f.write("%r\n" % float(speed))

    # --- fault injection (faults.py; README "Fault injection") -------------------------
    def fault(self, op: str, **args) -> None:
        """Send one command to ``.emulator/faults`` (ValueError-free: OSError EINVAL if bad)."""
        with open(self.path(".emulator", "faults"), "w") as f:
            f.write(json.dumps(dict(args, op=op)))

    def faults(self) -> dict:
        """The fault state: rules, latency, read_only, fail_after, kill points, ``hung``."""
        with open(self.path(".emulator", "faults")) as f:
            return json.load(f)

    def inject(self, path_glob: str, errno, count: Optional[int] = None, after: int = 0,
               value: Optional[str] = None) -> None:
        """Fail writes to files matching ``path_glob`` (relative to ``root``, fnmatch, ``*``
        crosses ``/``) with ``errno`` (number or name: "EBUSY"). ``count``: only that many
        times (None: always); ``after``: let that many matching writes through first;
        ``value``: only writes of this text (surrounding whitespace ignored)."""
        self.fault("inject", path=path_glob, errno=errno, count=count, after=after, value=value)

    def inject_read(self, path_glob: str, errno, count: Optional[int] = None, after: int = 0) -> None:
        """Fail reads of files matching ``path_glob`` with ``errno`` (as :meth:`inject` for writes);
        e.g. EBUSY on ``kdamonds/*/pid``, whose show takes DAMON's sysfs lock with mutex_trylock."""
        self.fault("inject_read", path=path_glob, errno=errno, count=count, after=after)

    def set_write_latency(self, seconds: float, path_glob: Optional[str] = None) -> None:
        """Sleep ``seconds`` (real time) before each write (matching ``path_glob``)."""
        self.fault("latency", seconds=seconds, path=path_glob)

    def fail_writes_after(self, n: int, errno="EIO") -> None:
        """Let ``n`` more writes succeed, then fail every write with ``errno``."""
        self.fault("fail_after", n=n, errno=errno)

    def read_only(self, on: bool = True) -> None:
        """Every write (and every open for writing) fails with EROFS."""
        self.fault("read_only", on=on)

    def kill_writer_at(self, n: int, sig: int = signal.SIGKILL, pid: Optional[int] = None,
                       errno=None) -> None:
        """The ``n``-th write from now (0 = the next one) never takes effect: its writer
        (or ``pid``) gets ``sig`` and the write fails (EINTR, or ``errno``)."""
        self.fault("kill_at", n=n, signal=int(sig), pid=pid, errno=errno)

    def hang_writer_at(self, n: int) -> None:
        """The ``n``-th write from now blocks before taking effect until :meth:`release`."""
        self.fault("hang_at", n=n)

    def wait_hung(self, timeout: float = 30.0) -> dict:
        """Wait until a write hangs at a hang point: its ``{index, pid, path, value}``.
        (The writer must be another process or thread: the hung write blocks it.)"""
        deadline = time.monotonic() + timeout
        while True:
            hung = self.faults()["hung"]
            if hung:
                return hung[0]
            if time.monotonic() > deadline:
                raise TimeoutError("no write reached a hang point within %.0fs" % timeout)
            time.sleep(0.02)

    def release(self, errno=None) -> None:
        """Let hung writes go on (``errno``: fail them with it instead)."""
        self.fault("release", errno=errno)

    def clear_faults(self) -> None:
        """Remove every fault (hung writes are released); counters and the log stay."""
        self.fault("clear")

    def reset_faults(self) -> None:
        """:meth:`clear_faults` and also zero the write counter and the write log."""
        self.fault("reset")

    def write_count(self) -> int:
        """Writes to emulated files since mount or :meth:`reset_faults` (failed ones too)."""
        return int(self.faults()["write_count"])

    def writes(self) -> list:
        """The write log: ``{index, path, value, pid, result, fault}`` per write."""
        with open(self.path(".emulator", "writes")) as f:
            return json.load(f)


class MultiHostSysfs(EmulatedSysfs):
    """``hosts`` independent emulated hosts served by ONE emulator process (multihost.py).

    ``root`` is the mount; ``host_root(name)`` (or ``roots``) is one host's ``/sys``
    look-alike, and ``host(name)`` an :class:`EmulatedSysfs` view of it whose control
    methods (``advance``, ``status``, ``inject``, ...) act on that host only. Every host
    starts from the same kernel and scenario; each has its own kdamonds, clock and model.
    """

    def __init__(self, hosts: int, kernel="7.3", scenario=None, mountpoint: Optional[str] = None,
                 start_timeout: float = 60.0, exclusive: Optional[dict] = None):
        from .multihost import host_names

        super().__init__(kernel, scenario, mountpoint, start_timeout, exclusive)
        self.names = host_names(hosts)

    def _extra_args(self) -> list:
        return ["--hosts", str(len(self.names))]

    def _ready_root(self) -> str:
        return self.host_root(self.names[-1])

    def host_root(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def roots(self) -> list:
        return [self.host_root(name) for name in self.names]

    def host(self, name: str) -> EmulatedSysfs:
        """A view of one host (not started; ``stop()`` on it does nothing)."""
        view = EmulatedSysfs(self.kernel, self.scenario)
        view.root = self.host_root(name)
        return view

    def clear_faults(self) -> None:  # stop(): release hung writes on every host
        for name in self.names:
            self.host(name).clear_faults()
