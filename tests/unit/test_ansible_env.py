# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The configuration ansible-* children of the tests get (tests/conftest.py ``ansible_env``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_ANSIBLE_CFG, ansible_env


def test_the_controller_polls_for_results_every_5_ms_and_reads_no_other_config():
    dump = subprocess.run([str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed"],
                          env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, check=True).stdout
    assert "CONFIG_FILE() = %s" % TEST_ANSIBLE_CFG in dump, dump
    assert "DEFAULT_INTERNAL_POLL_INTERVAL(%s) = 0.005" % TEST_ANSIBLE_CFG in dump, dump
