# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every documentation string of the modules and doc fragments is YAML, checked in a second: a ": " inside a
plain scalar broke ansible-doc three times, which only sanity and the README tests (minutes) noticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
FILES = sorted(PLUGINS.glob("modules/*.py")) + sorted(PLUGINS.glob("doc_fragments/*.py"))


def doc_strings(path):
    """(name, text) of the upper-case string constants (DOCUMENTATION, RETURN, EXAMPLES, fragments)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    yield target.id, node.value.value


@pytest.mark.parametrize("path", FILES, ids=lambda p: "%s/%s" % (p.parent.name, p.name))
def test_documentation_is_yaml(path):
    docs = list(doc_strings(path))
    for name, text in docs:
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            pytest.fail("%s %s is not YAML: %s" % (path.name, name, e))
    assert docs or path.name == "__init__.py"
