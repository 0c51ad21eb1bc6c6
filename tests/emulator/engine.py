"""The running side of an emulated kdamond: regions, ages, schemes, quotas, tried regions.

A :class:`RuntimeCtx` is what the kernel's ``struct damon_ctx`` is: a copy of the sysfs
inputs taken at ``on``/``commit`` plus monitoring results. It advances in aggregation
intervals of the emulator's virtual clock (all times are integer microseconds):

* each aggregation, every monitored segment gets ``nr_accesses = round(rate * aggr/sample)``
  from the access model and an ``age`` (aggregations since ``nr_accesses`` last moved by
  more than DAMON's merge threshold, or since a non-``stat`` action was applied);
* when a scheme's apply interval is due it walks the regions in address order, like
  ``kdamond_apply_schemes()``: access-pattern match, quota charge (region split at the
  quota boundary, ``qt_exceeds`` counted at the next charge window), priority score
  cut-off under quota, stats, age reset, tried-region recording and the huge-page
  effect of ``collapse``/``hugepage``/``nohugepage``.

DAMON's region adaptation is approximated deterministically: regions follow the model's
range boundaries, and the largest ones are halved until ``min_nr_regions`` is reached.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Optional

from .access_model import HPAGE_SIZE, PAGE_SIZE, ModelTarget, proc_task_state, three_regions
from .intervals_goal import after_aggregation, effective_rate
from .profiles import ACTION_OPS

ULONG_MAX = 2**64 - 1
DAMOS_MAX_SCORE = 99
DAMON_MAX_SUBSCORE = 100
DAMON_MAX_AGE_IN_LOG = 23

# Cost of applying an action, in microseconds per MiB: drives the time quota (`ms`)
# conversion. MADV_COLLAPSE costs milliseconds per 2 MiB under TCG (kernel-notes).
DEFAULT_ACTION_COST_US_PER_MIB = {
    "collapse": 500.0, "pageout": 250.0, "migrate_hot": 400.0, "migrate_cold": 400.0,
    "willneed": 50.0, "cold": 20.0, "lru_prio": 20.0, "lru_deprio": 20.0,
    "hugepage": 1.0, "nohugepage": 1.0, "stat": 0.1,
}


def align_down(x: int, a: int) -> int:
    return x - x % a


def align_up(x: int, a: int) -> int:
    return align_down(x + a - 1, a)


# --- huge pages ---------------------------------------------------------------

class HugeState:
    """Per model target: which 2 MiB blocks are PMD-mapped, MADV_HUGEPAGE'd or NOHUGEPAGE'd."""

    def __init__(self):
        self.huge: set = set()
        self.advised: set = set()
        self.nohuge: set = set()

    @staticmethod
    def blocks_within(start: int, end: int) -> range:
        return range(align_up(start, HPAGE_SIZE) // HPAGE_SIZE, align_down(end, HPAGE_SIZE) // HPAGE_SIZE)

    @staticmethod
    def blocks_touching(start: int, end: int) -> range:
        return range(start // HPAGE_SIZE, align_up(end, HPAGE_SIZE) // HPAGE_SIZE)

    def bytes_in(self, blocks: set, start: int, end: int) -> int:
        total = 0
        for b in self.blocks_touching(start, end):
            if b in blocks:
                total += min(end, (b + 1) * HPAGE_SIZE) - max(start, b * HPAGE_SIZE)
        return total


def mapped_spans(model: ModelTarget) -> list:
    spans: list = []
    for r in model.ranges:
        if spans and spans[-1][1] == r.start:
            spans[-1] = (spans[-1][0], r.end)
        else:
            spans.append((r.start, r.end))
    return spans


def block_mapped(spans: list, block: int) -> bool:
    lo, hi = block * HPAGE_SIZE, (block + 1) * HPAGE_SIZE
    return any(s <= lo and hi <= e for s, e in spans)


# --- runtime objects ------------------------------------------------------------

@dataclass
class Segment:
    """A piece of a target's monitored space with uniform monitoring results."""
    start: int
    end: int
    range_idx: Optional[int]  # model range it lies in; None: outside every model range
    nr: int = 0
    age: int = 0
    last_nr: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class Region:
    """A DAMON region as schemes see it during one apply pass."""
    start: int
    end: int
    nr: int
    age: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class RuntimeTarget:
    pid: int
    init_ranges: list           # (start, end) from targets/<T>/regions, maybe empty
    obsolete: bool = False
    starttime: Optional[int] = None  # of the process (pid reuse must not revive a target)
    model: Optional[ModelTarget] = None
    huge: Optional[HugeState] = None
    segments: list = field(default_factory=list)


@dataclass
class Goal:
    metric: str
    target_value: int
    current_value: int
    nid: int = 0


@dataclass
class Quota:
    ms: int = 0
    sz: int = 0
    reset_interval_ms: int = 0
    weight_sz: int = 0
    weight_nr_accesses: int = 0
    weight_age: int = 0
    goals: list = field(default_factory=list)
    goal_tuner: str = "consist"
    fail_charge_num: int = 0
    fail_charge_denom: int = 0
    # runtime state (kept across commit, like the kernel's damos_commit_quota())
    esz: int = 0
    esz_bp: int = 0
    charged_sz: int = 0
    charged_from: Optional[int] = None
    total_charged_sz: int = 0
    total_charged_us: float = 0.0
    charge_target_from: Optional[int] = None
    charge_addr_from: int = 0
    min_score: int = 0

    def is_set(self) -> bool:
        return bool(self.esz or self.sz or self.ms or self.goals)

    def is_full(self) -> bool:
        if not self.is_set():
            return False
        return self.charged_sz >= self.esz or self.esz - self.charged_sz < PAGE_SIZE

    def set_config(self, other: "Quota") -> None:
        for name in ("ms", "sz", "reset_interval_ms", "weight_sz", "weight_nr_accesses",
                     "weight_age", "goals", "goal_tuner", "fail_charge_num", "fail_charge_denom"):
            setattr(self, name, getattr(other, name))


@dataclass
class Stat:
    nr_tried: int = 0
    sz_tried: int = 0
    nr_applied: int = 0
    sz_applied: int = 0
    sz_ops_filter_passed: int = 0
    qt_exceeds: int = 0
    nr_snapshots: int = 0


@dataclass
class Walk:
    """A pending update_schemes_tried_{regions,bytes} request for one scheme."""
    total_bytes_only: bool
    regions: list = field(default_factory=list)
    total_bytes: int = 0
    done: bool = False


@dataclass
class RuntimeScheme:
    action: str
    min_sz: int
    max_sz: int
    min_nr: int
    max_nr: int
    min_age: int
    max_age: int
    apply_interval_us: int
    quota: Quota
    target_nid: int = -1
    nr_dests: int = 0
    max_nr_snapshots: int = 0
    has_ops_filters: bool = False
    stat: Stat = field(default_factory=Stat)
    next_apply_us: int = 0
    walk: Optional[Walk] = None

    def matches(self, r: Region) -> bool:
        return (self.min_sz <= r.size <= self.max_sz and self.min_nr <= r.nr <= self.max_nr
                and self.min_age <= r.age <= self.max_age)


@dataclass
class RuntimeCtx:
    ops: str
    sample_us: int
    aggr_us: int
    update_us: int
    min_nr_regions: int
    max_nr_regions: int
    targets: list
    schemes: list
    nr_probes: int = 0
    running: bool = False
    pid: int = -1
    next_aggr_us: int = 0
    last_refresh_us: int = 0
    stopped_reason: str = ""
    views: Optional[dict] = None  # per target: the regions schemes see this aggregation
    intervals_goal: Optional[object] = None  # intervals_goal.IntervalsGoal while auto-tuning
    aggr_samples: int = 0  # aggr_us / sample_us as set at on/commit; tuning keeps it
    aggrs_since_tune: int = 0

    # --- lifecycle --------------------------------------------------------
    @property
    def has_pid(self) -> bool:
        return self.ops != "paddr"

    @property
    def max_nr_accesses(self) -> int:
        return max(1, self.aggr_us // max(1, self.sample_us))

    def apply_interval(self, s: RuntimeScheme) -> int:
        return s.apply_interval_us or self.aggr_us

    def apply_period(self, s: RuntimeScheme) -> int:
        """The apply interval in whole samples (next_apply_sis), at least one sample."""
        if not s.apply_interval_us:
            return self.aggr_us
        return max(1, s.apply_interval_us // max(1, self.sample_us)) * max(1, self.sample_us)

    def start(self, now_us: int, pid: int, kernel) -> None:
        self.running, self.pid = True, pid
        self.next_aggr_us = now_us + self.aggr_us
        self.last_refresh_us = now_us
        for s in self.schemes:
            s.next_apply_us = now_us + self.apply_period(s)
        for ti, t in enumerate(self.targets):
            self.attach_model(ti, t, kernel)

    def attach_model(self, ti: int, t: RuntimeTarget, kernel) -> None:
        t.model = kernel.model.find(self.ops, t.pid, ti)
        t.huge = kernel.huge_state(t.model.key)
        t.segments = self.initial_segments(t)
        self.views = None

    def initial_segments(self, t: RuntimeTarget) -> list:
        if t.init_ranges:
            spans = list(t.init_ranges)
        elif self.ops == "vaddr":
            spans = three_regions(t.model.ranges)
        else:
            spans = []  # fvaddr/paddr monitor only the given regions
        segments = []
        for start, end in spans:
            cursor = start
            for idx, r in enumerate(t.model.ranges):
                if r.end <= cursor or r.start >= end:
                    continue
                if r.start > cursor:
                    segments.append(Segment(cursor, r.start, None))
                segments.append(Segment(max(cursor, r.start), min(end, r.end), idx))
                cursor = min(end, r.end)
            if cursor < end:
                segments.append(Segment(cursor, end, None))
        return segments

    def stop(self, reason: str = "off") -> None:
        self.running = False
        self.stopped_reason = reason
        for s in self.schemes:
            if s.walk is not None:
                s.walk.done = True

    def commit(self, new: "RuntimeCtx", kernel) -> None:
        """damon_commit_ctx(): take new inputs, keep monitoring results and stats."""
        aggr_changed = new.aggr_us != self.aggr_us
        for name in ("ops", "sample_us", "aggr_us", "update_us", "min_nr_regions",
                     "max_nr_regions", "nr_probes", "intervals_goal", "aggr_samples"):
            setattr(self, name, getattr(new, name))
        kept = []
        old = self.targets
        for i, src in enumerate(new.targets):
            if src.obsolete and i < len(old):
                continue  # the kernel drops the running target for an obsolete dir
            dst = old[i] if i < len(old) else None
            if dst is not None and dst.pid == src.pid and not src.init_ranges:
                kept.append(dst)
            else:
                self.attach_model(len(kept), src, kernel)
                kept.append(src)
        self.targets = kept
        now = kernel.clock.now_us()
        for i, src in enumerate(new.schemes):
            if i < len(self.schemes):
                dst = self.schemes[i]
                old_interval = self.apply_period(dst)
                for name in ("action", "min_sz", "max_sz", "min_nr", "max_nr", "min_age", "max_age",
                             "apply_interval_us", "target_nid", "nr_dests", "max_nr_snapshots"):
                    setattr(dst, name, getattr(src, name))
                dst.quota.set_config(src.quota)
                if aggr_changed or old_interval != self.apply_period(dst):
                    dst.next_apply_us = now + self.apply_period(dst)
            else:
                src.next_apply_us = now + self.apply_period(src)
                self.schemes.append(src)
        del self.schemes[len(new.schemes):]
        if aggr_changed:
            self.next_aggr_us = now + self.aggr_us
        self.views = None

    # --- time ---------------------------------------------------------------
    def advance_to(self, now_us: int, kernel, max_ticks: int) -> None:
        """Run every aggregation and scheme apply pass due up to ``now_us``.

        Like kdamond_fn(): schemes are applied on any sample at their own apply interval
        (``apply_interval_us``, rounded down to whole samples; 0 = the aggregation
        interval), not only at aggregation boundaries. On a sample that ends an
        aggregation, regions are aggregated first, then due schemes are applied.
        """
        self._proc = {}  # target process states, read once per catch-up
        ticks = 0
        while self.running:
            t_next = self.next_aggr_us
            for s in self.schemes:
                t_next = min(t_next, s.next_apply_us)
            if t_next > now_us:
                break
            if ticks >= max_ticks:
                # Too far behind: skip ahead (ages still grow), see README "approximations".
                skipped = max(0, (now_us - self.next_aggr_us) // self.aggr_us + 1)
                for t in self.targets:
                    for seg in t.segments:
                        seg.age += skipped
                self.next_aggr_us += skipped * self.aggr_us
                for s in self.schemes:
                    s.next_apply_us = max(s.next_apply_us, self.next_aggr_us)
                self.views = None
                break
            if t_next == self.next_aggr_us:
                self.aggregate(t_next, kernel)
                self.apply_schemes(t_next, kernel)
                after_aggregation(self, t_next)  # may change sample_us/aggr_us
                self.next_aggr_us = t_next + self.aggr_us
            else:
                self.apply_schemes(t_next, kernel)
            ticks += 1

    def aggregate(self, t_us: int, kernel) -> None:
        t_sec = t_us / 1e6
        max_nr = self.max_nr_accesses
        threshold = max(1, max_nr // 10)
        for target in self.targets:
            no_mm = self.has_pid and self.target_state(target) != "alive"  # zombie: nothing accessed
            for seg in target.segments:
                rate = 0.0 if seg.range_idx is None or no_mm else effective_rate(
                    target.model.ranges[seg.range_idx], t_sec, self.sample_us)
                nr = min(max_nr, int(rate * max_nr + 0.5))
                seg.age = 0 if abs(nr - seg.last_nr) > threshold else seg.age + 1
                seg.nr = seg.last_nr = nr
            target.segments = merge_segments(target.segments)
        self.views = None  # the regions schemes see until the next aggregation

    # --- target processes -------------------------------------------------------------
    def target_state(self, target: RuntimeTarget) -> str:
        """"alive", "zombie" (has no mm, still a valid target) or "gone" (reaped)."""
        cache = getattr(self, "_proc", None)
        if cache is None:
            cache = self._proc = {}
        if target.pid not in cache:
            cache[target.pid] = proc_task_state(target.pid, target.starttime)
        return cache[target.pid]

    def target_valid(self, target: RuntimeTarget) -> bool:
        """ops.target_valid(): for vaddr, get_pid_task() finds the task (a zombie too)."""
        return not self.has_pid or self.target_state(target) != "gone"

    # --- regions as schemes see them ----------------------------------------------
    def regions_of(self, target: RuntimeTarget) -> list:
        min_per_target = -(-self.min_nr_regions // max(1, len(self.targets)))
        max_per_target = max(1, self.max_nr_regions // max(1, len(self.targets)))
        regions = [Region(s.start, s.end, s.nr, s.age) for s in target.segments]
        return limit_regions(split_regions(regions, min_per_target), max_per_target)

    def score(self, s: RuntimeScheme, r: Region) -> int:
        kind = scheme_score_kind(self.ops, s.action)
        if kind is None:
            return DAMOS_MAX_SCORE
        hot = hot_score(r, self, s.quota)
        return hot if kind == "hot" else DAMOS_MAX_SCORE - hot

    # --- applying schemes ---------------------------------------------------------
    def apply_schemes(self, t_us: int, kernel) -> None:
        due = [s for s in self.schemes if t_us >= s.next_apply_us]
        if not due:
            return
        if self.views is None:
            self.views = {ti: self.regions_of(t) for ti, t in enumerate(self.targets)}
        views = self.views
        for s in due:
            self.adjust_quota(s, t_us, views, kernel)
        for ti, target in enumerate(self.targets):
            if not self.target_valid(target):
                continue  # ops.target_valid() fails: skipped, like the kernel
            regions = views[ti]
            i = 0
            while i < len(regions):
                r = regions[i]
                for s in due:
                    q = s.quota
                    if q.is_full():
                        continue
                    if q.charge_target_from is not None:  # resume where the last window stopped
                        if ti < q.charge_target_from:
                            continue
                        if ti == q.charge_target_from:
                            if r.end <= q.charge_addr_from:
                                continue
                            if r.start < q.charge_addr_from:
                                tail = Region(q.charge_addr_from, r.end, r.nr, r.age)
                                r.end = q.charge_addr_from
                                regions.insert(i + 1, tail)
                                continue
                        q.charge_target_from, q.charge_addr_from = None, 0
                    if s.max_nr_snapshots and s.max_nr_snapshots <= s.stat.nr_snapshots:
                        continue
                    if s.matches(r) and (not q.is_set() or self.score(s, r) >= q.min_score):
                        self.apply_one(ti, target, regions, i, s, kernel)
                        r = regions[i]
                    if i == len(regions) - 1:
                        s.stat.nr_snapshots += 1
                i += 1
        for s in due:
            if s.walk is not None:
                s.walk.done = True
            s.next_apply_us = t_us + self.apply_period(s)

    def apply_one(self, ti, target, regions, i, s: RuntimeScheme, kernel) -> None:
        q = s.quota
        r = regions[i]
        sz = r.size
        if q.is_set() and q.charged_sz + sz > q.esz:
            sz = align_down(q.esz - q.charged_sz, PAGE_SIZE)
            if not sz:
                self.update_stat(s, 0, 0, 0)
                return
            regions.insert(i + 1, Region(r.start + sz, r.end, r.nr, r.age))
            r.end = r.start + sz
        sz_applied, sz_filter_passed = kernel.apply_action(self, target, r, s)
        if s.walk is not None and not s.walk.done:
            s.walk.total_bytes += sz
            if not s.walk.total_bytes_only:
                s.walk.regions.append((r.start, r.end, r.nr, r.age, sz_filter_passed))
        q.total_charged_us += sz / (1 << 20) * kernel.action_cost_us_per_mib(s.action)
        if not q.fail_charge_denom or sz_applied > sz:
            q.charged_sz += sz
        else:
            q.charged_sz += sz_applied + (sz - sz_applied) * q.fail_charge_num // q.fail_charge_denom
        if q.is_full():
            q.charge_target_from, q.charge_addr_from = ti, r.end
        if s.action != "stat":
            r.age = 0
            reset_age(target, r.start, r.end)
        self.update_stat(s, sz, sz_applied, sz_filter_passed)

    @staticmethod
    def update_stat(s: RuntimeScheme, sz_tried, sz_applied, sz_filter_passed) -> None:
        s.stat.nr_tried += 1
        s.stat.sz_tried += sz_tried
        if sz_applied:
            s.stat.nr_applied += 1
        s.stat.sz_applied += sz_applied
        s.stat.sz_ops_filter_passed += sz_filter_passed

    # --- quotas ------------------------------------------------------------------
    def adjust_quota(self, s: RuntimeScheme, t_us: int, views: dict, kernel) -> None:
        q = s.quota
        if not q.is_set():
            return
        if not q.total_charged_sz and q.charged_from is None:
            q.charged_from = t_us
            self.set_effective_quota(s, kernel)
        if t_us >= q.charged_from + q.reset_interval_ms * 1000:
            if q.is_full():
                s.stat.qt_exceeds += 1
            q.total_charged_sz += q.charged_sz
            q.charged_from = t_us
            q.charged_sz = 0
            self.set_effective_quota(s, kernel)
        if scheme_score_kind(self.ops, s.action) is None:
            q.min_score = DAMOS_MAX_SCORE
            return
        histogram = [0] * (DAMOS_MAX_SCORE + 1)
        max_score = 0
        for regions in views.values():
            for r in regions:
                if s.matches(r):
                    score = self.score(s, r)
                    histogram[score] += r.size
                    max_score = max(max_score, score)
        cumulated, score = 0, max_score
        while True:
            cumulated += histogram[score]
            if cumulated >= q.esz or not score:
                break
            score -= 1
        q.min_score = score

    def set_effective_quota(self, s: RuntimeScheme, kernel) -> None:
        q = s.quota
        if not q.ms and not q.goals:
            q.esz = q.sz
            return
        esz = ULONG_MAX
        if q.goals:
            score = max(g.current_value * 10000 // max(1, g.target_value)
                        for g in (kernel.goal_current(g) for g in q.goals))
            if q.goal_tuner == "temporal":
                q.esz_bp = 0 if score >= 10000 else (q.sz * 10000 if q.sz else ULONG_MAX)
            else:
                q.esz_bp = feed_loop_next_input(max(q.esz_bp, 10000), score)
            esz = q.esz_bp // 10000
        if q.ms:
            if q.total_charged_us:
                throughput = int(q.total_charged_sz / (q.total_charged_us / 1000.0))  # bytes per ms
            else:
                throughput = PAGE_SIZE * 1024
            esz = min(esz, max(throughput * q.ms, PAGE_SIZE))
        if q.sz and q.sz < esz:
            esz = q.sz
        q.esz = esz


# --- helpers ------------------------------------------------------------------------

def feed_loop_next_input(last_input: int, score: int) -> int:
    """The kernel's damon_feed_loop_next_input() (proportional feedback, goal 10000 bp)."""
    goal = min_input = 10000
    if score == goal:
        return last_input
    if score >= goal * 2:
        return min_input
    diff = abs(score - goal)
    compensation = last_input * diff // goal
    if score > goal:
        return max(last_input - compensation, min_input)
    return min(last_input + compensation, ULONG_MAX)


def scheme_score_kind(ops: str, action: str) -> Optional[str]:
    if action in ("pageout", "migrate_cold") or (ops == "paddr" and action == "lru_deprio"):
        return "cold"
    if action == "migrate_hot" or (ops == "paddr" and action == "lru_prio"):
        return "hot"
    return None


def hot_score(r: Region, ctx: RuntimeCtx, q: Quota) -> int:
    """damon_hot_score(): access frequency and age, weighted, scaled to 0..99."""
    freq = r.nr * DAMON_MAX_SUBSCORE // ctx.max_nr_accesses
    age_in_sec = r.age * ctx.aggr_us // 1000000
    age_in_log = min(age_in_sec.bit_length(), DAMON_MAX_AGE_IN_LOG) if age_in_sec else 0
    if freq == 0:
        age_in_log = -age_in_log
    age_sub = (age_in_log + DAMON_MAX_AGE_IN_LOG) * DAMON_MAX_SUBSCORE // DAMON_MAX_AGE_IN_LOG // 2
    hotness = q.weight_nr_accesses * freq + q.weight_age * age_sub
    if q.weight_nr_accesses + q.weight_age:
        hotness //= q.weight_nr_accesses + q.weight_age
    return min(DAMOS_MAX_SCORE, hotness * DAMOS_MAX_SCORE // DAMON_MAX_SUBSCORE)


def merge_segments(segments: list) -> list:
    merged: list = []
    for seg in segments:
        prev = merged[-1] if merged else None
        if (prev is not None and prev.end == seg.start and prev.range_idx == seg.range_idx
                and prev.nr == seg.nr and prev.age == seg.age):
            prev.end = seg.end
        else:
            merged.append(seg)
    return merged


def reset_age(target: RuntimeTarget, start: int, end: int) -> None:
    """An applied action resets the age of exactly [start, end)."""
    out = []
    for seg in target.segments:
        if seg.end <= start or seg.start >= end:
            out.append(seg)
            continue
        if seg.start < start:
            out.append(Segment(seg.start, start, seg.range_idx, seg.nr, seg.age, seg.last_nr))
        out.append(Segment(max(seg.start, start), min(seg.end, end), seg.range_idx, seg.nr, 0, seg.last_nr))
        if seg.end > end:
            out.append(Segment(end, seg.end, seg.range_idx, seg.nr, seg.age, seg.last_nr))
    target.segments = merge_segments(out)


def split_regions(regions: list, min_nr: int) -> list:
    """Halve the largest regions (page aligned) until there are at least ``min_nr``."""
    if len(regions) >= min_nr:
        return regions
    heap = [(-r.size, r.start, r) for r in regions]
    heapq.heapify(heap)
    done = []
    count = len(regions)
    while heap and count < min_nr:
        neg, start, r = heapq.heappop(heap)
        if r.size < 2 * PAGE_SIZE:
            done.append(r)
            continue
        mid = align_down(r.start + r.size // 2, PAGE_SIZE)
        left, right = Region(r.start, mid, r.nr, r.age), Region(mid, r.end, r.nr, r.age)
        heapq.heappush(heap, (-left.size, left.start, left))
        heapq.heappush(heap, (-right.size, right.start, right))
        count += 1
    return sorted(done + [item[2] for item in heap], key=lambda r: r.start)


def limit_regions(regions: list, max_nr: int) -> list:
    """Merge the most similar neighbours until at most ``max_nr`` regions remain."""
    while len(regions) > max_nr:
        best, best_diff = None, None
        for i in range(len(regions) - 1):
            a, b = regions[i], regions[i + 1]
            if a.end != b.start:
                continue
            diff = abs(a.nr - b.nr)
            if best_diff is None or diff < best_diff:
                best, best_diff = i, diff
        if best is None:
            break
        a, b = regions[best], regions[best + 1]
        size = a.size + b.size
        merged = Region(a.start, b.end, (a.nr * a.size + b.nr * b.size) // size,
                        (a.age * a.size + b.age * b.size) // size)
        regions[best:best + 2] = [merged]
    return regions


def action_supported(ops: str, action: str) -> bool:
    return ops in ACTION_OPS.get(action, ())
