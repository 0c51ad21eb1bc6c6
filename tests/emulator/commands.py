"""``kdamonds/<K>/state`` commands and the input checks done when building a DAMON ctx.

Two generations of command handling are emulated (see profiles.DAMON_CALL_SINCE):

* before 6.14 (checked in 6.12's sysfs.c): commands other than on/off are requests to
  the kdamond's after-aggregation callback. A kdamond that is not running gets
  -EINVAL; ``off`` on a stopped kdamond gets -EPERM (``damon_stop()``); a ``commit``
  whose inputs are invalid is accepted by the write but **terminates** the kdamond
  (the callback's error stops kdamond_fn()).
* 6.14 and later (checked in 7.3's sysfs.c): commands run through damon_call() /
  damos_walk(). No ctx ever built: -EINVAL; a ctx that stopped: -ECANCELED; ``off`` on
  a stopped kdamond succeeds; an invalid ``commit`` fails the write with the error and
  leaves the kdamond running; ``clear_schemes_tried_regions`` needs no ctx at all.
"""

from __future__ import annotations

import errno
import os

from . import kernel_input as ki
from .access_model import PAGE_SIZE, pid_exists, pid_starttime
from .profiles import FILTER_TYPES
from .engine import Goal, Quota, RuntimeCtx, RuntimeScheme, RuntimeTarget, align_down, align_up
from .intervals_goal import goal_of

CGROUP_ROOT = "/sys/fs/cgroup"


def fail(code):
    ki.fail(code)


def memcg_path_exists(path) -> bool:
    if not path:
        return False
    path = path.rstrip("\n")
    return os.path.isdir(os.path.join(CGROUP_ROOT, path.lstrip("/")))


class Commands:
    def __init__(self, kernel):
        self.kernel = kernel
        self.p = kernel.profile

    # --- state file -------------------------------------------------------
    def state_store(self, kdamond, text: str) -> None:
        self.kernel.catch_up()
        cmd = ki.match_word(text, self.p.state_commands())
        if cmd != "off" and len(kdamond.contexts) != 1:
            fail(errno.EINVAL)
        getattr(self, "cmd_" + cmd)(kdamond)

    def cmd_on(self, kdamond) -> None:
        if kdamond.running:
            fail(errno.EBUSY)
        kdamond.ctx = None  # the kept, stopped ctx is freed on the next `on`
        ctx = self.build_ctx(kdamond.contexts[0])
        if self.kernel.modules.exclusive_running():
            fail(errno.EBUSY)  # damon_start(): a non-exclusive start while DAMON_* runs
        ctx.start(self.kernel.clock.now_us(), self.kernel.next_pid(), self.kernel)
        kdamond.ctx = ctx

    def cmd_off(self, kdamond) -> None:
        if kdamond.ctx is None:
            fail(errno.EINVAL)
        if not kdamond.ctx.running:
            if self.p.damon_call_era:
                return
            fail(errno.EPERM)
        kdamond.ctx.stop("off")

    def _running_ctx(self, kdamond):
        """The guard in front of every command that needs the kdamond's ctx."""
        ctx = kdamond.ctx
        if self.p.damon_call_era:
            if ctx is None:
                fail(errno.EINVAL)
            if not ctx.running:
                fail(errno.ECANCELED)
        elif ctx is None or not ctx.running:
            fail(errno.EINVAL)
        return ctx

    def cmd_commit(self, kdamond) -> None:
        ctx = self._running_ctx(kdamond)
        try:
            new = self.build_ctx(kdamond.contexts[0])
            if any(t.obsolete for t in new.targets[len(ctx.targets):]):
                # damon_commit_targets(): an obsolete target with no running match
                fail(errno.EINVAL)
        except OSError:
            if self.p.damon_call_era:
                raise
            ctx.stop("commit failed")  # 6.12: the callback error terminates kdamond
            return
        ctx.commit(new, self.kernel)

    def cmd_commit_schemes_quota_goals(self, kdamond) -> None:
        ctx = self._running_ctx(kdamond)
        sysfs_schemes = kdamond.contexts[0].schemes
        for i, s in enumerate(ctx.schemes):
            if i >= len(sysfs_schemes):
                break
            s.quota.goals = self.build_goals(sysfs_schemes[i].quotas, ctx.ops)

    def cmd_update_schemes_stats(self, kdamond) -> None:
        ctx = self._running_ctx(kdamond)
        self.kernel.copy_stats(kdamond, ctx)

    def cmd_update_schemes_effective_quotas(self, kdamond) -> None:
        ctx = self._running_ctx(kdamond)
        self.kernel.copy_effective_quotas(kdamond, ctx)

    def cmd_update_tuned_intervals(self, kdamond) -> None:
        ctx = self._running_ctx(kdamond)
        self.kernel.copy_tuned_intervals(kdamond, ctx)

    def cmd_update_schemes_tried_regions(self, kdamond, total_bytes_only=False) -> None:
        if self.p.damon_call_era and kdamond.ctx is not None:
            self.kernel.clear_tried_regions(kdamond)  # cleared before the walk is even tried
        ctx = self._running_ctx(kdamond)
        if not self.p.damon_call_era:
            self.kernel.clear_tried_regions(kdamond)
        self.kernel.walk_tried_regions(kdamond, ctx, total_bytes_only)

    def cmd_update_schemes_tried_bytes(self, kdamond) -> None:
        self.cmd_update_schemes_tried_regions(kdamond, total_bytes_only=True)

    def cmd_clear_schemes_tried_regions(self, kdamond) -> None:
        if not self.p.damon_call_era:
            self._running_ctx(kdamond)
        self.kernel.clear_tried_regions(kdamond)

    # --- building a ctx from the files (damon_sysfs_build_ctx + damon_start checks)
    def build_ctx(self, context) -> RuntimeCtx:
        ops = context.operations
        attrs = context.monitoring_attrs
        iv = attrs.intervals
        goal = iv.intervals_goal
        if goal is not None and goal.aggrs:
            if goal.min_sample_us > goal.max_sample_us:
                fail(errno.EINVAL)
            if not goal.min_sample_us <= iv.sample_us <= goal.max_sample_us:
                fail(errno.EINVAL)
        rng = attrs.nr_regions
        if rng.min < 3 or rng.min > rng.max or iv.sample_us > iv.aggr_us:
            fail(errno.EINVAL)
        nr_probes = 0
        if attrs.probes is not None:
            for probe in attrs.probes:
                for f in probe.filters:
                    if f.type == "memcg" and not memcg_path_exists(f.path):
                        fail(errno.EINVAL)
            nr_probes = len(attrs.probes)
        has_pid = ops != "paddr"
        if not has_pid and len(context.targets) > 1:
            fail(errno.EINVAL)
        if ops == "paddr" and self.p.has("context/addr_unit"):
            # min_region_sz = max(DAMON_MIN_REGION_SZ / addr_unit, 1) must be a power of two
            min_region_sz = max(PAGE_SIZE // max(1, context.addr_unit), 1)
            if min_region_sz & (min_region_sz - 1):
                fail(errno.EINVAL)
        targets = [self.build_target(t, has_pid) for t in context.targets]
        schemes = [self.build_scheme(s, ops) for s in context.schemes]
        return RuntimeCtx(ops=ops, sample_us=iv.sample_us, aggr_us=max(1, iv.aggr_us),
                          update_us=iv.update_us, min_nr_regions=rng.min, max_nr_regions=rng.max,
                          targets=targets, schemes=schemes, nr_probes=nr_probes,
                          intervals_goal=goal_of(iv), aggr_samples=max(1, iv.aggr_us) // max(1, iv.sample_us))

    def build_target(self, target, has_pid: bool) -> RuntimeTarget:
        if has_pid and not pid_exists(target.pid_target):
            fail(errno.EINVAL)  # find_get_pid() found nothing
        ranges = []
        for region in target.regions:
            start, end = region.start, region.end
            if not self.p.damon_call_era and start > end:
                fail(errno.EINVAL)
            if ranges and ranges[-1][1] > start:
                fail(errno.EINVAL)  # unsorted or overlapping
            start, end = align_down(start, PAGE_SIZE), align_up(end, PAGE_SIZE)
            if start >= end:
                fail(errno.EINVAL)
            ranges.append((start, end))
        return RuntimeTarget(pid=target.pid_target if has_pid else 0, init_ranges=ranges,
                             obsolete=getattr(target, "obsolete_target", False),
                             starttime=pid_starttime(target.pid_target) if has_pid else None)

    def build_scheme(self, scheme, ops: str) -> RuntimeScheme:
        ap = scheme.access_pattern
        quotas = scheme.quotas
        for f in scheme.all_filters():
            # damon_sysfs_mk_scheme() returns NULL on any of these: the kernel says -ENOMEM.
            if f.type == "memcg" and not memcg_path_exists(f.memcg_path):
                fail(errno.ENOMEM)
            if f.type == "addr" and f.addr_end < f.addr_start:
                fail(errno.ENOMEM)
            if f.type == "hugepage_size" and f.min > f.max:
                fail(errno.ENOMEM)
        quota = Quota(ms=quotas.ms, sz=quotas.bytes, reset_interval_ms=quotas.reset_interval_ms,
                      weight_sz=quotas.weights.sz_permil,
                      weight_nr_accesses=quotas.weights.nr_accesses_permil,
                      weight_age=quotas.weights.age_permil,
                      goals=self.build_goals(quotas, ops), goal_tuner=quotas.goal_tuner,
                      fail_charge_num=quotas.fail_charge_num,
                      fail_charge_denom=quotas.fail_charge_denom)
        return RuntimeScheme(
            action=scheme.action, min_sz=ap.sz.min, max_sz=ap.sz.max,
            min_nr=ap.nr_accesses.min, max_nr=ap.nr_accesses.max,
            min_age=ap.age.min, max_age=ap.age.max,
            apply_interval_us=scheme.apply_interval_us, quota=quota,
            target_nid=scheme.target_nid, nr_dests=len(scheme.dests) if scheme.dests else 0,
            max_nr_snapshots=scheme.stats.max_nr_snapshots,
            has_ops_filters=any(not FILTER_TYPES[f.type][1] for f in scheme.all_filters()))

    def build_goals(self, quotas, ops: str) -> list:
        goals = []
        if quotas.goals is None:
            return goals
        for g in quotas.goals:
            if not g.target_value:
                continue  # damos_sysfs_add_quota_score() skips goals without a target
            if g.target_metric in ("node_memcg_used_bp", "node_memcg_free_bp") \
                    and not memcg_path_exists(g.path):
                fail(errno.ENOMEM)
            if g.target_metric == "node_eligible_mem_bp" and ops != "paddr":
                fail(errno.EINVAL)
            goals.append(Goal(g.target_metric, g.target_value, g.current_value, g.nid))
        return goals
