# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.thp through real ansible-playbook runs against a fake THP tree.

The fake tree holds plain files in the kernel's formats. Plain files do not
behave like sysfs after a write (no bracketed word list is shown again), so
between runs :func:`kernelize` redoes what the kernel would have done with
the writes the module reported in ``changes``/``applied``.

TODO: switch to the shared collection fixture / run_playbook helper of
tests/conftest.py and add a run against tests/emulator once they exist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
ANSIBLE_PLAYBOOK = os.path.join(VENV_BIN, "ansible-playbook")
PYTHON = os.path.join(VENV_BIN, "python")
THP = os.path.join("kernel", "mm", "transparent_hugepage")

CHOICES = {
    "enabled": ["always", "madvise", "never"],
    "defrag": ["always", "defer", "defer+madvise", "madvise", "never"],
    "shmem_enabled": ["always", "within_size", "advise", "never", "deny", "force"],
}
FILES = {
    "enabled": "always [madvise] never",
    "defrag": "always defer defer+madvise [madvise] never",
    "shmem_enabled": "always within_size advise [never] deny force",
    "use_zero_page": "1",
    "hpage_pmd_size": "2097152",
    "shrink_underused": "1",
    "khugepaged/defrag": "1",
    "khugepaged/pages_to_scan": "4096",
    "khugepaged/scan_sleep_millisecs": "10000",
    "khugepaged/alloc_sleep_millisecs": "60000",
    "khugepaged/max_ptes_none": "511",
    "khugepaged/max_ptes_swap": "64",
    "khugepaged/max_ptes_shared": "256",
    "khugepaged/pages_collapsed": "12",
    "khugepaged/full_scans": "3",
}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def collections_path():
    """A directory holding ansible_collections/linux_mm/damon -> the repository."""
    top = tempfile.mkdtemp(prefix="thp-collections-")
    os.makedirs(os.path.join(top, "ansible_collections", "linux_mm"))
    os.symlink(REPO, os.path.join(top, "ansible_collections", "linux_mm", "damon"))
    yield top
    shutil.rmtree(top, ignore_errors=True)


def make_tree(root, omit=()):
    base = os.path.join(str(root), THP)
    os.makedirs(os.path.join(base, "khugepaged"))
    for key, text in FILES.items():
        if key not in omit:
            with open(os.path.join(base, key), "w") as f:
                f.write(text + "\n")
    return base


def read(base, key):
    with open(os.path.join(base, key)) as f:
        return f.read().strip()


def snapshot(root):
    """Every file under root: relative path -> content (or link target)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, str(root))
            if os.path.islink(path):
                result[rel] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path) as f:
                    result[rel] = f.read()
            else:
                result[rel] = "<dir>"
    return result


def kernelize(changes):
    """Show each written file the way the kernel would after the write."""
    for change in changes:
        path, value = change["path"], change["after"]
        with open(path) as f:
            content = f.read()
        # The module wrote the bare value in one write(2) at offset 0.
        assert content.startswith(value), (path, content, value)
        name = os.path.basename(path)
        if name in CHOICES and os.path.basename(os.path.dirname(path)) != "khugepaged":
            text = " ".join("[%s]" % w if w == value else w for w in CHOICES[name])
        else:
            text = value
        with open(path, "w") as f:
            f.write(text + "\n")


def run_playbook(collections_path, workdir, tasks, check=False, diff=False):
    """Run the tasks (each registered as r0, r1...) and return (results, stdout)."""
    workdir = str(workdir)
    out = os.path.join(workdir, "results.json")
    names = ["r%d" % i for i in range(len(tasks))]
    play_tasks = []
    for name, task in zip(names, tasks):
        play_tasks.append(dict(task, register=name, ignore_errors=True))
    play_tasks.append(
        {
            "name": "save results",
            "ansible.builtin.copy": {
                "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names),
                "dest": out,
                "mode": "0600",
            },
            "check_mode": False,
            "diff": False,
        }
    )
    playbook = os.path.join(workdir, "playbook.yml")
    with open(playbook, "w") as f:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": play_tasks}], f)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, ".ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=os.path.join(workdir, ".ansible-remote-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
    )
    cmd = [
        ANSIBLE_PLAYBOOK,
        "-i", "localhost,",
        "-c", "local",
        "-e", "ansible_python_interpreter=%s" % PYTHON,
        playbook,
    ]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as f:
        results = json.load(f)
    os.unlink(out)
    return [results[n] for n in names], proc.stdout


def thp_task(root, **options):
    return {"linux_mm.damon.thp": dict(options, sysfs_root=str(root))}


DESIRED = {
    "enabled": "never",
    "defrag": "defer+madvise",
    "shmem_enabled": "advise",
    "use_zero_page": False,
    "khugepaged": {
        "defrag": False,
        "pages_to_scan": 65536,
        "scan_sleep_millisecs": 1000,
        "alloc_sleep_millisecs": 0,
        "max_ptes_none": 409,
        "max_ptes_swap": 0,
        "max_ptes_shared": 511,
    },
}


# --------------------------------------------------------------------------


def test_check_mode_predicts_and_writes_nothing(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    before = snapshot(root)
    (r,), stdout = run_playbook(
        collections_path, tmp_path,
        [thp_task(root, enabled="never", khugepaged={"pages_to_scan": 8})],
        check=True, diff=True,
    )
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert r["changes"] == [
        {"path": os.path.join(base, "khugepaged/pages_to_scan"), "before": "4096", "after": "8"},
        {"path": os.path.join(base, "enabled"), "before": "madvise", "after": "never"},
    ]
    assert r["diff"]["before"]["enabled"] == "madvise"
    assert r["diff"]["after"]["enabled"] == "never"
    assert r["diff"]["after"]["khugepaged"]["pages_to_scan"] == 8
    # Nothing was written; thp shows the settings as they are.
    assert snapshot(root) == before
    assert r["thp"]["enabled"] == "madvise"
    assert r["thp"]["khugepaged"]["pages_to_scan"] == 4096
    # The callback renders the structured diff.
    assert '-    "enabled": "madvise",' in stdout
    assert '+    "enabled": "never",' in stdout


def test_apply_diff_and_idempotence(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    (r,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, **DESIRED)], diff=True)
    assert not r.get("failed"), r
    assert r["changed"] is True
    # khugepaged first, enabled last, one write per changed file.
    assert [os.path.relpath(c["path"], base) for c in r["changes"]] == [
        "khugepaged/defrag",
        "khugepaged/pages_to_scan",
        "khugepaged/scan_sleep_millisecs",
        "khugepaged/alloc_sleep_millisecs",
        "khugepaged/max_ptes_none",
        "khugepaged/max_ptes_swap",
        "khugepaged/max_ptes_shared",
        "use_zero_page",
        "shmem_enabled",
        "defrag",
        "enabled",
    ]
    expected_settings = {
        "enabled": "never",
        "defrag": "defer+madvise",
        "shmem_enabled": "advise",
        "use_zero_page": False,
        "khugepaged": DESIRED["khugepaged"],
    }
    assert r["diff"] == {
        "before": {
            "enabled": "madvise",
            "defrag": "madvise",
            "shmem_enabled": "never",
            "use_zero_page": True,
            "khugepaged": {
                "defrag": True,
                "pages_to_scan": 4096,
                "scan_sleep_millisecs": 10000,
                "alloc_sleep_millisecs": 60000,
                "max_ptes_none": 511,
                "max_ptes_swap": 64,
                "max_ptes_shared": 256,
            },
        },
        "after": expected_settings,
    }
    thp = r["thp"]
    assert thp["hpage_pmd_size"] == 2097152
    assert thp["shrink_underused"] is True
    assert thp["khugepaged"]["pages_collapsed"] == 12
    assert thp["khugepaged"]["full_scans"] == 3
    assert thp["choices"] == CHOICES
    for key in ("enabled", "defrag", "shmem_enabled", "use_zero_page"):
        assert thp[key] == expected_settings[key]
    for key, value in DESIRED["khugepaged"].items():
        assert thp["khugepaged"][key] == value

    kernelize(r["changes"])
    assert read(base, "enabled") == "always madvise [never]"
    assert read(base, "khugepaged/max_ptes_none") == "409"
    assert read(base, "use_zero_page") == "0"
    after_first = snapshot(root)

    (r2,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, **DESIRED)], diff=True)
    assert not r2.get("failed"), r2
    assert r2["changed"] is False
    assert r2["changes"] == []
    assert r2["diff"]["before"] == r2["diff"]["after"] == expected_settings
    assert snapshot(root) == after_first


def test_partial_options_and_read_only_run(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root, omit=("shmem_enabled", "khugepaged/max_ptes_shared", "shrink_underused"))
    before = snapshot(root)
    (noop, same), _ = run_playbook(
        collections_path, tmp_path,
        [
            thp_task(root),
            thp_task(root, enabled="madvise", use_zero_page=True, khugepaged={"max_ptes_none": 511}),
        ],
    )
    for r in (noop, same):
        assert not r.get("failed"), r
        assert r["changed"] is False
        assert r["changes"] == []
        assert r["thp"]["shmem_enabled"] is None
        assert r["thp"]["shrink_underused"] is None
        assert r["thp"]["khugepaged"]["max_ptes_shared"] is None
        assert r["thp"]["enabled"] == "madvise"
    assert "diff" not in noop
    assert snapshot(root) == before
    assert read(base, "enabled") == "always [madvise] never"


def test_bad_input_fails_before_any_write(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root, omit=("khugepaged/max_ptes_shared",))
    no_thp = tmp_path / "nothp"
    (no_thp / "kernel" / "mm").mkdir(parents=True)
    before = snapshot(tmp_path / "sys")
    tasks = [
        # a word this kernel does not list, together with valid changes
        thp_task(root, enabled="sometimes", khugepaged={"pages_to_scan": 8}),
        thp_task(root, defrag="defer", enabled="madvise", shmem_enabled="huge"),
        # out of range
        thp_task(root, khugepaged={"max_ptes_none": 512}),
        thp_task(root, enabled="never", khugepaged={"pages_to_scan": 0, "scan_sleep_millisecs": -1}),
        # wrong type (argument spec)
        thp_task(root, khugepaged={"pages_to_scan": "lots"}),
        # a file this kernel lacks (Linux < 5.8)
        thp_task(root, khugepaged={"max_ptes_shared": 10}),
        # missing sysfs root, kernel without THP
        thp_task(tmp_path / "missing"),
        thp_task(no_thp, enabled="never"),
    ]
    results, _ = run_playbook(collections_path, tmp_path, tasks)
    for r in results:
        assert r.get("failed") is True, r
        assert r.get("changed") is False, r
    word, shmem, ptes, ranges, wrong_type, missing_file, missing_root, kernel_without = results

    assert "enabled: 'sometimes' is not accepted by this kernel" in word["msg"]
    assert os.path.join(base, "enabled") + " lists: always, madvise, never" in word["msg"]
    assert "nothing was written" in word["msg"]
    assert "shmem_enabled: 'huge' is not accepted" in shmem["msg"]
    assert "always, within_size, advise, never, deny, force" in shmem["msg"]
    assert "khugepaged.max_ptes_none: 512 is out of range; the kernel accepts 0 to 511" in ptes["msg"]
    assert "khugepaged.pages_to_scan: 0 is out of range; the kernel accepts 1 to 4294967295" in ranges["msg"]
    assert "khugepaged.scan_sleep_millisecs: -1 is out of range" in ranges["msg"]
    assert "pages_to_scan" in wrong_type["msg"] and "int" in wrong_type["msg"]
    assert "khugepaged.max_ptes_shared: this kernel has no" in missing_file["msg"]
    assert "(added in Linux 5.8)" in missing_file["msg"]
    assert "sysfs_root %s does not exist" % (tmp_path / "missing") in missing_root["msg"]
    assert kernel_without["msg"].startswith(
        "%s has no transparent_hugepage directory" % (no_thp / "kernel" / "mm")
    )
    assert "(CONFIG_TRANSPARENT_HUGEPAGE)" in kernel_without["msg"]
    assert snapshot(tmp_path / "sys") == before


def test_unreadable_file_fails_naming_path_and_errno(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    # A directory where the kernel has a file.
    os.unlink(os.path.join(base, "defrag"))
    os.mkdir(os.path.join(base, "defrag"))
    before = snapshot(root)
    (r,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, enabled="never")])
    assert r["failed"] is True
    assert r["changed"] is False
    assert r["msg"] == "reading %s failed: Is a directory (EISDIR)" % os.path.join(base, "defrag")
    assert r["path"] == os.path.join(base, "defrag")
    assert r["errno_name"] == "EISDIR"
    assert snapshot(root) == before


def test_write_failure_reports_applied_and_rerun_converges(collections_path, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    # We run as root, so modes do not stop a write. A file that reads as an integer but
    # rejects every write: /proc/self/oom_score (write(2) fails with EINVAL, like a
    # kernel store() refusing a value). The module reads and writes it in its own process.
    pages = os.path.join(base, "khugepaged", "pages_to_scan")
    os.unlink(pages)
    os.symlink("/proc/self/oom_score", pages)
    desired = {"enabled": "never", "khugepaged": {"defrag": False, "pages_to_scan": 4097}}

    (r,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, **desired)])
    assert r["failed"] is True
    assert r["changed"] is True
    assert r["msg"].startswith("writing '4097' to %s failed: Invalid argument (EINVAL)" % pages)
    assert "1 earlier write(s) were applied" in r["msg"]
    assert r["path"] == pages
    assert r["value"] == "4097"
    assert r["errno_name"] == "EINVAL"
    assert r["applied"] == [
        {"path": os.path.join(base, "khugepaged/defrag"), "before": "1", "after": "0"},
    ]
    # enabled comes after the failed write and was not touched.
    assert read(base, "enabled") == "always [madvise] never"
    kernelize(r["applied"])

    # The file works again: a re-run does the rest only, and a third run changes nothing.
    os.unlink(pages)
    with open(pages, "w") as f:
        f.write("4096\n")
    (r2,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, **desired)])
    assert not r2.get("failed"), r2
    assert [os.path.relpath(c["path"], base) for c in r2["changes"]] == [
        "khugepaged/pages_to_scan",
        "enabled",
    ]
    kernelize(r2["changes"])
    (r3,), _ = run_playbook(collections_path, tmp_path, [thp_task(root, **desired)])
    assert not r3.get("failed"), r3
    assert r3["changed"] is False
    assert r3["thp"]["enabled"] == "never"
    assert r3["thp"]["khugepaged"]["defrag"] is False
    assert r3["thp"]["khugepaged"]["pages_to_scan"] == 4097
