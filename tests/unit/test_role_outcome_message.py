# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hugepage role's outcome message, rendered by Ansible's templar from roles/hugepage/tasks/main.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK = "Show the outcome of the feedback loop"


def _trusted(value):
    if isinstance(value, dict):
        return dict((k, _trusted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return trust_as_template(value) if isinstance(value, str) else value


def outcome(modules_on=(), mode="stop", iterations=4, pruned=()):
    tasks = yaml.safe_load((REPO_ROOT / "roles" / "hugepage" / "tasks" / "main.yml").read_text())
    [task] = [_trusted(t) for t in tasks if t["name"] == TASK]
    labels = {"damon_reclaim": "DAMON_RECLAIM", "damon_lru_sort": "DAMON_LRU_SORT", "damon_stat": "DAMON_STAT"}
    variables = dict(task.get("vars", {}))
    variables.update(
        hugepage_exclusive_modules=mode,
        hugepage_damon={"exclusive_modules": dict(
            (name, {"label": label, "present": True, "enabled": label in modules_on}) for name, label in labels.items())},
        hugepage_tuned={"iterations": iterations, "stopped": "converged", "pruned": [{"name": n} for n in pruned],
                        "msg": "hotcold: threshold 45.00 % of samples (9 of 20 samples per 100 ms): 66 MiB hot in "
                               "2 MiB chunks, 64 MiB of them huge"})
    return Templar(loader=DataLoader(), variables=variables).template(task["ansible.builtin.debug"]["msg"])


def test_names_the_module_the_loop_stopped_and_who_turns_it_back_on():
    msg = outcome(modules_on=("DAMON_STAT",))
    assert msg == ("4 iterations, stopped: converged. hotcold: threshold 45.00 % of samples (9 of 20 samples per "
                   "100 ms): 66 MiB hot in 2 MiB chunks, 64 MiB of them huge. DAMON_STAT was on: the kernel runs it "
                   "alone, so the loop stopped it for its kdamonds (exclusive_modules: stop); the stop entry point "
                   "(playbooks/stop.yml) turns it back on.")


def test_two_modules():
    msg = outcome(modules_on=("DAMON_RECLAIM", "DAMON_STAT"), pruned=("old",))
    assert "Removed: old. DAMON_RECLAIM and DAMON_STAT were on: the kernel runs them alone" in msg
    assert msg.endswith("turns them back on.")


@pytest.mark.parametrize("modules_on, mode, iterations", [
    ((), "stop", 4), (("DAMON_STAT",), "fail", 4), (("DAMON_STAT",), "stop", 0)])
def test_no_module_note_when_none_was_stopped(modules_on, mode, iterations):
    msg = outcome(modules_on=modules_on, mode=mode, iterations=iterations)
    assert msg.endswith("64 MiB of them huge") and "DAMON_" not in msg
