# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The health gate of a controlled rollout (playbooks/rollout.yml, role linux_mm.damon.rollout).

Pure, standard library only; the filters ``linux_mm.damon.rollout_health`` and
``linux_mm.damon.rollout_gate`` are thin wrappers. Per host, :func:`health` turns what
``hugepage_step`` ``state: observed`` returned (the figures ``playbooks/report.yml`` prints),
the per-application status of ``hugepage_tune`` and the record of the host's last rollout
that passed its gate into health figures and a list of problems; per batch, :func:`gate`
decides whether the rollout may go on. docs/rollout.md describes the checks.
"""

from __future__ import annotations

RECORD_SCHEMA = "linux_mm.damon/rollout-record/1"
MIB = float(1 << 20)
# Per-application hugepage_tune status that counts as a regression after a run in which it converged.
NOT_CONVERGED = ("pending", "nothing_hot", "blocked")
APP_FIGURES = ("pid", "status", "threshold", "max_nr_accesses", "hot_bytes", "huge_bytes_hot", "huge_bytes_cold",
               "hot_coverage")


class RolloutError(ValueError):
    """Input the gate cannot use (e.g. a record that is not a rollout record)."""


def mib(value):
    return "%.1f MiB" % ((value or 0) / MIB)


def coverage(huge_hot, hot):
    """huge_bytes_hot / hot_bytes (None when nothing is hot or the huge bytes are unknown)."""
    if not hot or huge_hot is None:
        return None
    return float(huge_hot) / hot


def _cov(value):
    return "-" if value is None else "%.3f" % value


def figures(observed, tuned=None):
    """Health figures of one host: per observed application and summed over them.

    ``observed`` is a ``hugepage_step`` ``state: observed`` result; applications that exited or
    were not observed (no ``hot_bytes``) are left out. ``tuned`` is the ``hugepage_tune`` result of
    the same run (its ``status`` per application) or None (check mode: the loop did not run).
    """
    status = dict((tuned or {}).get("status") or {})
    apps = {}
    for app in (observed or {}).get("apps") or []:
        if app.get("exited") or app.get("hot_bytes") is None:
            continue
        hot = int(app.get("hot_bytes") or 0)
        entry = {"pid": app.get("pid"), "status": status.get(app["name"]), "threshold": app.get("threshold"),
                 "max_nr_accesses": app.get("max_nr_accesses"), "hot_bytes": hot,
                 "huge_bytes_hot": app.get("huge_bytes_hot"), "huge_bytes_cold": app.get("huge_bytes_cold")}
        entry["hot_coverage"] = coverage(entry["huge_bytes_hot"], hot)
        apps[app["name"]] = entry
    unknown = [name for name, a in apps.items() if a["huge_bytes_hot"] is None or a["huge_bytes_cold"] is None]
    hot = sum(a["hot_bytes"] for a in apps.values())
    huge_hot = None if unknown else sum(a["huge_bytes_hot"] for a in apps.values())
    huge_cold = None if unknown else sum(a["huge_bytes_cold"] for a in apps.values())
    return {"hot_bytes": hot, "huge_bytes_hot": huge_hot, "huge_bytes_cold": huge_cold,
            "hot_coverage": coverage(huge_hot, hot), "apps": apps, "unmeasured": sorted(unknown),
            # the statuses of applications that were not observed (blocked ones get no kdamond)
            "status": status}


def check_record(previous):
    """The record of the last passed gate, or None; raises RolloutError when it is not one."""
    if previous is None or previous == "":
        return None
    if not isinstance(previous, dict) or previous.get("schema") != RECORD_SCHEMA:
        raise RolloutError("the previous rollout record is not a %s record (schema %r); remove or fix it"
                           % (RECORD_SCHEMA, previous.get("schema") if isinstance(previous, dict) else previous))
    return previous


def _problem(check, msg, app=None, **numbers):
    return dict(numbers, check=check, app=app, msg=msg)


def health(observed, tuned=None, previous=None, max_cold_huge_bytes=None, coverage_tolerance=0.05):
    """Figures and problems of one host after its batch.

    Checks (each problem names its check, the application where it applies, and the numbers):

    - ``unmeasured``: an application's huge-page bytes could not be measured;
    - ``cold_bloat``: huge-page bytes in the host's cold chunks above ``max_cold_huge_bytes``
      (None: no limit);
    - ``coverage``: the host's hot coverage fell by more than ``coverage_tolerance`` below the
      previous record's, or nothing is hot any more where the previous record had coverage;
    - ``app_coverage``: the same per application present in both;
    - ``app_status``: an application that converged in the previous record now ends
      ``pending``, ``nothing_hot`` or ``blocked`` (only when ``tuned`` is given).
    """
    tolerance = float(coverage_tolerance)
    if not 0.0 <= tolerance <= 1.0:
        raise RolloutError("coverage_tolerance must be within 0..1, got %r" % coverage_tolerance)
    previous = check_record(previous)
    now = figures(observed, tuned)
    problems = []
    for name in now["unmeasured"]:
        problems.append(_problem("unmeasured", "%s: its huge-page bytes could not be measured (hugepage_step needs "
                                 "root to read /proc/kpageflags)" % name, app=name))
    if max_cold_huge_bytes is not None and now["huge_bytes_cold"] is not None \
            and now["huge_bytes_cold"] > int(max_cold_huge_bytes):
        per_app = ", ".join("%s %s" % (name, mib(a["huge_bytes_cold"])) for name, a in sorted(now["apps"].items())
                            if a["huge_bytes_cold"])
        problems.append(_problem(
            "cold_bloat", "%s in huge pages in cold chunks (%s) > rollout_max_cold_huge_bytes %s"
            % (mib(now["huge_bytes_cold"]), per_app, mib(int(max_cold_huge_bytes))),
            value=now["huge_bytes_cold"], limit=int(max_cold_huge_bytes)))
    if previous is not None:
        problems.extend(_regressions(now, previous, tolerance, tuned is not None))
    return {"figures": now, "problems": problems, "healthy": not problems, "summary": summary(now)}


def _fell(now, before, tolerance):
    return now is not None and before is not None and now < before - tolerance - 1e-9


def _regressions(now, previous, tolerance, with_status):
    since = " (previous run %s)" % previous.get("recorded_at") if previous.get("recorded_at") else " (previous run)"
    found = []
    before = previous.get("hot_coverage")
    if before is not None and now["hot_coverage"] is None and not now["unmeasured"]:
        found.append(_problem("coverage", "nothing hot is observed in any application now; hot coverage was %s of %s "
                              "hot%s" % (_cov(before), mib(previous.get("hot_bytes")), since),
                              value=None, previous=before))
    elif _fell(now["hot_coverage"], before, tolerance):
        found.append(_problem("coverage", "hot coverage %s (%s of %s hot in huge pages) < %s%s - tolerance %s"
                              % (_cov(now["hot_coverage"]), mib(now["huge_bytes_hot"]), mib(now["hot_bytes"]),
                                 _cov(before), since, tolerance), value=now["hot_coverage"], previous=before))
    old_apps = previous.get("apps") or {}
    for name, app in sorted(now["apps"].items()):
        old = old_apps.get(name)
        if old and _fell(app["hot_coverage"], old.get("hot_coverage"), tolerance):
            found.append(_problem("app_coverage", "%s: hot coverage %s (%s of %s hot in huge pages) < %s%s - "
                                  "tolerance %s" % (name, _cov(app["hot_coverage"]), mib(app["huge_bytes_hot"]),
                                                    mib(app["hot_bytes"]), _cov(old.get("hot_coverage")), since,
                                                    tolerance),
                                  app=name, value=app["hot_coverage"], previous=old.get("hot_coverage")))
    if with_status:
        for name, status in sorted(now["status"].items()):
            old = old_apps.get(name)
            if old and old.get("status") == "converged" and status in NOT_CONVERGED:
                found.append(_problem("app_status", "%s: converged%s, now %s" % (name, since, status), app=name,
                                      value=status, previous="converged"))
    return found


def summary(now):
    """One line of a host's figures."""
    apps = "; ".join("%s: threshold %s, coverage %s, %s huge in cold%s" % (
        name, "%s/%s" % (a["threshold"], a["max_nr_accesses"]) if a["max_nr_accesses"] else a["threshold"],
        _cov(a["hot_coverage"]), mib(a["huge_bytes_cold"]), ", " + a["status"] if a["status"] else "")
        for name, a in sorted(now["apps"].items()))
    return "hot coverage %s of %s hot, %s huge in cold chunks%s" % (
        _cov(now["hot_coverage"]), mib(now["hot_bytes"]), mib(now["huge_bytes_cold"]),
        " (%s)" % apps if apps else " (no application observed)")


def record(host, health_result, recorded_at=None):
    """The record written after a passed gate: the host's figures, what the next gate compares with."""
    now = health_result["figures"]
    apps = dict((name, dict((k, a.get(k)) for k in APP_FIGURES)) for name, a in now["apps"].items())
    for name, status in now["status"].items():  # applications not observed keep their status too
        apps.setdefault(name, dict(dict((k, None) for k in APP_FIGURES), status=status))
    return {"schema": RECORD_SCHEMA, "host": host, "recorded_at": recorded_at, "hot_bytes": now["hot_bytes"],
            "huge_bytes_hot": now["huge_bytes_hot"], "huge_bytes_cold": now["huge_bytes_cold"],
            "hot_coverage": now["hot_coverage"], "apps": apps}


def gate(outcomes, active, max_fail_percentage=0.0, remaining=(), batch=None):
    """Whether a batch passes.

    ``outcomes`` maps each host of the batch to ``{"failure": str or None, "health": health() or None}``;
    ``active`` lists the hosts Ansible still runs (the others were unreachable, failed outside the
    rescued tasks or were ended by the role, and count as failed, with their ``failure`` if one is
    given); ``remaining`` lists the play's hosts no batch has reached yet; ``batch`` is the batch's
    number (1 for the canary), for the message. The batch fails when more than
    ``max_fail_percentage`` % of its hosts failed, when all of them failed (Ansible ends a
    play then too), or when any host that did not fail has a health problem.
    """
    limit = float(max_fail_percentage)
    hosts = list(outcomes)
    failed, unhealthy, lines = [], [], []
    for host in hosts:
        outcome = outcomes[host] or {}
        if host not in active:  # unreachable, failed outside the rescued tasks, or ended (meta: end_host)
            failed.append(host)
            lines.append("%s: failed: %s" % (host, outcome.get("failure")
                                             or "unreachable, or failed outside the hugepage role"))
        elif outcome.get("failure"):
            failed.append(host)
            lines.append("%s: failed: %s" % (host, outcome["failure"]))
        else:
            problems = (outcome.get("health") or {}).get("problems") or []
            if problems:
                unhealthy.append(host)
            lines.extend("%s: %s: %s" % (host, p["check"], p["msg"]) for p in problems)
    share = 100.0 * len(failed) / len(hosts) if hosts else 0.0
    too_many = bool(hosts) and (share > limit + 1e-9 or len(failed) == len(hosts))
    passed = bool(hosts) and not too_many and not unhealthy
    head = "Rollout gate %s for batch %s: %s (%d host%s)" % (
        "passed" if passed else "FAILED", batch or "", ", ".join(hosts), len(hosts), "" if len(hosts) == 1 else "s")
    fail_line = "failed hosts: %d of %d (%.0f %%), rollout_max_fail_percentage %g%s" % (
        len(failed), len(hosts), share, limit,
        " -- exceeded" if share > limit + 1e-9 else (" -- every host of the batch failed" if too_many else ""))
    ok = ["%s: %s" % (h, (outcomes[h].get("health") or {}).get("summary", "")) for h in hosts
          if h not in failed and h not in unhealthy]
    msg = [head + ("" if passed else "; the rollout stops here") + "."] + lines + [fail_line] + ok
    if not passed:
        msg.append("Not rolled out: %s." % (", ".join(remaining) if remaining else "no host left"))
    return {"passed": passed, "failed_hosts": failed, "unhealthy_hosts": unhealthy, "failed_percentage": share,
            "msg": msg}
