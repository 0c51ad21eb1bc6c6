# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The session tripwire also watches the modules' default ownership record on the host."""

from __future__ import annotations

from ansible_collections.linux_mm.damon.plugins.module_utils._options import OWNERSHIP_FILE

from tests.tooling import tripwire


def test_the_default_ownership_record_is_watched():
    assert tripwire.DEFAULT_OWNERSHIP_FILE == OWNERSHIP_FILE
    assert OWNERSHIP_FILE in tripwire.TRIPWIRE_FILES


def test_a_changed_record_fails_the_session(tmp_path):
    record = tmp_path / "ownership.json"
    record.write_text('{"version": 2, "slots": {}}')
    before = tripwire.snapshot([str(record)])
    record.write_text('{"version": 2, "slots": {}, "thp_saved": {"enabled": "always"}}')
    message = tripwire.compare(before, tripwire.snapshot([str(record)]))
    assert "thp_saved" in message and "default ownership" in message
