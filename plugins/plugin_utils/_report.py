# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report's history and HTML page, without Ansible in it (controller side only).

History: ``playbooks/report.yml`` keeps one file per host on the controller,
``REPORT_DIR/history/HOST.jsonl``, one JSON object per report run (schema
``docs/schemas/hugepage-history.schema.json``), the newest last, at most
``max_records`` lines (older ones are dropped). ``append_history`` adds one run's
record to a file's text; lines that are not records of this schema are dropped.

HTML: ``render_html`` writes one self-contained page (no file or network reference):
a fleet summary, then per host and application hot coverage, huge-page bytes in cold
chunks and the threshold over time, plotted from the histories. The plots need
matplotlib, an optional extra of the controller (pinned in ``requirements/test.txt``);
without it the page has the same tables and says that the plots are missing and why.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json

HISTORY_SCHEMA = "linux_mm.damon/hugepage-history/1"
DEFAULT_MAX_RECORDS = 2000
# plots of at most this many hosts, the ones with the most cold huge-page bytes first (every host is in the tables)
MAX_HOST_PLOTS = 50
MATPLOTLIB_PIN = "matplotlib==3.10.8"
MIB = 1 << 20
APP_FIELDS = ("name", "pid", "exited", "threshold", "max_nr_accesses", "hot_bytes", "huge_bytes_hot",
              "huge_bytes_cold", "hot_coverage")


class ReportError(ValueError):
    """Input the report cannot use; the message says which."""


def _int_or_none(value):
    return None if value is None else int(value)


def app_figures(app):
    """One application's figures as the JSON report has them (``hot_coverage`` = huge hot / hot)."""
    hot = int(app.get("hot_bytes") or 0)
    huge_hot = _int_or_none(app.get("huge_bytes_hot"))
    return {
        "name": str(app["name"]), "pid": _int_or_none(app.get("pid")), "exited": bool(app.get("exited")),
        "threshold": _int_or_none(app.get("threshold")), "max_nr_accesses": _int_or_none(app.get("max_nr_accesses")),
        "hot_bytes": hot, "huge_bytes_hot": huge_hot, "huge_bytes_cold": _int_or_none(app.get("huge_bytes_cold")),
        "hot_coverage": (huge_hot or 0) / hot if hot else None,
    }


def history_record(observed, host, recorded_at):
    """The history record of one report run for ``host`` from its ``hugepage_step`` ``state: observed`` result,
    or None when the host was not observed (skipped, failed, lock busy)."""
    if not isinstance(observed, dict) or observed.get("skipped") or observed.get("failed") or "apps" not in observed:
        return None
    if not recorded_at:
        raise ReportError("recorded_at is required (an ISO 8601 UTC time such as 2026-05-01T12:00:00Z)")
    _parse_time(recorded_at)
    try:
        apps = [app_figures(app) for app in observed.get("apps") or []]
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError("the observed result of %s is not a hugepage_step result: %s" % (host, e))
    return {"schema": HISTORY_SCHEMA, "host": str(host), "recorded_at": str(recorded_at),
            "path": observed.get("path"), "apps": apps}


def parse_history(text):
    """The records of one history file's text, oldest first; lines that are not records are skipped."""
    records = []
    for line in (text or "").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("schema") == HISTORY_SCHEMA and isinstance(record.get("apps"), list):
            records.append(record)
    return records


def append_history(text, record, max_records=DEFAULT_MAX_RECORDS):
    """The history file's new text: its records plus ``record`` (None: unchanged records), the last ``max_records``."""
    if int(max_records) < 1:
        raise ReportError("max_records must be at least 1, not %r" % (max_records,))
    records = parse_history(text)
    if record is not None:
        records.append(record)
    records = records[-int(max_records):]
    return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records)


def _parse_time(value):
    try:
        when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ReportError("recorded_at %r is not an ISO 8601 time" % (value,))
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


# --- the summary figures ----------------------------------------------------------

def _coverage(hot, huge_hot):
    return huge_hot / hot if hot else None


def host_summary(record):
    """Totals of one record over its live applications."""
    apps = [a for a in record.get("apps") or [] if not a.get("exited")]
    hot = sum(a.get("hot_bytes") or 0 for a in apps)
    huge_hot = sum(a.get("huge_bytes_hot") or 0 for a in apps)
    return {"host": record.get("host"), "recorded_at": record.get("recorded_at"), "path": record.get("path"),
            "apps": len(apps), "hot_bytes": hot, "huge_bytes_hot": huge_hot,
            "huge_bytes_cold": sum(a.get("huge_bytes_cold") or 0 for a in apps),
            "hot_coverage": _coverage(hot, huge_hot),
            "unmeasured": any(a.get("huge_bytes_hot") is None for a in apps)}


def fleet_over_time(histories):
    """Per report run (its ``recorded_at``, shared by every host of the run): the fleet's totals."""
    runs = {}
    for records in histories.values():
        for record in records:
            s = host_summary(record)
            run = runs.setdefault(record["recorded_at"], {"hosts": 0, "hot_bytes": 0, "huge_bytes_hot": 0,
                                                          "huge_bytes_cold": 0})
            run["hosts"] += 1
            for key in ("hot_bytes", "huge_bytes_hot", "huge_bytes_cold"):
                run[key] += s[key]
    out = []
    for at in sorted(runs, key=_parse_time):
        run = dict(runs[at], recorded_at=at)
        run["hot_coverage"] = _coverage(run["hot_bytes"], run["huge_bytes_hot"])
        out.append(run)
    return out


# --- plots (matplotlib, optional) -------------------------------------------------------

def load_matplotlib():
    """``(Figure class, dates module, None)`` or ``(None, None, why)`` when matplotlib cannot be imported."""
    try:
        from matplotlib import dates  # pylint: disable=import-outside-toplevel
        from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        return None, None, "matplotlib cannot be imported on the controller (%s)" % e
    return Figure, dates, None


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return '<img alt="%s" src="data:image/png;base64,%s">' % (
        html.escape(fig.get_label() or "plot"), base64.b64encode(buf.getvalue()).decode("ascii"))


def _time_axis(ax, dates, times):
    locator = dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)
    if times and min(times) == max(times):  # one run: an hour around it, not matplotlib's years
        ax.set_xlim(min(times) - datetime.timedelta(minutes=30), max(times) + datetime.timedelta(minutes=30))


def _app_series(records):
    """{app name: [(time, app figures)]} over a host's records; an exited application has a gap."""
    series = {}
    for record in records:
        at = _parse_time(record["recorded_at"])
        for app in record.get("apps") or []:
            series.setdefault(app["name"], []).append((at, app))
    return series


def _value(app, key):
    if app.get("exited"):
        return float("nan")
    if key == "hot_coverage":
        return 100.0 * app["hot_coverage"] if app.get("hot_coverage") is not None else float("nan")
    if key == "huge_bytes_cold":
        return (app["huge_bytes_cold"] / MIB) if app.get("huge_bytes_cold") is not None else float("nan")
    if key == "threshold":
        top = app.get("max_nr_accesses")
        return 100.0 * app["threshold"] / top if top and app.get("threshold") is not None else float("nan")
    raise KeyError(key)


def host_plot(figure_cls, dates, host, records):
    """Hot coverage, cold huge-page MiB and threshold over time, one line per application."""
    fig = figure_cls(figsize=(10, 6.6), label="%s over time" % host)
    axes = fig.subplots(3, 1, sharex=True)
    panels = (("hot_coverage", "hot coverage (%)"), ("huge_bytes_cold", "huge MiB in cold chunks"),
              ("threshold", "threshold (% of samples)"))
    every = []
    for name, points in sorted(_app_series(records).items()):
        times = [t for t, unused in points]
        every += times
        for ax, (key, unused) in zip(axes, panels):
            ax.plot(times, [_value(a, key) for unused, a in points], marker="o", markersize=3, label=name)
    for ax, (key, label) in zip(axes, panels):
        ax.set_ylabel(label)
        _time_axis(ax, dates, every)
    axes[0].set_ylim(-2, 102)
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylim(0, 102)
    axes[0].set_title("%s: per application" % host)
    axes[0].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return _png(fig)


def fleet_plot(figure_cls, dates, fleet):
    """The fleet's hot coverage and cold huge-page MiB per report run."""
    fig = figure_cls(figsize=(10, 4.4), label="fleet over time")
    axes = fig.subplots(2, 1, sharex=True)
    times = [_parse_time(run["recorded_at"]) for run in fleet]
    axes[0].plot(times, [100.0 * r["hot_coverage"] if r["hot_coverage"] is not None else float("nan") for r in fleet],
                 marker="o", markersize=3, color="tab:green")
    axes[0].set_ylabel("hot coverage (%)")
    axes[0].set_ylim(-2, 102)
    axes[0].set_title("Fleet: all hosts of each report run")
    axes[1].plot(times, [r["huge_bytes_cold"] / MIB for r in fleet], marker="o", markersize=3, color="tab:red")
    axes[1].set_ylabel("huge MiB in cold chunks")
    axes[1].set_ylim(bottom=0)
    for ax in axes:
        _time_axis(ax, dates, times)
    fig.tight_layout()
    return _png(fig)


# --- the page ---------------------------------------------------------------------

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
.note{background:#fff4d6;border:1px solid #e0c060;padding:.5em 1em}img{max-width:100%}p.small{font-size:small}"""


def _fmt_mib(value):
    return "?" if value is None else "%.1f" % (value / MIB)


def _fmt_cov(value):
    return "-" if value is None else "%.0f %%" % (100.0 * value)


def _fmt_threshold(app):
    if app.get("threshold") is None:
        return "-"
    top = app.get("max_nr_accesses")
    return "%d/%d" % (app["threshold"], top) if top else "%d" % app["threshold"]


def _table(headers, rows, left=2):
    """A table whose first ``left`` columns (names) are aligned left, the figures right."""
    e = html.escape
    head = "".join('<th class="l">%s</th>' % e(h) if i < left else "<th>%s</th>" % e(h) for i, h in enumerate(headers))
    body = "".join("<tr>%s</tr>" % "".join('<td class="l">%s</td>' % e(str(c)) if i < left else "<td>%s</td>" % e(str(c))
                                           for i, c in enumerate(row)) for row in rows)
    return "<table><tr>%s</tr>%s</table>" % (head, body)


def render_html(histories, generated_at, plots=True, title="linux_mm.damon huge-page report"):
    """The page for ``histories`` ({host: [records] or history file text}). Returns ``{"html", "plots", "note"}``:
    ``plots`` whether it has plots, ``note`` why not (None when it has them or was asked for none)."""
    hosts = {}
    for host, records in (histories or {}).items():
        hosts[str(host)] = parse_history(records) if isinstance(records, str) else list(records or [])
    latest = dict((h, r[-1]) for h, r in hosts.items() if r)
    fleet = fleet_over_time(hosts)
    figure_cls = dates = note = None
    if plots:
        figure_cls, dates, why = load_matplotlib()
        if figure_cls is None:
            note = ("No plots: %s. Install the optional extra on the controller (%s, as pinned in the collection's "
                    "requirements/test.txt) for plots; the tables below have the same figures." % (why, MATPLOTLIB_PIN))
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style>'
             "</head><body>" % (e(title), STYLE), "<h1>%s</h1>" % e(title),
             "<p>Generated %s from %d host histories (%d report runs). Hot coverage: huge-page bytes in the 2 MiB chunks "
             "DAMON sees at or above the threshold, divided by those chunks' bytes. Huge MiB in cold chunks: bloat. "
             "Threshold N/M: a chunk is hot when DAMON saw it accessed in at least N of the M samples of one "
             "aggregation interval.</p>" % (e(str(generated_at)), len(hosts), len(fleet))]
    if note:
        parts.append('<p class="note">%s</p>' % e(note))

    parts.append("<h2>Fleet summary</h2>")
    summaries = [host_summary(latest[h]) for h in sorted(latest)]
    hot = sum(s["hot_bytes"] for s in summaries)
    huge_hot = sum(s["huge_bytes_hot"] for s in summaries)
    cold = sum(s["huge_bytes_cold"] for s in summaries)
    parts.append(_table(
        ["hosts", "applications", "hot MiB", "huge MiB in hot", "huge MiB in cold", "hot coverage",
         "hosts with cold huge pages"],
        [[len(summaries), sum(s["apps"] for s in summaries), _fmt_mib(hot), _fmt_mib(huge_hot), _fmt_mib(cold),
          _fmt_cov(_coverage(hot, huge_hot)), sum(1 for s in summaries if s["huge_bytes_cold"])]], left=0))
    if figure_cls is not None and fleet:
        parts.append(fleet_plot(figure_cls, dates, fleet))
    parts.append(_table(
        ["host", "last observed (UTC)", "path", "applications", "hot MiB", "huge MiB in hot", "huge MiB in cold",
         "hot coverage"],
        [[s["host"], s["recorded_at"], s["path"] or "-", s["apps"], _fmt_mib(s["hot_bytes"]),
          _fmt_mib(s["huge_bytes_hot"]) + (" (partly unmeasured)" if s["unmeasured"] else ""),
          _fmt_mib(s["huge_bytes_cold"]), _fmt_cov(s["hot_coverage"])] for s in summaries]))
    if len(fleet) > 1:
        parts.append("<h3>Fleet over time</h3>")
        parts.append(_table(["report run (UTC)", "hosts", "hot MiB", "huge MiB in hot", "huge MiB in cold",
                             "hot coverage"],
                            [[r["recorded_at"], r["hosts"], _fmt_mib(r["hot_bytes"]), _fmt_mib(r["huge_bytes_hot"]),
                              _fmt_mib(r["huge_bytes_cold"]), _fmt_cov(r["hot_coverage"])] for r in fleet[-20:][::-1]],
                            left=1))
        if len(fleet) > 20:
            parts.append('<p class="small">The last 20 of %d report runs, newest first.</p>' % len(fleet))

    parts.append("<h2>Hosts</h2>")
    plotted = set(sorted(latest, key=lambda h: (-host_summary(latest[h])["huge_bytes_cold"], h))[:MAX_HOST_PLOTS])
    if figure_cls is not None and len(latest) > MAX_HOST_PLOTS:
        parts.append('<p class="note">Plots of the %d hosts with the most huge-page bytes in cold chunks; every host '
                     "is in the tables.</p>" % MAX_HOST_PLOTS)
    for host in sorted(hosts):
        records = hosts[host]
        parts.append('<h3 id="host-%s">%s</h3>' % (e(host), e(host)))
        if not records:
            parts.append("<p>No observation recorded yet.</p>")
            continue
        if figure_cls is not None and host in plotted:
            parts.append(host_plot(figure_cls, dates, host, records))
        rows = []
        for record in records[-20:][::-1]:
            for app in record.get("apps") or []:
                rows.append([record["recorded_at"], app["name"], "exited" if app.get("exited") else app.get("pid"),
                             _fmt_threshold(app), _fmt_mib(app.get("hot_bytes") or 0),
                             _fmt_mib(app.get("huge_bytes_hot")), _fmt_mib(app.get("huge_bytes_cold")),
                             _fmt_cov(app.get("hot_coverage"))])
        parts.append(_table(["observed (UTC)", "application", "pid", "threshold", "hot MiB", "huge MiB in hot",
                             "huge MiB in cold", "hot coverage"], rows))
        if len(records) > 20:
            parts.append('<p class="small">The last 20 of %d observations%s.</p>' % (
                len(records), "; the plot shows them all" if figure_cls is not None and host in plotted else ""))
    parts.append("</body></html>\n")
    return {"html": "\n".join(parts), "plots": figure_cls is not None, "note": note}
