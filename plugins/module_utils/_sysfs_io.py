# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain sysfs file I/O shared by every module of the collection.

sysfs files are read and written whole with one read(2)/write(2); there is no
temporary file and rename. DAMON takes its sysfs lock with mutex_trylock, so a
concurrent writer (damo, another Ansible run) makes our write fail with EBUSY:
those writes are retried with a bounded, jittered exponential backoff.
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


def read_text(path):
    """Return the stripped content of a sysfs file."""
    try:
        with open(path, "r") as f:
            return f.read().strip()
    except OSError as e:
        raise SysfsError(path, e.errno or errno_mod.EIO)


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
    delay = EBUSY_FIRST_DELAY_S
    for attempt in range(retries + 1):
        try:
            # O_TRUNC as a shell redirection does: sysfs ignores it, plain files need it
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return
        except OSError as e:
            err = e.errno or errno_mod.EIO
            if err != errno_mod.EBUSY or attempt == retries:
                raise SysfsError(path, err, value=str(value))
            sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, EBUSY_MAX_DELAY_S)
