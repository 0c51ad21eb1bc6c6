# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: write every task result of a playbook run as JSON.

ansible-core 2.19 ships no ``json`` stdout callback (that one lives in
ansible.posix), so the ``run_playbook`` fixture of tests/conftest.py enables
this aggregate callback and leaves the human-readable default output on
stdout. The file named by ``$PYTEST_ANSIBLE_JSON`` receives::

    {"tasks": [{"name": ..., "action": ..., "play": ..., "hosts": {host: result}}],
     "stats": {host: {"ok": .., "changed": .., "failures": .., ...}}}
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: pytest_json
type: aggregate
short_description: Write task results as JSON for the test suite
description:
  - Test-only. Writes all task results and the play recap to the file named by E(PYTEST_ANSIBLE_JSON).
requirements:
  - enable in configuration
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "pytest_json"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tasks = []
        self._by_uuid = {}
        self._play = None

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def _start(self, task):
        entry = {"name": task.get_name(), "action": task.action, "play": self._play, "hosts": {}}
        self._tasks.append(entry)
        self._by_uuid[task._uuid] = entry  # pylint: disable=protected-access

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def _record(self, result, status):
        task = result.task
        entry = self._by_uuid.get(task._uuid)  # pylint: disable=protected-access
        if entry is None:
            self._start(task)
            entry = self._by_uuid[task._uuid]  # pylint: disable=protected-access
        data = dict(result.result)
        data.setdefault("_status", status)
        entry["hosts"][result.host.get_name()] = data

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        summary = {h: stats.summarize(h) for h in hosts}
        path = os.environ.get("PYTEST_ANSIBLE_JSON")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"tasks": self._tasks, "stats": summary}, out, default=repr, indent=1)
