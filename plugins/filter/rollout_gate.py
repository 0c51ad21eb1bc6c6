# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter linux_mm.damon.rollout_gate: whether one rollout batch passes (plugin_utils/_rollout.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_gate
author: linux_mm.damon contributors
version_added: 0.1.0
short_description: Whether a batch of a controlled rollout passes its health gate
description:
  - Decides the health gate of one batch of C(playbooks/rollout.yml) from the outcome of each host of the batch.
  - The batch fails when more than O(max_fail_percentage) percent of its hosts failed (a host that is not in
    O(active) counts as failed), when every host of the batch failed, or when any host that did not fail has a
    health problem (see P(linux_mm.damon.rollout_health#filter)).
positional: active, max_fail_percentage, remaining, batch
options:
  _input:
    description:
      - Each host of the batch mapped to C(failure) (why the hugepage role failed there, or V(null)) and C(health)
        (the result of P(linux_mm.damon.rollout_health#filter), or V(null)).
    type: dict
    required: true
  active:
    description: The hosts Ansible still runs (C(ansible_play_batch)); the others were unreachable or failed.
    type: list
    elements: str
    required: true
  max_fail_percentage:
    description: The share of failed hosts, in percent of the batch, above which the batch fails.
    type: float
    default: 0
  remaining:
    description: The hosts no batch has reached yet, named in the message when the batch fails.
    type: list
    elements: str
    default: []
  batch:
    description: The number of the batch (V(1) for the canary), named in the message.
    type: int
"""

EXAMPLES = r"""
- name: Decide the gate of this batch
  ansible.builtin.set_fact:
    rollout_gate: "{{ outcomes | linux_mm.damon.rollout_gate(ansible_play_batch, 10, [], 1) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    passed:
      description: Whether the rollout may go on.
      type: bool
    failed_hosts:
      description: Hosts that failed.
      type: list
      elements: str
    unhealthy_hosts:
      description: Hosts that did not fail but have a health problem.
      type: list
      elements: str
    failed_percentage:
      description: Failed hosts in percent of the batch.
      type: float
    msg:
      description: The decision, one line per failing host and check with its numbers, the failure count and the healthy hosts' figures.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.linux_mm.damon.plugins.plugin_utils._rollout import gate


def rollout_gate(outcomes, active, max_fail_percentage=0, remaining=None, batch=None):
    """The gate of one batch."""
    if not isinstance(outcomes, dict) or not outcomes:
        raise AnsibleFilterError("rollout_gate: expected a non-empty dict of host outcomes, got %r" % (outcomes,))
    try:
        return gate(dict(outcomes), list(active or []), float(max_fail_percentage), list(remaining or []),
                    batch)
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError("rollout_gate: %s" % e)


class FilterModule(object):
    """linux_mm.damon.rollout_gate"""

    def filters(self):
        return {"rollout_gate": rollout_gate}
