# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One exclusive lock per host for every module that reads, then writes, host state.

A module holds it from loading the ownership record to its final save, so two
runs on one host (a schedule and a person, two plays, two tasks in parallel)
never interleave their plans. It is an flock(2) on a file next to the record:
the kernel drops it when the holder exits, however it exits (SIGKILL, OOM kill,
lost SSH link), so a stale lock cannot outlive its holder. The file's content
only names the holder for the message a waiting run gives.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import time

from ansible_collections.linux_mm.damon.plugins.module_utils._options import LOCK_TIMEOUT_S


class LockError(Exception):
    """The host lock cannot be taken; nothing was changed."""


class LockTimeout(LockError):
    """Another run held the host lock for longer than we may wait."""


def lock_path(ownership_file):
    return ownership_file + ".lock"


def _holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or not data.get("pid"):
        return "a run that has not named itself yet"
    return "pid %s (%s) since %s" % (data.get("pid"), data.get("module", "?"), data.get("since", "?"))


class HostLock(object):
    """``with HostLock(path, "kdamond", timeout_s): ...`` — exclusive, bounded wait."""

    def __init__(self, path, module, timeout_s=LOCK_TIMEOUT_S, clock=time.monotonic, sleep=time.sleep):
        self.path, self.module, self.timeout_s = path, module, timeout_s
        self.clock, self.sleep = clock, sleep
        self.fd = None
        self.waited_s = 0.0

    def __enter__(self):
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as e:
            raise LockError("cannot create the host lock %s beside ownership_file: %s; the record's directory "
                            "must be writable" % (self.path, e.strerror or e))
        started = self.clock()
        delay = 0.05
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.waited_s = self.clock() - started
                if self.waited_s >= self.timeout_s:
                    holder = _holder(fd)
                    os.close(fd)
                    # modules report this failure with lock_busy=true (doc fragment HOST_LOCK), which the
                    # hugepage role's hugepage_lock_busy: skip recognises
                    raise LockTimeout(
                        "another linux_mm.damon run holds the host lock %s: %s; waited %.0f s (lock_timeout_s). "
                        "Runs on one host take turns: let it finish, or raise lock_timeout_s"
                        % (self.path, holder, self.waited_s))
                self.sleep(min(delay, max(0.0, self.timeout_s - self.waited_s)))
                delay = min(delay * 2, 1.0)
        self.fd = fd
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "module": self.module, "since": since}).encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # releases the flock
            self.fd = None
        return False
