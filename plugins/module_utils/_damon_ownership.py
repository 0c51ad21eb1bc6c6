# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which kdamonds this collection owns on a host, and which DAMON modules it stopped.

The record lives in a small JSON file (default under /run, which like the
kdamonds themselves does not survive a reboot). A slot is ours when the record
names its index and the live kdamond still matches: the same kdamond PID while
it runs, or the same configuration digest while it is off. Anything else is
foreign and is never changed, stopped or renumbered.
"""

from __future__ import annotations

import json
import os
import tempfile

DEFAULT_PATH = "/run/linux_mm_damon/ownership.json"
ARGUMENT_SPEC = dict(ownership_file=dict(type="path", default=DEFAULT_PATH))


class Ownership(object):
    def __init__(self, path):
        self.path = path
        self.slots = {}  # index -> {"name": str or None (idle slot we keep), "pid": int or None, "digest": str}
        self.stopped_modules = []  # exclusive modules we disabled and must re-enable

    @classmethod
    def load(cls, path):
        own = cls(path)
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return own
        except (OSError, ValueError) as e:
            raise ValueError("cannot read the ownership record %s: %s; move it away if it is damaged" % (path, e))
        own.slots = dict((int(k), v) for k, v in data.get("slots", {}).items())
        own.stopped_modules = list(data.get("stopped_modules", []))
        return own

    def save(self):
        """Replace the record atomically, so a crash never leaves half a file."""
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        data = {
            "version": 1,
            "slots": dict((str(k), v) for k, v in sorted(self.slots.items())),
            "stopped_modules": self.stopped_modules,
        }
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ownership.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def index_of(self, name):
        for index, slot in self.slots.items():
            if slot.get("name") == name:
                return index
        return None

    def owns(self, kdamond, digest):
        """True when the live ``kdamond`` is still the one we recorded."""
        slot = self.slots.get(kdamond.index)
        if slot is None:
            return False
        if kdamond.running:
            return slot.get("pid") is not None and slot.get("pid") == kdamond.pid
        # digest None: we were writing it when a run stopped half-way
        return slot.get("digest") in (None, digest)

    def forget_missing(self, count):
        """Drop records of indices beyond the live nr_kdamonds (e.g. after a reboot)."""
        for index in [i for i in self.slots if i >= count]:
            del self.slots[index]
