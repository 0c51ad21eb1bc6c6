# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_thp.py on a fake THP tree in tmp_path.

tests/conftest.py puts the ansible_collections/linux_mm/damon tree on sys.path.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.linux_mm.damon.plugins.module_utils import _thp
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError

# --------------------------------------------------------------------------
# A fake THP tree with the kernel's file formats, and a writer that behaves
# like the kernel's store() handlers.

ENABLED_CHOICES = ["always", "madvise", "never"]
DEFRAG_CHOICES = ["always", "defer", "defer+madvise", "madvise", "never"]
SHMEM_CHOICES = ["always", "within_size", "advise", "never", "deny", "force"]

DEFAULTS = {
    "enabled": "madvise",
    "defrag": "madvise",
    "shmem_enabled": "never",
    "use_zero_page": True,
    "khugepaged/defrag": True,
    "khugepaged/pages_to_scan": 4096,
    "khugepaged/scan_sleep_millisecs": 10000,
    "khugepaged/alloc_sleep_millisecs": 60000,
    "khugepaged/max_ptes_none": 511,
    "khugepaged/max_ptes_swap": 64,
    "khugepaged/max_ptes_shared": 256,
}
CHOICES = {"enabled": ENABLED_CHOICES, "defrag": DEFRAG_CHOICES, "shmem_enabled": SHMEM_CHOICES}


def selector_text(current, choices):
    return " ".join("[%s]" % w if w == current else w for w in choices)


def make_tree(root, values=None, omit=(), choices=None, hpage_pmd_size=2097152):
    """Create <root>/kernel/mm/transparent_hugepage like a kernel would show it."""
    values = dict(DEFAULTS, **(values or {}))
    choices = dict(CHOICES, **(choices or {}))
    base = os.path.join(str(root), "kernel", "mm", "transparent_hugepage")
    os.makedirs(os.path.join(base, "khugepaged"))
    for key, value in values.items():
        if key in omit:
            continue
        if key in choices:
            text = selector_text(value, choices[key])
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        with open(os.path.join(base, key), "w") as f:
            f.write(text + "\n")
    read_only = {
        "hpage_pmd_size": hpage_pmd_size,
        "shrink_underused": "1",
        "khugepaged/pages_collapsed": 7,
        "khugepaged/full_scans": 3,
    }
    for key, value in read_only.items():
        if key in omit:
            continue
        with open(os.path.join(base, key), "w") as f:
            f.write("%s\n" % value)
    return base


def kernel_write(path, value):
    """Write like the kernel's store(): selectors keep their word list, bad input is EINVAL."""
    with open(path) as f:
        text = f.read()
    if "[" in text:
        _current, words = _thp.parse_selector(text, path)
        if value not in words:
            raise SysfsError(path, errno.EINVAL, value=value)
        _replace(path, selector_text(value, words))
        return
    name = os.path.basename(path)
    if name in ("defrag", "use_zero_page") and value not in ("0", "1"):
        raise SysfsError(path, errno.EINVAL, value=value)
    if not value.isdigit():
        raise SysfsError(path, errno.EINVAL, value=value)
    if name.startswith("max_ptes_") and int(value) > 511:
        raise SysfsError(path, errno.EINVAL, value=value)
    if name == "pages_to_scan" and int(value) == 0:
        raise SysfsError(path, errno.EINVAL, value=value)
    _replace(path, value)


def _replace(path, text):
    # A plain file needs truncating; sysfs files have no length and take the value as is.
    with open(path, "w") as f:
        f.write(text + "\n")


def read_file(base, key):
    with open(os.path.join(base, key)) as f:
        return f.read().strip()


# --------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    "text,current,choices",
    [
        ("always [madvise] never", "madvise", ENABLED_CHOICES),
        ("[always] madvise never\n", "always", ENABLED_CHOICES),
        ("always madvise [never]", "never", ENABLED_CHOICES),
        ("always defer [defer+madvise] madvise never", "defer+madvise", DEFRAG_CHOICES),
        ("always within_size advise [never] deny force", "never", SHMEM_CHOICES),
        ("  always   [inherit]  madvise never ", "inherit", ["always", "inherit", "madvise", "never"]),
    ],
)
def test_parse_selector(text, current, choices):
    assert _thp.parse_selector(text) == (current, choices)


@pytest.mark.parametrize(
    "text",
    ["", "always madvise never", "[always] [madvise] never", "always [] never", "always [madvise never", "madvise"],
)
def test_parse_selector_rejects(text):
    with pytest.raises(_thp.ThpError, match=r"unexpected content in /x/enabled: .*in brackets"):
        _thp.parse_selector(text, "/x/enabled")


def test_parse_numbers_and_flags():
    assert _thp.parse_uint("4096\n") == 4096
    assert _thp.parse_flag("1\n") is True
    assert _thp.parse_flag("0") is False
    for bad in ("-1", "x", ""):
        with pytest.raises(_thp.ThpError, match="non-negative integer"):
            _thp.parse_uint(bad, "/p")
    with pytest.raises(_thp.ThpError, match="expected 0 or 1"):
        _thp.parse_flag("2", "/p")


# --------------------------------------------------------------------------
# Reading


def test_read_state_full_tree(tmp_path):
    base = make_tree(tmp_path)
    state = _thp.read_state(str(tmp_path))
    assert state["dir"] == base
    assert state["values"] == DEFAULTS
    assert state["choices"] == CHOICES
    assert state["read_only"] == {
        "hpage_pmd_size": 2097152,
        "shrink_underused": True,
        "khugepaged/pages_collapsed": 7,
        "khugepaged/full_scans": 3,
    }


def test_read_state_old_kernel_lacks_optional_files(tmp_path):
    make_tree(tmp_path, omit=("shmem_enabled", "khugepaged/max_ptes_shared", "shrink_underused"))
    state = _thp.read_state(str(tmp_path))
    assert "shmem_enabled" not in state["values"]
    assert "khugepaged/max_ptes_shared" not in state["values"]
    assert state["read_only"]["shrink_underused"] is None
    view = _thp.full_view(state["values"], state["choices"], state["read_only"])
    assert view["shmem_enabled"] is None
    assert view["khugepaged"]["max_ptes_shared"] is None
    assert view["khugepaged"]["pages_collapsed"] == 7
    assert view["hpage_pmd_size"] == 2097152
    assert view["choices"] == {"enabled": ENABLED_CHOICES, "defrag": DEFRAG_CHOICES}


def test_missing_sysfs_root(tmp_path):
    with pytest.raises(_thp.ThpError, match=r"sysfs_root .*/nope does not exist"):
        _thp.read_state(str(tmp_path / "nope"))


def test_kernel_without_thp(tmp_path):
    (tmp_path / "kernel" / "mm").mkdir(parents=True)
    with pytest.raises(_thp.ThpError) as e:
        _thp.read_state(str(tmp_path))
    assert "kernel/mm has no transparent_hugepage directory" in str(e.value)
    assert "CONFIG_TRANSPARENT_HUGEPAGE" in str(e.value)


def test_unexpected_content_names_path(tmp_path):
    base = make_tree(tmp_path)
    with open(os.path.join(base, "khugepaged", "pages_to_scan"), "w") as f:
        f.write("lots\n")
    with pytest.raises(_thp.ThpError, match=r"khugepaged/pages_to_scan: 'lots'"):
        _thp.read_state(str(tmp_path))


def test_unreadable_file_is_sysfs_error(tmp_path):
    base = make_tree(tmp_path)
    os.unlink(os.path.join(base, "defrag"))
    os.mkdir(os.path.join(base, "defrag"))
    with pytest.raises(SysfsError) as e:
        _thp.read_state(str(tmp_path))
    assert e.value.path == os.path.join(base, "defrag")
    assert e.value.errno == errno.EISDIR
    assert "Is a directory (EISDIR)" in str(e.value)


# --------------------------------------------------------------------------
# Desired settings and validation


def test_desired_from_params():
    params = {
        "sysfs_root": "/sys",
        "enabled": " never ",
        "defrag": None,
        "shmem_enabled": None,
        "use_zero_page": False,
        "khugepaged": {"defrag": None, "pages_to_scan": 8, "max_ptes_none": 0, "max_ptes_swap": None},
    }
    assert _thp.desired_from_params(params) == {
        "enabled": "never",
        "use_zero_page": False,
        "khugepaged/pages_to_scan": 8,
        "khugepaged/max_ptes_none": 0,
    }
    assert _thp.desired_from_params({"khugepaged": None}) == {}


def _state(tmp_path, **kw):
    make_tree(tmp_path, **kw)
    return _thp.read_state(str(tmp_path))


def test_validate_accepts_everything_valid(tmp_path):
    state = _state(tmp_path)
    desired = {
        "enabled": "always",
        "defrag": "defer+madvise",
        "shmem_enabled": "within_size",
        "use_zero_page": False,
        "khugepaged/defrag": False,
        "khugepaged/pages_to_scan": 1,
        "khugepaged/scan_sleep_millisecs": 0,
        "khugepaged/alloc_sleep_millisecs": 2 ** 32 - 1,
        "khugepaged/max_ptes_none": 511,
        "khugepaged/max_ptes_swap": 0,
        "khugepaged/max_ptes_shared": 511,
    }
    assert _thp.validate(desired, state, page_size=4096) is None


def test_validate_word_not_listed_names_option_value_and_choices(tmp_path):
    state = _state(tmp_path)
    with pytest.raises(_thp.ThpError) as e:
        _thp.validate({"defrag": "sometimes"}, state, page_size=4096)
    msg = str(e.value)
    assert "nothing was written" in msg
    assert "defrag: 'sometimes' is not accepted by this kernel" in msg
    assert "always, defer, defer+madvise, madvise, never" in msg


def test_validate_reads_choices_from_the_kernel(tmp_path):
    # A kernel whose enabled file lists an extra word accepts it; one without 'madvise' rejects it.
    state = _state(tmp_path, choices={"enabled": ["always", "inherit", "never"]}, values={"enabled": "never"})
    _thp.validate({"enabled": "inherit"}, state, page_size=4096)
    with pytest.raises(_thp.ThpError, match=r"enabled: 'madvise' is not accepted .*: always, inherit, never"):
        _thp.validate({"enabled": "madvise"}, state, page_size=4096)


def test_validate_rejects_bracketed_word(tmp_path):
    state = _state(tmp_path)
    with pytest.raises(_thp.ThpError, match=r"enabled: '\[never\]' is not accepted"):
        _thp.validate({"enabled": "[never]"}, state, page_size=4096)


@pytest.mark.parametrize(
    "key,value,expect",
    [
        ("khugepaged/max_ptes_none", 512, r"khugepaged\.max_ptes_none: 512 is out of range; the kernel accepts 0 to 511"),
        ("khugepaged/max_ptes_swap", -1, r"khugepaged\.max_ptes_swap: -1 is out of range"),
        ("khugepaged/max_ptes_shared", 100000, r"khugepaged\.max_ptes_shared: 100000 is out of range"),
        ("khugepaged/pages_to_scan", 0, r"khugepaged\.pages_to_scan: 0 is out of range; the kernel accepts 1 to 4294967295"),
        ("khugepaged/scan_sleep_millisecs", -5, r"khugepaged\.scan_sleep_millisecs: -5 is out of range"),
        ("khugepaged/alloc_sleep_millisecs", 2 ** 32, r"khugepaged\.alloc_sleep_millisecs: 4294967296 is out of range"),
        ("khugepaged/pages_to_scan", "10", r"khugepaged\.pages_to_scan: '10' is not an integer"),
        ("khugepaged/pages_to_scan", True, r"khugepaged\.pages_to_scan: True is not an integer"),
        ("use_zero_page", 1, r"use_zero_page: 1 is not a boolean"),
        ("enabled", 3, r"enabled: 3 is not accepted"),
    ],
)
def test_validate_ranges_and_types(tmp_path, key, value, expect):
    state = _state(tmp_path)
    with pytest.raises(_thp.ThpError, match=expect):
        _thp.validate({key: value}, state, page_size=4096)


def test_validate_reports_all_problems_at_once(tmp_path):
    state = _state(tmp_path)
    with pytest.raises(_thp.ThpError) as e:
        _thp.validate({"enabled": "no", "khugepaged/max_ptes_none": 600, "bogus": 1}, state, page_size=4096)
    msg = str(e.value)
    assert "unknown setting 'bogus'" in msg
    assert "enabled: 'no'" in msg
    assert "khugepaged.max_ptes_none: 600" in msg


def test_pte_limit_follows_page_and_pmd_size(tmp_path):
    # arm64 with 64 KiB pages: 512 MiB PMD huge pages, HPAGE_PMD_NR - 1 = 8191.
    state = _state(tmp_path, hpage_pmd_size=512 * 1024 * 1024)
    assert _thp.pte_limit(state, page_size=65536) == 8191
    _thp.validate({"khugepaged/max_ptes_none": 8191}, state, page_size=65536)
    with pytest.raises(_thp.ThpError, match="accepts 0 to 8191"):
        _thp.validate({"khugepaged/max_ptes_none": 8192}, state, page_size=65536)


def test_pte_limit_defaults_to_511_without_hpage_pmd_size(tmp_path):
    state = _state(tmp_path, omit=("hpage_pmd_size",))
    assert _thp.pte_limit(state, page_size=4096) == 511


def test_validate_setting_missing_on_this_kernel(tmp_path):
    state = _state(tmp_path, omit=("khugepaged/max_ptes_shared", "shmem_enabled"))
    with pytest.raises(_thp.ThpError) as e:
        _thp.validate({"khugepaged/max_ptes_shared": 10, "shmem_enabled": "never"}, state, page_size=4096)
    msg = str(e.value)
    assert "khugepaged.max_ptes_shared: this kernel has no " in msg
    assert "khugepaged/max_ptes_shared (added in Linux 5.8)" in msg
    assert "shmem_enabled: this kernel has no" in msg


# --------------------------------------------------------------------------
# Planning and applying


def test_plan_empty_when_already_set(tmp_path):
    state = _state(tmp_path)
    assert _thp.plan(state, dict(DEFAULTS)).changes == []
    assert _thp.plan(state, {}).changes == []


def test_plan_orders_khugepaged_first_and_enabled_last(tmp_path):
    state = _state(tmp_path)
    desired = {"enabled": "always", "defrag": "defer", "use_zero_page": False, "khugepaged/pages_to_scan": 65536}
    planned = _thp.plan(state, desired)
    changes = planned.changes
    assert [c["key"] for c in changes] == ["khugepaged/pages_to_scan", "use_zero_page", "defrag", "enabled"]
    assert planned.writes == [(c["path"], c["after"]) for c in changes]
    assert (planned.before["enabled"], planned.after["enabled"]) == ("madvise", "always")
    assert planned.after["khugepaged"]["pages_to_scan"] == 65536 and planned.before["use_zero_page"] is True
    base = state["dir"]
    assert [_thp.public_change(c) for c in changes] == [
        {"path": os.path.join(base, "khugepaged/pages_to_scan"), "before": "4096", "after": "65536"},
        {"path": os.path.join(base, "use_zero_page"), "before": "1", "after": "0"},
        {"path": os.path.join(base, "defrag"), "before": "madvise", "after": "defer"},
        {"path": os.path.join(base, "enabled"), "before": "madvise", "after": "always"},
    ]


def test_apply_writes_the_value_only(tmp_path):
    state = _state(tmp_path)
    applied = _thp.apply(_thp.plan(state, {"enabled": "never", "khugepaged/defrag": False}), [])
    assert [c["after"] for c in applied] == ["0", "never"]
    # One write(2) of the bare value at offset 0 (a kernel would show the bracketed list
    # again; a plain file keeps what was written, plus any longer old tail since
    # write_text does not truncate).
    assert read_file(state["dir"], "enabled").startswith("never")
    assert read_file(state["dir"], "khugepaged/defrag").startswith("0")


def test_apply_then_read_back_through_kernel_semantics(tmp_path):
    state = _state(tmp_path)
    desired = {"enabled": "never", "defrag": "always", "khugepaged/max_ptes_none": 409}
    _thp.apply(_thp.plan(state, desired), [], write=kernel_write)
    assert read_file(state["dir"], "enabled") == "always madvise [never]"
    again = _thp.read_state(str(tmp_path))
    assert again["values"] == _thp.expected_values(state, desired)
    assert _thp.plan(again, desired).changes == []


def test_apply_failure_reports_applied_writes(tmp_path):
    state = _state(tmp_path)
    changes = _thp.plan(state, {"enabled": "never", "khugepaged/pages_to_scan": 1, "use_zero_page": False})
    # A directory in place of use_zero_page: its write fails after pages_to_scan was written.
    os.unlink(os.path.join(state["dir"], "use_zero_page"))
    os.mkdir(os.path.join(state["dir"], "use_zero_page"))
    applied = []
    with pytest.raises(SysfsError) as e:
        _thp.apply(changes, applied)
    err = e.value
    assert applied == [
        {"path": os.path.join(state["dir"], "khugepaged/pages_to_scan"), "before": "4096", "after": "1"}
    ]
    assert err.path == os.path.join(state["dir"], "use_zero_page")
    assert err.errno == errno.EISDIR
    assert str(err) == "writing '0' to %s failed: Is a directory (EISDIR)" % os.path.join(state["dir"], "use_zero_page")
    assert read_file(state["dir"], "enabled") == "always [madvise] never"


def test_apply_failure_on_first_write(tmp_path):
    def failing(path, value):
        raise SysfsError(path, errno.EINVAL, value=value)

    state = _state(tmp_path)
    applied = []
    with pytest.raises(SysfsError) as e:
        _thp.apply(_thp.plan(state, {"enabled": "never"}), applied, write=failing)
    assert applied == []
    assert "Invalid argument (EINVAL)" in str(e.value)


def test_views(tmp_path):
    state = _state(tmp_path)
    view = _thp.settings_view(state["values"])
    assert view["enabled"] == "madvise"
    assert view["use_zero_page"] is True
    assert view["khugepaged"]["max_ptes_swap"] == 64
    assert "pages_collapsed" not in view["khugepaged"]
    assert "hpage_pmd_size" not in view
    full = _thp.full_view(state["values"], state["choices"], state["read_only"])
    assert full["khugepaged"]["full_scans"] == 3
    assert full["shrink_underused"] is True


# --------------------------------------------------------------------------
# Property: applying the plan yields the desired settings; a second plan is empty.

OPTIONAL_FILES = ("shmem_enabled", "use_zero_page", "khugepaged/max_ptes_swap", "khugepaged/max_ptes_shared")


def _value_strategy(key):
    setting = _thp.SETTINGS_BY_KEY[key]
    if setting.kind == _thp.SELECTOR:
        return st.sampled_from(CHOICES[key])
    if setting.kind == _thp.FLAG:
        return st.booleans()
    maximum = 511 if setting.pte_limit else setting.maximum
    return st.integers(min_value=setting.minimum, max_value=maximum)


SETTINGS_STRATEGY = st.fixed_dictionaries({key: _value_strategy(key) for key in DEFAULTS})


@settings(max_examples=150, deadline=None)
@given(
    current=SETTINGS_STRATEGY,
    desired_full=SETTINGS_STRATEGY,
    keep=st.sets(st.sampled_from(sorted(DEFAULTS))),
    omit=st.sets(st.sampled_from(OPTIONAL_FILES)),
)
def test_property_plan_converges(current, desired_full, keep, omit):
    desired = dict((k, v) for k, v in desired_full.items() if k in keep and k not in omit)
    root = tempfile.mkdtemp(prefix="thp-prop-")
    try:
        make_tree(root, values=current, omit=omit)
        state = _thp.read_state(root)
        _thp.validate(desired, state, page_size=4096)
        changes = _thp.plan(state, desired)
        assert len(changes.changes) == sum(1 for k, v in desired.items() if current[k] != v)
        applied = _thp.apply(changes, [], write=kernel_write)
        assert len(applied) == len(changes.changes)
        after = _thp.read_state(root)
        for key, value in desired.items():
            assert after["values"][key] == value
        for key in set(current) - set(desired) - set(omit):
            assert after["values"][key] == current[key]
        assert after["values"] == _thp.expected_values(state, desired)
        assert after["choices"] == state["choices"]
        assert _thp.plan(after, desired).changes == []
    finally:
        shutil.rmtree(root)
