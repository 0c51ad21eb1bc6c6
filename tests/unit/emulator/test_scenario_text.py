"""Scenario and model text: JSON without PyYAML (most of an emulator's start-up was importing it), YAML else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.emulator import REPO_ROOT, scenario


def test_json_yaml_and_neither():
    assert scenario.parse('{"speed": 1e-05, "targets": []}') == {"speed": 1e-05, "targets": []}  # YAML 1.1: a string
    assert scenario.parse("speed: 2\nmodules: {damon_stat: false}\n") == {"speed": 2, "modules": {"damon_stat": False}}
    assert scenario.parse("") is None
    with pytest.raises(ValueError):
        scenario.parse("speed: [1, 2")


def test_the_emulator_reads_a_json_scenario_without_importing_yaml(tmp_path):
    path = tmp_path / "scenario.json"
    path.write_text('{"speed": 0}')
    code = ("import sys; from tests.emulator import build_kernel; build_kernel('7.3', sys.argv[1]); "
            "import tests.emulator.__main__, tests.emulator.fs; print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "False"
