"""Many emulated hosts from one process: one FUSE mount, one directory per host.

``<mount>/<host>/`` is a complete, independent emulated ``/sys`` (its own
:class:`~tests.emulator.emulator.EmulatedKernel`: kdamonds, virtual clock, access
model, faults and ``.emulator/`` control files); the top level only lists the hosts.
Every operation below a host directory is handed to that host's
:class:`~tests.emulator.fs.SysfsOperations` with the host prefix removed, so a host
behaves exactly as a single-host mount. Used to fit a fleet of 1000 emulated hosts on
a small machine (bench/control_ssh.py).
"""

from __future__ import annotations

import errno
import stat

import mfusepy as fuse

from .fs import SysfsOperations


def host_names(n: int) -> list:
    """The directory names of ``n`` hosts: h000, h001, ... (wider when n > 1000)."""
    width = max(3, len(str(n - 1)))
    return ["h%0*d" % (width, i) for i in range(n)]


class MultiHostOperations(fuse.Operations):
    use_ns = True

    def __init__(self, kernels: dict):
        self.hosts = {name: SysfsOperations(kernel) for name, kernel in kernels.items()}

    def _host(self, path: str):
        name, sep, rest = path.lstrip("/").partition("/")
        del sep
        ops = self.hosts.get(name)
        if ops is None:
            raise fuse.FuseOSError(errno.ENOENT)
        return ops, "/" + rest

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2 + len(self.hosts), "st_size": 0}
        ops, sub = self._host(path)
        return ops.getattr(sub, fh)

    def readdir(self, path, fh):
        if path == "/":
            return [".", ".."] + sorted(self.hosts)
        ops, sub = self._host(path)
        return ops.readdir(sub, fh)

    def create(self, path, mode, fi=None):  # the signature mfusepy inspects
        raise fuse.FuseOSError(errno.EACCES)

    def rename(self, old, new):
        raise fuse.FuseOSError(errno.EPERM)

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}


def _delegate(name):
    def method(self, path, *args):
        ops, sub = self._host(path)
        return getattr(ops, name)(sub, *args)
    method.__name__ = name
    return method


# Everything SysfsOperations implements on a file or directory of one host.
for _name in ("open", "read", "write", "flush", "release", "truncate", "mkdir", "rmdir", "unlink",
              "chmod", "chown", "utimens"):
    setattr(MultiHostOperations, _name, _delegate(_name))
