# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the ``ansible_collections/linux_mm/damon`` path the Ansible tools need.

The repository root is the collection root. ansible-test refuses to run unless
the collection sits at ``.../ansible_collections/<namespace>/<name>/``, and
``ansible-playbook`` finds collections through ``ANSIBLE_COLLECTIONS_PATH``.
Both get a tree built outside the repository under ``$TMPDIR``:

* :func:`build` — a symlink, for ansible-playbook and pytest::

    $TMPDIR/linux_mm.damon-<hash of repo path>/ansible_collections/linux_mm/damon -> <repo>

* :func:`sync_copy` — a copy of the files git would commit (tracked plus
  untracked-but-not-ignored), for ansible-test: with ``--venv`` it delegates to
  a child process whose content root is ``os.getcwd()``, which resolves a
  symlinked working directory back to the repository and then fails for lack
  of an ``ansible_collections`` parent. The copy is synchronised, not rebuilt,
  so ansible-test's delegation venv under its ``tests/output`` survives.

Directory names depend only on the repository path, so repeated runs reuse
them and two clones never share one.

Usage: ``python -m tests.tooling.collection_tree`` prints the symlinked
collection path; ``--root`` prints the directory to put on
``ANSIBLE_COLLECTIONS_PATH``; ``--copy`` syncs the copy and prints its path;
``--clean`` removes both trees.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

NAMESPACE = "linux_mm"
NAME = "damon"
REPO_ROOT = Path(__file__).resolve().parents[2]


# Never copied into the ansible-test tree, whatever git says.
COPY_EXCLUDE_DIRS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", ".cache", ".ansible"}


def collections_root(repo: Path = REPO_ROOT, flavour: str = "") -> Path:
    """Directory that holds ``ansible_collections/`` (what ANSIBLE_COLLECTIONS_PATH names)."""
    digest = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]
    suffix = "-" + flavour if flavour else ""
    return Path(tempfile.gettempdir()) / ("%s.%s-%s%s" % (NAMESPACE, NAME, digest, suffix))


def build(repo: Path = REPO_ROOT) -> Path:
    """Create (or reuse) the symlink and return the collection path inside the tree."""
    repo = repo.resolve()
    parent = collections_root(repo) / "ansible_collections" / NAMESPACE
    parent.mkdir(parents=True, exist_ok=True)
    link = parent / NAME
    if link.is_symlink() and Path(os.readlink(link)) == repo:
        return link
    # Replace atomically: a concurrent run sees either the old or the new link.
    tmp = parent / (".%s.%d.tmp" % (NAME, os.getpid()))
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(repo, target_is_directory=True)
    os.replace(tmp, link)
    return link


def collection_files(repo: Path = REPO_ROOT) -> list[str]:
    """Relative paths of the files that make up the collection (what git would commit)."""
    repo = repo.resolve()
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked tarball)
        names = []
        for top, dirs, files in os.walk(repo):
            rel = os.path.relpath(top, repo)
            dirs[:] = [d for d in dirs if d not in COPY_EXCLUDE_DIRS and not d.startswith(".venv")
                       and os.path.join(rel, d) != os.path.join("tests", "output")]
            names.extend(os.path.normpath(os.path.join(rel, f)) for f in files)
    keep = []
    for name in sorted(set(names)):
        parts = Path(name).parts
        if (COPY_EXCLUDE_DIRS.intersection(parts) or parts[0].startswith(".venv")
                or parts[:2] == ("tests", "output") or name.endswith(".pyc")):
            continue
        if os.path.lexists(repo / name):  # deleted but still tracked: skip
            keep.append(name)
    return keep


def sync_copy(repo: Path = REPO_ROOT) -> Path:
    """Mirror the collection's files into a copy under ``ansible_collections/`` and return its path."""
    repo = repo.resolve()
    dest = collections_root(repo, "copy") / "ansible_collections" / NAMESPACE / NAME
    dest.mkdir(parents=True, exist_ok=True)
    wanted = collection_files(repo)
    wanted_set = set(wanted)
    for name in wanted:
        src, dst = repo / name, dest / name
        if src.is_symlink():
            if dst.is_symlink() and os.readlink(dst) == os.readlink(src):
                continue
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dst)
            continue
        sst = src.stat()
        if dst.is_file() and not dst.is_symlink():
            dstat = dst.stat()
            if (dstat.st_size, int(dstat.st_mtime), dstat.st_mode) == (sst.st_size, int(sst.st_mtime), sst.st_mode):
                continue
        elif dst.is_symlink():
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    # Drop files that left the collection (keep ansible-test's own tests/output).
    for top, dirs, files in os.walk(dest, topdown=False):
        rel = os.path.relpath(top, dest)
        if rel == os.path.join("tests", "output") or rel.startswith(os.path.join("tests", "output") + os.sep):
            continue
        for f in files:
            name = os.path.normpath(os.path.join(rel, f))
            if name not in wanted_set:
                os.unlink(os.path.join(top, f))
        for d in dirs:
            path = os.path.join(top, d)
            if os.path.islink(path):
                if os.path.normpath(os.path.join(rel, d)) not in wanted_set:
                    os.unlink(path)
            elif not os.listdir(path):
                os.rmdir(path)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--root", action="store_true", help="print the collections root of the symlink tree")
    group.add_argument("--copy", action="store_true", help="sync the ansible-test copy and print its path")
    group.add_argument("--clean", action="store_true", help="remove both trees (the repository is untouched)")
    args = parser.parse_args()
    if args.copy:
        print(sync_copy())
        return
    if args.clean:
        link = collections_root() / "ansible_collections" / NAMESPACE / NAME
        if link.is_symlink():
            link.unlink()  # never let rmtree near the repository it points to
        for tree in (collections_root(), collections_root(flavour="copy")):
            shutil.rmtree(tree, ignore_errors=True)
            print("removed %s" % tree)
        return
    path = build()
    print(collections_root() if args.root else path)


if __name__ == "__main__":
    main()
