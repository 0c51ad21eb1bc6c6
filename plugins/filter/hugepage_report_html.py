# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter linux_mm.damon.hugepage_report_html: the fleet report as one HTML page (plugin_utils/_report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: hugepage_report_html
author: linux_mm.damon contributors
version_added: 0.1.0
short_description: The fleet huge-page report as one self-contained HTML page with plots
description:
  - Turns the report histories of the hosts (the texts of C(REPORT_DIR/history/HOST.jsonl), see
    P(linux_mm.damon.hugepage_history#filter)) into one HTML page with no external reference, with a fleet summary
    (totals of each host's last observation, the fleet's hot coverage and cold huge-page bytes per report run) and,
    per host and application, hot coverage, huge-page bytes in cold chunks and the threshold over time.
  - The plots are PNG images embedded in the page, drawn with matplotlib on the controller, an optional extra of
    the collection. Without matplotlib the page has the same tables, says that the plots are missing and why, and
    RV(_value.plots) is V(false).
positional: generated_at, plots
options:
  _input:
    description: The histories by host name, each the text of the host's history file (or a list of its records).
    type: dict
    required: true
  generated_at:
    description: When the report was made (shown on the page).
    type: str
    required: true
  plots:
    description: Whether to draw plots (V(false) gives the tables only, without matplotlib's time).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Write the HTML report
  ansible.builtin.copy:
    content: "{{ (histories | linux_mm.damon.hugepage_report_html(generated_at='2026-05-01T12:00:00Z')).html }}"
    dest: /var/lib/reports/hugepage-report.html
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The page and whether it has plots.
  type: dict
  contains:
    html:
      description: The HTML page.
      type: str
    plots:
      description: Whether the page has plots (matplotlib could be imported and O(plots) was V(true)).
      type: bool
    note:
      description: Why the page has no plots although O(plots) asked for them (matplotlib missing), else V(null).
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linux_mm.damon.plugins.plugin_utils._report import ReportError, render_html


def hugepage_report_html(histories, generated_at=None, plots=True):
    """``{"html", "plots", "note"}`` for the histories by host."""
    if not isinstance(histories, dict):
        raise AnsibleFilterError("hugepage_report_html: expects the histories by host name, not %s"
                                 % type(histories).__name__)
    try:
        return render_html(histories, generated_at, plots=bool(plots))
    except (ReportError, KeyError, TypeError, ValueError) as e:
        raise AnsibleFilterError("hugepage_report_html: %s" % e)


class FilterModule(object):
    """linux_mm.damon.hugepage_report_html"""

    def filters(self):
        return {"hugepage_report_html": hugepage_report_html}
