"""The molecule scenarios (top-level molecule/) as guest tests: one per scenario.

Each runs ``molecule test -s NAME`` through :mod:`tests.vm.run_molecule` (converge,
idempotence, verify, destroy) against the session's shared guest of the same image
(tests/vm/shared.py): a boot of about 70 s saved per scenario. The guest is first put back
into what a fresh boot has for what the scenario checks, and stopped after the scenario
(converge leaves kdamonds and a workload running), so no later test gets it. ``make
molecule`` runs the same scenarios, each on a guest of its own. Skipped unless
LINUX_MM_DAMON_GUEST_TESTS=1 (see tests/vm/conftest.py).
"""

from __future__ import annotations

import pytest

from tests.vm import run_molecule

pytestmark = [pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(run_molecule.DEFAULT_TIMEOUT + 120)]

# What earlier tests on the shared guest may leave that a fresh boot does not have: the smoke test's and
# the demo's workload state file (prepare starts hotcold only when it is missing), the demo's ownership
# record and learned state, damo's feature cache (prepare checks that damo's probe writes it) and stopped
# kdamonds (prepare checks that the probe leaves none staged). A running kdamond is an earlier test's bug:
# fail rather than stop it.
FRESH = """set -e
pkill -x hotcold || true
rm -rf /run/hotcold.json /run/linux_mm_damon /var/lib/linux_mm_damon /root/.damo.sysinfo
k=/sys/kernel/mm/damon/admin/kdamonds
if [ -e $k/nr_kdamonds ] && [ "$(cat $k/nr_kdamonds)" != 0 ]; then
  for s in $k/*/state; do [ "$(cat $s)" = off ] || { echo "$s: $(cat $s)"; exit 1; }; done
  echo 0 > $k/nr_kdamonds
fi
"""


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=pytest.mark.shares_guest(s))
                                      for s in run_molecule.scenarios()])
def test_molecule_scenario(scenario, shared_guest, tmp_path):
    shared_guest.ssh(FRESH, check=True)
    inventory = shared_guest.write_inventory(tmp_path / "guest.yml")
    try:
        run = run_molecule.run_scenario(scenario, echo=False, inventory=inventory)
    finally:
        shared_guest.stop()
    print("molecule %s: %.0fs (%s); log %s" % (scenario, run.seconds, run.step_summary(), run.log))
    assert run.ok, "molecule test -s %s failed (rc %d); log %s\n%s" % (scenario, run.rc, run.log, run.tail())
