# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by test files: fakes of kernel files and playbook shortcuts.

Fixtures live in ``tests/conftest.py`` (every test sees them); plain helpers that tests
import live here: ``pagemap`` (fake pagemap/kpageflags entries), ``fake_proc`` (a fake
/proc tree), ``playbooks`` (run a list of tasks as one play), ``fleet`` (several inventory
hosts, each an emulated DAMON sysfs with its own workload).
"""
