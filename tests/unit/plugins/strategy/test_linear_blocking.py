# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Strategy linux_mm.damon.linear_blocking: it waits for a free worker without spending CPU, and runs plays as
ansible.builtin.linear does (real worker processes; a real ansible-playbook with more hosts than forks)."""

from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible_collections.linux_mm.damon.plugins.strategy.linear_blocking import StrategyModule

FORK = multiprocessing.get_context("fork")  # ansible-core's workers are forked processes too


def _strategy(workers):
    strategy = StrategyModule.__new__(StrategyModule)  # only the parts the wait reads
    strategy._workers = workers
    strategy._tqm = SimpleNamespace(_terminated=False)
    return strategy


def _worker(seconds):
    proc = FORK.Process(target=time.sleep, args=(seconds,))
    proc.start()
    return proc


def test_it_is_the_linear_strategy():
    assert issubclass(StrategyModule, LinearStrategyModule)


def test_with_every_worker_busy_it_blocks_until_one_exits_without_spending_cpu():
    workers = [_worker(0.6), _worker(30)]
    try:
        wall, cpu = time.monotonic(), time.thread_time()
        _strategy(workers)._wait_for_a_free_worker()
        wall, cpu = time.monotonic() - wall, time.thread_time() - cpu
        assert not workers[0].is_alive() and workers[1].is_alive()
        assert 0.3 < wall < 5
        # ansible.builtin.linear polls every worker every 0.1 ms meanwhile: a large share of a CPU
        assert cpu < 0.02, "the wait used %.3f s of CPU in %.2f s" % (cpu, wall)
    finally:
        workers[1].kill()
        for w in workers:
            w.join()


def test_a_free_or_unused_slot_returns_at_once():
    busy = _worker(30)
    try:
        for workers in ([busy, None], [busy, _worker(0)]):
            if workers[1] is not None:
                workers[1].join()
            t = time.monotonic()
            _strategy(workers)._wait_for_a_free_worker()
            assert time.monotonic() - t < 0.5
    finally:
        busy.kill()
        busy.join()


def test_a_stopped_run_ends_the_wait():
    busy = _worker(30)
    try:
        strategy = _strategy([busy])
        strategy._tqm._terminated = True
        t = time.monotonic()
        strategy._wait_for_a_free_worker()
        assert time.monotonic() - t < 0.5
    finally:
        busy.kill()
        busy.join()


def test_a_play_with_more_hosts_than_forks_runs_every_host(run_playbook):
    hosts = ["h%d" % i for i in range(5)]
    play = {"hosts": "all", "gather_facts": False, "strategy": "linux_mm.damon.linear_blocking", "tasks": [
        {"name": "First", "ansible.builtin.command": "sleep 0.3", "changed_when": False},
        {"name": "Second", "ansible.builtin.debug": {"msg": "{{ inventory_hostname }}"}}]}
    run = run_playbook(play, inventory=",".join(hosts) + ",", args=("-f", "2"))
    assert run.rc == 0, run.explain()
    assert [(t["name"], sorted(t["hosts"])) for t in run.tasks] == [("First", hosts), ("Second", hosts)]
    assert all(r["_status"] == "ok" for t in run.tasks for r in t["hosts"].values())
    assert sorted(r["msg"] for r in run.tasks[1]["hosts"].values()) == hosts


def test_without_the_worker_list_it_leaves_the_waiting_to_the_linear_strategy():
    strategy = _strategy(None)
    del strategy._workers
    strategy._wait_for_a_free_worker()  # returns: nothing to block on
