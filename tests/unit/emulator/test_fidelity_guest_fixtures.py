"""Replay tests/vm/probe_sysfs.py against the emulator and compare with the real guests.

tests/vm/fixtures/damon-<version>.json were recorded by running the same probe inside
Debian guests (6.12.117 and 7.3.4). The probe runs on the emulator's mount (its only
argument is the sysfs root); everything a real kernel decides (file set, modes,
defaults, accepted words and values, errnos, nr_* semantics, state transitions) must
match. Values that depend on the run (pids, times, statistics, tried-region addresses)
are left out by tests/conformance/compare.py, which tests/conformance/ also uses to hold
the emulator against live guests.
"""

from __future__ import annotations

import pytest

from tests.conformance import compare

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.mark.parametrize("kernel", compare.KERNELS)
def test_probe_matches_the_real_kernel(kernel):
    fixture = compare.FIXTURES / ("damon-%s.json" % kernel)
    assert compare.PROBE.exists() and fixture.exists(), "the probe and its recorded fixtures are part of the tree"
    ours = compare.normalise(compare.run_on_emulator(kernel))
    real = compare.normalise(compare.fixture(kernel))
    lines = compare.differences(ours, real, "fixture")
    assert not lines, compare.report(lines, "emulator %s vs recorded damon-%s" % (kernel, kernel))
