# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The redis section's figures (bench/redis.py) from hand-made samples."""

from __future__ import annotations

from bench import redis


def sample(t, share, cold=0.0, ops=(0, 0), measure_s=2.0, rss=100 << 20, cpu=None):
    return {"t": t, "hot_huge_share": share, "cold_bloat": cold, "cold_huge_bytes": int(cold * (1 << 30)),
            "ops_before": ops[0], "ops_after": ops[1], "measure_s": measure_s, "rss_anon_bytes": rss,
            "threads_cpu": cpu or {}}


def test_get_rate_leaves_out_the_samples_own_commands_and_time():
    # 30 s apart, each sample takes 2 s and issues 100 000 SETRANGEs: 28 s of GETs in between
    s = [sample(0, 0.0, ops=(0, 100_000)), sample(30, 0.5, ops=(100_000 + 28_000, 228_000))]
    assert redis.get_rates(s) == [1000.0]


def test_the_quiet_get_rate_leaves_out_intervals_with_a_module_call():
    s = [sample(0, 0.0, ops=(0, 10)), sample(30, 0.5, ops=(2810, 2820)), sample(60, 0.5, ops=(2820 + 5600, 8430))]
    assert redis.get_rates(s) == [100.0, 200.0]
    assert redis.get_rates(s, call_times=[40.0]) == [100.0]


def test_metrics_time_to_target_calls_bloat_and_cpu():
    k, h = ("7", "(kdamond.0)"), ("3", "(khugepaged)")
    s = [sample(0, 0.0, cpu={h: 10.0}), sample(30, 0.5, cold=0.01, cpu={h: 10.5, k: 1.0}),
         sample(60, 0.85, cold=0.03, cpu={h: 11.0, k: 2.5}), sample(90, 0.9, cold=0.02, cpu={h: 11.0, k: 3.0})]
    m = redis.metrics(s, call_times=[1.0, 20.0, 55.0, 70.0])
    assert m["hot_share_end"] == 0.9 and m["hot_share_mean"] == round((0.5 + 0.85 + 0.9) / 3, 3)
    assert m["t_target_s"] == 60 and m["calls_to_target"] == 3 and m["calls"] == 4
    assert m["cold_huge_max"] == 0.03
    assert m["kdamond_cpu_s"] == 3.0 and m["khugepaged_cpu_s"] == 1.0


def test_a_run_that_never_reaches_the_target_has_no_time_or_calls():
    m = redis.metrics([sample(0, 0.0), sample(30, 0.79)], call_times=[1.0])
    assert m["t_target_s"] is None and m["calls_to_target"] is None


def test_summary_compares_get_rate_and_memory_with_thp_never():
    def run(config, rate, rss):
        return {"config": config, "metrics": {"get_rate": rate, "rss_anon_bytes_end": rss, "hot_share_end": 0.5}}
    raw = {"release": "7.3.4", "kernel": "damon-7.3",
           "runs": [run("thp-never", 1000, 100), run("ours", 1100, 104), run("ours", 1300, 106)]}
    for r in raw["runs"]:
        r.update(samples=[sample(0, 0.0), sample(30, 0.5)], call_times=[])
    rows = {r["config"]: r["median"] for r in redis.summarize(raw)}
    assert rows["ours"]["get_rate"] == 1200 and rows["ours"]["get_rate_range"] == [1100, 1300]
    assert rows["ours"]["get_rate_vs_thp_never"] == 1.2 and rows["ours"]["rss_anon_bytes_end_vs_thp_never"] == 1.05
    assert "| ours | 2 |" in redis.markdown(redis.summarize(raw))


def test_judged_bloat_counts_only_the_cold_values_and_zeros_of_the_cold_huge_memory():
    from tests.vm.redis_proof import cold_values_huge, content_totals
    last = {"cold_resident_bytes": 1000 << 20, "cold_huge_bytes": 40 << 20}
    totals = content_totals({"0x1": {"cold values": 20, "zeros": 5}, "0x2": {"pointers": 60, "other": 15}})
    assert totals == {"cold values": 20, "zeros": 5, "pointers": 60, "other": 15}
    # a quarter of the sampled pages are cold values or zeros: 10 of 1000 MiB
    assert cold_values_huge(totals, last) == 0.01
    assert cold_values_huge({}, dict(last, cold_huge_bytes=0)) == 0.0
    assert cold_values_huge({}, last) is None  # huge but not sampled: unknown, not zero


def test_page_kinds_tell_the_bucket_table_from_values_and_zeros():
    from tests.vm.redis_proof import page_kind
    # buckets: a third empty, the rest (tagged) pointers to dict entries
    table = b"".join((0x7FC35F000000 + 40 * i | i % 2).to_bytes(8, "little") if i % 3 else bytes(8)
                     for i in range(512))
    assert page_kind(table) == "pointers"
    assert page_kind(b"h" * 4096) == "hot values"
    assert page_kind(b"value:123" + bytes(4087)) == "cold values"
    assert page_kind(bytes(4096)) == "zeros"
    assert page_kind(b"key:000000012345" * 256) == "other"  # key names are not addresses
    assert page_kind(bytes(4000) + (0x7FC35F000000).to_bytes(8, "little") * 12) == "zeros"  # too few to be a table


def test_medians_say_in_how_many_runs_a_figure_exists():
    from bench.common import fmt_median, medians
    m = medians([{"t": 150.0}, {"t": None}, {"t": 180.0}], ["t"])
    assert m == {"t": 165.0, "t_range": [150.0, 180.0], "t_runs": [2, 3]}
    assert fmt_median(m, "t", nd=0) == "165 (150-180) in 2 of 3 runs"
    assert fmt_median(medians([{"t": 1.0}, {"t": 3.0}], ["t"]), "t", nd=0) == "2 (1-3)"
    assert fmt_median(medians([{"t": None}], ["t"]), "t") == "—"
