# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs INSIDE a guest (never on the host): what nr_accesses DAMON reports for a workload's ranges.

python3 access_probe.py PID START END [SECONDS]  -> JSON {"hot_max": .., "hot_mean": .., "rest_max": .., "regions": [...]}

Uses kdamond 0 of the guest directly (stat scheme, tried regions); DAMON_STAT is turned off first.
"""
import json
import os
import sys
import time

A = "/sys/kernel/mm/damon/admin"


def w(path, value):
    with open(os.path.join(A, path), "w") as f:
        f.write(str(value))


def r(path):
    with open(os.path.join(A, path)) as f:
        return f.read().strip()


pid, start, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
secs = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
stat = "/sys/module/damon_stat/parameters/enabled"
if os.path.exists(stat):
    with open(stat, "w") as f:
        f.write("N")
w("kdamonds/nr_kdamonds", 1)
k = "kdamonds/0/"
w(k + "contexts/nr_contexts", 1)
c = k + "contexts/0/"
w(c + "operations", "vaddr")
w(c + "targets/nr_targets", 1)
w(c + "targets/0/pid_target", pid)
w(c + "schemes/nr_schemes", 1)
s = c + "schemes/0/"
w(s + "action", "stat")
for key, lo, hi in (("sz", 0, 1 << 62), ("nr_accesses", 0, 1 << 30), ("age", 0, 1 << 30)):
    w(s + "access_pattern/%s/min" % key, lo)
    w(s + "access_pattern/%s/max" % key, hi)
w(k + "state", "on")
time.sleep(secs)
w(k + "state", "update_schemes_tried_regions")
d = s + "tried_regions/"
regions = []
for name in sorted((x for x in os.listdir(os.path.join(A, d)) if x.isdigit()), key=int):
    regions.append(dict(start=int(r(d + name + "/start")), end=int(r(d + name + "/end")),
                        nr_accesses=int(r(d + name + "/nr_accesses")), age=int(r(d + name + "/age"))))
w(k + "state", "off")
w("kdamonds/nr_kdamonds", 0)
hot = [x for x in regions if x["start"] >= start and x["end"] <= end]
rest = [x for x in regions if x["end"] <= start or x["start"] >= end]
tot = sum(x["end"] - x["start"] for x in hot) or 1
print(json.dumps(dict(hot_max=max([x["nr_accesses"] for x in hot] or [-1]),
                      hot_mean=round(sum(x["nr_accesses"] * (x["end"] - x["start"]) for x in hot) / tot, 2),
                      rest_max=max([x["nr_accesses"] for x in rest] or [-1]), nregions=len(regions))))
