#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: hot_processes
short_description: Find the busiest processes worth backing with huge pages
version_added: 0.1.0
description:
  - Detects hot applications in user space, the job the kernel RFC "mm/damon - Support hot application
    detections" left to user space. It samples the CPU time (C(utime) + C(stime) of C(/proc/PID/stat))
    of every process twice, O(window_s) seconds apart, and ranks the processes by how much CPU time they
    used in between.
  - Each sample is a single pass over C(/proc) that reads one C(stat) file per process. The other files
    (C(status), C(cmdline), C(cgroup)) are read after the second sample, only for processes that passed
    the cheaper filters, and C(smaps_rollup) only for the processes returned.
  - Left out are kernel threads (C(PF_KTHREAD) in the C(stat) flags, or children of C(kthreadd) without a
    command line), zombies, the module's own process and all its ancestors (the Ansible worker chain,
    up to C(ansible-playbook) with a local connection), the processes in O(exclude_pids), and processes
    that exit while they are read.
  - The result is deterministic for given samples; ties are broken by PID.
  - With O(applications) it resolves declared applications instead (by name, command line, systemd unit, cgroup
    and user, without a CPU window). Each run finds an application's processes again, so a restarted process
    keeps the application's name and with it its kdamond and learned threshold in
    M(linux_mm.damon.hugepage_tune).
  - Needs root (C(become) true) or C(CAP_SYS_PTRACE) to read other processes' memory statistics; without it the
    task fails up front.
author:
  - linux_mm.damon contributors (@linux-mm-damon)
extends_documentation_fragment:
  - linux_mm.damon._common.info_module
attributes:
  platform:
    support: full
    platforms: posix
    description: Linux hosts only; the module reads C(/proc).
options:
  window_s:
    description:
      - Seconds between the two CPU-time samples. Between 0 and 3600; fractions are allowed.
      - CPU time is counted in clock ticks (usually 10 ms), so very short windows give coarse numbers.
    type: float
    default: 1.0
  top:
    description:
      - How many processes to return, busiest first. V(0) returns every matching process.
    type: int
    default: 5
  min_anon_rss_bytes:
    description:
      - Leave out processes with less resident anonymous memory than this, in bytes
        (C(RssAnon) of C(/proc/PID/status)). Suffixes such as V(64M) or V(1G) are accepted.
      - Processes smaller than one huge page cannot gain from huge pages.
    type: bytes
    default: 0
  min_cpu_pct:
    description:
      - Leave out processes that used less CPU than this over the window, in percent of one CPU
        (a process with several busy threads can exceed 100).
    type: float
    default: 0.0
  name_pattern:
    description:
      - Python regular expression searched (not anchored) in the process name, that is C(comm) (at most
        15 characters) or the base name of the first command-line argument.
      - Only the first 4096 characters of a name are searched, and one search may take at most 1 second; a
        pattern that backtracks longer fails the task with a message naming it.
    type: str
  cmdline_pattern:
    description:
      - Python regular expression searched (not anchored) in the command line, arguments joined by spaces.
      - Only the first 4096 characters of the command line are searched (a pattern anchored with C($) at a
        longer command line's end does not match), and one search may take at most 1 second; a pattern that
        backtracks longer fails the task with a message naming it.
    type: str
  users:
    description:
      - Keep only processes whose effective user is one of these, given as user names or numeric uids.
      - An unknown user name is an error.
    type: list
    elements: raw
  cgroup:
    description:
      - Keep only processes in this cgroup, matched against every cgroup path of C(/proc/PID/cgroup)
        (the unified cgroup v2 path and, on hybrid hosts, each v1 hierarchy's path).
      - A value starting with C(/) is a path prefix on component boundaries (V(/system.slice) matches
        C(/system.slice/nginx.service) but not C(/system.slice2)); any other value is a substring.
    type: str
  exclude_pids:
    description:
      - More PIDs to leave out, in addition to the module's own process and its ancestors.
    type: list
    elements: int
    default: []
  applications:
    description:
      - Applications declared by selector. Every criterion given must hold; at least one is required. A process
        goes to the first application that selects it. Kernel threads are never selected.
      - When set, RV(apps) lists the selected processes and the CPU ranking (O(window_s), O(top),
        O(min_cpu_pct), O(min_anon_rss_bytes)) is not used; O(name_pattern), O(cmdline_pattern), O(users) and
        O(cgroup) may not be combined with it (give them per application).
      - An application whose selector matches several processes is tuned as its O(applications[].processes)
        largest members by anonymous memory, each with its own kdamond and threshold, named C(NAME),
        C(NAME#2), ... in the order the processes started (a member keeps its kdamond while it runs).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the application; its kdamond is C(hugepage:NAME). No C(#) or C(:).
        type: str
        required: true
      name_pattern:
        description: Python regular expression searched in the process name (C(comm) or argv[0]'s base name).
        type: str
      cmdline_pattern:
        description: Python regular expression searched in the command line (arguments joined by spaces).
        type: str
      systemd_unit:
        description: A systemd unit whose cgroup (or a cgroup below it) holds the process, e.g. V(redis-server.service).
        type: str
      cgroup:
        description: A cgroup path prefix (starting with C(/)) or substring, as O(cgroup).
        type: str
      users:
        description: Effective users (names or uids).
        type: list
        elements: raw
      processes:
        description: How many of the matching processes to tune (largest anonymous memory first), 1 to 16.
        type: int
        default: 1
      budget_bytes:
        description: Huge-page byte budget of each member (V(0) unlimited), passed on in RV(apps).
        type: int
        default: 0
notes:
  - Reading C(smaps_rollup) of another user's process needs ptrace read access; without it
    RV(processes[].anon_huge_bytes) is V(null). Processes hidden by C(hidepid) are not seen.
  - CPU time is only a proxy for memory hotness. Confirm with DAMON (M(linux_mm.damon.kdamond)) before
    collapsing memory into huge pages with M(linux_mm.damon.collapse).
seealso:
  - module: linux_mm.damon.collapse
  - module: linux_mm.damon.kdamond
"""

EXAMPLES = r"""
- name: Five busiest processes with at least 256 MiB of anonymous memory
  linux_mm.damon.hot_processes:
    window_s: 2
    min_anon_rss_bytes: 256M
  register: hot

- name: Show them
  ansible.builtin.debug:
    msg: "{{ hot.processes | map(attribute='comm') | list }}"

- name: Busiest database process of the postgres user in its systemd unit
  linux_mm.damon.hot_processes:
    top: 1
    name_pattern: ^postgres
    users: [postgres]
    cgroup: /system.slice/postgresql.service
  register: db

- name: Resolve declared applications (a restarted redis keeps its name)
  linux_mm.damon.hot_processes:
    applications:
      - {name: cache, systemd_unit: redis-server.service}
      - {name: db, name_pattern: ^postgres, users: [postgres], processes: 4}
  register: declared

- name: Every process using at least half a CPU, by command line
  linux_mm.damon.hot_processes:
    window_s: 0.5
    top: 0
    min_cpu_pct: 50
    cmdline_pattern: "java .*-jar"
  register: java_hot
"""

RETURN = r"""
processes:
  description:
    - The matching processes with the largest CPU-time delta over the window, at most O(top), busiest
      first; ties are broken by ascending PID.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
      sample: 4242
    ppid:
      description: Parent process id.
      type: int
      sample: 1
    comm:
      description: Process name (C(comm), at most 15 characters).
      type: str
      sample: postgres
    cmdline:
      description: Command-line arguments.
      type: list
      elements: str
      sample: [/usr/lib/postgresql/16/bin/postgres, -D, /var/lib/postgresql/16/main]
    uid:
      description: Effective user id.
      type: int
      sample: 105
    user:
      description: Name of the effective user (the uid as text when it has no name).
      type: str
      sample: postgres
    cgroup:
      description:
        - The process's cgroup path. On hybrid cgroup v1/v2 hosts, the path in the v1 C(memory) hierarchy.
      type: str
      sample: /system.slice/postgresql.service
    cpu_seconds:
      description: CPU time (user + system, all threads) used during the window, in seconds.
      type: float
      sample: 1.93
    cpu_pct:
      description: RV(processes[].cpu_seconds) as a percentage of the measured window (100 is one busy CPU).
      type: float
      sample: 96.5
    threads:
      description: Number of threads.
      type: int
      sample: 12
    anon_rss_bytes:
      description: Resident anonymous memory in bytes (C(RssAnon) of C(/proc/PID/status)).
      type: int
      sample: 1073741824
    anon_huge_bytes:
      description:
        - Anonymous memory mapped by PMD-sized huge pages, in bytes (C(AnonHugePages) of C(smaps_rollup)).
        - V(null) when C(smaps_rollup) may not be read.
      type: int
      sample: 0
    thp_eligible:
      description:
        - A hint that huge pages could help this process; V(true) when THP is not disabled for it
          (C(THP_enabled) of C(/proc/PID/status), set with C(prctl) C(PR_SET_THP_DISABLE)) and it has at least
          one huge page worth of anonymous memory.
        - The system-wide THP policy is not considered, since C(MADV_COLLAPSE) works whatever it is;
          mappings marked C(MADV_NOHUGEPAGE) can still refuse.
      type: bool
      sample: true
apps:
  description:
    - The same processes as C(name)/C(pid) pairs, ready for M(linux_mm.damon.hugepage_tune). The name is the
      process name (C(comm)), followed by C(-PID) when several selected processes share it.
    - With O(applications), one entry per member of each application (C(name), C(pid), C(budget_bytes) and
      C(application), the declared name).
  returned: always
  type: list
  elements: dict
  sample: [{name: postgres, pid: 4242}]
applications:
  description:
    - With O(applications), per declared application in order, what its selector found.
  returned: when O(applications) is set
  type: list
  elements: dict
  contains:
    name:
      description: The declared name.
      type: str
      sample: cache
    matched:
      description: Processes the selector matched (kernel threads never match).
      type: int
      sample: 1
    pids:
      description: The PIDs of its members, in member order.
      type: list
      elements: int
      sample: [812]
    taken:
      description: Matching processes an earlier application got, as PID to application name.
      type: dict
      sample: {}
    msg:
      description: Why the application resolved to nothing or to fewer processes than matched; V(null) otherwise.
      type: str
      sample: "cache: no process matches its selector; not tuned this run"
summary:
  description: Numbers of the scan (with O(applications), only C(scanned) and C(unreadable)).
  returned: always
  type: dict
  contains:
    window_s:
      description: Measured time between the two samples, in seconds.
      type: float
      sample: 1.0021
    scanned:
      description: Processes seen in the second sample.
      type: int
      sample: 312
    exited:
      description: Processes that exited between the samples or while being read, and zombies.
      type: int
      sample: 2
    kernel_threads:
      description: Kernel threads left out.
      type: int
      sample: 120
    excluded:
      description: The module's own process chain and O(exclude_pids) found and left out.
      type: int
      sample: 6
    filtered:
      description: Processes the filters left out.
      type: int
      sample: 170
    unreadable:
      description: Processes whose files could not be read (permissions).
      type: int
      sample: 0
    matched:
      description: Processes that passed every filter (before O(top) was applied).
      type: int
      sample: 14
"""

import math

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linux_mm.damon.plugins.module_utils import _app_selectors
from ansible_collections.linux_mm.damon.plugins.module_utils._hot_processes import (
    HotProcessError,
    find_hot_processes,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._privilege import CAP_SYS_PTRACE, fail_unless_root

MAX_WINDOW_S = 3600.0


ARGUMENT_SPEC = dict(
    window_s=dict(type="float", default=1.0),
    top=dict(type="int", default=5),
    min_anon_rss_bytes=dict(type="bytes", default=0),
    min_cpu_pct=dict(type="float", default=0.0),
    name_pattern=dict(type="str"),
    cmdline_pattern=dict(type="str"),
    users=dict(type="list", elements="raw"),
    cgroup=dict(type="str"),
    exclude_pids=dict(type="list", elements="int", default=[]),
    applications=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True), name_pattern=dict(type="str"), cmdline_pattern=dict(type="str"),
        systemd_unit=dict(type="str"), cgroup=dict(type="str"), users=dict(type="list", elements="raw"),
        processes=dict(type="int", default=1), budget_bytes=dict(type="int", default=0))),
)
MUTUALLY_EXCLUSIVE = [("applications", name) for name in ("name_pattern", "cmdline_pattern", "users", "cgroup")]


def as_apps(processes):
    """{name, pid} per process; names made unique with the PID where comm repeats."""
    counts = {}
    for proc in processes:
        counts[proc["comm"]] = counts.get(proc["comm"], 0) + 1
    return [{"name": p["comm"] if counts[p["comm"]] == 1 else "%s-%d" % (p["comm"], p["pid"]), "pid": p["pid"]}
            for p in processes]


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    p = module.params
    fail_unless_root(module, "hot_processes", "read other processes' memory statistics (/proc/PID/smaps_rollup)",
                     enough_cap=CAP_SYS_PTRACE)
    if p["applications"] is not None:
        try:
            apps, report, summary = _app_selectors.resolve(p["applications"], exclude_pids=p["exclude_pids"])
        except HotProcessError as e:
            module.fail_json(msg=str(e))
        module.exit_json(changed=False, processes=[], apps=apps, applications=report, summary=summary)

    if not 0.0 <= p["window_s"] <= MAX_WINDOW_S:
        module.fail_json(msg="window_s: %r is outside 0..%d seconds" % (p["window_s"], MAX_WINDOW_S))
    if p["top"] < 0:
        module.fail_json(msg="top: %r is negative (0 returns every matching process)" % p["top"])
    if p["min_anon_rss_bytes"] < 0:
        module.fail_json(msg="min_anon_rss_bytes: %r is negative" % p["min_anon_rss_bytes"])
    if not p["min_cpu_pct"] >= 0 or math.isinf(p["min_cpu_pct"]):  # NaN compares false: it would match everything
        module.fail_json(msg="min_cpu_pct: %r is not a finite number >= 0" % p["min_cpu_pct"])

    try:
        processes, summary = find_hot_processes(
            window_s=p["window_s"],
            top=p["top"],
            min_anon_rss_bytes=p["min_anon_rss_bytes"],
            min_cpu_pct=p["min_cpu_pct"],
            name_pattern=p["name_pattern"],
            cmdline_pattern=p["cmdline_pattern"],
            users=p["users"],
            cgroup=p["cgroup"],
            exclude_pids=p["exclude_pids"],
        )
    except HotProcessError as e:
        module.fail_json(msg=str(e))

    module.exit_json(changed=False, processes=processes, apps=as_apps(processes), summary=summary)


if __name__ == "__main__":
    main()
