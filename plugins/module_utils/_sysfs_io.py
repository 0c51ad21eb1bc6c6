# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain sysfs file I/O shared by every module of the collection.

sysfs files are read and written whole with one read(2)/write(2); there is no
temporary file and rename. DAMON takes its sysfs lock with mutex_trylock, in
stores and in some shows too (a kdamond's ``pid``), and a running kdamond holds
that lock in its own callbacks: a concurrent writer (damo, another Ansible run)
or our own kdamond makes a read or write fail with EBUSY. Both are retried with
a bounded, jittered exponential backoff.
"""

from __future__ import annotations

import errno as errno_mod
import os
import random
import time

EBUSY_RETRIES = 6
EBUSY_FIRST_DELAY_S = 0.01
EBUSY_MAX_DELAY_S = 0.5


def errno_name(err):
    """'EBUSY' for errno 16 ('E300' for a number Python does not know)."""
    return errno_mod.errorcode.get(err, "E%d" % err)


def errno_words(err):
    """'Device or resource busy (EBUSY)' for errno 16: every message that names an errno says it so."""
    return "%s (%s)" % (os.strerror(err), errno_name(err))


class SysfsError(Exception):
    """A sysfs read or write failed; the message names the path, value and errno."""

    def __init__(self, path, err, value=None, hint=None):
        self.path = path
        self.errno = err
        self.value = value
        self.hint = hint
        if value is None:
            msg = "reading %s failed: %s" % (path, errno_words(err))
        else:
            msg = "writing %r to %s failed: %s" % (value, path, errno_words(err))
        if hint:
            msg += "; " + hint
        super().__init__(msg)

    def as_dict(self):
        return {
            "path": self.path,
            "value": self.value,
            "errno": self.errno,
            "errno_name": errno_mod.errorcode.get(self.errno, ""),
        }


def _retrying_busy(attempt_once, path, value=None, retries=EBUSY_RETRIES, sleep=time.sleep):
    """Run ``attempt_once()``, retrying EBUSY with backoff; other errors (and the last EBUSY) raise SysfsError."""
    delay = EBUSY_FIRST_DELAY_S
    for attempt in range(retries + 1):
        try:
            return attempt_once()
        except OSError as e:
            err = e.errno or errno_mod.EIO
            if err != errno_mod.EBUSY or attempt == retries:
                raise SysfsError(path, err, value=value)
            sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, EBUSY_MAX_DELAY_S)


def read_text(path, retries=EBUSY_RETRIES, sleep=time.sleep):
    """Return the stripped content of a sysfs file, retrying EBUSY with backoff."""

    def attempt_once():
        with open(path, "r") as f:
            return f.read().strip()

    return _retrying_busy(attempt_once, path, retries=retries, sleep=sleep)


def read_optional(path):
    """Like read_text, but None when the file does not exist."""
    try:
        return read_text(path)
    except SysfsError as e:
        if e.errno == errno_mod.ENOENT:
            return None
        raise


def write_text(path, value, retries=EBUSY_RETRIES, sleep=time.sleep):
    """Write ``value`` to ``path`` in one write(2), retrying EBUSY with backoff."""
    data = str(value).encode()

    def attempt_once():
        # O_TRUNC as a shell redirection does: sysfs ignores it, plain files need it
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    _retrying_busy(attempt_once, path, value=str(value), retries=retries, sleep=sleep)
