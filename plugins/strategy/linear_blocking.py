# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Strategy linux_mm.damon.linear_blocking: ansible.builtin.linear without the busy wait for a free worker."""

from __future__ import annotations

DOCUMENTATION = r"""
name: linear_blocking
author:
  - linux_mm.damon contributors (@linux-mm-damon)
version_added: 0.1.0
short_description: The linear strategy, waiting for a free worker without polling
description:
  - Runs plays exactly as P(ansible.builtin.linear#strategy) does (same task order, batches, forks, error handling);
    it inherits all of it.
  - The one difference is how ansible-playbook's main process waits when every fork is busy and more hosts are
    waiting. The linear strategy polls every worker process every 0.1 ms until one exits, a loop that is
    not configurable (C(internal_poll_interval) does not reach it) and that took most of the main process's CPU in
    fleet runs with more hosts than forks (C(docs/ssh.md)). This strategy blocks on the worker processes until
    one of them exits, and then queues the host as the linear strategy does.
  - A task with C(throttle) is queued by the linear strategy's own loop, which knows how many workers it may use.
notes:
  - Enable it for the playbooks of this collection with C(strategy = linux_mm.damon.linear_blocking) in the
    C([defaults]) section of C(ansible.cfg), or C(ANSIBLE_STRATEGY=linux_mm.damon.linear_blocking).
  - It reads the worker list of ansible-core's strategy base class; should a later ansible-core not have it, the
    strategy behaves exactly as P(ansible.builtin.linear#strategy). The tests check it against the ansible-core
    this collection is tested with.
"""

from multiprocessing.connection import wait

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule

# How long one blocking wait lasts at most, so a run stopped meanwhile (Ctrl-C, a fatal error) is noticed.
WAKE_UP_S = 1.0


class StrategyModule(LinearStrategyModule):

    def _queue_task(self, host, task, *args, **kwargs):
        if not getattr(task, "throttle", None):
            self._wait_for_a_free_worker()
        super()._queue_task(host, task, *args, **kwargs)

    def _wait_for_a_free_worker(self):
        # Read defensively: should ansible-core rename these, the linear strategy's own loop does the waiting.
        workers = getattr(self, "_workers", None)
        if not isinstance(workers, list):
            return
        while not getattr(self._tqm, "_terminated", True):
            busy = [w for w in workers if w is not None and w.is_alive()]
            if len(busy) < len(workers):
                return
            wait([w.sentinel for w in busy], timeout=WAKE_UP_S)
