"""The emulated kernel: the sysfs tree, the virtual clock and the running kdamonds.

One :class:`EmulatedKernel` backs one mount. Every FUSE operation takes ``lock`` and
calls :meth:`catch_up` first, so monitoring advances lazily to the current virtual
time (kdamonds aggregate and apply schemes, vaddr kdamonds whose processes are all
gone turn off, ``refresh_ms`` copies stats, khugepaged runs).
"""

from __future__ import annotations

import threading

from .access_model import HPAGE_SIZE, AccessModel
from .clock import VirtualClock
from .commands import Commands
from .control import ControlDir
from .damon_tree import Admin
from .engine import DEFAULT_ACTION_COST_US_PER_MIB, HugeState, Walk, action_supported, block_mapped, mapped_spans
from .faults import Faults
from .modules import Modules
from .profiles import Profile
from .thp import TransparentHugepage
from .tree import Node

FIRST_KDAMOND_PID = 40000
MAX_TICKS_PER_CATCH_UP = 200000


class EmulatedKernel:
    def __init__(self, profile: Profile, scenario: dict):
        self.profile = profile
        self.lock = threading.RLock()
        self.clock = VirtualClock(scenario.get("speed", 1.0))
        self.model = AccessModel(scenario.get("targets", []))
        self.metrics = dict(scenario.get("metrics", {}))  # quota goal metric values
        self.action_costs = dict(DEFAULT_ACTION_COST_US_PER_MIB, **scenario.get("action_costs_us_per_mib", {}))
        self.huge_states: dict = {}
        self._next_pid = FIRST_KDAMOND_PID
        self.commands = Commands(self)
        self.faults = Faults()
        self.root = Node()
        kernel_dir = self.root.add_dir("kernel", Node())
        mm = kernel_dir.add_dir("mm", Node())
        self.thp = mm.add_dir("transparent_hugepage", TransparentHugepage(scenario.get("thp", {}), profile.version))
        self.admin = None
        enabled = dict(profile.default_module_enabled(), **scenario.get("modules", {}))
        if profile.damon:
            self.admin = mm.add_dir("damon", Node()).add_dir("admin", Admin(self))
            module_dir = self.root.add_dir("module", Node())
            self.modules = Modules(self, enabled)
            for name, params in self.modules.params.items():
                module_dir.add_dir(name, Node()).add_dir("parameters", params)
        else:
            self.modules = Modules(self, {})
        self.root.add_dir(".emulator", ControlDir(self))

    # --- helpers used by the tree and the engine ---------------------------------
    @property
    def kdamonds(self) -> list:
        return list(self.admin.kdamonds) if self.admin is not None else []

    def next_pid(self) -> int:
        pid, self._next_pid = self._next_pid, self._next_pid + 1
        return pid

    def any_damon_running(self) -> bool:
        return self.modules.exclusive_running() or any(k.running for k in self.kdamonds)

    def huge_state(self, key: str) -> HugeState:
        return self.huge_states.setdefault(key, HugeState())

    def action_cost_us_per_mib(self, action: str) -> float:
        return float(self.action_costs.get(action, 100.0))

    def goal_current(self, goal):
        if goal.metric != "user_input":
            goal.current_value = int(self.metrics.get(goal.metric, 0))
        return goal

    def replace_model(self, model: AccessModel) -> None:
        self.catch_up()
        self.model = model
        for kdamond in self.kdamonds:
            ctx = kdamond.ctx
            if ctx is not None and ctx.running:
                for ti, target in enumerate(ctx.targets):
                    ctx.attach_model(ti, target, self)

    # --- time ------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        self.catch_up()
        self.clock.advance_us(int(round(seconds * 1e6)))
        self.catch_up()

    def catch_up(self) -> None:
        now = self.clock.now_us()
        for kdamond in self.kdamonds:
            ctx = kdamond.ctx
            if ctx is None or not ctx.running:
                continue
            ctx.advance_to(now, self, MAX_TICKS_PER_CATCH_UP)
            if ctx.has_pid and not any(ctx.target_valid(t) for t in ctx.targets):
                # kdamond_need_stop(): every target's task is gone (reaped; zombies still count)
                ctx.stop("all target processes exited")
                continue
            if kdamond.refresh_ms and now - ctx.last_refresh_us >= kdamond.refresh_ms * 1000:
                ctx.last_refresh_us = now
                self.copy_stats(kdamond, ctx)
                self.copy_effective_quotas(kdamond, ctx)
                self.copy_tuned_intervals(kdamond, ctx)
        self.modules.catch_up(now)
        self.run_khugepaged(now)

    # --- command effects ------------------------------------------------------------
    @staticmethod
    def _sysfs_schemes(kdamond) -> list:
        if len(kdamond.contexts) != 1:
            return []
        return list(kdamond.contexts[0].schemes)

    def copy_stats(self, kdamond, ctx) -> None:
        for sysfs_scheme, s in zip(self._sysfs_schemes(kdamond), ctx.schemes):
            for name in ("nr_tried", "sz_tried", "nr_applied", "sz_applied",
                         "sz_ops_filter_passed", "qt_exceeds", "nr_snapshots"):
                setattr(sysfs_scheme.stats, name, getattr(s.stat, name))

    def copy_effective_quotas(self, kdamond, ctx) -> None:
        for sysfs_scheme, s in zip(self._sysfs_schemes(kdamond), ctx.schemes):
            sysfs_scheme.quotas.effective_bytes = s.quota.esz

    def copy_tuned_intervals(self, kdamond, ctx) -> None:
        if len(kdamond.contexts) == 1:
            intervals = kdamond.contexts[0].monitoring_attrs.intervals
            intervals.sample_us, intervals.aggr_us = ctx.sample_us, ctx.aggr_us

    def clear_tried_regions(self, kdamond) -> None:
        for sysfs_scheme in self._sysfs_schemes(kdamond):
            if sysfs_scheme.tried_regions is not None:
                sysfs_scheme.tried_regions.clear()

    def walk_tried_regions(self, kdamond, ctx, total_bytes_only: bool) -> None:
        """Record what each scheme tries during its next apply interval.

        The kernel's writer blocks until every scheme passed one apply interval; here
        the virtual clock jumps to that point instead (the writer "waited").
        """
        if not ctx.schemes:
            return
        for s in ctx.schemes:
            s.walk = Walk(total_bytes_only)
        deadline = max(s.next_apply_us for s in ctx.schemes)
        now = self.clock.now_us()
        if deadline > now:
            self.clock.advance_us(deadline - now)
        self.catch_up()
        for sysfs_scheme, s in zip(self._sysfs_schemes(kdamond), ctx.schemes):
            walk, s.walk = s.walk, None
            tried = sysfs_scheme.tried_regions
            if tried is None or walk is None:
                continue
            tried.total_bytes = walk.total_bytes
            for start, end, nr, age, passed in walk.regions:
                tried.add_region(start, end, nr, age, passed, ctx.nr_probes)

    # --- what actions do to the emulated process -----------------------------------
    def apply_action(self, ctx, target, r, s) -> tuple:
        """Returns (sz_applied, sz_filter_passed) like ops.apply_scheme()."""
        if not action_supported(ctx.ops, s.action):
            return 0, 0
        if ctx.has_pid and ctx.target_state(target) != "alive":
            return 0, 0  # a zombie has no mm: damon_get_mm() fails, nothing is applied
        sz = r.size
        if s.action == "stat":
            # damos_va_stat()/damon_pa_stat(): never "applied"; only bytes passing ops
            # filters are counted (all of them here: filters are not modelled).
            return 0, (sz if s.has_ops_filters else 0)
        if s.action in ("migrate_hot", "migrate_cold") and s.target_nid < 0 and not s.nr_dests:
            return 0, 0
        if ctx.ops == "paddr" or s.action not in ("collapse", "hugepage", "nohugepage"):
            return sz, 0
        spans = mapped_spans(target.model)
        if not any(a < r.end and r.start < b for a, b in spans):
            return 0, 0  # nothing mapped there: madvise fails with -ENOMEM
        huge = target.huge
        if s.action == "collapse":
            blocks = [b for b in HugeState.blocks_within(r.start, r.end) if block_mapped(spans, b)]
            if any(b in huge.nohuge for b in blocks):
                return 0, 0  # VM_NOHUGEPAGE: MADV_COLLAPSE fails
            huge.huge.update(blocks)
        elif s.action == "hugepage":
            for b in HugeState.blocks_within(r.start, r.end):
                huge.nohuge.discard(b)
                huge.advised.add(b)
        else:
            for b in HugeState.blocks_touching(r.start, r.end):
                huge.advised.discard(b)
                huge.nohuge.add(b)
        return sz, 0

    def run_khugepaged(self, now_us: int) -> None:
        k = self.thp.khugepaged
        period = max(1, k.scan_sleep_millisecs) * 1000
        if k.next_scan_us == 0:
            k.next_scan_us = now_us + period
        scans = 0
        while k.next_scan_us <= now_us and scans < 10000:
            scans += 1
            k.next_scan_us += period
            if self.thp.enabled == "never":
                continue
            budget = max(1, k.pages_to_scan // 512)
            for key in sorted(self.huge_states):
                if budget <= 0:
                    break
                state = self.huge_states[key]
                candidates = set(state.advised)
                if self.thp.enabled == "always":
                    model = next((t for t in self.model.targets if t.key == key), None)
                    if model is not None:
                        for lo, hi in mapped_spans(model):
                            candidates.update(HugeState.blocks_within(lo, hi))
                for b in sorted(candidates - state.huge - state.nohuge):
                    if budget <= 0:
                        break
                    state.huge.add(b)
                    k.pages_collapsed += 1
                    budget -= 1
            if budget > 0:
                k.full_scans += 1

    # --- readback ---------------------------------------------------------------------
    def status(self) -> dict:
        self.catch_up()
        return {
            "kernel": self.profile.name,
            "damon": self.profile.damon,
            "time": self.clock.now(),
            "speed": self.clock.speed,
            "modules": self.modules.status(),
            "thp": self.thp.to_dict(),
            "kdamonds": [self._kdamond_status(k) for k in self.kdamonds],
            "targets": self._targets_status(),
        }

    @staticmethod
    def _kdamond_status(kdamond) -> dict:
        ctx = kdamond.ctx
        out = {"index": kdamond.index, "state": "on" if kdamond.running else "off",
               "pid": ctx.pid if kdamond.running else -1}
        if ctx is None:
            return out
        out.update(ops=ctx.ops, stopped_reason=ctx.stopped_reason,
                   sample_us=ctx.sample_us, aggr_us=ctx.aggr_us,
                   targets=[{"pid": t.pid, "model": t.model.key if t.model else None,
                             "regions": [[g.start, g.end, g.nr, g.age] for g in t.segments]}
                            for t in ctx.targets],
                   schemes=[{"action": s.action, "stats": dict(vars(s.stat)),
                             "effective_bytes": s.quota.esz} for s in ctx.schemes])
        return out

    def _targets_status(self) -> list:
        models = list(self.model.targets) + list(self.model._implicit.values())
        out = []
        for model in models:
            state = self.huge_states.get(model.key, HugeState())
            t = self.clock.now()
            ranges = []
            for r in model.ranges:
                ranges.append({"start": r.start, "end": r.end, "rate": r.rate_at(t),
                               "huge_bytes": state.bytes_in(state.huge, r.start, r.end),
                               "advised_bytes": state.bytes_in(state.advised, r.start, r.end)})
            out.append({"key": model.key, "match": model.match, "implicit": model.implicit,
                        "ranges": ranges, "huge_bytes": len(state.huge) * HPAGE_SIZE})
        return out
