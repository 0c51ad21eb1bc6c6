"""Fast tests of the test-bed error paths: missing tools, full disk, no free port."""

from __future__ import annotations

import socket
from collections import namedtuple

import pytest

from tests.vm import _common, guest


def test_missing_tool_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_common.os, "access", lambda *a: False)
    with pytest.raises(_common.MissingToolError) as exc:
        _common.require_tools("qemu-system-x86_64", "mmdebstrap", "qemu-img")
    msg = str(exc.value)
    assert "qemu-system-x86_64" in msg and "mmdebstrap" in msg and "qemu-img" in msg
    assert "apt-get install mmdebstrap qemu-system-x86 qemu-utils" in msg


def test_which_finds_sbin_tools_off_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_common.os, "access", lambda p, m: p == "/usr/sbin/mkfs.ext4")
    assert _common.which("mkfs.ext4") == "/usr/sbin/mkfs.ext4"


def test_full_disk_error(monkeypatch, tmp_path):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(_common.shutil, "disk_usage", lambda p: Usage(10, 10, 1 << 20))
    with pytest.raises(_common.DiskFullError, match="LINUX_MM_DAMON_CACHE") as exc:
        _common.check_free_space(tmp_path / "not" / "yet", 4 << 30, "building image x")
    assert "0.0 GiB free" in str(exc.value) and "need at least 4.0 GiB" in str(exc.value)


def test_enough_disk_passes(tmp_path):
    _common.check_free_space(tmp_path, 1, "anything")


def test_free_port_is_bindable():
    port = guest.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_no_free_port_error(monkeypatch):
    class Sock:
        def __init__(self, *a):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def bind(self, addr):
            raise OSError(98, "Address already in use")
    monkeypatch.setattr(guest.socket, "socket", Sock)
    with pytest.raises(_common.NoFreePortError, match="no free TCP port"):
        guest.free_port()


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LINUX_MM_DAMON_CACHE", str(tmp_path / "c"))
    assert _common.cache_root() == tmp_path / "c"
    monkeypatch.delenv("LINUX_MM_DAMON_CACHE")
    assert _common.cache_root().name == "linux_mm_damon"
