# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What `make demo` (tests/demo.py) prints, without a guest: the summary's wording, progress while a
guest boots, and ansible-playbook's output line by line while it runs (no timing assertions: the
fakes wait for the printed line itself, so output that came only at the end would fail the test)."""

from __future__ import annotations

import re
import sys
import threading

import pytest

from tests import demo

MIB = 1 << 20


def test_module_switches_are_named():
    grep = ("/sys/module/damon_lru_sort/parameters/enabled:N\n/sys/module/damon_reclaim/parameters/enabled:N\n"
            "/sys/module/damon_stat/parameters/enabled:Y\n")
    switches = demo.module_switches(grep)
    assert demo.switches_text(switches) == "DAMON_RECLAIM off, DAMON_LRU_SORT off, DAMON_STAT on"
    assert demo.switches_text(demo.module_switches("")) == "none built into this kernel"


@pytest.mark.parametrize("threshold, of, text", [
    (9, 20, "9 of 20 samples (45 %)"), (21, 20, "21 of 20 samples (above all of them: collapse nothing)"),
    (3, None, "3 samples"), (None, 20, "unchanged")])
def test_threshold_text(threshold, of, text):
    assert demo.threshold_text(threshold, of) == text


def fake_run(hot_bytes=66 * MIB, huge_hot=64 * MIB):
    return {
        "workload": {"hot": {"bytes": 64 * MIB}, "cold": {"bytes": 256 * MIB}},
        "before": {"hot": 0, "cold": 0}, "after": {"hot": 64 * MIB, "cold": 0}, "apply_seconds": 92.4,
        "report": {"path": "damos_collapse", "threshold": 9, "max_nr_accesses": 20, "hot_bytes": hot_bytes,
                   "huge_bytes_hot": huge_hot, "hot_coverage": huge_hot / hot_bytes},
        "prior": {"modules": {"DAMON_RECLAIM": "off", "DAMON_LRU_SORT": "off", "DAMON_STAT": "on"}},
        "restored": {"modules": {"DAMON_RECLAIM": "off", "DAMON_LRU_SORT": "off", "DAMON_STAT": "on"},
                     "kdamonds": "0"},
        "out_dir": "/tmp/demo-out",
    }


def test_summary_says_what_each_coverage_measures():
    text = "\n".join(demo.summary(fake_run(), "damon-7.3", "adaptive"))
    assert re.search(r"hot part in huge pages +0% +100%", text)
    assert re.search(r"cold part in huge pages +0 MiB +0 MiB", text)
    assert "measured by this demo per 4 KiB page" in text
    assert ("Threshold: 9 of 20 samples (45 %). A 2 MiB chunk counts as hot when DAMON saw it accessed in at least "
            "that many of the samples of one aggregation interval.") in text
    assert ("Fleet report hot_coverage 0.970: the huge-page share of the 66 MiB DAMON sees hot (64 MiB huge), not of "
            "the workload's 64 MiB hot part measured above; DAMON's hot chunks take in 2 MiB beyond the workload's "
            "hot part.") in text
    assert ("DAMON modules the kernel runs alone: before DAMON_RECLAIM off, DAMON_LRU_SORT off, DAMON_STAT on; "
            "after playbooks/stop.yml DAMON_RECLAIM off, DAMON_LRU_SORT off, DAMON_STAT on. Kdamonds left: 0.") in text
    assert "NNY" not in text and "of 20," not in text


def test_summary_when_damon_sees_less_than_the_hot_part():
    text = "\n".join(demo.summary(fake_run(hot_bytes=60 * MIB, huge_hot=60 * MIB), "damon-6.12", "stepdown"))
    assert "hot_coverage 1.000" in text and "DAMON saw 4 MiB of the workload's hot part below the threshold" in text


class FakeGuest:
    """Stands in for tests.vm.guest.Guest: start() returns once the demo has said it is booting."""

    said = None

    def __init__(self, kernel, tmp):
        self.console_log = tmp / "console.log"
        self.kernel = kernel

    def start(self):
        self.console_log.write_text("[    3.1] EXT4-fs (vda): mounted\nReached target multi-user.target\n")
        if not FakeGuest.said.wait(120):
            raise AssertionError("nothing was printed while the guest booted")
        return self


def test_boot_prints_progress_with_the_console_line(monkeypatch, tmp_path):
    FakeGuest.said = threading.Event()
    monkeypatch.setattr(demo, "Guest", lambda kernel: FakeGuest(kernel, tmp_path))
    printed = []

    def echo(text, **_kw):
        printed.append(text)
        if text.startswith("  booting the damon-7.3 guest"):
            FakeGuest.said.set()

    guest = demo.boot("damon-7.3", echo, every=0.1)
    assert isinstance(guest, FakeGuest)
    assert printed[0] == "Booting the damon-7.3 guest..."
    assert "s  | Reached target multi-user.target" in printed[1]


PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      ansible.builtin.debug:
        msg: the table of the report
    - name: wait for the test
      ansible.builtin.wait_for:
        path: "{{ go_file }}"
        timeout: 120
    - name: after the wait
      ansible.builtin.debug:
        msg: done
"""


def test_playbook_output_is_printed_as_it_comes(monkeypatch, tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "probe.yml").write_text(PLAYBOOK)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    guest:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % sys.executable)
    go_file = tmp_path / "go"
    monkeypatch.setattr(demo, "REPO", tmp_path)
    printed = []

    def echo(text, **_kw):
        printed.append(text)
        # The wait_for task ends only when the test has seen its header and then the quiet note:
        # both must be printed while ansible-playbook still runs.
        if "still running after" in text and "TASK [wait for the test]" in text:
            go_file.write_text("")

    recap = demo.playbook("probe.yml", inventory, {"go_file": str(go_file)}, tmp_path / "ansible.log", echo,
                          quiet_s=0.5)
    assert recap == {"guest": {"ok": 3, "changed": 0}}
    text = "".join(printed)
    assert "the table of the report" in text and "PLAY RECAP" in text
    note = text.index("... TASK [wait for the test]: still running after")
    assert text.index("TASK [wait for the test] ***") < note < text.index("TASK [after the wait]")
    assert "the table of the report" in (tmp_path / "ansible.log").read_text()


def test_a_failing_playbook_raises_with_the_log(monkeypatch, tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "bad.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.fail:\n        msg: broken\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    guest:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % sys.executable)
    monkeypatch.setattr(demo, "REPO", tmp_path)
    printed = []
    with pytest.raises(RuntimeError, match=r"ansible-playbook bad.yml failed \(rc 2 after \d+ s\); see .*ansible.log"):
        demo.playbook("bad.yml", inventory, {}, tmp_path / "ansible.log", lambda t, **kw: printed.append(t))
    assert "broken" in "".join(printed)


def fake_redis(hot=0.97, cold=0.017, judged=0.004):
    def shares(h, c, at_s=None):
        s = {"hot_huge_share": h, "hot_touched_bytes": 31 * MIB, "cold_bloat": c, "cold_huge_bytes": int(c * 330 * MIB),
             "cold_resident_bytes": 330 * MIB}
        return dict(s, at_s=at_s) if at_s else s
    return {
        "kernel": "7.3.4+deb13-cloud-amd64", "dataset": {"dbsize": 330_000}, "before": shares(0.0, 0.0),
        "after_run": shares(hot, cold, 120.4), "at_until": shares(hot, cold, 180.2), "cold_values_huge": judged,
        "report_rows": [{"threshold": 4, "max_nr_accesses": 20, "path": "user_collapse"}],
        "messages": ['ok: [damon-73] => {', '"msg": "5 iterations, stopped: converged. redis-server: threshold 20.00 %"'],
        "prior_modules": {"DAMON_STAT": "on"}, "restored": {"modules": {"DAMON_STAT": "on"}, "kdamonds": "0"},
        "extra_vars": {"report_dir": "/tmp/r"}, "log": "/tmp/r/ansible.log"}


def test_redis_summary_gives_the_ground_truth_the_judged_bloat_and_the_targets():
    text = "\n".join(demo.redis_summary(fake_redis(), "damon-7.3"))
    assert re.search(r"the hot keys' memory in huge pages\s+0%\s+97%", text), text
    assert re.search(r"the other memory in huge pages\s+0.0%\s+1.7%", text), text
    assert re.search(r"of which cold values or zeros \(bloat\)\s+0.4%", text), text
    assert "at 180 s" in text and "4 of 20 samples (20 %) on the user_collapse path" in text
    assert "huge: met; cold values made huge <= 2 %: met." in text
    assert "The run said: 5 iterations, stopped: converged. redis-server: threshold 20.00 %" in text
    assert "before DAMON_STAT on; after playbooks/stop.yml DAMON_STAT on. Kdamonds left: 0." in text
    missed = "\n".join(demo.redis_summary(fake_redis(hot=0.5, judged=None), "damon-7.3"))
    assert "huge: MISSED; cold values made huge <= 2 %: MISSED." in missed and "bloat)" in missed
