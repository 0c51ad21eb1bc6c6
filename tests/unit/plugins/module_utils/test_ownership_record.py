# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ownership record: its published schema, the module-side check, boot awareness, durability, the host lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _damon_ownership as ownership
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import (
    Ownership, RecordError, locked_record,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import HostLock, LockTimeout

SCHEMA = json.loads((Path(__file__).resolve().parents[4] / "docs/schemas/ownership-record.schema.json").read_text())
BOOT = "6f1c2d9e-0000-4000-8000-000000000001"

GOOD = [
    {"version": 1, "slots": {"0": {"name": "hot", "pid": 812, "digest": "ab12"}}, "stopped_modules": ["damon_stat"]},
    {"version": 2, "boot_id": BOOT, "slots": {}, "stopped_modules": [], "thp_saved": {"enabled": "madvise"}},
    {"version": 2, "boot_id": BOOT, "slots": {"3": {"name": None, "pid": None, "digest": None, "intent": {
        "state": "off", "spec": {"refresh_ms": 0, "contexts": []}, "name": None}}},
     "thp_saved": {"khugepaged/pages_to_scan": "4096"}},
]
BAD = [
    ([], "top level must be an object"),
    (None, "top level must be an object"),
    ({"version": 2, "slots": []}, "slots must be an object"),
    ({"version": 2, "slots": {"x": {}}}, "slot key 'x'"),
    ({"version": 2, "slots": {"-1": {}}}, "slot key '-1'"),
    ({"version": 2, "slots": {"01": {}}}, "slot key '01'"),
    ({"version": 2, "slots": {"0": []}}, "slots[0] must be an object"),
    ({"version": 2, "slots": {"0": {"pid": "12"}}}, "slots[0].pid"),
    ({"version": 2, "slots": {"0": {"pid": 2 ** 70}}}, "slots[0].pid"),
    ({"version": 2, "slots": {"0": {"name": ""}}}, "slots[0].name"),
    ({"version": 2, "slots": {"0": {"digest": "../x"}}}, "slots[0].digest"),
    ({"version": 2, "slots": {"0": {"owner": "me"}}}, "unknown keys owner"),
    ({"version": 2, "slots": {"0": {"intent": {"state": "maybe", "spec": {}}}}}, "slots[0].intent"),
    ({"version": 2, "stopped_modules": ["../../kernel/mm/damon"]}, "stopped_modules"),
    ({"version": 2, "thp_saved": {"../enabled": "always"}}, "thp_saved"),
    ({"version": 7}, "version must be"),
    ({"version": 2, "extra": 1}, "unknown keys extra"),
]


@pytest.fixture
def record(tmp_path):
    directory = tmp_path / "rec"
    directory.mkdir(mode=0o700)
    return directory / "ownership.json"


@pytest.mark.parametrize("data", GOOD)
def test_schema_and_module_check_accept_the_same_good_records(data, record):
    jsonschema.validate(data, SCHEMA)
    record.write_text(json.dumps(data))
    Ownership.load(str(record), boot_id=BOOT)


@pytest.mark.parametrize("data,words", BAD)
def test_schema_and_module_check_reject_the_same_bad_records(data, words, record):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
    record.write_text(json.dumps(data))
    with pytest.raises(RecordError) as e:
        Ownership.load(str(record), boot_id=BOOT)
    assert "ownership_file %s" % record in str(e.value) and words in str(e.value)


def test_damaged_json_names_the_file(record):
    record.write_text('{"version": 2, "slots": {')
    with pytest.raises(RecordError, match="not JSON"):
        Ownership.load(str(record))


def test_a_saved_record_matches_the_schema_and_round_trips(record):
    own = Ownership(str(record), boot_id=BOOT)
    own.intend(0, "hot", "on", {"refresh_ms": 0, "contexts": []})
    own.stopped_modules = ["damon_stat"]
    own.thp_saved = {"enabled": "madvise"}
    own.save()
    data = json.loads(record.read_text())
    jsonschema.validate(data, SCHEMA)
    again = Ownership.load(str(record), boot_id=BOOT)
    assert again.slots == own.slots and again.stopped_modules == ["damon_stat"] and again.thp_saved == own.thp_saved
    assert [p.name for p in record.parent.iterdir()] == ["ownership.json"]  # no temp file left


@pytest.mark.parametrize("path", ["", "own.json", "rel/own.json", "/tmp/dir/"])
def test_ownership_file_must_be_an_absolute_file_path(path):
    with pytest.raises(RecordError, match="absolute file path"):
        Ownership.load(path)


def test_a_directory_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(RecordError, match="writable by group or others"):
        Ownership.load(str(shared / "own.json"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_directory_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(RecordError, match="belongs to uid 65534"):
        Ownership.load(str(theirs / "own.json"))


def test_a_record_from_another_boot_keeps_nothing(record):
    record.write_text(json.dumps({"version": 2, "boot_id": "old-boot", "slots": {"0": {"name": "hot", "pid": 812}},
                                  "stopped_modules": ["damon_stat"], "thp_saved": {"enabled": "madvise"}}))
    own = Ownership.load(str(record), boot_id=BOOT)
    assert own.slots == {} and own.stopped_modules == [] and own.thp_saved == {}
    assert own.dirty and "earlier boot" in own.notes[0]


def test_a_version_1_record_older_than_the_boot_keeps_nothing(record, monkeypatch):
    record.write_text(json.dumps({"version": 1, "slots": {"0": {"name": "hot", "pid": 812, "digest": "ab"}}}))
    os.utime(record, (1000, 1000))
    assert Ownership.load(str(record), boot_id=BOOT).slots == {}
    os.utime(record, None)  # written in this boot: kept
    assert Ownership.load(str(record), boot_id=BOOT).slots[0]["pid"] == 812


def test_a_failing_save_names_the_file_and_leaves_the_old_record(record, monkeypatch):
    Ownership(str(record), boot_id=BOOT).save()
    before = record.read_text()
    own = Ownership.load(str(record), boot_id=BOOT)
    own.intend(0, "hot", "on", {"contexts": []})

    def read_only(*unused):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(ownership.os, "replace", read_only)
    with pytest.raises(RecordError, match="cannot write ownership_file .*Read-only file system"):
        own.save()
    assert record.read_text() == before and len(list(record.parent.iterdir())) == 1


def test_the_lock_names_its_holder_and_the_wait_is_bounded(record):
    with HostLock(str(record) + ".lock", "kdamond"):
        with pytest.raises(LockTimeout) as e:
            with HostLock(str(record) + ".lock", "thp", timeout_s=0.2):
                pass
    assert "pid %d (kdamond) since " % os.getpid() in str(e.value) and "lock_timeout_s" in str(e.value)
    with HostLock(str(record) + ".lock", "thp", timeout_s=0):
        pass  # released on exit


def test_a_killed_holder_leaves_no_stale_lock(record):
    lock = str(record) + ".lock"
    code = ("import sys, time; sys.path[:0] = %r\n"
            "from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import HostLock\n"
            "with HostLock(%r, 'hugepage_step'):\n    print('held', flush=True); time.sleep(600)\n" % (sys.path, lock))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout, match="pid %d \\(hugepage_step\\)" % holder.pid):
            with HostLock(lock, "kdamond", timeout_s=0.1):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with HostLock(lock, "kdamond", timeout_s=5):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_waiting_runs_take_turns(record):
    lock = str(record) + ".lock"
    code = ("import sys, time; sys.path[:0] = %r\n"
            "from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import HostLock\n"
            "with HostLock(%r, 'x', timeout_s=60):\n"
            "    open(%r, 'a').write('in\\n'); time.sleep(0.2); open(%r, 'a').write('out\\n')\n"
            % (sys.path, lock, str(record) + ".log", str(record) + ".log"))
    procs = [subprocess.Popen([sys.executable, "-c", code]) for unused in range(4)]
    assert [p.wait() for p in procs] == [0] * 4
    assert Path(str(record) + ".log").read_text() == "in\nout\n" * 4


def test_check_mode_creates_nothing_where_no_record_exists(tmp_path):
    path = tmp_path / "nothing-yet" / "own.json"
    with locked_record(str(path), "kdamond", 1, check_mode=True) as own:
        assert own.slots == {}
    assert not path.parent.exists()


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1])
def test_lock_timeout_must_be_a_sane_number(record, timeout):
    with pytest.raises(RecordError, match="lock_timeout_s"):
        with locked_record(str(record), "kdamond", timeout):
            pass


def test_locked_record_saves_what_loading_learned(record):
    record.write_text(json.dumps({"version": 2, "boot_id": "old-boot", "slots": {"0": {"name": "hot"}}}))
    with locked_record(str(record), "kdamond", 1):
        pass
    data = json.loads(record.read_text())
    assert data["slots"] == {} and data["boot_id"] == ownership.current_boot_id()
