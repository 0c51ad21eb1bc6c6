# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shortcuts over the ``run_playbook`` fixture (tests/conftest.py): a list of tasks as one play."""

from __future__ import annotations

TASK_TIMEOUT_S = 240


def play(*tasks, ignore_errors=False):
    """One play on localhost running ``tasks`` in order; a task without a name is called "task N"."""
    named = []
    for i, task in enumerate(tasks):
        task = dict(task)
        task.setdefault("name", "task %d" % i)
        if ignore_errors:
            task["ignore_errors"] = True
        named.append(task)
    return [{"hosts": "localhost", "gather_facts": False, "tasks": named}]


def run_tasks(run_playbook, tasks, check=False, diff=False, with_run=False, env=None):
    """Run ``tasks`` in one play with failures ignored and return their results in order (each
    says ``_status``); with ``with_run`` also the :class:`PlaybookRun` (for its stdout)."""
    tasks = [dict(task, name="task %d" % i) for i, task in enumerate(tasks)]
    run = run_playbook(play(*tasks, ignore_errors=True), check=check, diff=diff, timeout=TASK_TIMEOUT_S, env=env)
    assert run.rc == 0, run.explain()
    results = [run[task["name"]] for task in tasks]
    return (results, run) if with_run else results
