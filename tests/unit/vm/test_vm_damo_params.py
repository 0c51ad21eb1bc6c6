"""The molecule verify filter (molecule/shared/filter_plugins/damo_params.py) on damo
reports recorded in the damon-6.12 and damon-7.3 guests (tests/vm/fixtures/damo/)."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
PLUGIN = REPO_ROOT / "molecule" / "shared" / "filter_plugins" / "damo_params.py"
VARS = REPO_ROOT / "molecule" / "shared" / "vars" / "kdamond.yml"
FIXTURES = REPO_ROOT / "tests" / "vm" / "fixtures" / "damo"


def _plugin():
    spec = importlib.util.spec_from_file_location("damo_params_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


damo_params = _plugin()


def _case(kernel):
    """(damo report, the request converge made) for one guest."""
    fixture = json.loads((FIXTURES / ("damon-%s.json" % kernel)).read_text())
    v = yaml.safe_load(VARS.read_text())
    schemes = [v["kdamond_stat_scheme"]] + ([v["kdamond_collapse_scheme"]] if v["kdamond_images"]["damon-" + kernel]["collapse"] else [])
    request = {"operations": "vaddr", "monitoring_attrs": v["kdamond_monitoring_attrs"],
               "targets": [{"pid": fixture["hotcold_pid"]}], "schemes": schemes}
    return fixture["report"], request


@pytest.mark.parametrize("kernel", ["6.12", "7.3"])
def test_the_recorded_reports_match_the_playbook(kernel):
    report, request = _case(kernel)
    assert damo_params.damo_params_diff(report, request, kdamond_pid=report[0]["pid"]) == []
    assert len(request["schemes"]) == (2 if kernel == "7.3" else 1)


@pytest.mark.parametrize("path,value,expected", [
    (("monitoring_attrs", "sample_us"), 5000, "monitoring_attrs.sample_us: asked 5000, damo reports '10000'"),
    (("monitoring_attrs", "update_us"), 1000000, "monitoring_attrs.update_us: asked 1000000"),
    (("monitoring_attrs", "max_nr_regions"), 1000, "monitoring_attrs.max_nr_regions: asked 1000, damo reports '400'"),
    (("schemes", 0, "access_pattern", "min_nr_accesses"), 5, "schemes[0].access_pattern.min_nr_accesses: asked 5, damo reports '4 samples'"),
    (("schemes", 0, "access_pattern", "max_age"), 7, "schemes[0].access_pattern.max_age: asked 7"),
    (("schemes", 0, "quotas", "ms"), 21, "schemes[0].quotas.ms: asked 21, damo reports '20000000'"),  # ns
    (("schemes", 0, "quotas", "reset_interval_ms"), 1000, "schemes[0].quotas.reset_interval_ms: asked 1000"),
    (("schemes", 0, "quotas", "weights", "age_permil"), 0, "schemes[0].quotas.weights.age_permil: asked 0, damo reports '200.000000'"),
    (("schemes", 0, "apply_interval_us"), 0, "schemes[0].apply_interval_us: asked 0, damo reports '400000'"),
    (("schemes", 0, "action"), "pageout", "schemes[0].action: asked 'pageout', damo reports 'stat'"),
    (("targets", 0, "pid"), 1, "targets[0].pid: asked 1"),
])
def test_every_field_is_compared(path, value, expected):
    report, request = _case("6.12")
    request = copy.deepcopy(request)
    node = request
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    diffs = damo_params.damo_params_diff(report, request)
    assert len(diffs) == 1 and diffs[0].startswith(expected), diffs


def test_defaults_are_filled_and_compared():
    report, request = _case("7.3")
    collapse = report[0]["contexts"][0]["schemes"][1]
    assert request["schemes"][1].get("quotas", {}).get("ms") is None  # not asked: module default 0
    collapse["quotas"]["time_ms"] = "5000000"
    collapse["access_pattern"]["sz_bytes"]["max"] = "1048576"
    collapse["watermarks"]["metric"] = "free_mem_rate"
    diffs = damo_params.damo_params_diff(report, request)
    assert "schemes[1].quotas.ms: asked 0, damo reports '5000000'" in diffs
    assert "schemes[1].access_pattern.max_size: asked 18446744073709551615, damo reports '1048576'" in diffs
    assert "schemes[1].watermarks.metric: asked 'none', damo reports 'free_mem_rate'" in diffs


def test_structure_differences():
    report, request = _case("7.3")
    assert damo_params.damo_params_diff([], request) == ["damo reports 0 kdamond(s), expected one at index 0"]
    assert damo_params.damo_params_diff(report, request, kdamond_pid=1)[0] == "kdamond pid: asked 1, damo reports '441'"
    fewer = copy.deepcopy(request)
    fewer["schemes"] = fewer["schemes"][:1]
    assert damo_params.damo_params_diff(report, fewer) == ["schemes: asked 1, damo reports 2"]
    off = copy.deepcopy(report)
    off[0]["state"] = "off"
    assert damo_params.damo_params_diff(off, request) == ["state: asked 'on', damo reports 'off'"]


def test_numbers():
    assert damo_params._num("5 samples") == 5  # pylint: disable=protected-access
    assert damo_params._num("100.000000") == 100  # pylint: disable=protected-access
    assert damo_params._num("18446744073709551615") == 2 ** 64 - 1  # pylint: disable=protected-access
    with pytest.raises(ValueError):
        damo_params._num("max")  # pylint: disable=protected-access
    assert damo_params.FilterModule().filters() == {"damo_params_diff": damo_params.damo_params_diff}
