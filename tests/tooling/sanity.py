# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ``ansible-test sanity --venv`` on the collection.

Preparations a machine without access to pip's bootstrap host needs:

* ansible-test bootstraps pip into each of its test venvs by running a script
  it downloads from a host CI cannot reach; it first looks for a cached copy at
  ``~/.ansible/test/cache/get_pip_<version>.py``. We put a stand-in there: it
  runs ``ensurepip`` and then ``python -m pip install --cert <CA bundle> <the
  arguments it got>``, because ansible-test's pip environment does not see the
  machine's pip configuration. The file is written only when it is missing or
  differs, and every run says which (a different file that is not ours is kept
  beside it as ``<name>.orig``).
* ansible-test must run inside ``ansible_collections/linux_mm/damon``. With
  ``--venv`` it delegates to a child whose content root is ``os.getcwd()``,
  so a symlink is resolved away; we run it in a synchronised copy of the
  files git would commit (tests/tooling/collection_tree.py ``sync_copy``),
  which also keeps .venv*, tests/output and caches out of its file list.
* The collection ships no ``tests/sanity/ignore-*.txt``; this script fails if
  one appears.

Extra arguments are passed to ``ansible-test sanity`` (e.g. ``--test pep8``).
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "tests.tooling" importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.tooling import collection_tree  # noqa: E402  pylint: disable=wrong-import-position

PYTHON_VERSION = "%d.%d" % sys.version_info[:2]

GET_PIP_STAND_IN = '''\
"""Stand-in for get-pip.py, written by linux_mm.damon tests/tooling/sanity.py.

ansible-test runs this with pip-style arguments (pip==X --no-setuptools
--no-wheel ...). We bootstrap the pip bundled with Python, then install the
requested packages with an explicit CA bundle.
"""
import ensurepip
import subprocess
import sys

CA_BUNDLE = {ca_bundle!r}

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel", "--no-pip")]
cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
if CA_BUNDLE:
    cmd += ["--cert", CA_BUNDLE]
sys.exit(subprocess.call(cmd + args))
'''


def ca_bundle() -> str:
    """The CA bundle pip should trust: SSL_CERT_FILE, else OpenSSL's default file."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile,
                      ssl.get_default_verify_paths().openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return ""


def ansible_test_pip_version() -> str:
    """The pip version ansible-test bootstraps (names the cached get_pip file)."""
    import ansible_test  # pylint: disable=import-outside-toplevel

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
    if not match:
        raise SystemExit("cannot find the pip version ansible-test bootstraps in %s" % source)
    return match.group(1)


STAND_IN_MARK = GET_PIP_STAND_IN.splitlines()[0]


def write_get_pip_stand_in() -> tuple[Path, str]:
    """Put the stand-in in ansible-test's cache; returns its path and what was done, in words.

    Writes only when the file is missing or differs; a different file that is not an
    earlier stand-in of ours (a real get-pip.py, say) is moved to ``<name>.orig`` first.
    """
    version = ansible_test_pip_version()
    cache = Path.home() / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / ("get_pip_%s.py" % version.replace(".", "_"))
    text = GET_PIP_STAND_IN.format(ca_bundle=ca_bundle())
    try:
        old = path.read_text()
    except FileNotFoundError:
        old = None
    if old == text:
        return path, "already in place, unchanged"
    if old is None:
        done = "written (it was missing)"
    elif old.startswith(STAND_IN_MARK):
        done = "updated (an earlier stand-in of ours differed)"
    else:
        backup = path.with_name(path.name + ".orig")
        os.replace(path, backup)
        done = "written; the different file that was there is now %s" % backup
    tmp = path.with_name(".%s.%d.tmp" % (path.name, os.getpid()))
    tmp.write_text(text)
    os.replace(tmp, path)
    return path, done


def check_no_ignore_files() -> None:
    ignores = sorted((collection_tree.REPO_ROOT / "tests" / "sanity").glob("ignore-*.txt"))
    if ignores:
        raise SystemExit("sanity ignore files are not allowed: %s" % ", ".join(str(p) for p in ignores))


def main(argv: list[str]) -> int:
    check_no_ignore_files()
    stand_in, done = write_get_pip_stand_in()
    link = collection_tree.sync_copy()
    ansible_test = shutil.which("ansible-test", path=str(Path(sys.executable).parent)) or "ansible-test"
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # Our host-sysfs guard is for test processes, not for ansible-test's tooling.
    env.pop("PYTHONPATH", None)
    cmd = [ansible_test, "sanity", "--venv", "--python", PYTHON_VERSION, "--color", "no"] + argv
    print("sanity: ansible-test's get-pip stand-in %s: %s" % (stand_in, done), flush=True)
    print("sanity: cd %s && %s" % (link, " ".join(cmd)), flush=True)
    start = time.monotonic()
    rc = subprocess.call(cmd, cwd=str(link), env=env)
    print("sanity: exit %d after %.0fs (results in %s)" % (rc, time.monotonic() - start, link / "tests" / "output"),
          flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
