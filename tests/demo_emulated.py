# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo-emulated` — the main job on an EMULATED kernel, in seconds, without a guest.

Runs the collection end to end against an emulated Linux 7.3 DAMON sysfs (the
FUSE emulator in tests/emulator), never the host's: a real hot/cold workload
runs on the host, the emulator's access model marks its hot range hot, and
real ansible-playbook runs detect DAMON, configure a kdamond with a DAMOS
`collapse` scheme (stopping the emulated DAMON_STAT module and restoring it),
let emulated time pass, and report how much of the hot and the cold range
became huge pages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.emulator import EmulatedSysfs  # noqa: E402  pylint: disable=wrong-import-position
from tests.tooling import collection_tree  # noqa: E402  pylint: disable=wrong-import-position
from tests.workloads import HotCold  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1 << 20

PLAYBOOK = textwrap.dedent("""
    - name: Collapse the hot memory of the demo workload (emulated Linux 7.3)
      hosts: localhost
      gather_facts: false
      vars:
        damon_common: &common
          sysfs_root: "{{ sysfs_root }}"
          kernel_release: "7.3.4"
          ownership_file: "{{ ownership_file }}"
      tasks:
        - name: Read DAMON facts
          linux_mm.damon.damon_info: *common
          register: damon
        - name: Show what this kernel can do
          ansible.builtin.debug:
            msg: "DAMON {{ damon.available }}, collapse action: {{ 'collapse' in damon.features.actions }},
                  exclusive modules running: {{ damon.exclusive_modules | dict2items | selectattr('value.enabled') | map(attribute='key') | list }}"
        - name: Collapse regions of the workload that are hot (>= 10 of 20 samples) and at least 2 MiB
          linux_mm.damon.kdamond:
            <<: *common
            name: demo
            state: "{{ kdamond_state }}"
            exclusive_modules: stop
            targets: [{pid: "{{ workload_pid }}"}]
            schemes:
              - action: collapse
                access_pattern: {min_size: 2097152, min_nr_accesses: 10}
                quotas: {bytes: 67108864, reset_interval_ms: 1000}
          register: kdamond
        - name: Show the kdamond
          ansible.builtin.debug:
            msg: "kdamond {{ kdamond.kdamond.index | default('-') }}: {{ kdamond.kdamond.state | default('removed') }},
                  {{ kdamond.writes | length }} sysfs writes, changed={{ kdamond.changed }}"
""")


def run_playbook(path, **extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_tree.build().parents[2]),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", json.dumps(dict(extra, ansible_python_interpreter=sys.executable)), str(path)]
    print("$ ansible-playbook %s  (kdamond_state=%s)" % (path.name, extra["kdamond_state"]), flush=True)
    subprocess.run(cmd, env=env, check=True, timeout=300)


def coverage(emu, workload):
    ranges = emu.status()["targets"][0]["ranges"]
    by_start = dict((r["start"], r) for r in ranges)
    hot, cold = by_start[workload.hot[0]], by_start[workload.cold[0]]
    return (hot["huge_bytes"] / (hot["end"] - hot["start"]), cold["huge_bytes"] / MIB)


def main():
    with HotCold(hot_mb=32, cold_mb=64) as workload, tempfile.TemporaryDirectory() as tmp:
        scenario = {"speed": 0, "targets": [{"pid": workload.pid, "regions": [
            {"start": workload.hot[0], "end": workload.hot[1], "rate": 0.8},
            {"start": workload.cold[0], "end": workload.cold[1], "rate": 0.0}]}]}
        with EmulatedSysfs(kernel="7.3", scenario=scenario) as emu:
            print("EMULATED DEMO: Linux 7.3 DAMON sysfs emulated at %s; workload pid %d, hot %d MiB, cold %d MiB"
                  % (emu.root, workload.pid, (workload.hot[1] - workload.hot[0]) // MIB,
                     (workload.cold[1] - workload.cold[0]) // MIB), flush=True)
            playbook = Path(tmp) / "demo.yml"
            playbook.write_text(PLAYBOOK)
            common = dict(sysfs_root=emu.root, ownership_file=os.path.join(tmp, "ownership.json"), workload_pid=workload.pid)
            before = coverage(emu, workload)
            run_playbook(playbook, kdamond_state="running", **common)
            emu.advance(10)  # ten seconds of emulated DAMON time
            after = coverage(emu, workload)
            run_playbook(playbook, kdamond_state="absent", **common)
            print("\n%-28s %12s %12s" % ("", "before", "after 10 s"))
            print("%-28s %11.0f%% %11.0f%%" % ("hot range in huge pages", before[0] * 100, after[0] * 100))
            print("%-28s %9.0f MiB %9.0f MiB" % ("cold range in huge pages", before[1], after[1]))
            print("DAMON_STAT restored: %s" % emu.status()["modules"]["damon_stat"])


if __name__ == "__main__":
    main()
