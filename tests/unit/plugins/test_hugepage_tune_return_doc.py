# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hugepage_tune's RETURN documents what its action plugin puts in the result beside the loop's keys."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ACTION = REPO_ROOT / "plugins" / "action" / "hugepage_tune.py"
MODULE = REPO_ROOT / "plugins" / "modules" / "hugepage_tune.py"
# Ansible's own result keys, documented by ansible-core rather than by each module.
COMMON = {"failed", "msg", "changed", "unreachable", "ansible_facts"}


def _module_doc(name):
    tree = ast.parse(MODULE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no %s" % (MODULE, name))


def _result_assignments():
    """{key: value node} for every ``result["key"] = value`` in the action plugin."""
    found = {}
    for node in ast.walk(ast.parse(ACTION.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            target = node.targets[0]
            if getattr(target.value, "id", None) == "result" and isinstance(target.slice, ast.Constant):
                found[target.slice.value] = node.value
    return found


def test_every_key_the_action_sets_is_documented():
    documented = set(_module_doc("RETURN"))
    set_by_action = set(_result_assignments()) - COMMON
    assert set_by_action and set_by_action <= documented, set_by_action - documented


def test_ansible_stats_sample_has_the_keys_the_action_returns():
    value = _result_assignments()["ansible_stats"]
    returned = dict((k.value, v) for k, v in zip(value.keys, value.values))
    data_keys = [k.value for k in returned["data"].keys]
    doc = _module_doc("RETURN")["ansible_stats"]
    assert doc["type"] == "dict"
    assert set(doc["sample"]) == set(returned)
    assert set(doc["sample"]["data"]) == set(data_keys)
    for key in data_keys:
        assert key in " ".join(doc["description"]), key
