"""The recorded real-kernel fixtures (tests/vm/fixtures/*.json, from probe_sysfs.py) hold
the facts the emulator and the modules rely on.  Re-record with
``python -m tests.vm.record_fixtures``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "vm" / "fixtures"
K0 = "kdamonds/0"
C0 = K0 + "/contexts/0"
S0 = C0 + "/schemes/0"


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module", params=["damon-6.12", "damon-7.3"])
def damon(request):
    return request.param, load(request.param)


def test_no_damon_kernel_has_no_damon_sysfs():
    d = load("no-damon")
    assert d["kernel"]["uname_r"].startswith("6.1.")
    assert d["kernel"]["config"]["CONFIG_DAMON"] == "n"
    assert not d["damon_dir_present"] and d["damon_modules"] == []
    assert "damon" not in d["sys_kernel_mm"]
    assert d["thp"]["enabled"]["value"] == "always [madvise] never\n"


def test_modes_are_root_only(damon):
    d = damon[1]
    for rel, ent in d["tree"].items():
        if ent["type"] == "dir":
            assert ent["mode"] == "0755", rel
        else:
            assert ent["mode"] in ("0600", "0400"), rel
    assert d["tree"][K0 + "/pid"]["mode"] == "0400"
    assert d["tree"][K0 + "/state"]["mode"] == "0600"
    assert d["tree"][C0 + "/avail_operations"]["mode"] == "0400"


def test_staging_and_defaults(damon):
    d = damon[1]
    assert all(w[2] == "ok" for w in d["staging_writes"])
    t = d["tree"]
    assert t[K0 + "/state"]["value"] == "off\n" and t[K0 + "/pid"]["value"] == "-1\n"
    assert t[C0 + "/operations"]["value"] == "vaddr\n"
    assert t[C0 + "/avail_operations"]["value"] == "vaddr\nfvaddr\npaddr\n"
    assert t[C0 + "/monitoring_attrs/intervals/sample_us"]["value"] == "5000\n"
    assert t[C0 + "/monitoring_attrs/intervals/aggr_us"]["value"] == "100000\n"
    assert t[C0 + "/monitoring_attrs/intervals/update_us"]["value"] == "60000000\n"
    assert t[C0 + "/monitoring_attrs/nr_regions/min"]["value"] == "10\n"
    assert t[C0 + "/monitoring_attrs/nr_regions/max"]["value"] == "1000\n"
    assert t[S0 + "/action"]["value"] == "stat\n"
    assert t[S0 + "/target_nid"]["value"] == "-1\n"
    for m in ("sz", "nr_accesses", "age"):
        assert t[f"{S0}/access_pattern/{m}/max"]["value"] == "0\n"


def test_state_words_and_errnos(damon):
    d = damon[1]
    off, on = d["state_words_off"], d["state_words_on"]
    assert off["commit"] == "EINVAL" and off["update_schemes_stats"] == "EINVAL"
    assert off["bogus_word"] == "EINVAL" and off["off"] == "EINVAL"
    assert on["commit"]["result"] == "ok" and on["on"]["result"] == "EBUSY"
    assert on["commit\n"]["result"] == "ok" and on[" commit"]["result"] == "EINVAL"
    assert d["nr_writes_on"]["kdamonds/nr_kdamonds=1"] == "EBUSY"
    # An invalid staged region (start=end=0) and pid 0 make `on` fail with EINVAL.
    assert d["on_attempts"][0]["result"] == "EINVAL"
    assert d["state_read_after_off"] == "off" and d["pid_read_after_off"] == "-1"
    assert d["stats_after_update"] not in ("0", None)


def test_nr_rewrite_resets_children(damon):
    d = damon[1]
    sem = d["nr_semantics"]
    assert sem["nr_contexts_after_nr_kdamonds_rewrite"] == "0"
    assert sem["pid_target_after_nr_targets_rewrite"] == "0"
    assert sem["action_after_nr_schemes_rewrite"] == "stat"  # pageout was written before


def test_version_differences():
    old, new = load("damon-6.12"), load("damon-7.3")
    assert old["kernel"]["uname_r"].startswith("6.12.")
    assert new["kernel"]["uname_r"].startswith("7.3.")
    assert old["action_words"]["words"]["collapse"]["result"] == "EINVAL"
    assert new["action_words"]["words"]["collapse"]["result"] == "ok"
    for rel in (K0 + "/refresh_ms", C0 + "/addr_unit", S0 + "/core_filters", S0 + "/ops_filters",
                S0 + "/dests", S0 + "/stats/nr_snapshots", S0 + "/stats/max_nr_snapshots",
                C0 + "/monitoring_attrs/intervals/intervals_goal"):
        assert rel not in old["tree"], rel
        assert rel in new["tree"], rel
    assert old["state_words_on"]["update_tuned_intervals"]["result"] == "EINVAL"
    assert new["state_words_on"]["update_tuned_intervals"]["result"] == "ok"
    # 7.3: DAMON_STAT is on by default and makes `on` fail with EBUSY until disabled.
    assert "damon_stat" not in old["damon_modules"]
    assert new["module_params"]["damon_stat"]["enabled"]["value"] == "Y\n"
    assert [a["result"] for a in new["on_attempts"]][-2:] == ["EBUSY", "ok"]
    assert new["on_attempts"][-1]["change_before"] == "damon_stat enabled = N"
    assert new["damon_stat_enabled_after_restore"] == "Y"
    # Filter placement: core_filters take addr/target only, ops_filters the rest.
    core = new["filter_types"]["core_filters"]["words"]
    ops = new["filter_types"]["ops_filters"]["words"]
    assert {w for w, r in core.items() if r["result"] == "ok"} == {"addr", "target"}
    assert {w for w, r in ops.items() if r["result"] == "ok"} == {
        "anon", "memcg", "young", "hugepage_size", "unmapped", "active"}
