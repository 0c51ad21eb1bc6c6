"""intervals_goal auto-tuning and interval-dependent access rates (tests/emulator/intervals_goal.py)."""

from __future__ import annotations

import pytest

from tests.emulator.access_model import ModelRange
from tests.emulator.intervals_goal import adaptation_bp, effective_rate, feed_loop_next_input
from tests.unit.emulator.helpers import stage_vaddr

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]

K0 = "kdamonds/0"
IV = K0 + "/contexts/0/monitoring_attrs/intervals"
MiB = 1 << 20
WARM = 0x7F0000000000
COLD = WARM + 64 * MiB


def test_feed_loop_matches_the_kernel_formula():
    assert feed_loop_next_input(100000000, 10000) == 100000000
    assert feed_loop_next_input(100000000, 0) == 200000000  # no access seen: double
    assert feed_loop_next_input(100000000, 20000) == 10000  # twice the goal: minimum input
    assert feed_loop_next_input(100000000, 15000) == 50000000


def test_adaptation_softens_reductions():
    class Seg:
        start, end, nr = 0, 100, 20

    class Target:
        segments = [Seg()]

    class Ctx:
        targets = [Target()]
        aggr_samples = 20

        class intervals_goal:  # noqa: N801 - a stand-in record
            access_bp = 400

    # every sample accessed against a 4 % goal: score >= 2 x goal -> 1 bp -> softened to 5000
    assert adaptation_bp(Ctx) == 5000


def test_rate_scales_with_the_sample_interval_only_when_asked():
    plain = ModelRange.parse({"start": 0, "size": 4096, "rate": 0.02})
    scaled = ModelRange.parse({"start": 0, "size": 4096, "rate": 0.02, "rate_sample_us": 5000})
    assert effective_rate(plain, 0, 320000) == 0.02
    assert effective_rate(scaled, 0, 5000) == pytest.approx(0.02)
    assert effective_rate(scaled, 0, 320000) == pytest.approx(1 - 0.98 ** 64)


def test_kernel_tunes_intervals_keeping_their_ratio(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", {"modules": {"damon_stat": False}, "targets": [{"pid": proc.pid, "regions": [
        {"start": WARM, "size": 64 * MiB, "rate": 0.02, "rate_sample_us": 5000},
        {"start": COLD, "size": 1024 * MiB, "rate": 0.0}]}]})
    stage_vaddr(m, proc.pid, "stat")
    for name, value in (("access_bp", 400), ("aggrs", 3), ("min_sample_us", 5000), ("max_sample_us", 10000000)):
        m.must(IV + "/intervals_goal/" + name, value)
    m.must(K0 + "/state", "on")
    m.advance(30)
    assert m.read(IV + "/sample_us") == "5000"  # sysfs shows tuned values only on request
    m.must(K0 + "/state", "update_tuned_intervals")
    sample, aggr = int(m.read(IV + "/sample_us")), int(m.read(IV + "/aggr_us"))
    assert 5000 < sample <= 10000000 and aggr == 20 * sample
    # a commit of the tuned values keeps tuning from there (the goal still holds them in range)
    m.must(K0 + "/state", "commit")
    m.advance(30)
    m.must(K0 + "/state", "update_tuned_intervals")
    assert int(m.read(IV + "/aggr_us")) == 20 * int(m.read(IV + "/sample_us"))


def test_without_a_goal_intervals_stay(mount, sleeper):
    proc = sleeper()
    m = mount("7.3", {"modules": {"damon_stat": False}, "targets": [{"pid": proc.pid, "regions": [
        {"start": WARM, "size": 64 * MiB, "rate": 0.02, "rate_sample_us": 5000}]}]})
    stage_vaddr(m, proc.pid, "stat")
    m.must(K0 + "/state", "on")
    m.advance(10)
    m.must(K0 + "/state", "update_tuned_intervals")
    assert (m.read(IV + "/sample_us"), m.read(IV + "/aggr_us")) == ("5000", "100000")
