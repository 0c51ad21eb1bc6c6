# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host sysfs write guard for every Python process a test starts.

Python imports ``sitecustomize`` at start-up from the first ``sys.path`` entry
that has one; ``tests/conftest.py`` puts this directory first on
``PYTHONPATH`` for every child (ansible-playbook, the module processes it
forks, the emulator), and installs the same hook in the pytest process itself.

The hook (:func:`sys.addaudithook`) raises ``PermissionError("host sysfs guard:
...")`` for any attempt to open for writing, create, truncate, rename, remove,
link, chmod/chown or make a directory under the host's

* ``/sys/kernel/mm/damon``
* ``/sys/module/damon_*``
* ``/sys/kernel/mm/transparent_hugepage``

Paths are resolved (``os.path.realpath``, also relative to ``dir_fd``) before
the check, so symlinks and relative paths do not get around it, and every
sysfs mount point listed in ``/proc/self/mountinfo`` is treated like ``/sys``
(a second mount of sysfs is the same kernel). Reads are never blocked.

What the guard cannot see: writes done by non-Python programs (``echo x >
/sys/...`` in a shell, ``tee``, ``dd``). Tests must never shell out to write
sysfs; ``tests/conftest.py`` adds a read-only tripwire that compares the host's
kdamond and THP state before and after the session.

After installing the hook this module runs the next ``sitecustomize`` on
``sys.path`` (e.g. a distribution's), so shadowing it changes nothing else.
"""

from __future__ import annotations

import os
import sys
import threading

GUARD_FLAG = "_linux_mm_damon_host_sysfs_guard"

# Relative to a sysfs mount point. A trailing "_" means "prefix of a name".
GUARDED_SUFFIXES = ("kernel/mm/damon", "module/damon_", "kernel/mm/transparent_hugepage")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

# audit event -> indexes of the path arguments, index of the dir_fd argument (or None)
_PATH_EVENTS = {
    "os.remove": ((0,), 1),
    "os.rmdir": ((0,), 1),
    "os.mkdir": ((0,), 2),
    "os.rename": ((0, 1), 2),  # also os.replace; dir_fds: src 2, dst 3 (handled below)
    "os.link": ((0, 1), 2),
    "os.symlink": ((1,), 2),
    "os.truncate": ((0,), None),
    "os.chmod": ((0,), 2),
    "os.chown": ((0,), 3),
    "os.chflags": ((0,), None),
    "os.lchflags": ((0,), None),
    "os.utime": ((0,), 3),
    "os.setxattr": ((0,), None),
    "os.removexattr": ((0,), None),
    "os.mkfifo": ((0,), 2),
    "os.mknod": ((0,), 3),
    "shutil.rmtree": ((0,), 1),
    "shutil.copyfile": ((1,), None),
    "shutil.copymode": ((1,), None),
    "shutil.copystat": ((1,), None),
    "shutil.move": ((0, 1), None),
}

_state = threading.local()


def _sysfs_mount_points():
    """Mount points of sysfs in this mount namespace (normally just /sys)."""
    points = {"/sys"}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if " - " not in line or len(fields) < 5:
                    continue
                fstype = line.split(" - ", 1)[1].split()[0]
                if fstype == "sysfs":
                    points.add(fields[4].encode().decode("unicode_escape"))
    except OSError:
        pass
    return sorted(points)


def guarded_prefixes(mount_points=None):
    """Absolute path prefixes the guard protects."""
    prefixes = []
    for point in mount_points if mount_points is not None else _sysfs_mount_points():
        point = point.rstrip("/")
        prefixes.extend(point + "/" + suffix for suffix in GUARDED_SUFFIXES)
    return tuple(prefixes)


_PREFIXES = guarded_prefixes()


def _sysfs_devices():
    """Device numbers (``st_dev``) of every sysfs mount in this mount namespace, from mountinfo."""
    devices = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if " - " in line and len(fields) >= 5 and line.split(" - ", 1)[1].split()[0] == "sysfs":
                    major, minor = fields[2].split(":")
                    devices.add(os.makedev(int(major), int(minor)))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(devices)


_SYSFS_DEVICES = _sysfs_devices()


def _off_sysfs(path):
    """True if writing ``path`` cannot reach a sysfs file: it exists (symlinks followed) on another file
    system, or it does not exist, is no (dangling) symlink, and its directory is on another file system.
    One or two stat calls instead of resolving every component (the emulator's FUSE files are deep);
    anything else (a sysfs device, an error, no sysfs mount found) gets the full check."""
    if not _SYSFS_DEVICES:
        return False
    try:
        return os.stat(path).st_dev not in _SYSFS_DEVICES
    except FileNotFoundError:
        pass
    except (OSError, TypeError, ValueError):
        return False
    try:
        os.lstat(path)
        return False  # a dangling symlink: where it points is for the full check
    except FileNotFoundError:
        pass
    except (OSError, TypeError, ValueError):
        return False
    try:
        return os.stat(os.path.dirname(path) or os.curdir).st_dev not in _SYSFS_DEVICES
    except (OSError, TypeError, ValueError):
        return False


def is_guarded(real_path, prefixes=None):
    """True if the resolved path is, or is under, a protected sysfs location."""
    for prefix in prefixes if prefixes is not None else _PREFIXES:
        if prefix.endswith("_"):
            if real_path.startswith(prefix):
                return True
        elif real_path == prefix or real_path.startswith(prefix + "/"):
            return True
    return False


def _resolve(path, dir_fd=None):
    """Resolve an audit-event path argument; None if it is not a path (an fd, say)."""
    if isinstance(path, int) or path is None:
        return None
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    if not os.path.isabs(path) and isinstance(dir_fd, int) and dir_fd >= 0:
        try:
            base = os.readlink("/proc/self/fd/%d" % dir_fd)
        except OSError:
            base = None
        if base:
            path = os.path.join(base, path)
    return os.path.realpath(path)


def _refuse(event, path, real):
    detail = path if path == real else "%s (resolves to %s)" % (path, real)
    raise PermissionError(
        "host sysfs guard: refusing to write %s [%s]: tests must never change the host's DAMON or THP "
        "settings; point sysfs_root at the emulator or a guest" % (detail, event))


def _check(event, path, dir_fd=None):
    real = _resolve(path, dir_fd)
    if real is not None and is_guarded(real):
        _refuse(event, os.fsdecode(os.fspath(path)), real)


def _is_write_open(args):
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def audit_hook(event, args):
    """The audit hook itself (installed by :func:`install`)."""
    if event != "open" and event not in _PATH_EVENTS:
        return
    if getattr(_state, "busy", False):  # realpath() itself must not recurse into us
        return
    _state.busy = True
    try:
        if event == "open":
            if args and _is_write_open(args) and not (isinstance(args[0], (str, bytes)) and _off_sysfs(args[0])):
                _check(event, args[0])
            return
        path_indexes, fd_index = _PATH_EVENTS[event]
        for n, index in enumerate(path_indexes):
            if index >= len(args):
                continue
            dir_fd = None
            if fd_index is not None and fd_index + n < len(args) and event in ("os.rename", "os.link"):
                dir_fd = args[fd_index + n]
            elif fd_index is not None and fd_index < len(args):
                dir_fd = args[fd_index]
            _check(event, args[index], dir_fd)
    finally:
        _state.busy = False


def _wrap_os_open():
    """os.open(..., dir_fd=) reports no dir_fd to audit hooks: check relative paths here."""
    real_open = os.open

    def open(path, flags, mode=0o777, *, dir_fd=None):  # pylint: disable=redefined-builtin
        if dir_fd is not None and isinstance(flags, int) and flags & _WRITE_FLAGS:
            _check("open", path, dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    open.__doc__ = real_open.__doc__
    open.__wrapped__ = real_open
    os.open = open


def install():
    """Install the hook once per process (audit hooks cannot be removed)."""
    if getattr(sys, GUARD_FLAG, False):
        return False
    sys.addaudithook(audit_hook)
    _wrap_os_open()
    setattr(sys, GUARD_FLAG, True)
    return True


def _chain_next_sitecustomize():
    """Run the sitecustomize this file shadows, if there is one further down sys.path."""
    import importlib.machinery  # pylint: disable=import-outside-toplevel
    import importlib.util  # pylint: disable=import-outside-toplevel

    here = os.path.dirname(os.path.realpath(__file__))
    rest = [p for p in sys.path if os.path.realpath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        sys.stderr.write("host sysfs guard: the shadowed %s failed: %r\n" % (spec.origin, exc))


if __name__ == "sitecustomize":
    install()
    _chain_next_sitecustomize()
