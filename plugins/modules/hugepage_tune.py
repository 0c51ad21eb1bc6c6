#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: hugepage_tune
short_description: Find and keep the hotness threshold that collapses exactly the hot memory of each application
version_added: 0.1.0
description:
  - Runs a bounded feedback loop on the controller. Each iteration makes exactly one remote call of
    M(linux_mm.damon.hugepage_step), which applies the previous decision (each application's threshold)
    and returns fresh DAMON statistics and access distributions; a policy turns them into the next thresholds.
  - Policy V(stepdown) is the algorithm of the DAMON_HUGEPAGE RFC (start high and lower the threshold by
    10, 5 and 1 while nothing was applied), with the start clamped to the largest possible C(nr_accesses).
  - Policy V(adaptive) picks the threshold that separates hot from cold memory in the access distribution
    DAMON reports, raises it again when cold memory is collapsed or the workload changes, and keeps each
    application within its huge-page byte budget.
  - The loop ends when every application converged, after O(max_iterations), or at O(timeout_s). It reports
    C(changed=false) once converged with nothing to do, so a second run is idempotent.
  - Applications whose process exits are dropped without failing the task.
author: linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common
  - linux_mm.damon._common.kernel_release
  - linux_mm.damon._common.ownership
  - linux_mm.damon._common.host_lock
  - linux_mm.damon._common.hugepage_loop
attributes:
  action:
    support: full
    description: The loop runs on the controller; each iteration executes M(linux_mm.damon.hugepage_step) on the host.
  async:
    support: none
    description: The loop itself cannot run asynchronously; bound it with O(max_iterations) and O(timeout_s).
  bypass_host_loop:
    support: none
    description: It runs once per host; each host has its own loop.
  check_mode:
    support: full
    details: Runs one iteration that changes nothing on the host and predicts the next thresholds.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  apps:
    description: The hot applications of the host, for example from M(linux_mm.damon.hot_processes).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the application.
        type: str
        required: true
      pid:
        description: PID of its process.
        type: int
        required: true
      budget_bytes:
        description: Huge-page byte budget of the application (V(0) unlimited).
        type: int
        default: 0
  policy:
    description: Threshold policy.
    type: str
    choices: [stepdown, adaptive]
    default: adaptive
  max_iterations:
    description: Most iterations (remote calls) of the loop.
    type: int
    default: 10
  timeout_s:
    description: Deadline of the loop in seconds.
    type: float
    default: 600.0
  host_budget_bytes:
    description: Huge-page byte budget of the whole host, split among the applications (V(0) unlimited).
    type: int
    default: 0
notes:
  - The loop occupies one fork per host while it runs; size C(forks) or use C(throttle) for large fleets.
seealso:
  - module: linux_mm.damon.hugepage_step
  - module: linux_mm.damon.hot_processes
"""

EXAMPLES = r"""
- name: Collapse the hot memory of two applications into huge pages
  linux_mm.damon.hugepage_tune:
    apps:
      - {name: db, pid: "{{ db_pid }}", budget_bytes: 2147483648}
      - {name: cache, pid: "{{ cache_pid }}"}
    policy: adaptive
    exclusive_modules: stop
  register: tuned

- name: The RFC's step-down algorithm, for comparison
  linux_mm.damon.hugepage_tune:
    apps: "{{ hot_apps }}"  # a list of {name, pid}, for example built from linux_mm.damon.hot_processes
    policy: stepdown
    max_iterations: 60
"""

RETURN = r"""
converged:
  description: Whether every application reached a stable threshold.
  returned: always
  type: bool
iterations:
  description: Number of iterations, which is the number of remote module calls.
  returned: always
  type: int
stopped:
  description: Why the loop ended (V(converged), V(max_iterations), V(deadline) or V(check_mode)).
  returned: always
  type: str
thresholds:
  description: The threshold of each application at the end.
  returned: always
  type: dict
  sample: {db: 12}
dropped:
  description: Applications dropped because their process exited.
  returned: always
  type: list
  elements: str
trace:
  description: Per iteration and application, the threshold, the applied deltas and the huge-page bytes.
  returned: always
  type: list
  elements: dict
  sample:
    - iteration: 0
      elapsed_s: 5.2
      apps:
        db: {threshold: 20, next_threshold: 12, nr_applied_delta: 0, sz_applied_delta: 0, hot_bytes: 33554432,
             huge_bytes: 0, huge_bytes_cold: 0, converged: false, reason: "hot/cold split at 12"}
"""
