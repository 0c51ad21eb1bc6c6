# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The table playbooks/report.yml prints, rendered by Ansible's templar from its template."""

from __future__ import annotations

from pathlib import Path

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def render(apps):
    template = (REPO_ROOT / "playbooks" / "templates" / "hugepage-report.txt.j2").read_text()
    variables = {"report_hosts": ["guest"], "hostvars": {"guest": {"hugepage_observed": {"apps": apps}}}}
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(template)).splitlines()


def test_threshold_is_shown_out_of_the_samples_and_the_columns_are_explained():
    lines = render([{"name": "hotcold", "threshold": 9, "max_nr_accesses": 20, "hot_bytes": 66 * MIB,
                     "huge_bytes_hot": 64 * MIB, "huge_bytes_cold": 0}])
    assert lines[0].split() == ["host", "application", "threshold", "hot", "MiB", "huge", "hot", "huge", "cold",
                                "coverage"]
    assert lines[1].split() == ["guest", "hotcold", "9/20", "66.0", "64.0", "0.0", "97%"]
    legend = " ".join(lines[2:])
    assert "threshold N/M: a 2 MiB chunk is hot when DAMON saw it accessed in at least N of the M samples" in legend
    assert "coverage: huge hot / hot MiB, DAMON's view" in legend


def test_an_application_without_observations():
    lines = render([{"name": "gone", "threshold": 9, "hot_bytes": 0, "huge_bytes_hot": None, "huge_bytes_cold": None}])
    assert lines[1].split() == ["guest", "gone", "9", "0.0", "0.0", "0.0", "-"]
