# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which kdamonds this collection owns on a host, and what it changed that it must undo.

The record is a small JSON file (default under /run) whose structure is
published as ``docs/schemas/ownership-record.schema.json`` and checked here on
every load. It is only read and written under the host lock (``_host_lock``).

A slot is ours when the record names its index and the live kdamond still
matches: the same kdamond PID while it runs, the same configuration digest
while it is off, or, while a run is changing it, the recorded *intent* (what
the slot is meant to become, written before the first sysfs write). A run
killed at any write therefore leaves slots that the next run recognises,
finishes and records; anything else is foreign and never touched.

The record carries the boot id: kdamonds, exclusive-module states and THP
settings do not survive a reboot, so a record from an earlier boot keeps none
of its slots (a new kdamond that got an old pid is never taken for ours).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import EXCLUSIVE_MODULES
from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import HostLock, LockError, lock_path

VERSION = 2
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
MAX_SLOTS = 1 << 16
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
_THP_FILE = re.compile(r"^(khugepaged/)?[a-z_]+$")


class RecordError(ValueError):
    """The record (or its place) is unusable; the message names ownership_file."""


HOST_STATE_ERRORS = (RecordError, LockError)  # what a module reports as a plain failure


def current_boot_id(path=BOOT_ID_PATH):
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _boot_time():
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def check_path(path, option="ownership_file"):
    """``option`` (a host state file) must be absolute, and its directory private to root (or whoever runs us)."""
    if not path or not os.path.isabs(path) or path.endswith("/"):
        raise RecordError("%s must be an absolute file path, got %r" % (option, path))
    directory = os.path.dirname(path)
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return
    except OSError as e:
        raise RecordError("%s %s: cannot inspect its directory: %s" % (option, path, e))
    if not stat.S_ISDIR(st.st_mode):
        raise RecordError("%s %s: %s is not a directory" % (option, path, directory))
    if st.st_uid != os.geteuid():
        raise RecordError("%s %s: its directory %s belongs to uid %d, not to uid %d that runs this "
                          "module; anyone who can write there could change what we do to this host"
                          % (option, path, directory, st.st_uid, os.geteuid()))
    if st.st_mode & 0o022:
        raise RecordError("%s %s: its directory %s is writable by group or others (mode %o); "
                          "use a private directory (chmod go-w)" % (option, path, directory, stat.S_IMODE(st.st_mode)))


def write_json(path, data, option="ownership_file"):
    """Replace a host state file atomically and durably: temp file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    except OSError as e:
        raise RecordError("cannot write %s %s: %s" % (option, path, e))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise RecordError("cannot write %s %s: %s" % (option, path, e))


def _fail(path, what):
    raise RecordError("ownership_file %s is not a valid linux_mm.damon record: %s; fix it or move it away "
                      "(the kdamonds it names then count as foreign)" % (path, what))


def _check_int(path, where, value, lo, hi, nullable=False):
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(path, "%s must be an integer in %d..%d%s, got %r" % (where, lo, hi, " or null" if nullable else "", value))


def _check_str(path, where, value, pattern=None, nullable=False):
    if value is None and nullable:
        return
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.match(value)):
        shape = "string matching %s" % pattern.pattern if pattern else "non-empty string"
        _fail(path, "%s must be a %s%s, got %r" % (where, shape, " or null" if nullable else "", value))


def _check_slot(path, key, slot):
    where = "slots[%s]" % key
    if not isinstance(slot, dict):
        _fail(path, "%s must be an object, got %r" % (where, slot))
    unknown = set(slot) - {"name", "pid", "digest", "intent"}
    if unknown:
        _fail(path, "%s has unknown keys %s" % (where, ", ".join(sorted(unknown))))
    _check_str(path, where + ".name", slot.get("name"), nullable=True)
    _check_int(path, where + ".pid", slot.get("pid"), 1, 4194304, nullable=True)
    _check_str(path, where + ".digest", slot.get("digest"), _HEX, nullable=True)
    intent = slot.get("intent")
    if intent is None:
        return
    if not isinstance(intent, dict) or set(intent) - {"state", "spec", "name"} or intent.get("state") not in ("on", "off"):
        _fail(path, "%s.intent must be {state: on|off, spec: object, name: string|null}, got %r" % (where, intent))
    if not isinstance(intent.get("spec"), dict):
        _fail(path, "%s.intent.spec must be an object, got %r" % (where, intent.get("spec")))
    _check_str(path, where + ".intent.name", intent.get("name"), nullable=True)


def validate(path, data):
    """Standard-library check of the structure the JSON Schema documents."""
    if not isinstance(data, dict):
        _fail(path, "the top level must be an object, got %s" % type(data).__name__)
    unknown = set(data) - {"version", "boot_id", "slots", "stopped_modules", "thp_saved"}
    if unknown:
        _fail(path, "unknown keys %s" % ", ".join(sorted(unknown)))
    if data.get("version") not in (1, VERSION):
        _fail(path, "version must be 1 or %d, got %r" % (VERSION, data.get("version")))
    _check_str(path, "boot_id", data.get("boot_id"), nullable=True)
    slots = data.get("slots", {})
    if not isinstance(slots, dict):
        _fail(path, "slots must be an object keyed by kdamond index, got %r" % (slots,))
    for key, slot in slots.items():
        if not re.match(r"^(0|[1-9][0-9]{0,4})$", key) or int(key) >= MAX_SLOTS:
            _fail(path, "slot key %r is not a kdamond index (0..%d)" % (key, MAX_SLOTS - 1))
        _check_slot(path, key, slot)
    modules = data.get("stopped_modules", [])
    if not isinstance(modules, list) or any(m not in EXCLUSIVE_MODULES for m in modules):
        _fail(path, "stopped_modules must list names among %s, got %r" % (", ".join(sorted(EXCLUSIVE_MODULES)), modules))
    saved = data.get("thp_saved", {})
    if not isinstance(saved, dict) or any(not _THP_FILE.match(str(k)) or not isinstance(v, str) for k, v in saved.items()):
        _fail(path, "thp_saved must map THP file names to their old values, got %r" % (saved,))


class Ownership(object):
    def __init__(self, path, boot_id=None):
        self.path = path
        self.boot_id = boot_id
        self.slots = {}  # index -> {"name": str|None (None: an idle slot we keep), "pid", "digest", "intent"}
        self.stopped_modules = []  # exclusive modules we disabled and must re-enable
        self.thp_saved = {}  # THP file (relative to transparent_hugepage/) -> value before our first change
        self.notes = []  # what loading had to forget, for the module's warnings
        self.dirty = False  # something learned on load (a pid, a reboot) that the next save records

    @classmethod
    def load(cls, path, boot_id=None):
        check_path(path)
        own = cls(path, boot_id if boot_id is not None else current_boot_id())
        try:
            with open(path) as f:
                text = f.read()
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            return own
        except OSError as e:
            raise RecordError("cannot read ownership_file %s: %s" % (path, e))
        try:
            data = json.loads(text)
        except ValueError as e:
            _fail(path, "not JSON (%s)" % e)
        validate(path, data)
        if own._from_earlier_boot(data, mtime):
            n = len(data.get("slots", {}))
            own.notes.append("ownership_file %s is from an earlier boot: forgot its %d kdamond slot(s), stopped "
                             "modules and saved THP settings, which a reboot resets" % (path, n))
            own.dirty = True
            return own
        own.slots = dict((int(k), dict(v)) for k, v in data.get("slots", {}).items())
        own.stopped_modules = list(data.get("stopped_modules", []))
        own.thp_saved = dict(data.get("thp_saved", {}))
        return own

    def _from_earlier_boot(self, data, mtime):
        recorded = data.get("boot_id")
        if recorded is not None and self.boot_id is not None:
            return recorded != self.boot_id
        btime = _boot_time()  # version 1 records carry no boot id: their age tells
        return recorded is None and btime is not None and mtime < btime

    def to_dict(self):
        return {
            "version": VERSION,
            "boot_id": self.boot_id,
            "slots": dict((str(k), v) for k, v in sorted(self.slots.items())),
            "stopped_modules": sorted(self.stopped_modules),
            "thp_saved": dict(sorted(self.thp_saved.items())),
        }

    def save(self):
        write_json(self.path, self.to_dict())
        self.dirty = False

    def index_of(self, name):
        for index, slot in self.slots.items():
            if slot.get("name") == name:
                return index
        return None

    def owns(self, kdamond, digest, intent_matches=False):
        """True when the live ``kdamond`` is still the one we recorded (or are making).

        ``intent_matches``: the live configuration is what the slot's intent
        describes (the planner's view, which ignores volatile files).
        """
        slot = self.slots.get(kdamond.index)
        if slot is None:
            return False
        if slot.get("intent") is not None:
            if intent_matches or not kdamond.running:
                return True  # made as intended, or a run stopped half-way through writing it
        if kdamond.running:
            return slot.get("pid") is not None and slot.get("pid") == kdamond.pid
        return slot.get("digest") == digest

    def adopt(self, kdamond, digest):
        """Record what a slot we own is now (its pid, its digest) and drop a fulfilled intent."""
        slot = self.slots[kdamond.index]
        name = slot["intent"].get("name") if slot.get("intent") else slot.get("name")
        new = dict(slot, name=name, pid=kdamond.pid if kdamond.running else None, digest=digest, intent=None)
        if new != slot:
            self.slots[kdamond.index] = new
            self.dirty = True

    def intend(self, index, name, state, spec):
        """Say what a slot is about to become (and under which name), before the first write to it.

        The slot keeps its current name until the intent is fulfilled, so a re-run
        of the interrupted task still finds it."""
        slot = self.slots.get(index) or {"name": name, "pid": None, "digest": None}
        self.slots[index] = dict(slot, intent={"state": state, "spec": spec, "name": name})

    def forget_missing(self, count):
        """Drop records of indices beyond the live nr_kdamonds."""
        for index in [i for i in self.slots if i >= count]:
            del self.slots[index]
            self.dirty = True


@contextlib.contextmanager
def locked_record(path, module, timeout_s, check_mode=False):
    """The record, loaded under the host lock, which is held until the block ends.

    What loading learned (a pid, a reboot) is saved at the end unless in check
    mode. Check mode on a host where the record's directory does not exist yet
    takes no lock: it must not create anything.
    """
    if not isinstance(timeout_s, (int, float)) or math.isnan(timeout_s) or not 0 <= timeout_s <= 86400:
        raise RecordError("lock_timeout_s must be between 0 and 86400 seconds, got %r" % (timeout_s,))
    check_path(path)
    if check_mode and not os.path.isdir(os.path.dirname(path)):
        yield Ownership.load(path)
        return
    with HostLock(lock_path(path), module, timeout_s):
        own = Ownership.load(path)
        yield own
        if own.dirty and not check_mode:
            own.save()
