# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Warm periodic runs (issue 9 part 2): hugepage_tune keeps what it learned per application on the host.

- a run on a host where nothing changed makes exactly one hugepage_step call and reports changed=false; once
  the learned state holds what the last decision led to (huge bytes in hot and cold memory), such a run does
  not rewrite it;
- after a reboot (a fresh emulated kernel, a fresh ownership record, the same learned file) the application's
  new kdamond starts at the learned threshold and intervals, and the loop needs fewer calls than from scratch;
- check mode writes no learned state; a damaged learned file fails before any sysfs write, naming the file.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.emulator import EmulatedSysfs
from tests.integration.test_hugepage_tune import model, tune
from tests.workloads import HotCold

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

SCHEMA = json.loads(open("docs/schemas/learned-state.schema.json").read())


@pytest.mark.slow
@pytest.mark.parametrize("kernel, release, path", [("6.12", "6.12.117", "user_collapse"),
                                                   ("7.3", "7.3.4", "damos_collapse")])
def test_idle_rerun_is_one_call_and_a_reboot_starts_warm(run_playbook, tmp_path, kernel, release, path):
    """6.12: the loop widens intervals itself and collapses; 7.3 (on request): the kernel tunes them
    (intervals_goal) and collapses."""
    learned = tmp_path / "state" / "learned.json"
    with HotCold(idle=True) as w:  # the emulator's model, not its accesses, decides what DAMON sees
        apps = [{"name": "hotcold", "pid": w.pid}]
        with EmulatedSysfs(kernel=kernel, scenario={"speed": 20, "targets": [model(w)]}) as emu:
            own = tmp_path / "boot1" / "own.json"
            cold = run_playbook(tune(emu, own, apps, kernel=release, path=path, learned_file=str(learned)))
            assert cold.rc == 0 and cold[0]["converged"], cold.explain()
            # the next run finds nothing to change: one call, changed=false; it may record what the last
            # decision led to (on 7.3 the kernel collapses after the loop's last observation)
            for unused in range(2):
                idle = run_playbook(tune(emu, own, apps, kernel=release, path=path, learned_file=str(learned)))
                assert idle.rc == 0, idle.explain()
                assert (idle[0]["iterations"], idle[0]["changed"], idle[0]["stopped"]) == (1, False, "converged"), [
                    (e["apps"]["hotcold"]["reason"], e["apps"]["hotcold"]["status"]) for e in idle[0]["trace"]]
                if unused == 0:
                    stamp = learned.stat().st_mtime_ns
            assert learned.stat().st_mtime_ns == stamp  # a steady host: nothing learned, nothing written
            kept = json.loads(learned.read_text())
            jsonschema.validate(kept, SCHEMA)
            app = kept["apps"]["hotcold"]
            assert app["threshold_bp"] == cold[0]["thresholds_bp"]["hotcold"] and app["path"] == path
            last = app["decisions"][-1]
            assert (last["hot_bytes"], last["huge_bytes_cold"]) == (32 << 20, 0), last
            if path == "user_collapse":  # real MADV_COLLAPSE; the emulated kernel's collapse leaves real pages alone
                assert last["huge_bytes_hot"] == 32 << 20, last

        # a reboot: a new kernel without our kdamonds, a new ownership record, the learned file kept
        with EmulatedSysfs(kernel=kernel, scenario={"speed": 20, "targets": [model(w)]}) as emu:
            own = tmp_path / "boot2" / "own.json"
            predicted = run_playbook(tune(emu, own, apps, kernel=release, path=path, learned_file=str(learned)), check=True)
            assert predicted.rc == 0 and learned.stat().st_mtime_ns == stamp, predicted.explain()
            warm = run_playbook(tune(emu, own, apps, kernel=release, path=path, learned_file=str(learned)))
            assert warm.rc == 0 and warm[0]["converged"], warm.explain()
            first = warm[0]["trace"][0]["apps"]["hotcold"]
            assert first["threshold_bp"] == app["threshold_bp"], warm[0]["trace"][0]
            assert warm[0]["iterations"] < cold[0]["iterations"], (warm[0]["iterations"], cold[0]["iterations"])


def test_a_damaged_learned_file_fails_before_any_write(run_playbook, tmp_path):
    learned = tmp_path / "learned.json"
    learned.write_text(json.dumps({"version": 1, "apps": {"x": {"threshold_bp": "high"}}}))
    with HotCold(hot_mb=8, cold_mb=8) as w, EmulatedSysfs(kernel="6.12", scenario={"speed": 0}) as emu:
        run = run_playbook(tune(emu, tmp_path / "own.json", [{"name": "x", "pid": w.pid}], kernel="6.12.117",
                                learned_file=str(learned)))
        assert run.rc != 0
        msg = run[0]["msg"]
        assert "learned_file %s is not a valid linux_mm.damon learned state: apps[x] has" % learned in msg \
            or "learned_file %s is not a valid linux_mm.damon learned state: apps[x].threshold_bp" % learned in msg, msg
        assert "fix it or move it away" in msg
        assert emu.write_count() == 0
