"""The FUSE side: map paths to :mod:`tree` nodes and attribute files.

Mounted with ``direct_io`` and a zero attribute timeout so every read reaches ``show()``,
every ``stat()`` reaches ``getattr()`` and every ``write(2)`` reaches ``store()`` as one call,
like sysfs. The kernel keeps looked-up directory entries (``entry_timeout``): without that,
each path component of each open was one more FUSE request (13 for a scheme file), two
thirds of the emulator's CPU time (issue 11). A directory removed since (a lower
``nr_kdamonds``) still fails as on sysfs: open, stat and readdir of a path under it reach
``_lookup()``, which raises ENOENT; no negative entry is kept, so a new directory shows at once. Like
kernfs, a file's content is generated when it is read at offset 0 and served from
that snapshot for the rest of the read; opening a read-only attribute for writing
fails with EACCES; a file whose directory was removed fails with ENODEV.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import time

import mfusepy as fuse

from .tree import Attr, Node

log = logging.getLogger("tests.emulator")

# Files whose writes are collected until close (a JSON document may span writes).
BUFFERED_FILES = {"/.emulator/model", "/.emulator/faults"}
CONTROL_PREFIX = "/.emulator/"


def _caller_pid() -> int:
    try:
        return int(fuse.fuse_get_context()[2])
    except Exception:  # pylint: disable=broad-except  # no FUSE context (direct calls in tests)
        return 0


class _Handle:
    def __init__(self, path: str, node: Node, attr: Attr):
        self.path, self.node, self.attr = path, node, attr
        self.content: bytes = b""
        self.buffer: bytes = b""


class SysfsOperations(fuse.Operations):
    use_ns = True

    def __init__(self, kernel):
        self.kernel = kernel
        self.handles: dict = {}
        self._fh = itertools.count(1)
        self.mount_time_ns = time.time_ns()
        self.uid, self.gid = os.getuid(), os.getgid()

    # --- lookup ---------------------------------------------------------------
    def _lookup(self, path: str):
        """(directory node, None, None) or (parent node, file name, Attr); ENOENT else."""
        node = self.kernel.root
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            if part in node.dirs:
                node = node.dirs[part]
            elif i == len(parts) - 1 and part in node.files:
                return node, part, node.files[part]
            else:
                raise fuse.FuseOSError(errno.ENOENT)
        return node, None, None

    def getattr(self, path, fh=None):
        with self.kernel.lock:
            node, name, attr = self._lookup(path)
            t = self.mount_time_ns
            base = {"st_uid": self.uid, "st_gid": self.gid, "st_atime": t, "st_mtime": t, "st_ctime": t}
            if attr is None:
                return dict(base, st_mode=stat.S_IFDIR | 0o755, st_nlink=2 + len(node.dirs), st_size=0)
            return dict(base, st_mode=stat.S_IFREG | attr.mode, st_nlink=1, st_size=4096)

    def readdir(self, path, fh):
        with self.kernel.lock:
            node, name, attr = self._lookup(path)
            if attr is not None:
                raise fuse.FuseOSError(errno.ENOTDIR)
            return [".", ".."] + node.entries()

    # --- files ------------------------------------------------------------------
    def open(self, path, flags):
        with self.kernel.lock:
            node, name, attr = self._lookup(path)
            if attr is None:
                raise fuse.FuseOSError(errno.EISDIR)
            accmode = flags & os.O_ACCMODE
            if accmode in (os.O_WRONLY, os.O_RDWR) and not path.startswith(CONTROL_PREFIX):
                code = self.kernel.faults.check_open(path)
                if code is not None:
                    raise fuse.FuseOSError(code)
            if accmode in (os.O_WRONLY, os.O_RDWR) and not attr.writable:
                raise fuse.FuseOSError(errno.EACCES)
            if accmode in (os.O_RDONLY, os.O_RDWR) and not attr.mode & 0o444:
                raise fuse.FuseOSError(errno.EACCES)
            fh = next(self._fh)
            self.handles[fh] = _Handle(path, node, attr)
            return fh

    def _handle(self, fh) -> _Handle:
        handle = self.handles.get(fh)
        if handle is None:
            raise fuse.FuseOSError(errno.EBADF)
        if not handle.node.alive:
            raise fuse.FuseOSError(errno.ENODEV)
        return handle

    def read(self, path, size, offset, fh):
        with self.kernel.lock:
            handle = self._handle(fh)
            if offset == 0 or not handle.content:
                if not handle.path.startswith(CONTROL_PREFIX):
                    code = self.kernel.faults.before_read(handle.path)
                    if code is not None:
                        raise fuse.FuseOSError(code)
                self.kernel.catch_up()
                handle.content = self._call(handle.attr.show).encode("latin-1")
            return handle.content[offset:offset + size]

    def write(self, path, data, offset, fh):
        with self.kernel.lock:
            handle = self._handle(fh)
            if handle.path in BUFFERED_FILES:
                handle.buffer += bytes(data)
                return len(data)
            control = handle.path.startswith(CONTROL_PREFIX)
            if control:
                self.kernel.catch_up()
                self._call(handle.attr.store, bytes(data).decode("latin-1"))
                return len(data)
        # Faults (kill points, latency) run without the kernel lock: other readers and
        # writers go on while one write hangs or sleeps.
        text = bytes(data).decode("latin-1")
        pid = _caller_pid()
        faults = self.kernel.faults
        index, code = faults.before_write(handle.path, text, pid)
        if code is not None:
            raise fuse.FuseOSError(code)
        code = None
        try:
            with self.kernel.lock:
                handle = self._handle(fh)
                self.kernel.catch_up()
                self._call(handle.attr.store, text)
        except fuse.FuseOSError as e:
            code = e.errno
            raise
        finally:
            faults.after_write(index, handle.path, text, pid, code)
        return len(data)

    def flush(self, path, fh):
        with self.kernel.lock:
            handle = self.handles.get(fh)
            if handle is not None and handle.buffer:
                data, handle.buffer = handle.buffer, b""
                self._call(handle.attr.store, data.decode("utf-8"))
            return 0

    def release(self, path, fh):
        with self.kernel.lock:
            self.handles.pop(fh, None)
            return 0

    def truncate(self, path, length, fh=None):
        # O_TRUNC from `echo x > file` / open(..., "w"): sysfs ignores it.
        with self.kernel.lock:
            self._lookup(path)
            return 0

    @staticmethod
    def _call(fn, *args):
        try:
            return fn(*args)
        except fuse.FuseOSError:
            raise
        except OSError as e:
            raise fuse.FuseOSError(e.errno or errno.EINVAL)

    # --- sysfs has no user-created entries ----------------------------------------
    def create(self, path, mode, fi=None):
        raise fuse.FuseOSError(errno.EACCES)

    def mkdir(self, path, mode):
        raise fuse.FuseOSError(errno.EPERM)

    def rmdir(self, path):
        raise fuse.FuseOSError(errno.EPERM)

    def unlink(self, path):
        raise fuse.FuseOSError(errno.EPERM)

    def rename(self, old, new):
        raise fuse.FuseOSError(errno.EPERM)

    def chmod(self, path, mode):
        raise fuse.FuseOSError(errno.EPERM)

    def chown(self, path, uid, gid):
        raise fuse.FuseOSError(errno.EPERM)

    def utimens(self, path, times=None):
        return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}


def mount(kernel, mountpoint: str, foreground: bool = True, debug: bool = False) -> None:
    """Serve ``kernel`` (or ready FUSE operations, e.g. multihost.py's) at ``mountpoint``
    until unmounted or signalled (blocks)."""
    options = dict(foreground=foreground, nothreads=False, direct_io=True,
                   attr_timeout=0, entry_timeout=60, negative_timeout=0,  # see the module docstring
                   fsname="damon-emulator", subtype="damonemu", debug=debug)
    if os.geteuid() == 0:
        options["allow_other"] = True
    ops = kernel if isinstance(kernel, fuse.Operations) else SysfsOperations(kernel)
    fuse.FUSE(ops, mountpoint, **options)
