# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linux_mm.damon.thp through real ansible-playbook runs against a fake THP tree.

The fake tree holds plain files in the kernel's formats. Plain files do not
behave like sysfs after a write (no bracketed word list is shown again), so
between runs :func:`kernelize` redoes what the kernel would have done with
the writes the module reported in ``changes``/``applied``.

Uses the ``run_playbook`` fixture of tests/conftest.py (guarded, our collection
on ANSIBLE_COLLECTIONS_PATH, results through the pytest_json callback).
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.emulator import EmulatedSysfs
from tests.helpers.playbooks import run_tasks

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


def thp_task(root, **options):
    options.setdefault("ownership_file", os.path.join(os.path.dirname(str(root)), "record", "own.json"))
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


def test_check_mode_predicts_and_writes_nothing(run_playbook, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    before = snapshot(root)
    (r,), run = run_tasks(run_playbook, [thp_task(root, enabled="never", khugepaged={"pages_to_scan": 8})],
                          check=True, diff=True, with_run=True)
    stdout = run.stdout
    assert r["_status"] == "ok", r
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


def test_apply_diff_and_idempotence(run_playbook, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    (r,) = run_tasks(run_playbook, [thp_task(root, **DESIRED)], diff=True)
    assert r["_status"] == "ok", r
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

    (r2,) = run_tasks(run_playbook, [thp_task(root, **DESIRED)], diff=True)
    assert r2["_status"] == "ok", r2
    assert r2["changed"] is False
    assert r2["changes"] == []
    assert r2["diff"]["before"] == r2["diff"]["after"] == expected_settings
    assert snapshot(root) == after_first


def test_partial_options_and_read_only_run(run_playbook, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root, omit=("shmem_enabled", "khugepaged/max_ptes_shared", "shrink_underused"))
    before = snapshot(root)
    noop, same = run_tasks(
        run_playbook,
        [
            thp_task(root),
            thp_task(root, enabled="madvise", use_zero_page=True, khugepaged={"max_ptes_none": 511}),
        ],
    )
    for r in (noop, same):
        assert r["_status"] == "ok", r
        assert r["changed"] is False
        assert r["changes"] == []
        assert r["thp"]["shmem_enabled"] is None
        assert r["thp"]["shrink_underused"] is None
        assert r["thp"]["khugepaged"]["max_ptes_shared"] is None
        assert r["thp"]["enabled"] == "madvise"
    assert "diff" not in noop
    assert snapshot(root) == before
    assert read(base, "enabled") == "always [madvise] never"


def test_bad_input_fails_before_any_write(run_playbook, tmp_path):
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
    results = run_tasks(run_playbook, tasks)
    for r in results:
        assert r["_status"] == "failed", r
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


def test_unreadable_file_fails_naming_path_and_errno(run_playbook, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    # A directory where the kernel has a file.
    os.unlink(os.path.join(base, "defrag"))
    os.mkdir(os.path.join(base, "defrag"))
    before = snapshot(root)
    (r,) = run_tasks(run_playbook, [thp_task(root, enabled="never")])
    assert r["_status"] == "failed", r
    assert r["changed"] is False
    assert r["msg"] == "reading %s failed: Is a directory (EISDIR)" % os.path.join(base, "defrag")
    assert r["failed_read"] == {
        "path": os.path.join(base, "defrag"), "value": None, "errno": errno.EISDIR, "errno_name": "EISDIR",
    }
    assert "path" not in r
    assert snapshot(root) == before


def test_write_failure_reports_applied_and_rerun_converges(run_playbook, tmp_path):
    root = tmp_path / "sys"
    base = make_tree(root)
    # We run as root, so modes do not stop a write. A file that reads as an integer but
    # rejects every write: /proc/self/oom_score (write(2) fails with EINVAL, like a
    # kernel store() refusing a value). The module reads and writes it in its own process.
    pages = os.path.join(base, "khugepaged", "pages_to_scan")
    os.unlink(pages)
    os.symlink("/proc/self/oom_score", pages)
    desired = {"enabled": "never", "khugepaged": {"defrag": False, "pages_to_scan": 4097}}

    (r,) = run_tasks(run_playbook, [thp_task(root, **desired)])
    assert r["_status"] == "failed", r
    assert r["changed"] is True
    assert r["msg"].startswith("writing '4097' to %s failed: Invalid argument (EINVAL)" % pages)
    assert "1 earlier write(s) were applied" in r["msg"]
    assert r["failed_write"] == {"path": pages, "value": "4097", "errno": errno.EINVAL, "errno_name": "EINVAL"}
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
    (r2,) = run_tasks(run_playbook, [thp_task(root, **desired)])
    assert r2["_status"] == "ok", r2
    assert [os.path.relpath(c["path"], base) for c in r2["changes"]] == [
        "khugepaged/pages_to_scan",
        "enabled",
    ]
    kernelize(r2["changes"])
    (r3,) = run_tasks(run_playbook, [thp_task(root, **desired)])
    assert r3["_status"] == "ok", r3
    assert r3["changed"] is False
    assert r3["thp"]["enabled"] == "never"
    assert r3["thp"]["khugepaged"]["defrag"] is False
    assert r3["thp"]["khugepaged"]["pages_to_scan"] == 4097


# --------------------------------------------------------------------------
# Against the FUSE emulator (kernel semantics for writes, no kernelize step).


@pytest.mark.emulator
@pytest.mark.parametrize("kernel", ["6.6", "6.12"])
def test_against_emulator_converges(run_playbook, kernel):
    with EmulatedSysfs(kernel=kernel) as emu:
        root = str(emu.root)
        base = os.path.join(root, THP)
        desired = {
            "enabled": "never",
            "defrag": "defer",
            "khugepaged": {"pages_to_scan": 8192, "max_ptes_none": 255},
        }
        (first,) = run_tasks(run_playbook, [thp_task(root, **desired)], diff=True)
        assert first["_status"] == "ok", first
        assert read(base, "enabled") == "always madvise [never]"
        assert read(base, "defrag") == "always [defer] defer+madvise madvise never"
        assert read(base, "khugepaged/pages_to_scan") == "8192"
        (second, bad) = run_tasks(
            run_playbook,
            [thp_task(root, **desired), thp_task(root, enabled="sometimes")],
        )
        assert second["_status"] == "ok", second
        assert second["changed"] is False
        assert second["thp"]["enabled"] == "never"
        assert second["thp"]["khugepaged"]["max_ptes_none"] == 255
        assert bad["_status"] == "failed"
        assert "enabled: 'sometimes' is not accepted by this kernel" in bad["msg"]


@pytest.mark.emulator
def test_restore_round_trip(run_playbook, tmp_path):
    """The hugepage role's stop entry point relies on this: what start changed, stop puts back."""
    record = tmp_path / "record" / "own.json"
    with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "thp": {"enabled": "madvise"}}) as emu:
        def task(**options):
            return {"linux_mm.damon.thp": dict(options, sysfs_root=emu.root, ownership_file=str(record))}
        base = os.path.join(emu.root, "kernel/mm/transparent_hugepage")
        before = dict((f, open(os.path.join(base, f)).read()) for f in ("enabled", "khugepaged/pages_to_scan"))
        changed = run_tasks(run_playbook, [task(enabled="always", khugepaged={"pages_to_scan": 8}),
                                           task(enabled="never")])
        assert changed[0]["saved"] == {"enabled": "madvise", "khugepaged/pages_to_scan": "4096"}, changed[0]
        assert changed[1].get("saved") == changed[0]["saved"], changed[1]  # the first old value wins
        assert json.loads(record.read_text())["thp_saved"] == changed[0]["saved"]

        (preview,) = run_tasks(run_playbook, [task(restore=True)], check=True, diff=True)
        assert preview["changed"] and preview["diff"]["after"]["enabled"] == "madvise"
        assert json.loads(record.read_text())["thp_saved"] == changed[0]["saved"]  # check mode forgets nothing

        restored, again = run_tasks(run_playbook, [task(restore=True), task(restore=True)])
        assert restored["changed"] and restored["saved"] == {}
        assert dict((f, open(os.path.join(base, f)).read()) for f in before) == before
        assert not again["changed"] and again["changes"] == []
        assert json.loads(record.read_text())["thp_saved"] == {}

        (both,) = run_tasks(run_playbook, [task(restore=True, enabled="never")])
        assert both["_status"] == "failed" and "mutually exclusive" in both["msg"], both
