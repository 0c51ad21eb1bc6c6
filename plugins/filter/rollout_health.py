# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter linux_mm.damon.rollout_health: one host's health after a rollout batch (plugin_utils/_rollout.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_health
author: linux_mm.damon contributors
version_added: 0.1.0
short_description: Health figures and problems of one host after a rollout batch
description:
  - Turns the result of M(linux_mm.damon.hugepage_step) with O(linux_mm.damon.hugepage_step#module:state=observed)
    (the figures C(playbooks/report.yml) prints) into the host's health figures, summed over its observed
    applications, and checks them for the health gate of C(playbooks/rollout.yml).
  - "Checks: C(cold_bloat) (huge-page bytes in cold chunks above O(max_cold_huge_bytes)); C(coverage) and
    C(app_coverage) (hot coverage, that is huge-page bytes in hot chunks divided by hot bytes, of the host and of
    each application, more than O(coverage_tolerance) below the O(previous) record's, or nothing hot any more);
    C(app_status) (an application that converged in the O(previous) record ends V(pending), V(nothing_hot) or
    V(blocked) now, only with O(tuned)); C(unmeasured) (huge-page bytes not measurable)."
  - Applications that exited are left out.
positional: tuned, previous, max_cold_huge_bytes, coverage_tolerance
options:
  _input:
    description: The registered result of M(linux_mm.damon.hugepage_step) with O(linux_mm.damon.hugepage_step#module:state=observed).
    type: dict
    required: true
  tuned:
    description:
      - The registered result of M(linux_mm.damon.hugepage_tune) of the same run (its RV(linux_mm.damon.hugepage_tune#module:status)).
      - V(null) in check mode, where the loop does not run; then C(app_status) is not checked.
    type: dict
  previous:
    description:
      - The record of the host's last rollout that passed its gate (RV(_value.record) of that run), or V(null).
      - Without it nothing is checked for regression.
    type: dict
  max_cold_huge_bytes:
    description: Most huge-page bytes allowed in the host's cold chunks, summed over its applications (V(null) no limit).
    type: int
  coverage_tolerance:
    description: How far (absolute, 0 to 1) hot coverage may fall below the previous record's before it counts as a regression.
    type: float
    default: 0.05
  host:
    description: The inventory name of the host, written into RV(_value.record).
    type: str
  recorded_at:
    description: When the figures were taken (for example C(now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ'))), written into RV(_value.record).
    type: str
"""

EXAMPLES = r"""
- name: Check one host after its batch
  ansible.builtin.set_fact:
    rollout_health: >-
      {{ observed | linux_mm.damon.rollout_health(tuned=hugepage_tuned, previous=last_record,
                                                  max_cold_huge_bytes=134217728, coverage_tolerance=0.05) }}
"""

RETURN = r"""
_value:
  description: The host's health.
  type: dict
  contains:
    figures:
      description:
        - C(hot_bytes), C(huge_bytes_hot), C(huge_bytes_cold) summed over the observed applications, C(hot_coverage)
          (V(null) when nothing is hot), C(apps) by name (C(pid), C(status), C(threshold), C(max_nr_accesses),
          C(hot_bytes), C(huge_bytes_hot), C(huge_bytes_cold), C(hot_coverage)), C(status) (per application, from
          O(tuned)) and C(unmeasured).
      type: dict
    problems:
      description: One entry per failed check, with C(check), C(app) (or V(null)), C(msg) naming the numbers, and C(value), C(limit) or C(previous).
      type: list
      elements: dict
    healthy:
      description: Whether no check failed.
      type: bool
    summary:
      description: The figures in one line.
      type: str
    record:
      description: What the rollout writes to the host's record file once the batch passed its gate (the next run's O(previous)).
      type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linux_mm.damon.plugins.plugin_utils._rollout import RolloutError, health, record


def rollout_health(observed, tuned=None, previous=None, max_cold_huge_bytes=None, coverage_tolerance=0.05,
                   host=None, recorded_at=None):
    """Health of one host; ``host`` and ``recorded_at`` go into the record."""
    try:
        result = health(observed, tuned, previous, max_cold_huge_bytes, coverage_tolerance)
    except (RolloutError, TypeError, ValueError) as e:
        raise AnsibleFilterError("rollout_health: %s" % e)
    result["record"] = record(host, result, recorded_at)
    return result


class FilterModule(object):
    """linux_mm.damon.rollout_health"""

    def filters(self):
        return {"rollout_health": rollout_health}
