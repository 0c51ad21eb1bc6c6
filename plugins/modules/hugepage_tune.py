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
  - Policy V(adaptive) picks the threshold that separates the application's hot memory from its own cold
    memory in the access distribution of its 2 MiB chunks (what can become a huge page), raises it again when
    cold memory is collapsed or the workload changes, and keeps each application within its huge-page byte
    budget. Thresholds are kept as a share of samples (RV(thresholds_bp)), so they hold when intervals change.
  - Monitoring intervals fit each application (O(auto_intervals)). When nothing stands out, the kernel widens them
    (C(intervals_goal), Linux 6.15+) or the loop does (sampling interval x4 per iteration, up to
    O(auto_intervals.max_sample_us) and to a quarter of O(timeout_s) per aggregation interval). RV(intervals) says
    which intervals each application ended with.
  - An application with nothing hot enough at the widest intervals ends with status V(nothing_hot) and a
    message saying so (RV(messages)); that is not called converged.
  - The loop ends when every application converged or has nothing hot, after O(max_iterations), or at
    O(timeout_s). It reports C(changed=false) once converged with nothing to do, so a second run is idempotent.
  - Applications whose process exits, at any point of a step, are dropped without failing the task.
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
        description:
          - Most huge-page bytes the application may hold (V(0) unlimited), its AnonHugePages counted.
          - On the V(user_collapse) path M(linux_mm.damon.hugepage_step) collapses at most what is left of it,
            hottest chunks first, and the threshold stays where hot and cold memory separate; on the kernel paths
            the threshold rises until the bytes it selects fit.
        type: int
        default: 0
      application:
        description:
          - The declared application this entry is a member of (M(linux_mm.damon.hot_processes) returns it with
            its C(applications) option); informational.
        type: str
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
    description:
      - Huge-page byte budget of the whole host (V(0) unlimited), split among the applications (none gets more
        than its own O(apps[].budget_bytes)).
      - Equal shares until every application was observed; from then on after each iteration, the most accessed
        memory of all applications first (accesses per second estimated from each kdamond's own sampling
        interval, so kdamonds at different intervals compare), huge pages already held counted first, the rest
        in equal shares. The trace shows each application's C(budget_bytes).
    type: int
    default: 0
  prune:
    description:
      - Also remove the kdamonds of this loop's applications that are not in O(apps) although their process still
        runs, for example those of another M(linux_mm.damon.hugepage_tune) task on the same host.
      - Without it the task only removes kdamonds whose application exited. Everything removed is in RV(pruned).
    type: bool
    default: false
  auto_intervals:
    description: How monitoring intervals adapt to each application (see M(linux_mm.damon.hugepage_step)).
    type: dict
    default: {}
    suboptions:
      mode:
        description:
          - V(kernel) lets the kernel tune them (C(intervals_goal), Linux 6.15+); V(controller) lets this loop
            widen them; V(auto) picks V(kernel) where available; V(off) keeps O(monitoring_attrs).
        type: str
        choices: [auto, kernel, controller, "off"]
        default: auto
      access_bp:
        description: C(intervals_goal/access_bp).
        type: int
        default: 400
      aggrs:
        description: C(intervals_goal/aggrs).
        type: int
        default: 3
      max_sample_us:
        description:
          - Longest sampling interval; lowered so that one aggregation interval takes at most a quarter of O(timeout_s).
        type: int
        default: 1000000
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
lock_busy:
  description:
    - V(true) when a step failed only because another run held the host lock for longer than O(lock_timeout_s)
      (linux_mm.damon.hugepage_step's C(lock_busy)); that step changed nothing.
  returned: failure
  type: bool
  sample: false
converged:
  description: Whether every application reached a stable threshold.
  returned: always
  type: bool
iterations:
  description: Number of iterations, which is the number of remote module calls.
  returned: always
  type: int
stopped:
  description:
    - Why the loop ended. V(converged) (every application), V(nothing_hot) (no application has memory hot enough
      to collapse at the widest intervals), V(blocked) (every application has THP disabled, see RV(blocked)),
      V(finished) (some converged, some had nothing hot or were blocked), V(no_apps) (none given, or all exited),
      V(max_iterations), V(deadline) or V(check_mode).
  returned: always
  type: str
status:
  description: Per application, V(converged), V(nothing_hot), V(blocked), V(exited) or V(pending) (stopped before
    settling).
  returned: always
  type: dict
  sample: {db: converged, cache: nothing_hot}
messages:
  description: One sentence per application saying what was done, or why nothing was.
  returned: always
  type: list
  elements: str
  sample:
    - "cache: no memory touched in more than 10.0 % of samples (2 of 20, the noise floor is 3) over 6.4 s
      aggregation intervals sampled every 320 ms (the widest allowed within max_sample_us and the deadline):
      nothing hot enough to collapse"
blocked:
  description:
    - Applications that cannot get any huge page (THP disabled for the process, reason V(process_thp_disabled)),
      by name, with C(reason), C(detail), C(fix) and C(bytes). They get no kdamond and are not retried; the
      message says how to lift it.
  returned: always
  type: dict
  sample:
    cache:
      reason: process_thp_disabled
      detail: "THP_enabled: 0 in /proc/PID/status (prctl PR_SET_THP_DISABLE)"
      fix: "... restart it without that, e.g. redis-server with `disable-thp no` ..."
      bytes: 1494310912
blockers:
  description:
    - What keeps part of an application's memory out of huge pages (V(vma_nohugepage), V(shmem_misaligned),
      V(shmem_thp_disabled), V(thp_enabled_never)), by name, as a list of C(reason), C(detail), C(fix),
      C(bytes) (resident bytes concerned); the application is tuned as usual and a message says it.
  returned: always
  type: dict
  sample: {cache: [{reason: vma_nohugepage, detail: mappings with nh (VM_NOHUGEPAGE) in smaps VmFlags,
                    fix: "...", bytes: 65536}]}
msg:
  description: The messages joined.
  returned: always
  type: str
thresholds:
  description: The threshold (C(min_nr_accesses)) of each application at the end.
  returned: always
  type: dict
  sample: {db: 12}
thresholds_bp:
  description: The threshold of each application as a share of samples in basis points (V(10001) collapses nothing).
  returned: always
  type: dict
  sample: {db: 6000}
intervals:
  description: The monitoring intervals of each application at the end, and who set them (V(kernel), V(controller), V(off)).
  returned: always
  type: dict
  sample: {db: {sample_us: 280000, aggr_us: 5600000, mode: kernel}}
interval_mode:
  description: Who adapts the monitoring intervals on this host.
  returned: when a step ran
  type: str
dropped:
  description: Applications dropped because their process exited, or whose kdamond was removed (see RV(pruned)).
  returned: always
  type: list
  elements: str
pruned:
  description: Every kdamond removed during the loop, with the reason (V(exited), V(unlisted)).
  returned: always
  type: list
  elements: dict
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
ansible_stats:
  description:
    - Custom statistics for the play recap (C(ansible-playbook) prints them with C(show_custom_stats=true)),
      added up over the hosts. C(data.hugepage_tune_iterations) is the number of iterations,
      C(data.hugepage_tune_converged_hosts) counts hosts whose loop converged (RV(converged)) and
      C(data.hugepage_tune_nothing_hot_hosts) hosts that stopped with V(nothing_hot) (RV(stopped)).
  returned: success
  type: dict
  sample:
    data: {hugepage_tune_iterations: 4, hugepage_tune_converged_hosts: 1, hugepage_tune_nothing_hot_hosts: 0}
    per_host: false
    aggregate: true
"""
