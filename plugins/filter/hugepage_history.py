# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter linux_mm.damon.hugepage_history: a host's report history with one more run (plugin_utils/_report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: hugepage_history
author: linux_mm.damon contributors
version_added: 0.1.0
short_description: Add one report run to a host's huge-page history
description:
  - Takes the text of a host's history file (C(REPORT_DIR/history/HOST.jsonl), written on the controller by
    C(playbooks/report.yml); one JSON object per line, schema C(docs/schemas/hugepage-history.schema.json)) and
    returns the file's new text with one more record, made from the host's M(linux_mm.damon.hugepage_step) result
    with O(linux_mm.damon.hugepage_step#module:state=observed).
  - A host that was not observed (the task skipped or failed, for example because another run held its host lock)
    adds no record. Lines that are not records of the schema are dropped; only the last O(max_records) are kept.
positional: observed, host, recorded_at, max_records
options:
  _input:
    description: The history file's text so far (an empty string when there is none yet).
    type: str
    required: true
  observed:
    description: The registered result of M(linux_mm.damon.hugepage_step) with O(linux_mm.damon.hugepage_step#module:state=observed), or V(null).
    type: dict
  host:
    description: The inventory name of the host, written into the record.
    type: str
    required: true
  recorded_at:
    description: When the report run observed the fleet, ISO 8601 in UTC, for example C(now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ')).
    type: str
    required: true
  max_records:
    description: How many records the file keeps at most (the oldest are dropped).
    type: int
    default: 2000
"""

EXAMPLES = r"""
- name: Append this run to the host's history
  ansible.builtin.copy:
    content: >-
      {{ (lookup('ansible.builtin.file', history_file) if history_file is file else '')
         | linux_mm.damon.hugepage_history(hostvars[item].hugepage_observed, item, '2026-05-01T12:00:00Z') }}
    dest: "{{ history_file }}"
    mode: "0644"
  vars:
    history_file: "/var/lib/reports/history/{{ item }}.jsonl"
"""

RETURN = r"""
_value:
  description: The history file's new text, one JSON object per line, oldest first, ending with a newline (empty when it has no record).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linux_mm.damon.plugins.plugin_utils._report import (
    DEFAULT_MAX_RECORDS, ReportError, append_history, history_record,
)


def hugepage_history(text, observed=None, host=None, recorded_at=None, max_records=DEFAULT_MAX_RECORDS):
    """``text`` plus the record of ``observed``, at most ``max_records`` lines."""
    if not host:
        raise AnsibleFilterError("hugepage_history: host is required")
    try:
        return append_history(text or "", history_record(observed, host, recorded_at), int(max_records))
    except (ReportError, TypeError, ValueError) as e:
        raise AnsibleFilterError("hugepage_history: %s" % e)


class FilterModule(object):
    """linux_mm.damon.hugepage_history"""

    def filters(self):
        return {"hugepage_history": hugepage_history}
