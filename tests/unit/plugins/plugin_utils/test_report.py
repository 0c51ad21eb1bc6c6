# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report's per-host history and its HTML page (plugin_utils/_report.py and the two filters)."""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linux_mm.damon.plugins.filter.hugepage_history import hugepage_history
from ansible_collections.linux_mm.damon.plugins.filter.hugepage_report_html import hugepage_report_html
from ansible_collections.linux_mm.damon.plugins.plugin_utils import _report

REPO = Path(__file__).resolve().parents[4]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "hugepage-history.schema.json").read_text())
MIB = 1 << 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def observed(i=0, exited=False):
    return {"changed": False, "path": "user_collapse", "apps": [
        {"name": "hotcold", "pid": 100 + i, "exited": False, "threshold": 9, "max_nr_accesses": 20,
         "hot_bytes": 64 * MIB, "huge_bytes_hot": min(64, 8 * i) * MIB, "huge_bytes_cold": (i % 3) * 2 * MIB,
         "histogram": [[0, 1]]},
        {"name": "redis", "pid": 7, "exited": exited, "threshold": 12, "max_nr_accesses": 20, "hot_bytes": 0,
         "huge_bytes_hot": None, "huge_bytes_cold": None}]}


def history(host="web1", runs=5):
    text = ""
    for i in range(runs):
        text = hugepage_history(text, observed(i, exited=i == 2), host, "2026-05-01T12:%02d:00Z" % (2 * i))
    return text


def test_a_record_per_run_with_the_report_figures_valid_against_the_schema():
    lines = history(runs=3).splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, SCHEMA)
    last = records[-1]
    assert (last["host"], last["recorded_at"], last["path"]) == ("web1", "2026-05-01T12:04:00Z", "user_collapse")
    assert last["apps"][0] == {"name": "hotcold", "pid": 102, "exited": False, "threshold": 9, "max_nr_accesses": 20,
                               "hot_bytes": 64 * MIB, "huge_bytes_hot": 16 * MIB, "huge_bytes_cold": 4 * MIB,
                               "hot_coverage": 0.25}
    assert last["apps"][1]["hot_coverage"] is None and last["apps"][1]["huge_bytes_hot"] is None
    assert [r["apps"][1]["exited"] for r in records] == [False, False, True]


def test_the_history_is_bounded_and_keeps_the_newest():
    text = history()
    kept = hugepage_history(text, observed(9), "web1", "2026-05-01T13:00:00Z", 3).splitlines()
    assert [json.loads(line)["recorded_at"] for line in kept] == [
        "2026-05-01T12:06:00Z", "2026-05-01T12:08:00Z", "2026-05-01T13:00:00Z"]


@pytest.mark.parametrize("result", [None, {"skipped": True, "skip_reason": "lock busy"},
                                    {"failed": True, "msg": "host lock held", "lock_busy": True}])
def test_a_host_that_was_not_observed_adds_nothing(result):
    text = history(runs=2)
    assert hugepage_history(text, result, "web1", "2026-05-01T13:00:00Z") == text
    assert hugepage_history("", result, "web1", "2026-05-01T13:00:00Z") == ""


def test_lines_that_are_not_records_are_dropped():
    text = "not json\n" + json.dumps({"schema": "something/else"}) + "\n" + history(runs=1) + '{"half": \n'
    assert len(hugepage_history(text, observed(1), "web1", "2026-05-01T13:00:00Z").splitlines()) == 2


@pytest.mark.parametrize("kwargs, words", [
    ({"recorded_at": "yesterday"}, "not an ISO 8601 time"),
    ({"recorded_at": None}, "recorded_at is required"),
    ({"max_records": 0}, "max_records must be at least 1"),
    ({"host": None}, "host is required"),
])
def test_bad_arguments_say_which(kwargs, words):
    args = dict(observed=observed(), host="web1", recorded_at="2026-05-01T13:00:00Z")
    args.update(kwargs)
    with pytest.raises(AnsibleFilterError, match=words):
        hugepage_history("", **args)


IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _images(page):
    return [base64.b64decode(b) for b in IMG.findall(page)]


def _self_contained(page):
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    return all(ref.startswith("data:image/png;base64,") for ref in refs) and "http" not in page.replace(
        "http-equiv", "")


def test_the_page_has_a_fleet_plot_and_one_per_host_embedded_as_png():
    pytest.importorskip("matplotlib", reason="the optional extra, pinned in requirements/test.txt")
    page = hugepage_report_html({"web1": history("web1"), "db2": history("db2"), "new": ""}, "2026-05-01T12:10:00Z")
    assert page["plots"] is True and page["note"] is None
    images = _images(page["html"])
    assert len(images) == 3 and all(img.startswith(PNG_MAGIC) for img in images)  # fleet, db2, web1
    assert _self_contained(page["html"])
    text = page["html"]
    assert "<h2>Fleet summary</h2>" in text and 'id="host-web1"' in text and 'id="host-new"' in text
    assert "No observation recorded yet." in text
    # the fleet's last run: 2 hosts x 64 MiB hot, 32 MiB huge each, 2 MiB cold each
    assert "<td>2</td><td>4</td><td>128.0</td><td>64.0</td><td>4.0</td><td>50 %</td><td>2</td>" in text


def test_without_matplotlib_the_page_has_the_tables_and_says_why(monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.dates"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    page = hugepage_report_html({"web1": history("web1")}, "2026-05-01T12:10:00Z")
    assert page["plots"] is False and _images(page["html"]) == []
    assert "matplotlib cannot be imported on the controller" in page["note"]
    assert _report.MATPLOTLIB_PIN in page["note"] and html.escape(page["note"]) in page["html"]
    assert "<td>9/20</td><td>64.0</td><td>32.0</td><td>2.0</td><td>50 %</td>" in page["html"]
    assert _self_contained(page["html"])


def test_plots_false_asks_for_tables_only_without_a_note():
    page = hugepage_report_html({"web1": history("web1")}, "2026-05-01T12:10:00Z", plots=False)
    assert page["plots"] is False and page["note"] is None and _images(page["html"]) == []


def test_names_are_escaped():
    text = hugepage_history("", dict(observed(), apps=[dict(observed()["apps"][0], name="<script>x</script>")]),
                            "<b>h</b>", "2026-05-01T13:00:00Z")
    page = hugepage_report_html({"<b>h</b>": text}, "2026-05-01T13:00:00Z", plots=False)["html"]
    assert "<script>" not in page and "<b>h</b>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_the_fleet_over_time_sums_the_hosts_of_each_run():
    fleet = _report.fleet_over_time({"a": _report.parse_history(history("a", 2)),
                                     "b": _report.parse_history(history("b", 1))})
    assert [(r["recorded_at"], r["hosts"], r["huge_bytes_hot"]) for r in fleet] == [
        ("2026-05-01T12:00:00Z", 2, 0), ("2026-05-01T12:02:00Z", 1, 8 * MIB)]


def test_not_a_dict_of_histories():
    with pytest.raises(AnsibleFilterError, match="expects the histories by host name"):
        hugepage_report_html(["web1"], "now")


def test_long_histories_show_the_newest_rows_and_say_so():
    text = ""
    for i in range(25):
        text = hugepage_history(text, observed(i), "web1", "2026-05-01T12:%02d:00Z" % i)
    page = hugepage_report_html({"web1": text}, "2026-05-02T00:00:00Z", plots=False)["html"]
    assert "The last 20 of 25 report runs, newest first." in page and "The last 20 of 25 observations." in page
    assert page.index("2026-05-01T12:24:00Z") < page.index("2026-05-01T12:05:00Z")
    assert "2026-05-01T12:04:00Z" not in page
