# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of the collection metadata and of the tooling under tests/tooling/."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tooling import build, collection_tree, sanity

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTION_GROUP = ["damon_info", "hugepage_step", "hugepage_tune", "kdamond", "thp"]


def load_yaml(rel):
    with open(REPO_ROOT / rel, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_galaxy_metadata_is_complete():
    meta = load_yaml("galaxy.yml")
    assert (meta["namespace"], meta["name"], meta["version"]) == ("linux_mm", "damon", "0.1.0")
    for key in ("readme", "authors", "description", "license_file", "repository", "documentation", "homepage",
                "issues", "build_ignore"):
        assert meta.get(key), key
    assert {"linux", "infrastructure"} <= set(meta["tags"])
    assert all(re.fullmatch(r"(?!.*__)[a-z][0-9a-z_]*", t) and len(t) <= 64 for t in meta["tags"])
    assert len(meta["tags"]) <= 20
    assert (REPO_ROOT / meta["readme"]).is_file()
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO_ROOT / meta["license_file"]).read_text(encoding="utf-8")
    for pattern in ("tests/output", ".venv", ".venv-*", ".cache"):
        assert pattern in meta["build_ignore"]


def test_runtime_metadata():
    runtime = load_yaml("meta/runtime.yml")
    assert runtime["requires_ansible"] == ">=2.19.0"
    assert runtime["action_groups"]["damon"] == ACTION_GROUP


def test_changelog_layout():
    config = load_yaml("changelogs/config.yaml")
    assert config["notesdir"] == "fragments" and config["changes_file"] == "changelog.yaml"
    assert load_yaml("changelogs/changelog.yaml")["releases"] == {}
    sections = {name for name, _title in config["sections"]} | {"release_summary", "trivial"}
    fragments = sorted((REPO_ROOT / "changelogs" / "fragments").glob("*.yml"))
    assert fragments
    for fragment in fragments:
        assert set(load_yaml(fragment.relative_to(REPO_ROOT))) <= sections, fragment


@pytest.mark.parametrize("name", ["test.txt", "lint.txt"])
def test_requirements_are_fully_pinned(name):
    lines = [line.strip() for line in (REPO_ROOT / "requirements" / name).read_text().splitlines()]
    reqs = [line for line in lines if line and not line.startswith("#")]
    assert reqs
    for req in reqs:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.\-+]*", req), req


def test_lint_requirements_pin_ansible_lint():
    assert "ansible-lint==26.10.1" in (REPO_ROOT / "requirements" / "lint.txt").read_text().splitlines()


def test_no_sanity_ignore_files():
    assert not list((REPO_ROOT / "tests" / "sanity").glob("ignore-*.txt"))


def test_symlink_tree_points_at_the_repository(collection_path, collections_root):
    assert collection_path.is_symlink() and collection_path.resolve() == REPO_ROOT
    assert collection_path == collections_root / "ansible_collections" / "linux_mm" / "damon"
    assert not str(collections_root).startswith(str(REPO_ROOT))
    assert os.environ["ANSIBLE_COLLECTIONS_PATH"] == str(collections_root)
    assert collection_tree.build() == collection_path  # reused, not rebuilt


def test_module_utils_import_through_the_collection_path():
    from ansible_collections.linux_mm.damon.plugins.module_utils import _sysfs_io  # pylint: disable=import-outside-toplevel

    assert Path(_sysfs_io.__file__).resolve() == REPO_ROOT / "plugins" / "module_utils" / "_sysfs_io.py"


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo)] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def test_sync_copy_mirrors_what_git_would_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(collection_tree.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    repo = tmp_path / "repo"
    (repo / "plugins" / "modules").mkdir(parents=True)
    (repo / ".gitignore").write_text("/.venv/\n/tests/output/\n*.log\n")
    (repo / "galaxy.yml").write_text("x: 1\n")
    (repo / "plugins" / "modules" / "m.py").write_text("A = 1\n")
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "lib" / "junk.py").write_text("")
    (repo / ".venv-lint").mkdir()
    (repo / ".venv-lint" / "junk.py").write_text("")
    (repo / "tests" / "output").mkdir(parents=True)
    (repo / "tests" / "output" / "junk.py").write_text("")
    (repo / "build.log").write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", ".gitignore", "galaxy.yml")
    (repo / "untracked.py").write_text("B = 2\n")

    dest = collection_tree.sync_copy(repo)
    assert dest.parts[-3:] == ("ansible_collections", "linux_mm", "damon")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [".gitignore", "galaxy.yml", "plugins/modules/m.py", "untracked.py"]

    (dest / "tests" / "output").mkdir(parents=True)
    (dest / "tests" / "output" / "keep").write_text("ansible-test results")
    (repo / "untracked.py").unlink()
    (repo / "plugins" / "modules" / "m.py").write_text("A = 2  # changed\n")
    collection_tree.sync_copy(repo)
    assert not (dest / "untracked.py").exists()
    assert (dest / "plugins" / "modules" / "m.py").read_text() == "A = 2  # changed\n"
    assert (dest / "tests" / "output" / "keep").exists()


def test_get_pip_stand_in(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path, done = sanity.write_get_pip_stand_in()
    assert done == "written (it was missing)"
    assert re.fullmatch(r"get_pip_\d+(_\d+)+\.py", path.name)
    assert path.parent == tmp_path / ".ansible" / "test" / "cache"
    text = path.read_text()
    compile(text, str(path), "exec")
    assert "ensurepip.bootstrap" in text and '"--cert"' in text
    assert sanity.ca_bundle() == "" or os.path.isfile(sanity.ca_bundle())


def test_get_pip_stand_in_is_written_only_when_missing_or_different(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path, _done = sanity.write_get_pip_stand_in()
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime - 10**9, mtime - 10**9))
    assert sanity.write_get_pip_stand_in() == (path, "already in place, unchanged")
    assert path.stat().st_mtime_ns == mtime - 10**9  # not rewritten
    wanted = path.read_text()

    path.write_text(wanted.replace("upgrade=True", "upgrade=False"))  # an older stand-in of ours
    assert sanity.write_get_pip_stand_in()[1] == "updated (an earlier stand-in of ours differed)"
    assert path.read_text() == wanted and not path.with_name(path.name + ".orig").exists()

    path.write_text("# a real get-pip.py someone cached\n")
    _path, done = sanity.write_get_pip_stand_in()
    backup = path.with_name(path.name + ".orig")
    assert done == "written; the different file that was there is now %s" % backup
    assert backup.read_text() == "# a real get-pip.py someone cached\n" and path.read_text() == wanted


def test_build_refuses_forbidden_files():
    bad = [".venv/lib/x.py", ".venv-lint/bin/python", "tests/output/bot/x.json", "plugins/__pycache__/x.pyc",
           "linux_mm-damon-0.1.0.tar.gz", "tests/vm/guest.qcow2", ".git/config", ".hypothesis/x"]
    good = ["plugins/modules/kdamond.py", "tests/vm/images.py", "README.md", "docs/architecture.md"]
    assert all(build.FORBIDDEN.search(n) for n in bad)
    assert not any(build.FORBIDDEN.search(n) for n in good)


def test_ci_run_is_strict_bash():
    text = (REPO_ROOT / ".ci" / "run").read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert os.access(REPO_ROOT / ".ci" / "run", os.X_OK)
    assert ".ci/bootstrap-host all" in text and "make venv" in text and "make test" in text
    subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci" / "run")], check=True)


def test_makefile_targets():
    out = subprocess.run(["make", "-n", "-C", str(REPO_ROOT), "test-fast", "sanity", "lint", "build", "demo",
                          "clean"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                         env=dict(os.environ, MAKEFLAGS=""))
    assert out.returncode == 0, out.stdout
    assert "-m pytest" in out.stdout and "tests.tooling.sanity" in out.stdout


def test_everything_that_boots_guests_retries_a_failed_boot():
    out = subprocess.run(["make", "-n", "-C", str(REPO_ROOT), "demo", "bench", "test-guests", "images"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True,
                         env=dict(os.environ, MAKEFLAGS="")).stdout
    for command in ("-m tests.demo", "-m bench", "-m pytest -m \"vm and not apps\""):
        line = next(line for line in out.splitlines() if command in line)
        assert "LINUX_MM_DAMON_BOOT_ATTEMPTS=${LINUX_MM_DAMON_BOOT_ATTEMPTS:-2}" in line, line


def test_pytest_runs_without_cache_and_with_a_timeout(pytestconfig):
    assert not pytestconfig.pluginmanager.has_plugin("cacheprovider")
    assert float(pytestconfig.getini("timeout")) > 0
