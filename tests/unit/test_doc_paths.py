# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every repository path the documentation names exists, and no file points at notes outside it.

Checked: backticked paths and link targets in docs/*.md and every README.md (the top one,
bench/, tests/**, roles/, molecule/); ``.md`` files named anywhere in the Python sources (docstrings and
comments included), and backticked repository paths in them. A backticked word is taken
for a repository path when its first part is a top-level entry of the repository
(``plugins/...``, ``tests/...``, ``.ci/...``) or when it names a ``.md`` file; it may be
relative to the repository root or to the directory of the file that names it (or one of
that directory's parents inside the repository). Words with placeholders or globs
(``<name>``, ``*``, ``{a,b}``, ``$VAR``, ``...``) and absolute paths of the system
(``/sys/...``, ``/proc/...``) are not repository paths. Paths that the tools create
(``build/``, ``tests/output``, the virtual environments) need not exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = sorted(p.name for p in REPO_ROOT.iterdir() if p.name != ".git")
# Created by make targets or the tools, not part of the repository.
GENERATED = ("build", "tests/output", ".venv", ".venv-lint", ".emulator", ".cache", ".hypothesis")
PLACEHOLDER = re.compile(r"[*<>{}$…~()=\[\]|]|\.\.\.|\.X\b|(?:^|/)[A-Z][A-Z0-9_]{2,}(?:/|$)")
TICKED = re.compile(r"(?<!`)`{1,2}([^`\n]+?)`{1,2}(?!`)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MD_NAME = re.compile(r"(?<![\w.-])((?:/|\.{1,2}/)?[\w.-]+(?:/[\w.-]+)*\.md)\b")
SKIP_DIRS = {".git", "__pycache__", "output", "fixtures", "results"}


def markdown_files() -> list[Path]:
    """README.md, docs/*.md and every other README.md of the repository (tests/, bench/, roles/, ...)."""
    files = sorted((REPO_ROOT / "docs").glob("*.md"))
    for path in sorted(REPO_ROOT.rglob("README.md")):
        rel = path.relative_to(REPO_ROOT)
        if rel.parts[0] not in (".git", "build") and not rel.parts[0].startswith(".venv") \
                and rel.parts[:2] != ("tests", "output"):
            files.append(path)
    return files


def python_files() -> list[Path]:
    found = []
    for top in ("plugins", "tests", "bench", "roles", "playbooks", "molecule"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT)
            if not SKIP_DIRS.intersection(rel.parts[:-1]):
                found.append(path)
    return found


def _words(token: str):
    for word in token.split():
        word = word.split("::", 1)[0].rstrip(".,;:")  # pytest node ids, sentence punctuation
        if word:
            yield word


def repo_path_candidate(word: str) -> bool:
    """Whether a backticked word reads as a path inside this repository."""
    if PLACEHOLDER.search(word) or word.startswith(("/", "http:", "https:", "-")):
        return False
    first = word.split("/", 1)[0]
    if "/" in word and first in TOP_LEVEL:
        return True
    return word.endswith(".md")


def _repo_entries() -> list[str]:
    entries = []
    for top, dirs, files in os.walk(REPO_ROOT):
        rel = os.path.relpath(top, REPO_ROOT)
        # generated trees (virtual environments, ansible-test's output, build/) are not walked
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", "build", ".hypothesis")
                   and not d.startswith(".venv") and os.path.join(rel, d) != os.path.join("tests", "output")]
        entries.extend("/" + os.path.normpath(os.path.join(rel, name)) for name in dirs + files)
    return entries


REPO_ENTRIES = _repo_entries()


def resolves(word: str, named_in: Path) -> bool:
    """Relative to the naming file's directory or a parent of it, or the tail of a repository path
    (tables and lists name files relative to a directory named earlier, e.g. ``tasks/main.yml``)."""
    rel = word.rstrip("/")
    if any(rel == g or rel.startswith(g + "/") for g in GENERATED):
        return True
    base = named_in.parent
    while REPO_ROOT == base or REPO_ROOT in base.parents:
        if (base / rel).exists():
            return True
        base = base.parent
    return any(entry.endswith("/" + rel) for entry in REPO_ENTRIES)


def missing(text: str, named_in: Path, python: bool = False) -> list[str]:
    """Repository paths ``text`` (the content of ``named_in``) names that do not exist.

    Markdown: backticked paths and link targets. Python: backticked paths and every
    ``.md`` file named anywhere (an absolute one is outside the repository by definition).
    """
    bad = []
    for match in TICKED.finditer(text):
        for word in _words(match.group(1)):
            if repo_path_candidate(word) and not resolves(word, named_in):
                bad.append(word)
    if python:
        for match in MD_NAME.finditer(text):
            word = match.group(1)
            if re.search(r"\.\w+/", word):  # "latest.json/latest.md": alternatives in prose
                word = word.rsplit("/", 1)[1]
            if word.startswith("/") or not resolves(word, named_in):
                bad.append(word)
    else:
        for match in LINK.finditer(text):
            target = match.group(1).split("#", 1)[0]
            if target and not re.match(r"[a-z]+:", target) and not (named_in.parent / target).exists():
                bad.append(target)
    return sorted(set(bad), key=bad.index)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_markdown_names_only_existing_repository_paths(path):
    assert missing(path.read_text(encoding="utf-8"), path) == []


def test_python_sources_name_only_existing_notes_and_paths():
    bad = {}
    for path in python_files():
        if path == Path(__file__).resolve():  # its own examples name missing files on purpose
            continue
        found = missing(path.read_text(encoding="utf-8"), path, python=True)
        if found:
            bad[str(path.relative_to(REPO_ROOT))] = found
    assert bad == {}


# The checker itself, on text that names a file beside which nothing is written.
DOC = REPO_ROOT / "docs" / "__doc_paths_probe__.md"
PY = REPO_ROOT / "tests" / "tooling" / "__doc_paths_probe__.py"


@pytest.mark.parametrize("text, expected", [
    ("see `shared/kernel-notes.md`", ["shared/kernel-notes.md"]),
    ("see ``docs/nothing-here.md`` §2", ["docs/nothing-here.md"]),
    ("run `tests/vm/no_such_file.py::test_x` or `.ci/nothing all`", ["tests/vm/no_such_file.py", ".ci/nothing"]),
    ("[a link](missing.md#part)", ["missing.md"]),
    ("fine: `docs/architecture.md`, `architecture.md`, `/sys/kernel/mm/damon`, `<cache>/logs/`, "
     "`plugins/modules/*.py`, `build/demo/x.json`, `mm/damon/core.c`, `tests/vm/guest.py::Guest`, "
     "[arch](architecture.md#layout), [kernel](https://docs.kernel.org/x.md)", []),
])
def test_the_markdown_checker(text, expected):
    assert not DOC.exists()
    assert missing(text, DOC) == expected


def test_the_python_checker_flags_notes_outside_the_repository():
    assert not PY.exists()
    text = '"""See /work/shared/tooling-notes.md and ``shared/reference/damon.md`` §2.7; README.md is fine."""'
    assert missing(text, PY, python=True) == ["shared/reference/damon.md", "/work/shared/tooling-notes.md"]
