"""Shared helpers for the QEMU test bed: errors with remedies, tool checks, paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Debian packages that provide each host tool the test bed needs.
TOOL_PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "gcc": "gcc libc6-dev",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "apt-get": "apt",
}

# Free space (bytes) required before building one image / booting one guest.
BUILD_MIN_FREE = 4 << 30
BOOT_MIN_FREE = 1 << 30


class VMError(RuntimeError):
    """A test-bed failure whose message says what went wrong and how to fix it."""


class MissingToolError(VMError):
    pass


class DiskFullError(VMError):
    pass


class BootError(VMError):
    pass


class SSHTimeoutError(VMError):
    pass


class NoFreePortError(VMError):
    pass


def cache_root() -> Path:
    """Root of the on-disk cache (images, apt lists, logs)."""
    env = os.environ.get("LINUX_MM_DAMON_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/linux_mm_damon").expanduser()


def which(tool: str) -> str:
    """Absolute path of ``tool`` or a MissingToolError naming the Debian package."""
    path = shutil.which(tool)
    if not path:
        # sbin is not always on PATH for non-login shells.
        for d in ("/usr/sbin", "/sbin"):
            cand = os.path.join(d, tool)
            if os.access(cand, os.X_OK):
                return cand
        pkg = TOOL_PACKAGES.get(tool, tool)
        raise MissingToolError(
            f"{tool} not found on PATH: install it with `apt-get install {pkg}` "
            f"(Debian package {pkg})"
        )
    return path


def require_tools(*tools: str) -> dict:
    """Check several tools at once; the error lists every missing one."""
    found, missing = {}, []
    for tool in tools:
        try:
            found[tool] = which(tool)
        except MissingToolError:
            missing.append(tool)
    if missing:
        pkgs = sorted({p for t in missing for p in TOOL_PACKAGES.get(t, t).split()})
        raise MissingToolError(
            "missing host tools: " + ", ".join(missing)
            + f"; install them with `apt-get install {' '.join(pkgs)}`"
        )
    return found


def check_free_space(path: Path, need: int, what: str) -> None:
    """Raise DiskFullError when the filesystem holding ``path`` has < ``need`` bytes free."""
    p = Path(path)
    while not p.exists():
        p = p.parent
    free = shutil.disk_usage(p).free
    if free < need:
        raise DiskFullError(
            f"not enough free disk space for {what}: {free / 2**30:.1f} GiB free on the "
            f"filesystem of {p}, need at least {need / 2**30:.1f} GiB. Free some space or "
            f"point LINUX_MM_DAMON_CACHE at a bigger filesystem (old images live under "
            f"{cache_root() / 'images'} and can be deleted)."
        )
