# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sysfs writes: EBUSY from DAMON's trylock is retried with a bounded backoff; errors name path, value, errno."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _sysfs_io
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError, read_text, write_text


def flaky_open(monkeypatch, failures, err=errno.EBUSY):
    real_open = os.open
    calls = []

    def fake_open(path, flags, *args):
        calls.append(path)
        if len(calls) <= failures:
            raise OSError(err, os.strerror(err))
        return real_open(path, flags, *args)

    monkeypatch.setattr(_sysfs_io.os, "open", fake_open)
    return calls


def test_ebusy_is_retried_with_growing_jittered_delays(tmp_path, monkeypatch):
    target = tmp_path / "state"
    target.write_text("off\n")
    calls = flaky_open(monkeypatch, failures=3)
    delays = []
    write_text(str(target), "on", sleep=delays.append)
    assert target.read_text() == "on" and len(calls) == 4
    assert len(delays) == 3 and delays[0] < delays[2]  # exponential, with jitter in [0.5, 1.5)
    assert all(d <= _sysfs_io.EBUSY_MAX_DELAY_S * 1.5 for d in delays)


def test_persistent_ebusy_gives_up_and_names_path_value_and_errno(tmp_path, monkeypatch):
    calls = flaky_open(monkeypatch, failures=100)
    with pytest.raises(SysfsError) as info:
        write_text(str(tmp_path / "nr_kdamonds"), 2, sleep=lambda s: None)
    assert len(calls) == _sysfs_io.EBUSY_RETRIES + 1
    assert str(info.value) == "writing '2' to %s/nr_kdamonds failed: Device or resource busy (EBUSY)" % tmp_path
    assert info.value.as_dict()["errno_name"] == "EBUSY"


def test_other_errors_are_not_retried(tmp_path, monkeypatch):
    calls = flaky_open(monkeypatch, failures=100, err=errno.EINVAL)
    with pytest.raises(SysfsError, match=r"Invalid argument \(EINVAL\)"):
        write_text(str(tmp_path / "action"), "explode", sleep=lambda s: None)
    assert len(calls) == 1


def test_read_errors_name_the_path(tmp_path):
    with pytest.raises(SysfsError, match="reading %s/missing failed: No such file or directory \\(ENOENT\\)" % tmp_path):
        read_text(str(tmp_path / "missing"))


def test_ebusy_on_read_is_retried_too(tmp_path, monkeypatch):
    """A kdamond's pid show takes DAMON's sysfs lock with mutex_trylock (seen on a real 6.12 guest in CI)."""
    target = tmp_path / "pid"
    target.write_text("534\n")
    real_open, calls = open, []

    def fake_open(path, *args, **kwargs):
        calls.append(path)
        if len(calls) <= 2:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_sysfs_io, "open", fake_open, raising=False)
    assert read_text(str(target), sleep=lambda s: None) == "534" and len(calls) == 3

    def always_busy(path, *args, **kwargs):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(_sysfs_io, "open", always_busy, raising=False)
    with pytest.raises(SysfsError, match=r"reading .*/pid failed: Device or resource busy \(EBUSY\)"):
        read_text(str(target), sleep=lambda s: None)
