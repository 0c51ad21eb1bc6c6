# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_app_selectors.py on a fake /proc tree."""

from __future__ import annotations

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _app_selectors as sel
from ansible_collections.linux_mm.damon.plugins.module_utils._hot_processes import HotProcessError
from tests.helpers.fake_proc import FakeProc

REDIS_CG = "0::/system.slice/redis-server.service\n"
PG_CG = "0::/system.slice/postgresql@17-main.service\n"


@pytest.fixture
def proc(tmp_path):
    p = FakeProc(tmp_path / "proc")
    p.add(1, comm="systemd", ppid=0, cmdline=["/sbin/init"], cgroup="0::/init.scope\n")
    p.add(2, comm="kthreadd", ppid=0, flags=0x208040, anon_kb=None, cmdline=[])
    p.add(3, comm="kworker/redis", ppid=2, flags=0x4208060, anon_kb=None, cmdline=[])
    p.add(50, comm="python3", ppid=1, cmdline=["python3", "AnsiballZ_hot_processes.py"])
    p.add(700, comm="redis-server", starttime=500, anon_kb=900000, uid=110, cgroup=REDIS_CG,
          cmdline=["/usr/bin/redis-server 127.0.0.1:6379"])
    # a database: the postmaster and three backends, started in this order, different sizes
    for pid, start, kb in ((800, 600, 40000), (801, 700, 300000), (802, 800, 500000), (803, 900, 100000)):
        p.add(pid, comm="postgres", starttime=start, anon_kb=kb, uid=120, cgroup=PG_CG,
              cmdline=["/usr/lib/postgresql/17/bin/postgres", "-D", "/var/lib/postgresql/17/main"])
    return p


def resolve(proc, specs, **kwargs):
    return sel.resolve(specs, proc_root=str(proc.root), self_pid=50, **kwargs)


def test_a_systemd_unit_selects_its_process_by_name(proc):
    apps, report, summary = resolve(proc, [{"name": "cache", "systemd_unit": "redis-server.service"}])
    assert apps == [{"name": "cache", "pid": 700, "budget_bytes": 0, "application": "cache"}]
    assert report == [{"name": "cache", "matched": 1, "pids": [700], "taken": {}, "msg": None}]
    assert summary["scanned"] == 7  # the module's own chain (pid 50, 1 is its parent) is not scanned


def test_a_restarted_process_keeps_the_application_name(proc):
    first, unused, unused2 = resolve(proc, [{"name": "cache", "name_pattern": "^redis"}])
    proc.remove(700)
    proc.add(905, comm="redis-server", starttime=5000, anon_kb=1000, uid=110, cgroup=REDIS_CG)
    second, unused, unused2 = resolve(proc, [{"name": "cache", "name_pattern": "^redis"}])
    assert [(a["name"], a["pid"]) for a in first] == [("cache", 700)]
    assert [(a["name"], a["pid"]) for a in second] == [("cache", 905)]


def test_several_processes_are_the_largest_members_in_start_order(proc):
    apps, report, unused = resolve(proc, [{"name": "db", "users": ["120"], "processes": 2, "budget_bytes": 7}])
    # 802 (500 MB) and 801 (300 MB) are the largest; 801 started first, so it is "db"
    assert [(a["name"], a["pid"], a["budget_bytes"]) for a in apps] == [("db", 801, 7), ("db#2", 802, 7)]
    assert report[0]["matched"] == 4
    assert "matches 4 processes; tuning the 2 with the most anonymous memory" in report[0]["msg"]


def test_a_member_keeps_its_name_while_a_smaller_one_comes_and_goes(proc):
    spec = [{"name": "db", "cgroup": "/system.slice/postgresql@17-main.service", "processes": 2}]
    before = dict((a["pid"], a["name"]) for a in resolve(proc, spec)[0])
    proc.add(804, comm="postgres", starttime=950, anon_kb=200000, cgroup=PG_CG)
    after = dict((a["pid"], a["name"]) for a in resolve(proc, spec)[0])
    assert before == after == {801: "db", 802: "db#2"}


def test_criteria_are_anded_and_a_process_goes_to_the_first_application(proc):
    apps, report, unused = resolve(proc, [
        {"name": "big", "name_pattern": "postgres", "cmdline_pattern": "-D /var/lib/postgresql/17"},
        {"name": "again", "name_pattern": "postgres", "processes": 4},
        {"name": "nobody", "name_pattern": "postgres", "users": [0]},
    ])
    assert [(a["name"], a["pid"]) for a in apps] == [("big", 802), ("again", 800), ("again#2", 801),
                                                     ("again#3", 803)]
    assert report[1]["taken"] == {802: "big"}
    assert report[2]["matched"] == 0 and "no process matches" in report[2]["msg"]


def test_a_selector_matching_only_kernel_threads_says_so(proc):
    apps, report, unused = resolve(proc, [{"name": "kw", "name_pattern": "^kworker"}])
    assert apps == []
    assert "only kernel threads (kworker/redis)" in report[0]["msg"]


def test_when_every_match_is_taken_the_message_names_the_owner(proc):
    unused, report, unused2 = resolve(proc, [{"name": "a", "name_pattern": "redis"},
                                             {"name": "b", "systemd_unit": "redis-server.service"}])
    assert report[1]["msg"] == ("b: every process its selector matches belongs to an earlier application (a); "
                                "not tuned")


def test_excluded_pids_are_never_selected(proc):
    apps, unused, unused2 = resolve(proc, [{"name": "cache", "name_pattern": "redis"}], exclude_pids=[700])
    assert apps == []


@pytest.mark.parametrize("spec, words", [
    ({"name": "x"}, "give at least one of name_pattern"),
    ({"name": "", "users": [0]}, "applications[0].name"),
    ({"name": "a#2", "users": [0]}, "without '#'"),
    ({"name": "x", "name_pattern": "("}, "applications[x].name_pattern: '(' is not a valid regular expression"),
    ({"name": "x", "systemd_unit": "/system.slice"}, "is not a unit name"),
    ({"name": "x", "users": [0], "processes": 17}, "processes: 17 is not within 1..16"),
    ({"name": "x", "users": ["no-such-user-here"]}, "applications[x].users: no user named"),
])
def test_bad_selectors_name_the_problem(proc, spec, words):
    with pytest.raises(HotProcessError, match=None) as e:
        resolve(proc, [spec])
    assert words in str(e.value)


def test_repeated_names_are_refused(proc):
    with pytest.raises(HotProcessError, match="names must be unique; repeated: a"):
        resolve(proc, [{"name": "a", "users": [0]}, {"name": "a", "users": [1]}])


def test_the_role_readme_example_resolves_as_written(proc, monkeypatch):
    import pwd
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[4] / "roles" / "hugepage" / "README.md").read_text()
    [block] = [b for b in re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S) if "hugepage_applications:" in b]
    specs = yaml.safe_load(block)["hugepage_applications"]
    real = pwd.getpwnam
    monkeypatch.setattr(pwd, "getpwnam", lambda name: type("Pw", (), {"pw_uid": 120}) if name == "postgres"
                        else real(name))
    proc.add(990, comm="java", starttime=990, anon_kb=2000000, cmdline=["java", "-jar", "/opt/search/search.jar"])
    apps, report, unused = resolve(proc, specs)
    assert [(a["name"], a["pid"]) for a in apps] == [("cache", 700), ("db", 801), ("db#2", 802), ("search", 990)]
    assert apps[1]["budget_bytes"] == 4294967296
