# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of the plugins' import graph.

- ``plugins/module_utils`` imports nothing from the other plugin folders and has no
  cycles (its files stand on floors: each imports only files of lower floors);
- ``plugins/plugin_utils`` (controller code) may import module_utils, never the reverse;
- the hugepage_tune action, which runs on the controller, loads controller code only:
  no host-side step, collapse (ctypes), ownership record, lock or sysfs planner.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLUGINS = REPO / "plugins"
PREFIX = "ansible_collections.linux_mm.damon.plugins."
# What the controller may load from module_utils: option specs and the input checks (with the
# parsers they use). Everything else there acts on a host.
CONTROLLER_MODULE_UTILS = {"_options", "_damon_spec", "_damon_layout", "_damon_features", "_procfs", "_sysfs_io"}


def _imports(path):
    """(folder, name) of every collection module ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            parts = node.module[len(PREFIX):].split(".")
            if len(parts) == 1:  # from ...plugins.module_utils import _a, _b
                found.update((parts[0], alias.name) for alias in node.names)
            else:
                found.add((parts[0], parts[1]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PREFIX):
                    parts = alias.name[len(PREFIX):].split(".")
                    found.add((parts[0], parts[1]))
    return found


def _graph(folder):
    return dict((p.stem, _imports(p)) for p in sorted((PLUGINS / folder).glob("*.py")))


def _floors(graph):
    """{name: floor}: 0 for files that import no sibling, else one above their highest import."""
    floors, visiting = {}, []

    def floor(name):
        if name in visiting:
            raise AssertionError("import cycle: %s" % " -> ".join(visiting[visiting.index(name):] + [name]))
        if name not in floors:
            visiting.append(name)
            below = [floor(dep) for dep in graph[name]]
            visiting.pop()
            floors[name] = 1 + max(below) if below else 0
        return floors[name]

    for name in graph:
        floor(name)
    return floors


def test_module_utils_import_only_module_utils_and_have_no_cycles():
    graph = _graph("module_utils")
    upward = sorted("%s imports %s.%s" % (name, folder, dep) for name, deps in graph.items()
                    for folder, dep in deps if folder != "module_utils")
    assert upward == [], "module_utils is importable on hosts; it must not import controller code"
    floors = _floors(dict((name, [dep for unused, dep in deps]) for name, deps in graph.items()))
    assert floors["_options"] == 0 and floors["_sysfs_io"] == 0


def test_plugin_utils_import_no_action_or_module_and_have_no_cycles():
    graph = _graph("plugin_utils")
    others = sorted("%s imports %s.%s" % (name, folder, dep) for name, deps in graph.items()
                    for folder, dep in deps if folder not in ("module_utils", "plugin_utils"))
    assert others == []
    _floors(dict((name, [dep for folder, dep in deps if folder == "plugin_utils"]) for name, deps in graph.items()))


def test_the_floor_checker_finds_a_cycle():
    try:
        _floors({"a": ["b"], "b": ["c"], "c": ["a"]})
    except AssertionError as e:
        assert "a -> b -> c -> a" in str(e)
    else:
        raise AssertionError("no cycle found")


def test_the_hugepage_tune_action_loads_controller_code_only(collections_root):
    code = ("import json, sys\n"
            "import ansible_collections.linux_mm.damon.plugins.action.hugepage_tune\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(%r))))\n" % PREFIX)
    out = subprocess.run([sys.executable, "-c", code], cwd=str(collections_root), check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    module_utils = set(m.rsplit(".", 1)[1] for m in loaded if m.startswith(PREFIX + "module_utils."))
    assert module_utils <= CONTROLLER_MODULE_UTILS, sorted(module_utils - CONTROLLER_MODULE_UTILS)
    assert "_options" in module_utils  # the loop's argument spec comes from here
    for name in module_utils:
        assert "import ctypes" not in (PLUGINS / "module_utils" / (name + ".py")).read_text(encoding="utf-8")
