# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/architecture.md is the map of the collection: it names every file under plugins/, and no file that is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"


def _plugin_files():
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "plugins").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_every_file_under_plugins_is_named():
    text = DOC.read_text(encoding="utf-8")
    missing = [path for path in _plugin_files() if "`%s`" % path not in text]
    assert missing == [], "docs/architecture.md does not name: %s" % ", ".join(missing)


def test_every_plugins_path_it_names_exists():
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`(plugins/[\w/]+\.py)`", text))
    assert named and sorted(p for p in named if not (REPO / p).is_file()) == []
