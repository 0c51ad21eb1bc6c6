# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark callback: appends every task result as one JSON line to $BENCH_RECORD."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_record
type: aggregate
short_description: Record task results for bench/ as JSON lines
description: Appends host, task name, status and result of every task to the file named by BENCH_RECORD.
requirements: [whitelist in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_record"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):
        path = os.environ.get("BENCH_RECORD")
        if not path:
            return
        rec = {"t": time.time(), "host": result._host.get_name(), "task": result._task.get_name(),
               "status": status, "result": result._result}
        with open(path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
