"""Helpers shared by the emulator tests (import as tests.unit.emulator.helpers)."""

from __future__ import annotations

import errno
import os

from tests.emulator import EmulatedSysfs

PROFILES = ("6.6", "6.12", "6.18", "7.3")


class Mount:
    """An :class:`EmulatedSysfs` plus short helpers for DAMON-relative paths."""

    def __init__(self, emu: EmulatedSysfs):
        self.emu = emu
        self.root = emu.root
        self.admin = emu.damon

    def a(self, rel: str) -> str:
        return rel if rel.startswith("/") else os.path.join(self.admin, rel)

    def read(self, rel: str) -> str:
        with open(self.a(rel)) as f:
            return f.read().strip()

    def write(self, rel: str, value) -> str:
        """Write like ``echo -n``: 'ok' or the errno name (EINVAL, EBUSY, ...)."""
        try:
            fd = os.open(self.a(rel), os.O_WRONLY)
        except OSError as e:
            return "open:" + errno.errorcode[e.errno]
        try:
            os.write(fd, str(value).encode())
            return "ok"
        except OSError as e:
            return errno.errorcode[e.errno]
        finally:
            os.close(fd)

    def must(self, rel: str, value) -> None:
        result = self.write(rel, value)
        assert result == "ok", "%s <- %r: %s" % (rel, value, result)

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.a(rel))

    def listdir(self, rel: str) -> list:
        return sorted(os.listdir(self.a(rel)))

    def __getattr__(self, name):
        return getattr(self.emu, name)


def stage_vaddr(m: Mount, pid: int, action="stat", nr_schemes=1, **scheme_files):
    """nr_kdamonds=1 with one vaddr context on ``pid`` and schemes matching everything."""
    m.must("kdamonds/nr_kdamonds", 1)
    m.must("kdamonds/0/contexts/nr_contexts", 1)
    c0 = "kdamonds/0/contexts/0"
    m.must(c0 + "/operations", "vaddr")
    m.must(c0 + "/targets/nr_targets", 1)
    m.must(c0 + "/targets/0/pid_target", pid)
    m.must(c0 + "/schemes/nr_schemes", nr_schemes)
    for i in range(nr_schemes):
        s = "%s/schemes/%d" % (c0, i)
        m.must(s + "/action", action)
        m.must(s + "/access_pattern/sz/max", 2**63)
        m.must(s + "/access_pattern/nr_accesses/max", 2**32)
        m.must(s + "/access_pattern/age/max", 2**32)
        for rel, value in scheme_files.items():
            m.must(s + "/" + rel.replace("__", "/"), value)
