"""Fixtures for the emulator's own tests: mounts, a writer that reports errno names, a sleeper."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.emulator import EmulatedSysfs
from tests.unit.emulator.helpers import Mount


def _skip_without_fuse():
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("FUSE (/dev/fuse, fusermount3) is not available")


@pytest.fixture
def mount():
    """``mount(kernel, scenario)`` -> a mounted :class:`Mount`; all unmounted at teardown."""
    _skip_without_fuse()
    started = []

    def start(kernel="7.3", scenario=None, **kwargs):
        scenario = dict(scenario or {})
        scenario.setdefault("speed", 0)
        emu = EmulatedSysfs(kernel=kernel, scenario=scenario, **kwargs)
        emu.__enter__()
        started.append(emu)
        return Mount(emu)

    yield start
    for emu in started:
        emu.stop()
