# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the collection tarball and prove it installs and loads.

1. ``ansible-galaxy collection build`` into ``--output DIR`` (default: a
   temporary directory, removed afterwards);
2. check the tarball holds nothing that ``build_ignore`` should have kept out
   (virtualenvs, tests/output, caches, guest images, git metadata);
3. ``ansible-galaxy collection install`` it into a temporary path;
4. ``ansible-doc --list linux_mm.damon`` from that path lists exactly the
   modules in plugins/modules/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FORBIDDEN = re.compile(
    r"(^|/)(\.git|\.venv[^/]*|__pycache__|\.pytest_cache|\.hypothesis|\.cache|\.ansible)(/|$)"
    r"|^tests/output(/|$)|^bench/\.work(/|$)|\.(pyc|qcow2|img|raw|iso)$|(^|/)[^/]+\.tar\.gz$")


def run(cmd, **kwargs):
    print("build: %s" % " ".join(str(c) for c in cmd), flush=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_NOCOLOR"] = "1"
    env.update(kwargs.pop("env", {}))
    return subprocess.run([str(c) for c in cmd], env=env, check=True, stdin=subprocess.DEVNULL, **kwargs)


def galaxy_meta():
    import yaml  # pylint: disable=import-outside-toplevel

    with open(REPO_ROOT / "galaxy.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def check_tarball(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        names = [m.name.lstrip("./") for m in tar.getmembers()]
    bad = sorted(n for n in names if FORBIDDEN.search(n))
    if bad:
        raise SystemExit("build: the tarball holds files build_ignore should exclude:\n  " + "\n  ".join(bad))
    for required in ("MANIFEST.json", "FILES.json", "README.md", "LICENSE", "meta/runtime.yml"):
        if required not in names:
            raise SystemExit("build: %s missing from %s" % (required, tarball))
    return names


def check_install(tarball: Path, workdir: Path, meta: dict) -> None:
    dest = workdir / "installed"
    run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", dest, tarball])
    fqcn = "%s.%s" % (meta["namespace"], meta["name"])
    manifest = json.loads((dest / "ansible_collections" / meta["namespace"] / meta["name"] / "MANIFEST.json")
                          .read_text(encoding="utf-8"))
    if manifest["collection_info"]["version"] != meta["version"]:
        raise SystemExit("build: installed version %s != galaxy.yml %s"
                         % (manifest["collection_info"]["version"], meta["version"]))
    out = run([BIN / "ansible-doc", "--list", "--json", "-t", "module", fqcn], stdout=subprocess.PIPE, text=True,
              env={"ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_CONFIG": str(workdir / "ansible.cfg")}).stdout
    listed = sorted(json.loads(out) if out.strip() else {})
    expected = sorted("%s.%s" % (fqcn, p.stem) for p in (REPO_ROOT / "plugins" / "modules").glob("*.py")
                      if not p.name.startswith("_") and p.name != "__init__.py")
    if listed != expected:
        raise SystemExit("build: ansible-doc lists %s from the installed tarball, expected %s" % (listed, expected))
    print("build: installed %s %s; ansible-doc lists %d module(s)" % (fqcn, meta["version"], len(listed)), flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="keep the tarball in this directory")
    args = parser.parse_args(argv)
    start = time.monotonic()
    meta = galaxy_meta()
    workdir = Path(tempfile.mkdtemp(prefix="linux_mm.damon-build-"))
    try:
        (workdir / "ansible.cfg").write_text("")
        out_dir = args.output.resolve() if args.output else workdir / "dist"
        out_dir.mkdir(parents=True, exist_ok=True)
        tarball = out_dir / ("%s-%s-%s.tar.gz" % (meta["namespace"], meta["name"], meta["version"]))
        if tarball.exists():
            tarball.unlink()
        run([BIN / "ansible-galaxy", "collection", "build", "--output-path", out_dir, REPO_ROOT],
            env={"ANSIBLE_CONFIG": str(workdir / "ansible.cfg")})
        names = check_tarball(tarball)
        print("build: %s (%d entries, %.0f KiB)" % (tarball, len(names), tarball.stat().st_size / 1024), flush=True)
        check_install(tarball, workdir, meta)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("build: ok after %.0fs" % (time.monotonic() - start), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
