"""Fault injection for the emulated sysfs: failing, slow, read-only and killed writes.

Every ``write(2)`` to an emulated file outside ``.emulator/`` gets a **write index**
(0, 1, 2, ... since mount or the last ``reset``) before anything else happens. Then,
in this order:

1. a pending *kill point* whose index is reached fires: ``kill`` sends a signal
   (SIGKILL by default) to the writing process (FUSE's caller pid) and fails the write
   with EINTR, so it never takes effect; ``hang`` blocks the write (without holding
   the kernel lock) until the test releases it, then lets it proceed or fail;
2. write latency (global seconds, or per path glob) is slept, outside the kernel lock;
3. read-only mode fails the write with EROFS (opening a file for writing fails too);
4. "fail after N": once N writes succeeded since it was armed, every write fails;
5. per-path injection rules (path glob, optional exact value, errno, count, after);
6. otherwise the kernel's own store runs (and may fail with its own errno).

Reads can fail too: ``inject_read`` rules (path glob, errno, count, after) fail the
``read(2)`` that would run a file's show, as a kdamond's ``pid`` show does with EBUSY
while a kdamond holds DAMON's sysfs lock in its callbacks. Reads get no index and are
not logged.

Paths and globs are relative to the emulated root (``kernel/mm/damon/admin/...``,
``module/damon_stat/parameters/enabled``); ``*`` also matches ``/`` (fnmatch).
Indices given to kill points and ``fail_after`` count from the moment they are armed:
``kill_at(0)`` is the very next write.

The test controls all of it through ``.emulator/faults`` (write one JSON command, read
the state) or the wrappers on :class:`tests.emulator.EmulatedSysfs`.
"""

from __future__ import annotations

import errno as errno_mod
import fnmatch
import os
import signal as signal_mod
import threading
import time
from typing import Optional

MAX_LOG = 20000
MAX_LATENCY_S = 600.0


def parse_errno(value) -> int:
    """``16``, ``"16"`` or ``"EBUSY"`` -> 16; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("errno must be a number or a name, got %r" % (value,))
    if isinstance(value, int):
        code = value
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    elif isinstance(value, str) and hasattr(errno_mod, value.strip().upper()):
        code = getattr(errno_mod, value.strip().upper())
    else:
        raise ValueError("unknown errno %r" % (value,))
    if code <= 0 or code not in errno_mod.errorcode:
        raise ValueError("unknown errno %r" % (value,))
    return code


def _name(code: Optional[int]) -> str:
    return "ok" if code is None else errno_mod.errorcode.get(code, str(code))


def _seconds(value) -> float:
    s = float(value)
    if not 0.0 <= s <= MAX_LATENCY_S:  # also refuses NaN
        raise ValueError("latency must be within 0..%g s, got %r" % (MAX_LATENCY_S, value))
    return s


class _Rule:
    def __init__(self, glob: str, code: int, count: Optional[int], after: int, value: Optional[str]):
        self.glob, self.code, self.count, self.after, self.value = glob.lstrip("/"), code, count, after, value
        self.seen = 0
        self.fired = 0

    def matches(self, rel: str, data: str) -> bool:
        if not fnmatch.fnmatchcase(rel, self.glob):
            return False
        return self.value is None or data.strip() == self.value.strip()

    @property
    def spent(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def to_dict(self) -> dict:
        return {"path": self.glob, "errno": _name(self.code), "count": self.count, "after": self.after,
                "value": self.value, "seen": self.seen, "fired": self.fired}


class _KillPoint:
    def __init__(self, index: int, action: str, sig: int, pid: Optional[int], fail: Optional[int]):
        self.index, self.action, self.sig, self.pid, self.fail = index, action, sig, pid, fail
        self.release = threading.Event()
        self.release_errno: Optional[int] = None
        self.hit: Optional[dict] = None

    def to_dict(self) -> dict:
        return {"index": self.index, "action": self.action, "signal": self.sig, "pid": self.pid,
                "hit": self.hit}


class Faults:
    """The fault state of one mount. Thread-safe; never holds its lock while sleeping."""

    def __init__(self, kill=os.kill, sleep=time.sleep):
        self._lock = threading.Lock()
        self._kill, self._sleep = kill, sleep
        self._reset_locked(keep_log=False)

    def _reset_locked(self, keep_log: bool) -> None:
        self.rules: list = []
        self.read_rules: list = []
        self.latency = 0.0
        self.path_latency: list = []  # (glob, seconds); the last matching one wins
        self.read_only = False
        self.fail_after: Optional[tuple] = None  # (n, errno)
        self.successes = 0  # successful writes since fail_after was armed
        self.kill_points: list = []
        if not keep_log:
            self.count = 0
            self.log: list = []

    # --- configuration (commands from .emulator/faults) --------------------------
    def command(self, cmd: dict) -> None:
        """Apply one command; ValueError on a bad one (the control file says EINVAL)."""
        if not isinstance(cmd, dict) or "op" not in cmd:
            raise ValueError("a fault command is a JSON object with an 'op'")
        op = cmd["op"]
        with self._lock:
            if op in ("inject", "inject_read"):
                count = cmd.get("count")
                if count is not None and int(count) < 1:
                    raise ValueError("count must be >= 1 or null")
                after = int(cmd.get("after", 0))
                if after < 0:
                    raise ValueError("after must be >= 0")
                value = cmd.get("value")
                if op == "inject_read" and value is not None:
                    raise ValueError("a read rule has no value")
                rule = _Rule(str(cmd["path"]), parse_errno(cmd["errno"]), None if count is None else int(count),
                             after, None if value is None else str(value))
                (self.rules if op == "inject" else self.read_rules).append(rule)
            elif op == "latency":
                seconds = _seconds(cmd.get("seconds", 0))
                if cmd.get("path"):
                    self.path_latency.append((str(cmd["path"]).lstrip("/"), seconds))
                else:
                    self.latency = seconds
            elif op == "fail_after":
                n = int(cmd["n"])
                if n < 0:
                    raise ValueError("n must be >= 0")
                self.fail_after = (n, parse_errno(cmd.get("errno", "EIO")))
                self.successes = 0
            elif op == "read_only":
                self.read_only = bool(cmd.get("on", True))
            elif op in ("kill_at", "hang_at"):
                n = int(cmd["n"])
                if n < 0:
                    raise ValueError("n must be >= 0")
                sig = int(cmd.get("signal", signal_mod.SIGKILL))
                if sig not in {s.value for s in signal_mod.Signals}:
                    raise ValueError("unknown signal %r" % sig)
                pid = cmd.get("pid")
                fail = cmd.get("errno")
                self.kill_points.append(_KillPoint(
                    self.count + n, "kill" if op == "kill_at" else "hang", sig,
                    None if pid is None else int(pid), None if fail is None else parse_errno(fail)))
            elif op == "release":
                code = cmd.get("errno")
                for kp in self.kill_points:
                    if kp.action == "hang" and kp.hit is not None and not kp.release.is_set():
                        kp.release_errno = None if code is None else parse_errno(code)
                        kp.release.set()
            elif op == "clear":
                self._release_all_locked()
                self._reset_locked(keep_log=True)
            elif op == "reset":
                self._release_all_locked()
                self._reset_locked(keep_log=False)
            else:
                raise ValueError("unknown fault op %r" % (op,))

    def _release_all_locked(self) -> None:
        for kp in self.kill_points:
            kp.release.set()

    # --- the read path ------------------------------------------------------------
    def before_read(self, rel: str) -> Optional[int]:
        """Errno for a read(2) that would run ``rel``'s show, or None."""
        with self._lock:
            return self._first_firing_locked(self.read_rules, rel.lstrip("/"), "")

    @staticmethod
    def _first_firing_locked(rules: list, rel: str, data: str) -> Optional[int]:
        for rule in rules:
            if rule.spent or not rule.matches(rel, data):
                continue
            rule.seen += 1
            if rule.seen <= rule.after:
                continue
            rule.fired += 1
            return rule.code
        return None

    # --- the write path ------------------------------------------------------------
    def check_open(self, rel: str) -> Optional[int]:
        """Errno for opening an emulated file for writing (read-only mode), or None."""
        return errno_mod.EROFS if self.read_only else None

    def before_write(self, rel: str, data: str, pid: int) -> tuple:
        """(index, errno or None). Runs kill points and latency; call without the kernel lock."""
        rel = rel.lstrip("/")
        with self._lock:
            index = self.count
            self.count += 1
            kp = next((k for k in self.kill_points if k.index == index and k.hit is None), None)
            if kp is not None:
                kp.hit = {"index": index, "pid": pid, "path": rel, "value": data, "time": time.time()}
            latency = self.latency
            for glob, seconds in self.path_latency:
                if fnmatch.fnmatchcase(rel, glob):
                    latency = seconds
        if kp is not None:
            code = self._fire(kp, pid)
            if code is not None:
                return index, self._log(index, rel, data, pid, code, "kill point")
        if latency:
            self._sleep(latency)
        with self._lock:
            if self.read_only:
                return index, self._log_locked(index, rel, data, pid, errno_mod.EROFS, "read-only")
            if self.fail_after is not None and self.successes >= self.fail_after[0]:
                return index, self._log_locked(index, rel, data, pid, self.fail_after[1], "fail after")
            code = self._first_firing_locked(self.rules, rel, data)
            if code is not None:
                return index, self._log_locked(index, rel, data, pid, code, "inject")
        return index, None

    def _fire(self, kp: _KillPoint, writer: int) -> Optional[int]:
        if kp.action == "kill":
            victim = kp.pid if kp.pid is not None else writer
            if victim and victim > 1:
                try:
                    self._kill(victim, kp.sig)
                    kp.hit["killed"] = victim
                except OSError as e:
                    kp.hit["kill_error"] = _name(e.errno)
            return kp.fail if kp.fail is not None else errno_mod.EINTR
        kp.release.wait()  # hang: until release/clear/reset (or the mount goes away)
        return kp.release_errno

    def after_write(self, index: int, rel: str, data: str, pid: int, code: Optional[int]) -> None:
        """Record the kernel's result of a write that passed every fault."""
        with self._lock:
            if code is None and self.fail_after is not None:
                self.successes += 1
            self._log_locked(index, rel.lstrip("/"), data, pid, code, None)

    def _log(self, *args) -> Optional[int]:
        with self._lock:
            return self._log_locked(*args)

    def _log_locked(self, index, rel, data, pid, code, fault) -> Optional[int]:
        if len(self.log) < MAX_LOG:
            self.log.append({"index": index, "path": rel, "value": data, "pid": pid,
                             "result": _name(code), "fault": fault})
        return code

    # --- readback ---------------------------------------------------------------------
    def status(self) -> dict:
        with self._lock:
            hung = [k.hit for k in self.kill_points
                    if k.action == "hang" and k.hit is not None and not k.release.is_set()]
            return {
                "write_count": self.count,
                "rules": [r.to_dict() for r in self.rules],
                "read_rules": [r.to_dict() for r in self.read_rules],
                "latency": self.latency,
                "path_latency": [{"path": g, "seconds": s} for g, s in self.path_latency],
                "read_only": self.read_only,
                "fail_after": None if self.fail_after is None else
                {"n": self.fail_after[0], "errno": _name(self.fail_after[1]), "successes": self.successes},
                "kill_points": [k.to_dict() for k in self.kill_points],
                "hung": hung,
            }

    def writes(self) -> list:
        with self._lock:
            return list(self.log)
