"""The synthetic access model: which address ranges of which target are how hot, when.

Scenario form (YAML/JSON/dict), one entry per monitored target::

    targets:
      - pid: 4242            # match a DAMON target by pid_target, ...
        # comm: "memhog"     # ... or by the process name in /proc/PID/comm,
        # index: 0           # ... or by the target's index in its context (paddr too)
        regions:
          - {start: 0x7f0000000000, size: 33554432, rate: 0.9}       # hot 32 MiB
          - {start: 0x7f0002000000, end: 0x7f0042000000, rate: 0.0}  # cold 1 GiB
          - start: 0x7f0042000000
            size: 0x4000000
            phases:          # rate changes over (virtual) time, seconds since mount
              - {start: 0, end: 30, rate: 0.05}
              - {start: 30, rate: 0.7}

``rate`` is the fraction of sampling intervals in which the range was accessed
(0..1); DAMON's ``nr_accesses`` becomes ``round(rate * aggr_us / sample_us)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

PAGE_SIZE = 4096
HPAGE_SIZE = 2 * 1024 * 1024


def _int(value) -> int:
    if isinstance(value, str):
        return int(value, 0)
    return int(value)


@dataclass
class Phase:
    start: float
    end: Optional[float]
    rate: float

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


@dataclass
class ModelRange:
    start: int
    end: int
    phases: list
    rate_sample_us: Optional[int] = None  # the sample interval rates refer to (see intervals_goal.py)

    def rate_at(self, t: float) -> float:
        for phase in self.phases:
            if phase.covers(t):
                return phase.rate
        return 0.0

    @classmethod
    def parse(cls, spec: dict) -> "ModelRange":
        start = _int(spec["start"])
        if "end" in spec:
            end = _int(spec["end"])
        elif "size" in spec:
            end = start + _int(spec["size"])
        else:
            raise ValueError("model region needs 'end' or 'size': %r" % (spec,))
        if end <= start:
            raise ValueError("model region end <= start: %r" % (spec,))
        if "phases" in spec:
            phases = [Phase(float(p.get("start", 0)), None if p.get("end") is None else float(p["end"]),
                            _rate(p.get("rate", 0.0))) for p in spec["phases"]]
        else:
            phases = [Phase(0.0, None, _rate(spec.get("rate", 0.0)))]
        base = spec.get("rate_sample_us")
        return cls(start, end, phases, int(base) if base else None)

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end,
                "phases": [{"start": p.start, "end": p.end, "rate": p.rate} for p in self.phases],
                "rate_sample_us": self.rate_sample_us}


def _rate(value) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("access rate must be within 0..1, got %r" % (value,))
    return rate


@dataclass
class ModelTarget:
    match: dict
    ranges: list = field(default_factory=list)
    implicit: bool = False  # built from /proc/PID/maps because no scenario entry matched

    @property
    def key(self) -> str:
        """Identity of the target for its huge-page state (survives kdamond restarts)."""
        for name in ("pid", "comm", "index"):
            if name in self.match:
                return "%s:%s" % (name, self.match[name])
        return "target"

    @classmethod
    def parse(cls, spec: dict) -> "ModelTarget":
        match = dict(spec.get("match") or {})
        for name in ("pid", "comm", "index"):
            if name in spec:
                match[name] = spec[name]
        if not match:
            raise ValueError("model target needs one of pid, comm, index: %r" % (spec,))
        ranges = sorted((ModelRange.parse(r) for r in spec.get("regions", [])), key=lambda r: r.start)
        for left, right in zip(ranges, ranges[1:]):
            if left.end > right.start:
                raise ValueError("model regions overlap: %#x-%#x and %#x-%#x"
                                 % (left.start, left.end, right.start, right.end))
        return cls(match=match, ranges=ranges)

    def to_dict(self) -> dict:
        return dict(self.match, regions=[r.to_dict() for r in self.ranges], implicit=self.implicit)


class AccessModel:
    def __init__(self, targets: Optional[list] = None):
        self.targets = [t if isinstance(t, ModelTarget) else ModelTarget.parse(t)
                        for t in (targets or [])]
        self._implicit: dict = {}

    def find(self, ops: str, pid: int, index: int) -> ModelTarget:
        """The model of a DAMON target: by pid, then comm (vaddr), then index."""
        if ops != "paddr":
            for t in self.targets:
                if "pid" in t.match and int(t.match["pid"]) == pid:
                    return t
            comm = proc_comm(pid)
            for t in self.targets:
                if "comm" in t.match and comm is not None and t.match["comm"] == comm:
                    return t
        for t in self.targets:
            if "index" in t.match and int(t.match["index"]) == index and set(t.match) == {"index"}:
                return t
        return self._implicit_target(ops, pid, index)

    def _implicit_target(self, ops, pid, index) -> ModelTarget:
        # No scenario entry: a process's mappings (all idle), or nothing for paddr.
        key = ("pid", pid) if ops != "paddr" else ("index", index)
        if key not in self._implicit:
            ranges = [ModelRange(s, e, [Phase(0.0, None, 0.0)]) for s, e in proc_maps(pid)] \
                if ops != "paddr" else []
            self._implicit[key] = ModelTarget(match={key[0]: key[1]}, ranges=ranges, implicit=True)
        return self._implicit[key]

    def to_list(self) -> list:
        return [t.to_dict() for t in self.targets]


def three_regions(ranges: list) -> list:
    """DAMON vaddr's initial layout: the span of all mappings minus its two biggest gaps."""
    spans = sorted((r.start, r.end) for r in ranges)
    if not spans:
        return []
    gaps = sorted(((spans[i + 1][0] - spans[i][1], i) for i in range(len(spans) - 1)
                   if spans[i + 1][0] > spans[i][1]), reverse=True)[:2]
    cut_after = sorted(i for _size, i in gaps)
    result, begin = [], spans[0][0]
    for i in cut_after:
        result.append((begin, spans[i][1]))
        begin = spans[i + 1][0]
    result.append((begin, max(e for _s, e in spans)))
    return result


# --- /proc helpers (the real processes a vaddr target names) -----------------

def _proc_stat(pid: int):
    """(state, starttime) from /proc/PID/stat, or None when there is no such process."""
    if pid <= 0:
        return None
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_starttime(pid: int) -> Optional[int]:
    found = _proc_stat(pid)
    return None if found is None else found[1]


def proc_task_state(pid: int, starttime: Optional[int] = None) -> str:
    """What DAMON's vaddr ops see of a target process.

    "alive": it has memory; "zombie": exited but not reaped -- get_pid_task() still
    finds the task, so the target stays valid (the kdamond keeps running) but has no mm;
    "gone": reaped (or the pid now names another process: ``starttime`` differs).
    """
    found = _proc_stat(pid)
    if found is None or found[0] == "X" or (starttime is not None and found[1] != starttime):
        return "gone"
    return "zombie" if found[0] == "Z" else "alive"


def pid_exists(pid: int) -> bool:
    return pid > 0 and os.path.exists("/proc/%d" % pid)


def proc_comm(pid: int) -> Optional[str]:
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_maps(pid: int) -> list:
    """Mapped address ranges of a process, adjacent ones joined."""
    spans: list = []
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                lo, hi = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                if lo >= 1 << 47:  # [vsyscall]
                    continue
                if spans and spans[-1][1] == lo:
                    spans[-1] = (spans[-1][0], hi)
                else:
                    spans.append((lo, hi))
    except OSError:
        return []
    return spans
