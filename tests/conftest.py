# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Root conftest for every pytest test of linux_mm.damon.

At import time (before any test module is collected) it:

1. installs the host sysfs write guard (tests/guard/sitecustomize.py) in this
   process and puts tests/guard first on ``PYTHONPATH`` so every child Python
   process (ansible-playbook, the module processes it forks, the emulator)
   installs it too. Child processes must inherit ``os.environ`` (pass
   ``env=dict(os.environ, ...)``, never a fresh ``env={...}``) to stay guarded;
2. builds the ``ansible_collections/linux_mm/damon`` symlink tree outside the
   repository, puts its root on ``sys.path`` (so
   ``import ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io``
   works) and exports ``ANSIBLE_COLLECTIONS_PATH`` for subprocesses.

The guard only sees Python. **Tests must never shell out to write sysfs**
(``echo x > /sys/...``, ``tee``, ``dd``): always point ``sysfs_root`` at the
emulator or a guest. As a tripwire the session reads (never writes) the host's
kdamond 0 ``state``/``pid``, ``nr_kdamonds`` and THP ``enabled``/``defrag`` at
start and end, and fails the whole session loudly if they differ.

Fixtures: ``collection_path``, ``collections_root``, ``run_playbook``, and real processes to
use as monitoring targets: ``sleeper`` (a factory), ``target_pid``, ``target_pids``;
``world_readable_dir`` for modules run as nobody; ``shared_guest`` for guest tests marked
``shares_guest(KIND)``, which share one booted guest of each kind (tests/vm/shared.py). Helpers
that tests import (fake /proc and pagemap files, play shortcuts) are in ``tests/helpers/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GUARD_DIR = REPO_ROOT / "tests" / "guard"
ZIP_CODE_CACHE_DIR = REPO_ROOT / "tests" / "tooling" / "zip_code_cache"
ANSIBLE_PLUGINS = REPO_ROOT / "tests" / "tooling" / "ansible_plugins"
PLAYBOOK_TIMEOUT_S = 600


# --- 1. host sysfs guard ---------------------------------------------------

def _load_guard():
    spec = importlib.util.spec_from_file_location("_linux_mm_damon_guard", GUARD_DIR / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


host_sysfs_guard = _load_guard()
host_sysfs_guard.install()
# The guard runs the next sitecustomize on the path: the compiled-code cache of zip imports
# (tests/tooling/zip_code_cache: each Ansible module run compiled ansible.module_utils anew).
_pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
               if p and p not in (str(GUARD_DIR), str(ZIP_CODE_CACHE_DIR))]
os.environ["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), str(ZIP_CODE_CACHE_DIR)] + _pythonpath)
# The same hook gives the ansible-playbook children one AnsiballZ cache, keyed by the module sources it
# holds, instead of one per run (each run built each module's zip again: about 0.1 s of CPU a module).
os.environ.setdefault("LINUX_MM_DAMON_ANSIBALLZ_CACHE", os.path.join(
    os.environ.get("TMPDIR") or "/tmp", "linux_mm_damon-ansiballz-%d" % os.geteuid()))
# ... and one cache of the YAML every ansible-* process parses alike (plugin docs, routing, config definitions).
os.environ.setdefault("LINUX_MM_DAMON_YAML_CACHE", os.path.join(
    os.environ.get("TMPDIR") or "/tmp", "linux_mm_damon-yaml-%d-%s" % (os.geteuid(), sys.version.split()[0])))

# --- 2. collection path ----------------------------------------------------

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.tooling import collection_tree, tripwire  # noqa: E402  pylint: disable=wrong-import-position
from tests.vm import shared  # noqa: E402  pylint: disable=wrong-import-position

COLLECTION_PATH = collection_tree.build()
COLLECTIONS_ROOT = COLLECTION_PATH.parents[2]
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_ROOT)
# The tests' own config file: ansible-* children ignore ~/.ansible.cfg and /etc/ansible/ansible.cfg.
# It holds only what no environment variable can set: the controller's wait for task results
# polls every internal_poll_interval (default 1 ms: 5 % of a CPU for as long as a task runs,
# the feedback loops included; issue 11). Written whole (os.replace): other workers read it.
TEST_ANSIBLE_CFG = COLLECTIONS_ROOT / "ansible.cfg"
_CFG_TEXT = ("# linux_mm.damon tests configure ansible through the environment (tests/conftest.py),\n"
             "# but for this one setting that has no environment variable.\n"
             "[defaults]\ninternal_poll_interval = 0.005\n")
if not TEST_ANSIBLE_CFG.exists() or TEST_ANSIBLE_CFG.read_text() != _CFG_TEXT:
    _tmp_cfg = TEST_ANSIBLE_CFG.with_name("ansible.cfg.%d" % os.getpid())
    _tmp_cfg.write_text(_CFG_TEXT)
    os.replace(str(_tmp_cfg), str(TEST_ANSIBLE_CFG))


@pytest.fixture(scope="session")
def collections_root() -> Path:
    """Directory holding ``ansible_collections/`` (already on sys.path and ANSIBLE_COLLECTIONS_PATH)."""
    return COLLECTIONS_ROOT


@pytest.fixture(scope="session")
def collection_path() -> Path:
    """``.../ansible_collections/linux_mm/damon``, a symlink to the repository."""
    return COLLECTION_PATH


# --- 3. tripwire -------------------------------------------------------------

_SNAPSHOT_KEY = pytest.StashKey[dict]()


def pytest_sessionstart(session):
    session.config.stash[_SNAPSHOT_KEY] = tripwire.snapshot()


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    before = session.config.stash.get(_SNAPSHOT_KEY, None)
    if before is None:
        return
    message = tripwire.compare(before, tripwire.snapshot())
    if message is None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        sys.stderr.write(message + "\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- 4. run_playbook -----------------------------------------------------------

@dataclass
class PlaybookRun:
    """Outcome of one ``ansible-playbook`` run.

    ``tasks`` holds one dict per task, in order: ``{"name", "action", "play",
    "hosts": {host: result}}``. ``run["task name"]`` and ``run[i]`` return the
    result dict of host ``localhost`` (``_status`` is ok/failed/skipped/
    unreachable).
    """

    rc: int
    stdout: str
    stderr: str
    tasks: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    host: str = "localhost"

    def results(self, name: str) -> list:
        """Results of every task called ``name`` (a task may run more than once)."""
        return [t["hosts"].get(self.host) for t in self.tasks if t["name"] == name]

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.tasks[key]["hosts"].get(self.host)
        found = self.results(key)
        if not found:
            raise KeyError("no task named %r; tasks: %s" % (key, [t["name"] for t in self.tasks]))
        return found[-1]

    @property
    def changed(self) -> int:
        return self.stats.get(self.host, {}).get("changed", 0)

    @property
    def failed(self) -> bool:
        return self.rc != 0

    def explain(self) -> str:
        return "ansible-playbook rc=%d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.stdout, self.stderr)


def _playbook_file(playbook, tmp_path: Path) -> Path:
    if isinstance(playbook, Path):
        return playbook
    if isinstance(playbook, str) and "\n" not in playbook and Path(playbook).is_file():
        return Path(playbook)
    if isinstance(playbook, (list, dict)):
        text = json.dumps(playbook if isinstance(playbook, list) else [playbook])
    else:
        text = textwrap.dedent(playbook)
    path = tmp_path / ("playbook-%d.yml" % len(list(tmp_path.glob("playbook-*.yml"))))
    path.write_text(text, encoding="utf-8")
    return path


def ansible_env(**extra) -> dict:
    """Environment for ansible-* subprocesses: guarded, our collection, no user config."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env.update(
        PATH=bindir + os.pathsep + env.get("PATH", ""),
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT),
        ANSIBLE_CONFIG=str(TEST_ANSIBLE_CFG),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="True",
        ANSIBLE_CALLBACK_PLUGINS=str(ANSIBLE_PLUGINS / "callback"),
        ANSIBLE_CALLBACKS_ENABLED="pytest_json",
        ANSIBLE_LIBRARY=str(ANSIBLE_PLUGINS / "modules"),
        # the strategy docs/ssh.md documents for fleets, so every playbook test runs under it
        ANSIBLE_STRATEGY="linux_mm.damon.linear_blocking",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def run_playbook(tmp_path):
    """Run a real ``ansible-playbook`` against ``localhost`` (local connection).

    ``run_playbook(playbook, extra_vars=None, check=False, diff=False,
    timeout=600, args=(), env=None, inventory="localhost,")`` where
    ``playbook`` is YAML text, a path, or a play dict / list of plays. Returns
    a :class:`PlaybookRun`; it does not raise on a failed play (assert on
    ``.rc``/``.failed``; ``.explain()`` gives the output for messages).
    """
    counter = [0]

    def run(playbook, extra_vars=None, check=False, diff=False, timeout=PLAYBOOK_TIMEOUT_S,
            args=(), env=None, inventory="localhost,"):
        counter[0] += 1
        path = _playbook_file(playbook, tmp_path)
        out_json = tmp_path / ("ansible-result-%d.json" % counter[0])
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, "-c", "local",
               "-e", json.dumps({"ansible_python_interpreter": sys.executable})]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += list(args) + [str(path)]
        run_env = ansible_env(PYTEST_ANSIBLE_JSON=out_json, ANSIBLE_LOCAL_TEMP=tmp_path / ".ansible-local",
                              **(env or {}))
        try:
            proc = subprocess.run(cmd, cwd=str(tmp_path), env=run_env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("ansible-playbook timed out after %ss: %s\n%s" % (timeout, " ".join(cmd), exc.stdout or ""))
        data = {}
        if out_json.exists():
            data = json.loads(out_json.read_text(encoding="utf-8"))
        return PlaybookRun(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
                           tasks=data.get("tasks", []), stats=data.get("stats", {}))

    return run


# --- 5. processes to monitor -------------------------------------------------------

@pytest.fixture
def sleeper():
    """Start real processes (``sleep``) to use as vaddr targets: ``sleeper(seconds=3600)`` returns
    the ``Popen``; every one still running is killed at teardown."""
    procs = []

    def spawn(seconds=3600):
        proc = subprocess.Popen(["sleep", str(seconds)])
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def world_readable_dir():
    """A temporary directory user nobody can enter (tmp_path may sit under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="linux-mm-damon-nobody-"))
    os.chmod(str(path), 0o755)
    yield path
    shutil.rmtree(str(path), ignore_errors=True)


@pytest.fixture
def target_pid(sleeper):
    """The PID of one live process that only sleeps."""
    return sleeper().pid


@pytest.fixture
def target_pids(sleeper):
    """The PIDs of four live processes that only sleep."""
    return [sleeper().pid for unused in range(4)]


# --- 6. one booted guest per kind for the guest tests that can share it -------------------

SHARED_GUESTS = shared.SharedGuests()


def pytest_configure(config):
    config.addinivalue_line("markers", "%s(kind): the test uses the shared_guest fixture: a booted guest of image "
                            "KIND that the tests of one kind share (tests/vm/shared.py)" % shared.MARKER)


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    # Tests marked slow first: pytest-xdist hands the tests out in this order as workers free up, so the
    # long ones run beside many short ones instead of ending a run alone (test-fast: 4 workers, 2 CPUs).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    shared.order(items)


@pytest.fixture
def shared_guest(request):
    """The running guest of the image kind this test's ``shares_guest`` marker names, booted for the first
    test of that kind and stopped after the last (at most one guest runs at a time)."""
    kind = shared.kind_of(request.node)
    if kind is None:
        pytest.fail("shared_guest needs @pytest.mark.%s(KIND) on the test (or its parameter)" % shared.MARKER)
    return SHARED_GUESTS.get(kind)


def pytest_runtest_teardown(item, nextitem):
    """After the last test of a kind, stop its guest (checking that it left nothing behind)."""
    if SHARED_GUESTS.guest is not None and (nextitem is None or shared.kind_of(nextitem) != SHARED_GUESTS.guest.name):
        SHARED_GUESTS.stop()


def pytest_unconfigure(config):  # pylint: disable=unused-argument
    """An interrupted session still stops the shared guest (Guest's own atexit and signal handlers would too)."""
    guest, SHARED_GUESTS.guest = SHARED_GUESTS.guest, None
    if guest is not None:
        guest.stop()
