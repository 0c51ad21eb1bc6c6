# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The line hugepage_tune prints per iteration at default verbosity, from one ``trace`` entry of the loop.

One line per iteration and host, one part per application::

    hugepage_tune [web1] iteration 2/10 (3.1 s): hotcold threshold 45 % (9 of 20 samples), hot 66 MiB,
    huge 64 MiB in hot / 0 MiB in cold chunks: converged

(on one line). No Ansible in here, so the unit tests call it directly.
"""

from __future__ import annotations

MIB = 1 << 20


def _mib(value):
    """Whole MiB, or ``?`` when the step could not measure it (huge-page bytes need root for kpageflags)."""
    return "?" if value is None else "%d" % (value // MIB)


def threshold_text(threshold, max_nr_accesses):
    """``45 % (9 of 20 samples)``; above every sample: ``none (21 of 20 samples: collapse nothing)``."""
    if threshold is None:
        return "unchanged"
    if not max_nr_accesses:
        return "%d samples" % threshold
    if threshold > max_nr_accesses:
        return "none (%d of %d samples: collapse nothing)" % (threshold, max_nr_accesses)
    return "%g %% (%d of %d samples)" % (round(100.0 * threshold / max_nr_accesses, 1), threshold, max_nr_accesses)


def decision_text(app):
    """What the loop decided for one application in this iteration, in a few words."""
    status = app.get("status")
    if status == "converged":
        return "converged"
    if status == "nothing_hot":
        return "nothing hot"
    reason = app.get("reason") or ""
    nxt, now = app.get("next_threshold"), app.get("threshold")
    if nxt is not None and nxt != now:
        return "next threshold %s" % threshold_text(nxt, app.get("max_nr_accesses"))
    if "widen" in reason:
        return "widen the intervals"
    if "still tuning" in reason:
        return "wait for the kernel's intervals"
    return "keep the threshold (%s)" % (status or "pending")


def app_text(name, app):
    """One application's part of the line."""
    if app.get("exited"):
        return "%s exited (its kdamond was removed)" % name
    if app.get("blocked"):
        return "%s blocked (%s): not tuned" % (name, app["blocked"])
    if app.get("observed") is False:
        return "%s threshold %s: not observed yet (its kdamond has no statistics yet)" % (name, app.get("threshold"))
    return "%s threshold %s, hot %s MiB, huge %s MiB in hot / %s MiB in cold chunks: %s" % (
        name, threshold_text(app.get("threshold"), app.get("max_nr_accesses")), _mib(app.get("hot_bytes") or 0),
        _mib(app.get("huge_bytes_hot")), _mib(app.get("huge_bytes_cold")), decision_text(app))


def iteration_line(entry, host=None, max_iterations=None):
    """The progress line of one ``trace`` entry of ``run_loop`` (its ``iteration`` counts from 0)."""
    head = "hugepage_tune%s iteration %d%s" % (
        " [%s]" % host if host else "", entry.get("iteration", 0) + 1, "/%d" % max_iterations if max_iterations else "")
    if entry.get("elapsed_s") is not None:
        head += " (%g s)" % round(entry["elapsed_s"], 1)
    apps = entry.get("apps") or {}
    if not apps:
        return head + ": no application observed"
    return head + ": " + "; ".join(app_text(name, apps[name]) for name in sorted(apps))
