# SPDX-License-Identifier: GPL-3.0-or-later
"""Ground truth of the `workloads` section: which 2 MiB chunks are hot, measured by the guest kernel
without DAMON and without the workload's word, and how each configuration's huge pages cover them
(pure functions over pagetrack rows).

A calibration run (the workload alone, THP ``never``, same seed, so the same chunk layout) records with
``bench/workload/pagetrack.c --written`` which pages of every chunk were written in each 1 s window
(soft-dirty bits; Debian's kernels have no idle page tracking, so the workloads write on every
access). A chunk is *accessed in a window* when at least ACCESSED_SHARE of its resident pages were; per phase it is
*hot* when accessed in at least HOT_WINDOWS of the phase's windows, *cold* (never or rarely accessed)
when in at most COLD_WINDOWS, *warm* otherwise. The first SETTLE_S seconds of each phase are left out.
The workload's own rank order is kept only as a cross-check (``rank_agreement``).

The configuration runs record, once a second, which chunks are PMD-mapped THPs. Hot coverage at a
sample = share of the current phase's hot chunks that are huge (hot chunks are fully resident);
cold huge bytes = huge cold chunks x 2 MiB (``cold_huge_share``: of all cold chunks); zero-filled
bytes = the pages a collapse added to them (512 minus the chunk's resident pages at calibration,
x 4 KiB). Cold bloat, as the benchmark issue defines it, is counted in those zero-filled pages:
``cold_bloat_share`` = zero-filled bytes / the cold chunks' resident bytes, at the sample with the
most cold huge chunks. Access coverage (no hot/cold cut, for graded hotness): the calibrated write
levels of the huge chunks / those of all chunks, i.e. the share of the writes that land in huge pages.
"""

from __future__ import annotations

import statistics

CHUNK = 2 << 20
PAGES = 512
ACCESSED_SHARE = 1 / 8
HOT_WINDOWS = 0.5
COLD_WINDOWS = 0.05
SETTLE_S = 5.0


def phase_bounds(workload: dict, shift_at: float | None, end_at: float) -> list:
    """[(start, end)] in guest epoch seconds: one phase, or two when the hot set moved at ``shift_at``."""
    t0 = workload["t0"]
    if shift_at:
        return [(t0, shift_at), (shift_at, end_at)]
    return [(t0, end_at)]


def phase_of(t: float, bounds: list) -> int | None:
    for i, (a, b) in enumerate(bounds):
        if a <= t < b:
            return i
    return None


def classify(rows: list, bounds: list) -> list:
    """Per phase: the windows counted, per-chunk share of windows accessed, and hot/warm/cold chunk lists."""
    out = []
    for a, b in bounds:
        windows = [r for r in rows if a + SETTLE_S <= r["t"] < b and "acc" in r]
        n = len(windows)
        chunks = len(rows[0]["res"]) if rows else 0
        share = []
        for c in range(chunks):
            hits = sum(1 for r in windows if r["res"][c] and r["acc"][c] >= ACCESSED_SHARE * r["res"][c])
            share.append(hits / n if n else 0.0)
        res = [int(statistics.median(r["res"][c] for r in windows)) if n else 0 for c in range(chunks)]
        # finer than ``share``: the mean share of the chunk's pages written per window (ranks within "hot")
        level = [round(sum(r["acc"][c] / r["res"][c] for r in windows if r["res"][c]) / n, 4) if n else 0.0
                 for c in range(chunks)]
        hot = [c for c in range(chunks) if res[c] and share[c] >= HOT_WINDOWS]
        cold = [c for c in range(chunks) if res[c] and share[c] <= COLD_WINDOWS]
        warm = [c for c in range(chunks) if res[c] and COLD_WINDOWS < share[c] < HOT_WINDOWS]
        out.append({"windows": n, "share": [round(s, 3) for s in share], "level": level, "res": res,
                    "hot": hot, "warm": warm, "cold": cold})
    return out


def rank_agreement(classes: list, order: list) -> list:
    """Cross-check with the workload's own ranks: per phase, the share of the ground truth's hot chunks
    found among the workload's top-ranked chunks of the same count."""
    out = []
    for cls, ranked in zip(classes, order):
        hot = set(cls["hot"])
        out.append(round(len(hot & set(ranked[:len(hot)])) / len(hot), 3) if hot else None)
    return out


def series(rows: list, classes: list, bounds: list) -> list:
    """Per configuration-run sample: t (s since the phase-0 start), phase, hot coverage, huge chunks per class."""
    t0 = bounds[0][0]
    out = []
    for r in rows:
        p = phase_of(r["t"], bounds)
        if p is None:
            continue
        cls, huge = classes[p], r["huge"]
        hot = sum(1 for c in cls["hot"] if huge[c] == "1")
        total = sum(cls["level"])
        out.append({"t": round(r["t"] - t0, 2), "phase": p,
                    "hot_coverage": hot / len(cls["hot"]) if cls["hot"] else None,
                    "access_coverage": (sum(lv for c, lv in enumerate(cls["level"]) if huge[c:c + 1] == "1") / total
                                        if total else None),
                    "hot_huge": hot, "warm_huge": sum(1 for c in cls["warm"] if huge[c] == "1"),
                    "cold_huge": [c for c in cls["cold"] if huge[c] == "1"]})
    return out


def live(samples: list) -> list:
    """``samples`` without a last one taken after the workload exited: every huge page gone at once at the
    end of a run is the process ending (its memory freed), not a configuration splitting them."""
    if len(samples) > 1:
        last, before = samples[-1], samples[-2]
        if not (last["hot_huge"] or last["warm_huge"] or last["cold_huge"]) and (
                before["hot_huge"] or before["warm_huge"] or before["cold_huge"]):
            return samples[:-1]
    return samples


def metrics(samples: list, classes: list, bounds: list, call_times: tuple = ()) -> dict:
    """Figures of one configuration run (see the module docstring); ``call_times``: guest epoch seconds
    of every remote module call, for the calls needed to reach 90 % hot coverage."""
    t0 = bounds[0][0]
    samples = live(samples)
    cov = [s["hot_coverage"] for s in samples if s["hot_coverage"] is not None]
    t90 = []
    for p, (a, b) in enumerate(bounds):
        hit = next((s["t"] for s in samples if s["phase"] == p and (s["hot_coverage"] or 0) >= 0.9), None)
        t90.append(round(hit - (a - t0), 1) if hit is not None else None)
    worst = max(samples, key=lambda s: len(s["cold_huge"]), default=None)
    cold_huge = worst["cold_huge"] if worst else []
    cls = classes[worst["phase"]] if worst else classes[0]
    cold_bytes = len(cls["cold"]) * CHUNK
    zero_filled = sum(PAGES - cls["res"][c] for c in cold_huge) * 4096
    calls90 = None
    if t90[0] is not None:
        calls90 = sum(1 for t in call_times if t <= t0 + t90[0])
    acc = [s["access_coverage"] for s in samples if s.get("access_coverage") is not None]
    return {
        "hot_coverage_end": round(cov[-1], 3) if cov else None,
        "access_coverage_end": round(acc[-1], 3) if acc else None,
        "hot_coverage_mean": round(sum(cov) / len(cov), 4) if cov else None,
        "t90_s": t90[0], "t90_s_per_phase": t90,
        "cold_huge_bytes": len(cold_huge) * CHUNK,
        "cold_huge_share": round(len(cold_huge) * CHUNK / cold_bytes, 4) if cold_bytes else None,
        "cold_zero_filled_bytes": zero_filled,
        "cold_bloat_share": bloat_share(zero_filled, cls),
        "warm_huge_end": samples[-1]["warm_huge"] if samples else None,
        "calls_to_90": calls90, "calls": len(call_times),
    }


def bloat_share(zero_filled: int, cls: dict):
    """Memory a collapse added to cold chunks (zero-filled 4 KiB pages) as a share of the cold chunks'
    resident memory: what THP bloat costs. A fully resident cold chunk made huge adds nothing (it only
    spends a huge page on memory that gains little: ``cold_huge_share``)."""
    resident = sum(cls["res"][c] for c in cls["cold"]) * 4096
    return round(zero_filled / resident, 4) if resident else None


def budget_use(huge: str, cls: dict) -> dict:
    """Was a limited number of huge pages spent hottest first? ``budget_precision``: share of the huge
    chunks that are among the same number of chunks with the highest calibrated ``level``; and the mean
    level of the huge chunks against that of the hot chunks left at 4 KiB."""
    chosen = [c for c, h in enumerate(huge) if h == "1" and c < len(cls["level"])]
    if not chosen:
        return {"budget_precision": None, "huge_level_mean": None, "hot_left_level_mean": None}
    top = set(sorted(range(len(cls["level"])), key=lambda c: -cls["level"][c])[:len(chosen)])
    left = [c for c in cls["hot"] if huge[c] != "1"]
    return {"budget_precision": round(len(top.intersection(chosen)) / len(chosen), 3),
            "huge_level_mean": round(sum(cls["level"][c] for c in chosen) / len(chosen), 4),
            "hot_left_level_mean": round(sum(cls["level"][c] for c in left) / len(left), 4) if left else None}
