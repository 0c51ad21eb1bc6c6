#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: hugepage_step
short_description: One step of the huge-page feedback loop for the hot applications of a host
version_added: 0.1.0
description:
  - Gives each application in O(apps) its own kdamond (from a pool of slots this collection owns) with a
    C(stat) scheme over all its memory and, depending on O(path), a C(collapse) or C(hugepage) scheme at the
    application's hotness threshold. Thresholds of running kdamonds change with C(commit), never a restart.
  - Then waits O(interval_s), refreshes the scheme statistics and tried regions, and returns per application
    the monitoring intervals in force, the access distribution of its DAMON regions and of its 2 MiB chunks
    (what can become a huge page), the scheme statistics and the huge-page bytes in its memory, in its hot
    chunks and in its cold chunks.
  - Monitoring intervals fit each application (O(auto_intervals)); on Linux 6.15+ the kernel tunes them itself
    (C(intervals_goal)), elsewhere the caller passes wider ones in O(apps[].sample_us) and O(apps[].aggr_us).
  - On the V(user_collapse) path it collapses the 2 MiB chunks at or above the threshold itself with
    C(process_madvise(MADV_COLLAPSE)) (dense chunks only, within O(quota_bytes) and the application's budget),
    and only the chunks that were at or above it in two snapshots of the tried regions, the previous step's
    (O(apps[].previous_chunk_access)) or, without it, one the step takes before O(interval_s), and one after.
    DAMON splits and merges its regions every aggregation interval, so a cold chunk that read hot once because it
    shared a region with hot memory waits, and a hot chunk is collapsed. A new kdamond's first step therefore
    collapses nothing. At a threshold at the noise floor (3 samples per aggregation interval or fewer) such a
    chunk reads hot twice in a row too often, so there three snapshots in a row must agree.
  - Applications that exited have their kdamonds removed, also when they exit while being configured, and so
    do unlisted applications of other tasks whose process is gone; with O(prune) every kdamond of this loop whose
    application is not listed is removed too. Everything removed is listed in RV(pruned).
  - In diff mode it returns, per application, its kdamond before and after the step (state, PID, threshold and
    monitoring intervals); applications whose kdamond is created or removed appear on one side only.
  - The M(linux_mm.damon.hugepage_tune) action calls this module once per iteration; it can also be used alone.
author: linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common
  - linux_mm.damon._common.attributes
  - linux_mm.damon._common.action_group
  - linux_mm.damon._common.kernel_release
  - linux_mm.damon._common.ownership
  - linux_mm.damon._common.host_lock
  - linux_mm.damon._common.hugepage_loop
options:
  apps:
    description: The applications to manage.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the application (its kdamond is recorded as C(hugepage:NAME)).
        type: str
        required: true
      pid:
        description: PID of the application's process.
        type: int
        required: true
      threshold:
        description:
          - Hotness threshold, the minimum C(nr_accesses) of regions to collapse.
          - When omitted (and O(apps[].threshold_bp) too), the threshold of the application's running kdamond is
            kept, or O(initial_threshold) is used.
        type: int
      threshold_bp:
        description:
          - Hotness threshold as a share of the samples of one aggregation interval, in basis points
            (V(10000) = every sample; above V(10000) collapses nothing). It survives interval changes; the module
            writes it as C(min_nr_accesses) for the application's intervals. Ignored when O(apps[].threshold) is set.
        type: int
      sample_us:
        description:
          - Sampling interval of this application's kdamond (with O(apps[].aggr_us)), instead of
            O(monitoring_attrs.sample_us). M(linux_mm.damon.hugepage_tune) sets it when it widens the intervals.
          - When omitted in O(auto_intervals.mode=controller), a running kdamond keeps the intervals it has.
        type: int
      aggr_us:
        description: Aggregation interval of this application's kdamond (with O(apps[].sample_us)).
        type: int
      min_sample_us:
        description:
          - With O(auto_intervals.mode=kernel), the shortest sampling interval the kernel may tune this
            application's kdamond to (its C(intervals_goal/min_sample_us)); a running kdamond whose tuned interval
            is shorter is set to it. M(linux_mm.damon.hugepage_tune) raises it to widen the intervals when the
            kernel stops short of resolving the application's warm memory.
          - The step itself raises a kdamond's floor to the sampling interval at which it found hot memory (when
            that is more than twice the floor), so the intervals do not shrink when that memory becomes huge
            pages (one access bit then covers 2 MiB and the measured access ratio rises).
          - The floor in force is the higher of this value and the running kdamond's, capped at
            O(auto_intervals.max_sample_us).
        type: int
      budget_bytes:
        description:
          - Most huge-page bytes the application may hold (V(0) unlimited); its AnonHugePages count, whoever made
            them.
          - The V(user_collapse) path collapses at most what is left of it, hottest chunks first, whatever the
            threshold; the kernel paths (V(damos_collapse), V(khugepaged)) cannot cap bytes, there
            M(linux_mm.damon.hugepage_tune) raises the threshold until the bytes it selects fit.
        type: int
        default: 0
      previous_chunk_access:
        description:
          - On the V(user_collapse) path, the C(chunk_access) of RV(apps) that this application's previous step returned.
            A chunk is then collapsed when it is at or above the threshold now and was in that snapshot, and the
            step takes no snapshot of its own before the observation interval (which waits up to an aggregation
            interval). Without it the step confirms against a snapshot it takes before the observation interval.
          - M(linux_mm.damon.hugepage_tune) passes it from each step to the next; access shares in basis points
            keep it valid when the intervals change between the steps.
        type: list
        elements: dict
        suboptions:
          start:
            description: First address of the range.
            type: int
            required: true
          end:
            description: End of the range (exclusive). Ranges are sorted and disjoint.
            type: int
            required: true
          access_bp:
            description: Share of the samples that found the range accessed, in basis points.
            type: int
            required: true
          confirmed_bp:
            description:
              - The lower of the range's shares in the previous step's two snapshots, in basis points (that
                step's C(chunk_access) has it when the step had a snapshot to confirm against).
              - At a threshold at the noise floor (3 samples per aggregation interval or fewer) a chunk is
                collapsed only when it is at or above the threshold by this share too, so three snapshots in a
                row must agree; without it the step collapses nothing there and reports the hot bytes as
                C(unconfirmed_bytes).
            type: int
  state:
    description:
      - V(present) configures and observes the applications.
      - V(observed) only observes the applications this loop already manages (O(apps) is ignored), for reports.
      - V(absent) removes every kdamond this loop created (and re-enables exclusive DAMON modules it stopped).
    type: str
    choices: [present, observed, absent]
    default: present
  initial_threshold:
    description: Threshold of applications that have no kdamond yet and no O(apps[].threshold). Defaults to the largest possible C(nr_accesses).
    type: int
  prune:
    description:
      - Also remove the kdamonds of applications this loop manages that are not in O(apps) although their process
        still runs (for example another task's applications). Everything removed is listed in RV(pruned).
      - Without it only kdamonds whose application exited are removed.
    type: bool
    default: false
  auto_intervals:
    description:
      - How monitoring intervals adapt to each application. Real applications touch a hot page far less often than
        every 5 ms; with too short intervals their hot memory looks like cold memory.
    type: dict
    default: {}
    suboptions:
      mode:
        description:
          - V(kernel) gives each kdamond an C(intervals_goal) (Linux 6.15+) so that the kernel tunes C(sample_us)
            and C(aggr_us) itself, keeping their ratio; the tuned values are read back and reported.
          - V(controller) keeps the intervals the caller passes (O(apps[].sample_us)); M(linux_mm.damon.hugepage_tune)
            widens them step by step.
          - V(auto) is V(kernel) where the kernel has C(intervals_goal), else V(controller). V(off) keeps O(monitoring_attrs).
        type: str
        choices: [auto, kernel, controller, "off"]
        default: auto
      access_bp:
        description: C(intervals_goal/access_bp), the share of access events (basis points) the kernel aims at.
        type: int
        default: 400
      aggrs:
        description: C(intervals_goal/aggrs), aggregation intervals between two tunings.
        type: int
        default: 3
      max_sample_us:
        description:
          - Longest sampling interval (C(intervals_goal/max_sample_us); the widest the controller goes). The
            aggregation interval stays O(monitoring_attrs.aggr_us) / O(monitoring_attrs.sample_us) times the sampling one.
          - M(linux_mm.damon.hugepage_tune) lowers it so that an aggregation interval fits its deadline.
        type: int
        default: 1000000
seealso:
  - module: linux_mm.damon.hugepage_tune
  - module: linux_mm.damon.kdamond
"""

EXAMPLES = r"""
- name: Collapse the hot memory of one application at threshold 10
  linux_mm.damon.hugepage_step:
    apps:
      - name: db
        pid: "{{ db_pid }}"
        threshold: 10
    exclusive_modules: stop
  register: step

- name: Remove every kdamond of the feedback loop
  linux_mm.damon.hugepage_step:
    state: absent
"""

RETURN = r"""
lock_busy:
  description:
    - V(true) when the task failed only because another run held the host lock for longer than O(lock_timeout_s);
      nothing was changed. The hugepage role's C(hugepage_lock_busy=skip) ends its run for such a host on it.
  returned: failure
  type: bool
  sample: false
path:
  description:
    - The collapse path in use.
    - With O(state=observed), the path the observed kdamonds were configured with (when they agree).
  returned: always
  type: str
  sample: user_collapse
apps:
  description:
    - Per application, what was configured and observed.
    - C(blocked) (with O(state=present)) is set when no huge page is possible for the whole process (reason
      V(process_thp_disabled), C(THP_enabled 0) after prctl(PR_SET_THP_DISABLE)), with C(reason), C(detail),
      C(fix) and C(bytes) (its resident anonymous memory); such an application gets no kdamond (an earlier one
      is removed, see RV(pruned) reason V(blocked)) and is not observed. Otherwise it is V(null).
    - C(blockers) lists what keeps part of the application out of huge pages (V(vma_nohugepage),
      V(shmem_misaligned), V(shmem_thp_disabled), V(thp_enabled_never), V(kernel_without_thp)), each with
      C(reason), C(detail), C(fix), C(bytes) (resident bytes concerned) and C(mappings) where per mapping;
      the application is tuned as usual.
    - C(collapsed) (V(user_collapse) path, O(state=present)) is what the step collapsed, C(bytes) and
      C(chunks), and C(unconfirmed_bytes), the hot bytes not in huge pages left for a later step because they
      were below the threshold in an earlier snapshot (see O(apps[].previous_chunk_access)), and with
      O(apps[].budget_bytes) C(budget_left_bytes), what was left of the budget before the step; V(null) when
      nothing was hot.
    - C(chunk_histogram) is the bytes of the 2 MiB-aligned chunks per access level (C(nr_accesses)), and
      C(chunk_huge_histogram) the huge-page bytes among them per level; a huge chunk reads through one PMD
      accessed bit, so C(hugepage_tune) does not raise the threshold over chunks it already made huge.
    - C(chunk_access) (V(user_collapse) path, O(state=present)) lists the 2 MiB-aligned ranges this step's
      snapshot found accessed, each with C(start), C(end), C(access_bp) (share of the samples, in basis
      points) and, when the step confirmed against an earlier snapshot, C(confirmed_bp) (the lower share of
      the two), to give to the next step as O(apps[].previous_chunk_access).
    - C(scheme_stats) are the cumulative statistics of the threshold scheme after the observation interval,
      C(scheme_stats_before) (O(state=present), not in check mode) the same before it; their difference is what
      the kernel applied during the step.
    - C(warm) is set when the application got a new kdamond that starts from what O(learned_file) kept for
      its name (C(threshold_bp), C(since)) rather than from the initial threshold.
  returned: always
  type: list
  elements: dict
  sample:
    - name: db
      pid: 1234
      exited: false
      blocked: null
      blockers:
        - reason: vma_nohugepage
          detail: mappings with nh (VM_NOHUGEPAGE) in smaps VmFlags
          fix: the application marked these mappings MADV_NOHUGEPAGE ...; change its configuration and restart it
          bytes: 65536
          mappings: [[139917061111808, 139917069504512]]
      kdamond: 0
      threshold: 10
      max_nr_accesses: 20
      intervals: {sample_us: 5000, aggr_us: 100000, mode: kernel}
      histogram: [[0, 67108864], [16, 33554432]]
      chunk_histogram: [[0, 67108864], [16, 33554432]]
      chunk_huge_histogram: [[16, 33554432]]
      regions: 12
      hot_bytes: 33554432
      scheme_stats: {nr_tried: 4, sz_tried: 33554432, nr_applied: 4, sz_applied: 33554432, qt_exceeds: 0}
      scheme_stats_before: {nr_tried: 2, sz_tried: 16777216, nr_applied: 2, sz_applied: 16777216, qt_exceeds: 0}
      collapsed: null
      huge_bytes: 33554432
      huge_bytes_hot: 33554432
      huge_bytes_cold: 0
dropped:
  description: Applications whose kdamonds were removed or that exited (names; see RV(pruned) for the reasons).
  returned: always
  type: list
  elements: str
pruned:
  description:
    - Every kdamond removed, with the reason (V(exited), V(unlisted) with O(prune), V(absent) with O(state=absent),
      V(blocked) when the application's process has THP disabled).
  returned: always
  type: list
  elements: dict
  sample: [{name: db, reason: exited, kdamond: 1}]
interval_mode:
  description: Who adapts the monitoring intervals on this host (V(kernel), V(controller) or V(off)).
  returned: when the collapse path was chosen
  type: str
writes:
  description: The sysfs configuration writes, in order (planned ones in check mode).
  returned: always
  type: list
  elements: dict
applied:
  description: The configuration writes carried out.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils._collapse import CollapseError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import detect
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_kdamond import KdamondError
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import SpecError
from ansible_collections.linux_mm.damon.plugins.module_utils._host_lock import LockTimeout
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_ownership import HOST_STATE_ERRORS, locked_record
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import pid_alive, validate_hugepage_args
from ansible_collections.linux_mm.damon.plugins.module_utils._hugepage import Step, choose_path, wait
from ansible_collections.linux_mm.damon.plugins.module_utils._learned_state import LearnedState, default_path
from ansible_collections.linux_mm.damon.plugins.module_utils._options import HUGEPAGE_LOOP_OPTIONS, max_nr_accesses
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import fail_unless_root
from ansible_collections.linux_mm.damon.plugins.module_utils._sysfs_io import SysfsError

ARGUMENT_SPEC = dict(
    apps=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), pid=dict(type="int", required=True),
        threshold=dict(type="int"), threshold_bp=dict(type="int"), sample_us=dict(type="int"),
        aggr_us=dict(type="int"), min_sample_us=dict(type="int"), budget_bytes=dict(type="int", default=0),
        previous_chunk_access=dict(type="list", elements="dict", options=dict(
            start=dict(type="int", required=True), end=dict(type="int", required=True),
            access_bp=dict(type="int", required=True), confirmed_bp=dict(type="int"))))),
    state=dict(type="str", choices=["present", "observed", "absent"], default="present"),
    initial_threshold=dict(type="int"),
    prune=dict(type="bool", default=False),
    **HUGEPAGE_LOOP_OPTIONS
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, apps=[], dropped=[], pruned=[], writes=[], applied=[], path=None)
    features = detect(p["sysfs_root"], p["kernel_release"])
    if not features.available:
        module.fail_json(msg=features.reason, **result)
    try:  # names, PIDs (no kernel threads), kernel integer types, sample_us >= 1, finite floats
        warnings = validate_hugepage_args(p, [])
    except SpecError as e:
        module.fail_json(msg=str(e), **result)
    for warning in warnings:
        module.warn(warning)
    names = [a["name"] for a in p["apps"]]
    attrs = p["monitoring_attrs"]
    max_nr = max_nr_accesses(attrs["sample_us"], attrs["aggr_us"])
    started = time.monotonic()
    try:
        path = result["path"] = choose_path(features, p["path"])
        fail_unless_root(module, "hugepage_step", "write DAMON sysfs files and read process page maps", **result)  # the admin files and the lock are root's
        with locked_record(p["ownership_file"], "hugepage_step", p["lock_timeout_s"], module.check_mode) as own:
            for note in own.notes:
                module.warn(note)
            learned = LearnedState.load(p["learned_file"] or default_path(p["ownership_file"])) \
                if p["state"] == "present" else None
            step = Step(p["sysfs_root"], features, own, path, attrs, p["quota_bytes"], p["exclusive_modules"],
                        p["pool_size"], module.check_mode, p["auto_intervals"], learned, p["between_runs"])
            result["interval_mode"] = step.interval_mode
            if p["state"] == "observed":
                apps, paths = step.watched()
                names = [a["name"] for a in apps]
                if len(paths) == 1:  # what the kdamonds run, not this call's path option
                    result["path"] = paths.pop()
                entries = dict((a["name"], dict(a, exited=not pid_alive(a["pid"]))) for a in apps)
            else:
                apps = [] if p["state"] == "absent" else p["apps"]
                initial = max_nr if p["initial_threshold"] is None else p["initial_threshold"]
                entries, result["pruned"] = step.configure(apps, initial, prune=p["prune"],
                                                           remove_all=p["state"] == "absent")
            if apps:
                if p["state"] == "present":
                    step.stats_before(entries)
                if not module.check_mode:
                    wait(p["interval_s"], started)
                step.observe(entries, apps, collapse=p["state"] == "present")
            if learned is not None and learned.dirty and not module.check_mode:
                learned.save()
    except HOST_STATE_ERRORS + (SpecError, KdamondError, ValueError, CollapseError) as e:
        module.fail_json(msg=str(e), lock_busy=isinstance(e, LockTimeout), **result)
    except SysfsError as e:
        module.fail_json(msg="%s (%d writes applied before it; re-run to converge)" % (e, len(step.applied)),
                         failed_write=e.as_dict(), writes=step.writes, applied=step.applied,
                         **dict((k, v) for k, v in result.items() if k not in ("writes", "applied")))
    result.update(apps=[entries[n] for n in names], writes=step.writes, applied=step.applied)
    result["dropped"] = sorted(set([r["name"] for r in result["pruned"]] + [e["name"] for e in result["apps"] if e["exited"]]))
    collapsed = sum((e.get("collapsed") or {}).get("bytes", 0) for e in result["apps"])
    result["changed"] = bool(step.writes) or collapsed > 0
    if module._diff:
        result["diff"] = dict(before=step.diff["before"], after=step.diff["after"],
                              before_header="hugepage_step applications", after_header="hugepage_step applications")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
