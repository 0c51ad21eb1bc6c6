# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs INSIDE a benchmark guest (standard library only): samples the chase workload once per interval.

python3 guest_sampler.py WORKLOAD_JSON OUT_JSONL [INTERVAL_S]

Per sample: time, huge-page bytes of the exact hot, hot2 and cold ranges, the workload's RSS and
CPU ticks, the guest's busy CPU ticks (/proc/stat), the CPU ticks of kdamond and khugepaged
threads and of this sampler, and the THP counters of /proc/vmstat. Stops when the workload exits.

Huge-page bytes: per PMD-aligned 2 MiB chunk, the chunk counts as one huge page when its first
and last pages are present with PFNs pfn0 and pfn0+511, pfn0 is 512-aligned and /proc/kpageflags
marks pfn0 as a THP compound head (bits 22 and 15). That is O(1) per chunk (fast enough under
TCG); ``exact`` mode (plugins/module_utils/_pagemap.range_huge_bytes, every page) is used as a
cross-check at the end of each configuration.
"""
import json
import os
import struct
import sys
import time

HUGE = 2 << 20
PAGE = 4096
PER = HUGE // PAGE
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63
KPF_THP, KPF_HEAD = 1 << 22, 1 << 15


def huge_bytes(pid, start, end, kpf):
    a = -(-start // HUGE) * HUGE
    b = end // HUGE * HUGE
    total = 0
    with open("/proc/%d/pagemap" % pid, "rb") as pm:
        for chunk in range(a, b, HUGE):
            pm.seek(chunk // PAGE * 8)
            first = struct.unpack("<Q", pm.read(8))[0]
            if not first & PRESENT:
                continue
            pfn0 = first & PFN_MASK
            if not pfn0 or pfn0 % PER:
                continue
            pm.seek((chunk + HUGE - PAGE) // PAGE * 8)
            last = struct.unpack("<Q", pm.read(8))[0]
            if not last & PRESENT or (last & PFN_MASK) != pfn0 + PER - 1:
                continue
            kpf.seek(pfn0 * 8)
            flags = struct.unpack("<Q", kpf.read(8))[0]
            if flags & KPF_THP and flags & KPF_HEAD:
                total += HUGE
    return total


def ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def comm(pid):
    try:
        with open("/proc/%s/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def kthread_ticks():
    out = {"kdamond": 0, "khugepaged": 0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        name = comm(pid)
        key = "kdamond" if name.startswith("kdamond") else "khugepaged" if name == "khugepaged" else None
        if key:
            try:
                out[key] += ticks(pid)
            except (OSError, IndexError):
                pass
    return out


def busy_ticks():
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle and iowait


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def vmstat():
    out = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k.startswith("thp_collapse") or k in ("thp_fault_alloc",):
                out[k] = int(v)
    return out


def main():
    w = json.load(open(sys.argv[1]))
    out = open(sys.argv[2], "a", buffering=1)
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    pid = w["pid"]
    kpf = open("/proc/kpageflags", "rb")
    nxt = time.time()
    while True:
        try:
            s = {"t": time.time()}
            for part in ("hot", "hot2", "cold"):
                r = w[part]
                s[part] = huge_bytes(pid, r["start"], r["end"], kpf) if r["bytes"] else 0
            s["rss"] = rss_bytes(pid)
            s["wl_ticks"] = ticks(pid)
        except (OSError, IndexError, struct.error):
            break
        s["busy_ticks"] = busy_ticks()
        s["self_ticks"] = ticks("self")
        s.update(kthread_ticks())
        s["vmstat"] = vmstat()
        out.write(json.dumps(s) + "\n")
        nxt += interval
        time.sleep(max(0.0, nxt - time.time()))


if __name__ == "__main__":
    main()
