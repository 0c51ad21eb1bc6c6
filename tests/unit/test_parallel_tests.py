# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make test-fast` runs the tests in four processes (pytest-xdist, test by test, the tests of one
``xdist_group`` together) and still fails when nothing was collected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_n(*args):
    return subprocess.run(["make", "-n", "-C", str(REPO_ROOT), "test-fast", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=True, env=dict(os.environ, MAKEFLAGS="")).stdout


def test_test_fast_runs_four_workers_by_test_and_group_and_can_run_serially():
    assert '-m pytest -m "not vm" -n 4 --dist loadgroup' in make_n()
    assert '-m pytest -m "not vm" -n 0 --dist loadgroup' in make_n("PYTEST_WORKERS=0")


def test_tests_that_share_a_module_fixture_or_compare_results_stay_in_one_group():
    """Spread test by test, these would run a module fixture once per process, or compare nothing."""
    from tests.integration import test_execution_environment, test_hot_processes_module, test_hugepage_tune

    def groups(marks):
        return [m.args for m in marks if m.name == "xdist_group"]

    assert groups(test_hot_processes_module.pytestmark) == [("hot_processes_children",)]
    assert groups(test_execution_environment.pytestmark) == [("execution_environment",)]
    policies = test_hugepage_tune.test_policy_converges_and_a_second_run_changes_nothing
    assert groups(policies.pytestmark) == [("hugepage_tune_policies",)]


def test_xdist_is_pinned():
    pins = (REPO_ROOT / "requirements" / "test.txt").read_text().splitlines()
    assert "pytest-xdist==3.8.0" in pins and any(p.startswith("execnet==") for p in pins)


def test_nothing_collected_is_still_exit_code_5():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
                           "tests/unit/test_report_table.py", "-k", "no_test_has_this_name"],
                          cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, check=False)
    assert done.returncode == 5, done.stdout
