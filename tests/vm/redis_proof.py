# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 12's proof on real redis: playbooks/hugepage.yml against a guest running redis under GET load,
measured with the harness's ground truth (``apps.redis_hot_memory``: the hot keys' pages by soft-dirty).

    flock /tmp/guest.lock python -m tests.vm.redis_proof --kernel damon-7.3 [--disable-thp no]
        [--cold-keys 1200000 --hot-keys 100000] [--until-s 300]

Prints one JSON document: dataset, ground truth before, the playbook's messages (hugepage_tune's
``msg`` and the report row), the ground truth right after the first run and at ``until_s`` seconds
after the first run started: ``hot_huge_share`` (hot keys' touched bytes in huge pages / hot keys'
touched bytes) and ``cold_bloat`` (huge bytes in the other chunks / their resident bytes); then
what DAMON sees (``observed``), the per-chunk ground truth and what the cold huge chunks hold
(``cold_huge_contents``: hot values, cold values, pointers, zeros or other, per sampled page: ``page_kind``).
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.vm import apps
from tests.vm.guest import Guest

REPO = Path(__file__).resolve().parents[2]


def shares(truth: dict) -> dict:
    hot, cold = truth["hot"], truth["cold"]
    return {"hot_touched_bytes": hot["touched_bytes"], "hot_touched_huge_bytes": hot["touched_huge_bytes"],
            "hot_huge_share": round(hot["touched_huge_bytes"] / hot["touched_bytes"], 4) if hot["touched_bytes"]
            else None,
            "hot_chunks": hot["chunks"], "hot_resident_bytes": hot["resident_bytes"], "hot_huge_bytes": hot["huge_bytes"],
            "cold_resident_bytes": cold["resident_bytes"], "cold_huge_bytes": cold["huge_bytes"],
            "cold_bloat": round(cold["huge_bytes"] / cold["resident_bytes"], 4) if cold["resident_bytes"] else None,
            "hot_chunk_addrs": truth.get("hot_chunks")}


def shares_line(label: str, sh: dict) -> str:
    """One line of ``shares``: the hot keys' memory and the other memory in huge pages."""
    hot = sh["hot_huge_share"]
    return "%s: the hot keys' memory %s in huge pages (%d MiB touched), the other memory %.1f %% (%d of %d MiB)" % (
        label, "—" if hot is None else "%.0f %%" % (100 * hot), sh["hot_touched_bytes"] >> 20,
        100 * (sh["cold_bloat"] or 0.0), sh["cold_huge_bytes"] >> 20, sh["cold_resident_bytes"] >> 20)


def messages(log_text: str) -> list:
    """The role's outcome lines from ansible-playbook's output."""
    keep = []
    for line in log_text.splitlines():
        s = line.strip()
        if re.match(r'^"msg": ', s) or "hugepage_tune:" in s or s.startswith(("ok: [", "changed: [", "fatal:")) \
                and "=>" in s:
            keep.append(s[:2000])
    return keep


def run_playbook(guest, extra: dict, log: Path, timeout_s: float = 900, echo=None) -> dict:
    """playbooks/hugepage.yml against the guest; ``echo`` gets each output line (default: none)."""
    from tests import demo  # its runner builds the collection tree and echoes every line
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.yml"
        guest.write_inventory(inventory)
        started = time.monotonic()
        recap = demo.playbook("hugepage.yml", inventory, extra, log, echo=echo or (lambda *a, **k: None),
                              timeout_s=timeout_s)
        return {"recap": recap, "seconds": round(time.monotonic() - started, 1)}


def observe(guest) -> list:
    """What DAMON sees now for each owned application (hugepage_step ``state: observed``, no writes):
    threshold, intervals and the per-2 MiB-chunk access levels, to set next to the ground truth."""
    from tests.tooling import collection_tree
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.yml"
        guest.write_inventory(inventory)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_tree.build().parents[2]),
                   ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.oneline", ANSIBLE_NOCOLOR="1")
        cmd = [str(Path(sys.executable).parent / "ansible"), "-i", str(inventory), "all", "-m",
               "linux_mm.damon.hugepage_step", "-a", json.dumps({"apps": [], "state": "observed"})]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    keep = ("name", "pid", "threshold", "max_nr_accesses", "intervals", "chunk_histogram", "hot_bytes",
            "huge_bytes_hot", "huge_bytes_cold")
    try:  # "host | SUCCESS => {...}", one line per host
        results = [json.loads(line.split(" => ", 1)[1]) for line in res.stdout.splitlines() if " => " in line]
        return [dict((k, app.get(k)) for k in keep) for r in results for app in r["apps"]]
    except (ValueError, KeyError, IndexError):
        return [{"error": (res.stdout + res.stderr)[-2000:]}]


def page_kind(data: bytes) -> str:
    """What one 4 KiB page of redis's heap holds: the hot keys' values (all "h"), cold keys' values
    (DEBUG POPULATE's zero-padded "value:N"), a pointer array (at least 64 non-zero 8-byte words, nine in
    ten of them user-space addresses, tag bits aside: the dictionary's bucket table, which every GET reads),
    zeros, or other (key names, dict entries, allocator metadata). Runs in the guest too (CHUNK_CONTENT_PY)."""
    if data.count(b"h") > 3000:
        return "hot values"
    if b"value:" in data:
        return "cold values"
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - 7, 8)]
    nonzero = [w for w in words if w]
    if len(nonzero) >= 64 and 10 * sum(1 for w in nonzero if 1 << 16 <= w >> 3 << 3 < 1 << 47) >= 9 * len(nonzero):
        return "pointers"
    if data.count(b"\0") > 3800:
        return "zeros"
    return "other"


# every 8th page of each chunk read from /proc/PID/mem, classified by page_kind
CHUNK_CONTENT_PY = inspect.getsource(page_kind) + r"""
import collections, json, sys
pid, chunks = int(sys.argv[1]), json.loads(sys.argv[2])
out = {}
with open("/proc/%d/mem" % pid, "rb") as mem:
    for c in chunks:
        kinds = collections.Counter()
        for page in range(0, 512, 8):
            mem.seek(int(c, 16) + page * 4096)
            kinds[page_kind(mem.read(4096))] += 1
        out[c] = dict(kinds)
print(json.dumps(out))
"""


TRACE_EVENT = "/sys/kernel/tracing/events/damon/damos_before_apply"
APPLY_RE = re.compile(r"\s(\d+\.\d+): damos_before_apply: .*?scheme_idx=(\d+).*?nr_regions=(\d+) (\d+)-(\d+): (\d+) (\d+)")


def start_apply_trace(guest) -> bool:
    """Trace every region the acting scheme (scheme 1: collapse, stat or hugepage) is applied to --
    the kernel's tracepoint damon:damos_before_apply, with the region's nr_accesses and age -- to
    tell which DAMON regions a cold chunk became huge through."""
    return guest.ssh("test -d %s && echo 65536 > /sys/kernel/tracing/buffer_size_kb && "
                     "echo 'scheme_idx == 1' > %s/filter && echo 1 > %s/enable && echo > /sys/kernel/tracing/trace"
                     % (TRACE_EVENT, TRACE_EVENT, TRACE_EVENT)).ok


def applied_regions(guest, rows: list, huge: int = apps.HUGE) -> dict:
    """The traced applications that covered each chunk: for every cold chunk now huge, each region
    (seconds since the first record, start, size in KiB, nr_accesses, age) it was acted on as part
    of; for the hot chunks, how many records, the lowest nr_accesses seen and the ages."""
    guest.ssh("echo 0 > %s/enable" % TRACE_EVENT)
    found = APPLY_RE.findall(guest.read("/sys/kernel/tracing/trace"))
    records = [(float(f[0]), int(f[3]), int(f[4]), int(f[5]), int(f[6])) for f in found]  # time, start, end, nr, age
    if not records:
        return {"records": 0}
    t0 = records[0][0]
    out = {"records": len(records), "seconds": round(records[-1][0] - t0, 1),
           "nr_regions": sorted(set(int(f[2]) for f in found))[::max(1, len(found) // 10)], "cold_huge": {}}
    cold_huge = [r[0] for r in rows if r[2] and not r[4]]
    hot = [r[0] for r in rows if r[4]]
    for c in cold_huge:
        out["cold_huge"][hex(c)] = [(round(t - t0, 1), hex(s), (e - s) >> 10, n, a)
                                    for t, s, e, n, a in records if s < c + huge and e > c][:20]
    on_hot = [(n, a) for t, s, e, n, a in records for c in hot if s < c + huge and e > c]
    out["hot"] = {"records": len(on_hot), "min_nr_accesses": min(on_hot)[0] if on_hot else None,
                  "ages": sorted(collections.Counter(a for n, a in on_hot).items())}
    return out


def content_totals(by_chunk: dict) -> dict:
    """Sampled pages per kind over all chunks of ``chunk_contents``."""
    total = collections.Counter()
    for kinds in by_chunk.values():
        total.update(kinds)
    return dict(total)


def cold_values_huge(totals: dict, last: dict):
    """The judged bloat: the share of the cold memory (outside the hot keys' chunks) that is huge and holds cold
    values or zeros, memory no request reads; estimated from the sampled pages of the cold huge chunks
    (``content_totals``) and the ground truth's ``shares`` at the same time (``last``). The rest of the cold huge
    memory is redis's own structures, part of which every GET reads (the bucket table: ``page_kind``)."""
    sampled = sum(totals.values())
    if not last.get("cold_resident_bytes"):
        return None
    if not sampled:
        return 0.0 if not last.get("cold_huge_bytes") else None
    unread = totals.get("cold values", 0) + totals.get("zeros", 0)
    return round(unread / sampled * last["cold_huge_bytes"] / last["cold_resident_bytes"], 4)


def chunk_contents(guest, pid: int, rows: list) -> dict:
    """What the cold chunks that are huge hold (every 8th page read from /proc/PID/mem), to tell bloat
    from read-hot memory the write-based ground truth cannot see."""
    cold_huge = [hex(r[0]) for r in rows if r[2] and not r[4]]
    return apps._py(guest, CHUNK_CONTENT_PY, pid, json.dumps(cold_huge)) if cold_huge else {}


def proof(guest, cold_keys: int, hot_keys: int, disable_thp=None, until_s: float = 300.0, out_dir: Path = None,
          extra: dict = None, echo=print, ansible_echo=None) -> dict:
    """Start and fill redis, GET load on the hot keys, run the playbook, measure; returns the figures.
    ``echo`` gets the measurements as they come, ``ansible_echo`` the playbook's output lines."""
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="redis-proof-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "ansible.log"
    log.write_text("")
    redis = apps.start_redis(guest, disable_thp=disable_thp)
    out = {"kernel": guest.ssh("uname -r").stdout.strip(), "disable_thp": disable_thp or "default",
           "thp_enabled_status": redis.thp_enabled}
    out["dataset"] = apps.fill_redis(guest, cold_keys=cold_keys, hot_keys=hot_keys)
    d = out["dataset"]
    echo("redis filled: %d keys (%d cold, %d hot, %d B values) in %.0f s, RSS %d MiB" % (
        d["dbsize"], d["cold_keys"], d["hot_keys"], d["value_size"], d["cold_seconds"] + d["hot_seconds"],
        d["vm_rss_bytes"] >> 20), flush=True)
    load = apps.start_redis_load(guest, hot_keys=hot_keys)
    time.sleep(5)
    out["before"] = shares(apps.redis_hot_memory(guest, redis.pid, hot_keys=hot_keys))
    echo(shares_line("before", out["before"]), flush=True)
    args = dict(hugepage_detect_name_pattern="redis-server", hugepage_exclusive_modules="stop",
                hugepage_timeout_s=240, report_dir=str(out_dir))
    args.update(extra or {})
    out["extra_vars"] = args
    traced = start_apply_trace(guest)
    started = time.monotonic()
    out["run"] = run_playbook(guest, args, log, echo=ansible_echo)
    out["run"]["host_load_after"] = os.getloadavg()  # other work on the host slows the TCG guest
    # each measurement rewrites every hot key: the last one also keeps its per-chunk rows
    last = apps.redis_hot_memory(guest, redis.pid, hot_keys=hot_keys, per_chunk=True)
    out["after_run"] = shares(last)
    out["after_run"]["at_s"] = round(time.monotonic() - started, 1)
    echo(shares_line("after the run (%.0f s)" % out["after_run"]["at_s"], out["after_run"]), flush=True)
    left = until_s - (time.monotonic() - started)
    if left > 5:
        echo("waiting %.0f s, then measuring again (what stays after the run)" % left, flush=True)
        time.sleep(left)
        last = apps.redis_hot_memory(guest, redis.pid, hot_keys=hot_keys, per_chunk=True)
        out["at_until"] = shares(last)
        out["at_until"]["at_s"] = round(time.monotonic() - started, 1)
        echo(shares_line("at %.0f s" % out["at_until"]["at_s"], out["at_until"]), flush=True)
    out["observed"] = observe(guest)
    out["ground_truth_chunks"] = last.get("per_chunk")
    out["cold_huge_contents"] = chunk_contents(guest, redis.pid, out["ground_truth_chunks"] or [])
    out["cold_values_huge"] = cold_values_huge(content_totals(out["cold_huge_contents"]), shares(last))
    out["applied_regions"] = applied_regions(guest, out["ground_truth_chunks"] or []) if traced \
        else "no damon:damos_before_apply tracepoint"
    out["ops"] = apps.redis_ops(guest)
    out["messages"] = messages(log.read_text())
    report = out_dir / "hugepage-report.json"
    if report.exists():
        out["report_rows"] = json.loads(report.read_text()).get("rows")
    out["kdamonds"] = guest.ssh("cd /sys/kernel/mm/damon/admin/kdamonds && for k in [0-9]*; do "
                                "echo $k $(cat $k/state) $(cat $k/contexts/0/monitoring_attrs/intervals/sample_us "
                                "$k/contexts/0/monitoring_attrs/intervals/aggr_us 2>/dev/null); done").stdout.split("\n")
    out["meminfo_anon_huge"] = [line for line in guest.read("/proc/meminfo").splitlines() if "AnonHuge" in line]
    out["log"] = str(log)
    apps.stop_redis(guest, load_pid=load)
    return out


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.vm.redis_proof", description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--kernel", default="damon-7.3", choices=("damon-7.3", "damon-6.12"))
    ap.add_argument("--memory-mb", type=int, default=4096)
    ap.add_argument("--cold-keys", type=int, default=1_200_000)
    ap.add_argument("--hot-keys", type=int, default=100_000)
    ap.add_argument("--disable-thp", choices=("yes", "no"), default=None)
    ap.add_argument("--until-s", type=float, default=300.0)
    ap.add_argument("--out-dir", default=str(REPO / "build" / "redis-proof"))
    ap.add_argument("-e", "--extra", default="{}", help="more role variables (JSON)")
    a = ap.parse_args(argv)
    with Guest(a.kernel, memory_mb=a.memory_mb) as g:
        res = proof(g, a.cold_keys, a.hot_keys, a.disable_thp, a.until_s, Path(a.out_dir) / a.kernel,
                    json.loads(a.extra), echo=lambda *x, **k: print(*x, file=sys.stderr, **k))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
