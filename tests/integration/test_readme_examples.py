# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's action-group example, run as written, and the group kept equal to the modules that take sysfs_root."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ansible_env
from tests.emulator import EmulatedSysfs

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
GROUP = "linux_mm.damon.damon"
README_PATH = "/srv/damon-emulator"  # the sysfs_root the README example uses


def readme_yaml_blocks(needle):
    blocks = re.findall(r"^```yaml\n(.*?)^```", (REPO / "README.md").read_text(encoding="utf-8"), re.M | re.S)
    return [b for b in blocks if needle in b]


def runtime_group():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    return sorted(runtime["action_groups"]["damon"])


def test_readme_module_defaults_example_as_written(run_playbook):
    [block] = readme_yaml_blocks("group/" + GROUP)
    [play] = yaml.safe_load(block)
    assert play["module_defaults"] == {"group/" + GROUP: {"sysfs_root": README_PATH}}
    assert block.count(README_PATH) == 1
    # Emulated THP "always" differs from any sane host's setting: the result shows which tree was read.
    with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "thp": {"enabled": "always"}}) as emu:
        run = run_playbook(block.replace(README_PATH, emu.root), inventory="%s," % play["hosts"])
        assert run.rc == 0, run.explain()
        damon = run.tasks[0]["hosts"][play["hosts"]]
        assert damon["available"] and damon["thp"]["values"]["enabled"] == "always", damon
        assert damon["kdamonds"] == []
        assert "DAMON available: True, THP enabled: always" in run.stdout


def test_every_member_takes_the_group_default_and_the_others_run_beside_it(run_playbook, tmp_path, target_pid):
    """sysfs_root given only through module_defaults: each member uses it; non-members are untouched.

    Before the group was fixed, hot_processes and collapse failed here with "Unsupported
    parameters ... sysfs_root".
    """
    own = str(tmp_path / "own.json")
    with EmulatedSysfs(kernel="7.3", scenario={"speed": 0, "thp": {"enabled": "always"}}) as emu:
        tasks = [
            {"name": "damon_info", "linux_mm.damon.damon_info": {"ownership_file": own}},
            # (own record: without it thp saves the emulator's old values in the host's default record)
            {"name": "thp", "linux_mm.damon.thp": {"enabled": "never", "ownership_file": own}},
            {"name": "kdamond", "linux_mm.damon.kdamond": {"name": "x", "state": "absent", "ownership_file": own}},
            {"name": "hugepage_step", "linux_mm.damon.hugepage_step": {
                "state": "observed", "interval_s": 0.1, "ownership_file": own}},
            {"name": "hugepage_tune", "linux_mm.damon.hugepage_tune": {
                "apps": [], "interval_s": 0.1, "max_iterations": 1, "ownership_file": own}},
            {"name": "hot_processes", "linux_mm.damon.hot_processes": {"window_s": 0.1, "top": 1}},
            {"name": "collapse", "linux_mm.damon.collapse": {"pid": target_pid, "ranges": [
                {"start": 2 << 20, "end": 4 << 20}]}},  # nothing mapped there: skipped, unchanged
        ]
        assert sorted(t["name"] for t in tasks[:5]) == runtime_group()
        play = [{"hosts": "localhost", "gather_facts": False, "module_defaults": {"group/" + GROUP: {
            "sysfs_root": emu.root}}, "tasks": tasks}]
        run = run_playbook(play, check=True, diff=True)
        assert run.rc == 0, run.explain()
        for task in tasks:
            assert run[task["name"]]["_status"] == "ok", (task["name"], run[task["name"]])
        assert run["damon_info"]["thp"]["values"]["enabled"] == "always"  # the emulator's, not the host's
        assert run["thp"]["changed"] and run["thp"]["diff"]["before"]["enabled"] == "always"


def test_group_is_exactly_the_modules_that_take_sysfs_root():
    """meta/runtime.yml, each module's options and each module's action_group attribute agree."""
    modules = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module",
                          *("linux_mm.damon." + m for m in modules)], env=ansible_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    docs = {name.rsplit(".", 1)[1]: data["doc"] for name, data in json.loads(out.stdout).items()}
    assert sorted(docs) == modules
    with_root = sorted(m for m, doc in docs.items() if "sysfs_root" in doc.get("options", {}))
    members = sorted(m for m, doc in docs.items()
                     if GROUP in doc.get("attributes", {}).get("action_group", {}).get("membership", []))
    assert with_root == runtime_group() == members
    assert {"hot_processes", "collapse"}.isdisjoint(with_root)
