"""The molecule scenarios (top-level molecule/) as guest tests: one per scenario.

Each runs ``molecule test -s NAME`` through :mod:`tests.vm.run_molecule` (one guest boot,
converge, idempotence, verify, destroy; every guest stopped whatever happens). Skipped
unless LINUX_MM_DAMON_GUEST_TESTS=1 (see tests/vm/conftest.py). ``make molecule`` runs
the same scenarios without pytest.
"""

from __future__ import annotations

import pytest

from tests.vm import run_molecule

pytestmark = [pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(run_molecule.DEFAULT_TIMEOUT + 120)]


@pytest.mark.parametrize("scenario", run_molecule.scenarios())
def test_molecule_scenario(scenario):
    run = run_molecule.run_scenario(scenario, echo=False)
    print("molecule %s: %.0fs (%s); log %s" % (scenario, run.seconds, run.step_summary(), run.log))
    assert run.ok, "molecule test -s %s failed (rc %d); log %s\n%s" % (scenario, run.rc, run.log, run.tail())
