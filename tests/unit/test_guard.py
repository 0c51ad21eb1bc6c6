# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of the host sysfs write guard (tests/guard/sitecustomize.py).

Every write attempt here targets a path that cannot exist on any host
(kdamond 9999, a made-up file name under transparent_hugepage, a made-up
damon_ module): if the guard were broken the attempt would fail with ENOENT
or EACCES from the kernel and change nothing. The tests assert the error is
the guard's PermissionError, not the kernel's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GUARD_DIR = REPO_ROOT / "tests" / "guard"
GUARD_MSG = "host sysfs guard"

NO_SUCH_KDAMOND_STATE = "/sys/kernel/mm/damon/admin/kdamonds/9999/state"
NO_SUCH_THP_FILE = "/sys/kernel/mm/transparent_hugepage/linux_mm_damon_guard_probe"
NO_SUCH_DAMON_MODULE = "/sys/module/damon_linux_mm_guard_probe/parameters/enabled"

# Runs in a child process; prints one JSON line per attempt.
CHILD = textwrap.dedent(r'''
    import json, os, sys

    def attempt(name, fn):
        try:
            fn()
            res = {"ok": True}
        except OSError as exc:
            res = {"ok": False, "type": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}
        res["name"] = name
        print(json.dumps(res), flush=True)

    def write_open(path):
        with open(path, "w") as fh:
            fh.write("off")

    def read(path):
        with open(path) as fh:
            fh.read()

    tmp = sys.argv[1]
    print(json.dumps({"name": "installed",
                      "ok": bool(getattr(sys, "_linux_mm_damon_host_sysfs_guard", False))}), flush=True)
    attempt("open_w", lambda: write_open(%(kd)r))
    attempt("open_a_bytes", lambda: open(%(kd)r.encode(), "ab").close())
    attempt("open_rplus", lambda: open(%(kd)r, "r+").close())
    attempt("os_open_wronly", lambda: os.close(os.open(%(kd)r, os.O_WRONLY)))
    attempt("os_open_rdwr", lambda: os.close(os.open(%(kd)r, os.O_RDWR)))
    attempt("os_open_creat", lambda: os.close(os.open(%(thp)r, os.O_RDONLY | os.O_CREAT, 0o600)))
    link = os.path.join(tmp, "thp-link")
    os.symlink(%(thp)r, link)
    attempt("symlink_into_thp", lambda: write_open(link))
    if os.path.isdir("/sys/kernel/mm/damon/admin/kdamonds"):
        dirlink = os.path.join(tmp, "kdamonds-link")
        os.symlink("/sys/kernel/mm/damon/admin/kdamonds", dirlink)
        attempt("dir_symlink_relative", lambda: (os.chdir(dirlink), write_open("9999/state")))
    os.chdir(tmp)
    attempt("relative_dotdot", lambda: write_open(os.path.relpath(%(kd)r, tmp)))
    attempt("damon_module_param", lambda: write_open(%(mod)r))
    attempt("mkdir", lambda: os.mkdir("/sys/kernel/mm/damon/admin/kdamonds/9999"))
    attempt("makedirs", lambda: os.makedirs("/sys/kernel/mm/damon/admin/kdamonds/9999/contexts"))
    attempt("remove", lambda: os.remove(%(kd)r))
    attempt("rmdir", lambda: os.rmdir("/sys/kernel/mm/damon/admin/kdamonds/9999"))
    attempt("rename_into", lambda: os.rename(os.path.join(tmp, "none"), %(kd)r))
    attempt("replace_into", lambda: os.replace(os.path.join(tmp, "none"), %(thp)r))
    attempt("truncate", lambda: os.truncate(%(kd)r, 0))
    attempt("chmod", lambda: os.chmod(%(thp)r, 0o600))
    attempt("symlink_create", lambda: os.symlink("/tmp", %(thp)r))
    attempt("pathlib_write_text", lambda: __import__("pathlib").Path(%(kd)r).write_text("on"))
    if os.path.isdir("/sys/kernel/mm/transparent_hugepage"):
        dfd = os.open("/sys/kernel/mm/transparent_hugepage", os.O_RDONLY | os.O_DIRECTORY)
        attempt("os_open_dir_fd", lambda: os.close(os.open("linux_mm_damon_guard_probe",
                                                           os.O_WRONLY | os.O_CREAT, dir_fd=dfd)))
        attempt("read_thp_enabled", lambda: read("/sys/kernel/mm/transparent_hugepage/enabled"))
    attempt("read_proc", lambda: read("/proc/self/status"))
    attempt("read_sys_dir_fd", lambda: os.close(os.open("/sys/kernel", os.O_RDONLY | os.O_DIRECTORY)))
    fake = os.path.join(tmp, "sys", "kernel", "mm", "damon", "admin", "kdamonds")
    attempt("fake_tree_makedirs", lambda: os.makedirs(fake))
    attempt("fake_tree_write", lambda: write_open(os.path.join(fake, "nr_kdamonds")))
    attempt("tmp_write", lambda: write_open(os.path.join(tmp, "plain")))
''') % {"kd": NO_SUCH_KDAMOND_STATE, "thp": NO_SUCH_THP_FILE, "mod": NO_SUCH_DAMON_MODULE}

GUARDED = ["open_w", "open_a_bytes", "open_rplus", "os_open_wronly", "os_open_rdwr", "os_open_creat",
           "symlink_into_thp", "dir_symlink_relative", "relative_dotdot", "damon_module_param", "mkdir",
           "makedirs", "remove", "rmdir", "rename_into", "replace_into", "truncate", "chmod", "symlink_create",
           "pathlib_write_text", "os_open_dir_fd"]
ALLOWED = ["read_thp_enabled", "read_proc", "read_sys_dir_fd", "fake_tree_makedirs", "fake_tree_write", "tmp_write"]


def run_child(tmp_path, pythonpath):
    env = dict(os.environ)
    if pythonpath is None:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return {r["name"]: r for r in map(json.loads, proc.stdout.splitlines())}


@pytest.fixture(scope="module")
def child_results(tmp_path_factory):
    return run_child(tmp_path_factory.mktemp("guard"), str(GUARD_DIR))


def test_guard_installed_in_child(child_results):
    assert child_results["installed"]["ok"] is True


@pytest.mark.parametrize("name", GUARDED)
def test_write_attempt_is_refused_by_the_guard(child_results, name):
    if name not in child_results:
        pytest.skip("%s needs /sys/kernel/mm/{damon,transparent_hugepage} on this host" % name)
    res = child_results[name]
    assert res["ok"] is False, "%s went through: the guard is broken" % name
    assert res["type"] == "PermissionError" and GUARD_MSG in res["msg"], (
        "%s failed with the kernel's error, not the guard's: %r" % (name, res))


@pytest.mark.parametrize("name", ALLOWED)
def test_reads_and_other_writes_still_work(child_results, name):
    if name not in child_results:
        pytest.skip("%s needs /sys/kernel/mm/transparent_hugepage on this host" % name)
    assert child_results[name]["ok"] is True, child_results[name]


def test_conftest_exports_guard_on_pythonpath():
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(GUARD_DIR)


def test_guard_active_in_pytest_process(tmp_path):
    assert getattr(sys, "_linux_mm_damon_host_sysfs_guard", False)
    with pytest.raises(PermissionError, match=GUARD_MSG):
        with open(NO_SUCH_KDAMOND_STATE, "w", encoding="utf-8"):
            pass
    link = tmp_path / "link"
    link.symlink_to(NO_SUCH_THP_FILE)
    with pytest.raises(PermissionError, match=GUARD_MSG):
        os.open(link, os.O_WRONLY | os.O_CREAT)


def test_unguarded_child_would_get_the_kernels_error(tmp_path):
    """Control: without the guard the same attempts fail differently (proves the probe paths are harmless)."""
    res = run_child(tmp_path, None)
    assert res["installed"]["ok"] is False
    for name in ("open_w", "os_open_wronly", "mkdir"):
        assert res[name]["ok"] is False
        assert GUARD_MSG not in res[name]["msg"]


def test_guard_chains_a_shadowed_sitecustomize(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['SHADOWED_SITECUSTOMIZE_RAN'] = '1'\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GUARD_DIR), str(other)]))
    out = subprocess.run([sys.executable, "-c", "import os, sys; print(os.environ.get('SHADOWED_SITECUSTOMIZE_RAN'),"
                          " getattr(sys, '_linux_mm_damon_host_sysfs_guard', False))"],
                         env=env, stdout=subprocess.PIPE, text=True, timeout=60, check=True).stdout.split()
    assert out == ["1", "True"]


def test_guarded_prefixes_cover_every_sysfs_mount():
    from tests.guard import sitecustomize as guard  # pylint: disable=import-outside-toplevel

    prefixes = guard.guarded_prefixes(["/sys", "/mnt/othersys/"])
    assert guard.is_guarded("/sys/kernel/mm/damon", prefixes)
    assert guard.is_guarded("/mnt/othersys/kernel/mm/damon/admin/kdamonds/0/state", prefixes)
    assert guard.is_guarded("/sys/module/damon_reclaim/parameters/enabled", prefixes)
    assert guard.is_guarded("/sys/kernel/mm/transparent_hugepage/khugepaged/defrag", prefixes)
    assert not guard.is_guarded("/sys/kernel/mm/damonx", prefixes)
    assert not guard.is_guarded("/sys/module/damonx", prefixes)
    assert not guard.is_guarded("/tmp/sys/kernel/mm/damon/admin", prefixes)
    assert not guard.is_guarded("/sys/kernel/mm/transparent_hugepage_x", prefixes)


def test_only_a_path_off_sysfs_skips_the_full_check(tmp_path):
    """The stat fast path of write opens: only what exists on (or would be created in a directory of) another
    file system skips resolving; a sysfs file, a symlink to one and a dangling symlink get the full check."""
    from tests.guard import sitecustomize as guard  # pylint: disable=import-outside-toplevel

    assert guard._SYSFS_DEVICES  # pylint: disable=protected-access
    off = guard._off_sysfs  # pylint: disable=protected-access
    (tmp_path / "plain").write_text("")
    assert off(str(tmp_path / "plain")) and off(str(tmp_path / "new")) and off(os.fsencode(tmp_path / "new"))
    assert not off("/sys/kernel") and not off("/sys/kernel/no-such-file") and not off(str(tmp_path / "no/such/dir"))
    os.symlink("/sys/kernel", str(tmp_path / "to-sys"))
    os.symlink(NO_SUCH_THP_FILE, str(tmp_path / "dangling"))
    assert not off(str(tmp_path / "to-sys")) and not off(str(tmp_path / "to-sys" / "mm"))
    assert not off(str(tmp_path / "dangling"))


def test_guard_active_in_ansible_module_processes(run_playbook):
    run = run_playbook("""
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: probe
              guard_probe:
                path: %s
    """ % NO_SUCH_KDAMOND_STATE)
    assert run.rc == 0, run.explain()
    res = run["probe"]
    assert res["guard_installed"] is True
    assert res["error"]["type"] == "PermissionError" and GUARD_MSG in res["error"]["message"], res


def test_tripwire_reads_host_state_and_reports_changes(tmp_path):
    from tests.tooling import tripwire  # pylint: disable=import-outside-toplevel

    host = tripwire.snapshot()
    assert set(host) == set(tripwire.TRIPWIRE_FILES)
    assert tripwire.compare(host, tripwire.snapshot()) is None
    state = tmp_path / "state"
    state.write_text("on\n")
    files = (str(state), str(tmp_path / "missing"))
    before = tripwire.snapshot(files)
    assert before[str(state)] == "on" and before[str(tmp_path / "missing")].startswith("<")
    state.write_text("off\n")
    message = tripwire.compare(before, tripwire.snapshot(files))
    assert "HOST SYSFS TRIPWIRE" in message and "'on' -> 'off'" in message
