"""Real applications in the Debian guests: redis and PostgreSQL with their own load generators,
and an independent ground truth of which 2 MiB chunks are hot and how much of them is huge.

Given a booted guest (:class:`tests.vm.guest.Guest`, or anything with the same ``ssh`` and
``python`` methods)::

    from tests.vm import apps
    r = apps.start_redis(g, disable_thp=None)       # None: redis's default; "no"/"yes" explicit
    ds = apps.fill_redis(g, cold_keys=1_200_000, hot_keys=100_000, value_size=1000)
    load = apps.start_redis_load(g, hot_keys=100_000)  # redis-benchmark GETs on the hot keys only
    gt = apps.ground_truth(g, r.pid, window_s=10, rounds=2)
    apps.stop_redis(g, load_pid=load)

    p = apps.start_postgres(g, shared_buffers="128MB")
    apps.fill_pgbench(g, scale=10)
    load = apps.start_pgbench_load(g, scale=10)        # skewed SELECTs (random_exponential)

Standalone (boots its own guest; hold the guest lock)::

    flock /tmp/guest.lock python -m tests.vm.apps --kernel damon-7.3 redis \
        --cold-keys 1200000 --hot-keys 100000 --window 10 [--disable-thp no] [--keep]

Why these shapes:

* Hot keys are written *after* the cold ones, so jemalloc places them in fresh extents: the
  hot set is a few contiguous stretches of 2 MiB chunks, which is what a collapse can use.
  They are named the way ``redis-benchmark -r N`` names keys (``key:%012d``), so its GETs
  hit them; they are written by a Lua loop inside redis (fast under TCG; ``redis-benchmark
  -t set`` manages ~2k SET/s there and misses ~5 % of the keys).
* Cold keys come from ``DEBUG POPULATE`` (redis 8 needs ``--enable-debug-command yes``).
* Ground truth uses idle page tracking (``/sys/kernel/mm/page_idle/bitmap``, guest sysfs):
  mark the pid's resident pages idle, wait, read which ones were touched; per 2 MiB chunk
  of its private anonymous mappings count resident, touched and THP pages (``pagemap`` +
  ``kpageflags`` bit 22). It does not use DAMON, so it can judge DAMON's choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time

REDIS_PORT = 6379
HUGE = 2 << 20
PG_VERSION = "17"
PG_CLUSTER = "main"


class AppError(RuntimeError):
    pass


def _ssh(guest, cmd: str, timeout: float = 600) -> str:
    res = guest.ssh(cmd, timeout=timeout)
    if res.rc != 0:
        raise AppError(f"`{cmd}` failed in the guest (exit {res.rc}): {res.stderr.strip()[-1500:]}"
                       f"{res.stdout.strip()[-500:]}")
    return res.stdout


def _py(guest, script: str, *args, timeout: float = 900):
    res = guest.python(script, *[str(a) for a in args], timeout=timeout)
    if res.rc != 0:
        raise AppError(f"guest script failed (exit {res.rc}): {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _status(guest, pid: int) -> dict:
    out = _ssh(guest, f"cat /proc/{int(pid)}/status")
    fields = {}
    for line in out.splitlines():
        k, unused, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def _kb(value: str) -> int:
    return int(value.split()[0]) * 1024 if value else 0


# ---------------------------------------------------------------------------
# redis
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Redis:
    pid: int
    port: int
    options: list
    thp_enabled: str            # THP_enabled of /proc/PID/status ("1", "0")


def redis_cli(guest, *args: str, port: int = REDIS_PORT, timeout: float = 600) -> str:
    return _ssh(guest, "redis-cli -p %d %s" % (port, " ".join(shlex.quote(a) for a in args)),
                timeout=timeout).strip()


def start_redis(guest, disable_thp: str | None = None, port: int = REDIS_PORT,
                extra: tuple = ()) -> Redis:
    """Start redis-server (no persistence, DEBUG enabled) and wait until it answers.

    ``disable_thp``: None keeps redis's default (``yes``: it calls prctl(PR_SET_THP_DISABLE)
    only when THP ``enabled`` is ``always``), ``"no"``/``"yes"`` pass ``--disable-thp``.
    """
    opts = ["--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "yes",
            "--enable-debug-command", "yes", "--protected-mode", "no",
            "--pidfile", f"/run/redis-{port}.pid", "--logfile", f"/var/log/redis-{port}.log"]
    if disable_thp is not None:
        opts += ["--disable-thp", disable_thp]
    opts += list(extra)
    _ssh(guest, "redis-server " + " ".join(shlex.quote(o) for o in opts))
    deadline = time.monotonic() + 60
    while True:
        res = guest.ssh(f"redis-cli -p {port} ping && cat /run/redis-{port}.pid", timeout=30)
        if res.rc == 0 and "PONG" in res.stdout and len(res.stdout.split()) > 1:
            pid = int(res.stdout.split()[1])
            break
        if time.monotonic() > deadline:
            raise AppError(f"redis-server on port {port} did not answer within 60 s: "
                           + guest.ssh(f"tail -5 /var/log/redis-{port}.log").stdout)
        time.sleep(0.5)
    return Redis(pid, port, opts, _status(guest, pid).get("THP_enabled", ""))


HOT_KEYS_LUA = """
local first, last, size = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = string.rep('h', size)
for i = first, last do redis.call('SET', string.format('key:%012d', i), v) end
return last - first + 1
"""


def fill_redis(guest, cold_keys: int = 1_200_000, hot_keys: int = 100_000, value_size: int = 1000,
               port: int = REDIS_PORT, batch: int = 20_000) -> dict:
    """Cold keys ``cold:N`` (DEBUG POPULATE), then hot keys ``key:%012d`` (Lua, in batches)."""
    t0 = time.monotonic()
    if cold_keys:
        redis_cli(guest, "DEBUG", "POPULATE", str(cold_keys), "cold", str(value_size), port=port,
                  timeout=1800)
    t1 = time.monotonic()
    for first in range(0, hot_keys, batch):
        last = min(first + batch, hot_keys) - 1
        redis_cli(guest, "EVAL", HOT_KEYS_LUA, "0", str(first), str(last), str(value_size), port=port)
    t2 = time.monotonic()
    dbsize = int(redis_cli(guest, "DBSIZE", port=port))
    pid = int(_ssh(guest, f"cat /run/redis-{port}.pid"))
    st = _status(guest, pid)
    return {"dbsize": dbsize, "cold_keys": cold_keys, "hot_keys": hot_keys, "value_size": value_size,
            "rss_anon_bytes": _kb(st.get("RssAnon", "")), "vm_rss_bytes": _kb(st.get("VmRSS", "")),
            "cold_seconds": round(t1 - t0, 1), "hot_seconds": round(t2 - t1, 1)}


def _background(guest, cmd: str, log: str) -> int:
    out = _ssh(guest, f"setsid nohup {cmd} > {log} 2>&1 < /dev/null & echo $!")
    return int(out.split()[-1])


def start_redis_load(guest, hot_keys: int = 100_000, clients: int = 4, port: int = REDIS_PORT,
                     value_size: int = 1000, pipeline: int = 16) -> int:
    """redis-benchmark GETs on ``key:%012d`` < hot_keys, forever, in the background; its pid.

    Pipelined (``-P``) by default: under TCG, one request per round trip reaches 1 500-2 100 GET/s
    in an idle 2-vCPU guest (4 or 50 clients), 600/s while the kdamond and the playbook run; with 16
    requests per round trip 22 000-28 500/s (measured 2026-11-26, 7.3.4 guest), the rate of the
    report this proof answers (about 19 000/s) and closer to what a cache sees on real hardware.
    """
    return _background(guest, f"redis-benchmark -p {port} -t get -r {hot_keys} -d {value_size} "
                              f"-c {clients} -P {pipeline} -n 2000000000 -q", "/var/log/redis-benchmark.log")


def redis_ops(guest, port: int = REDIS_PORT) -> dict:
    """Hits/misses/ops so far (INFO stats)."""
    out = redis_cli(guest, "INFO", "stats", port=port)
    keys = ("total_commands_processed", "keyspace_hits", "keyspace_misses", "instantaneous_ops_per_sec")
    return {k: int(v) for k, unused, v in (line.strip().partition(":") for line in out.splitlines())
            if k in keys}


def _best_effort(guest, cmd: str, timeout: float) -> None:
    # Cleanup must not mask the test's own error; a slow guest may time out here.
    try:
        guest.ssh(cmd, timeout=timeout)
    except Exception:  # pylint: disable=broad-exception-caught
        pass


def stop_redis(guest, port: int = REDIS_PORT, load_pid: int | None = None) -> None:
    if load_pid:
        _best_effort(guest, f"kill {int(load_pid)}", 60)
    _best_effort(guest, f"redis-cli -p {port} shutdown nosave", 120)


# ---------------------------------------------------------------------------
# PostgreSQL + pgbench
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Postgres:
    pid: int                    # postmaster
    options: list


def _as_postgres(cmd: str) -> str:
    return "runuser -u postgres -- " + cmd


def start_postgres(guest, shared_buffers: str = "128MB", huge_pages: str = "off",
                   extra: tuple = ()) -> Postgres:
    """Start the image's ``17/main`` cluster with explicit memory options.

    ``shared_buffers`` is a MAP_SHARED anonymous mapping (shmem); ``huge_pages=off`` keeps
    PostgreSQL from trying hugetlbfs, so THP is the only way to huge pages.
    """
    opts = [f"-c shared_buffers={shared_buffers}", f"-c huge_pages={huge_pages}"] + list(extra)
    _ssh(guest, "pg_ctlcluster --skip-systemctl-redirect %s %s start -o %s" % (
        PG_VERSION, PG_CLUSTER, shlex.quote(" ".join(opts))), timeout=180)
    pid = int(_ssh(guest, f"head -1 /var/lib/postgresql/{PG_VERSION}/{PG_CLUSTER}/postmaster.pid"))
    return Postgres(pid, opts)


def fill_pgbench(guest, scale: int = 10, db: str = "bench") -> dict:
    t0 = time.monotonic()
    _ssh(guest, _as_postgres(f"dropdb --if-exists {db}") + " && " + _as_postgres(f"createdb {db}"))
    _ssh(guest, _as_postgres(f"pgbench -i -q -s {int(scale)} {db}"), timeout=1800)
    size = int(_ssh(guest, _as_postgres(f"psql -At -c \"select pg_database_size('{db}')\" {db}")))
    return {"scale": scale, "db_bytes": size, "seconds": round(time.monotonic() - t0, 1)}


SKEWED_SELECT = """\\set aid random_exponential(1, 100000 * :scale, {param})
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
"""


def start_pgbench_load(guest, scale: int = 10, clients: int = 4, db: str = "bench",
                       skew: float = 20.0, duration_s: int = 36000) -> int:
    """Read-only pgbench with exponentially skewed account ids (most reads hit a small set)."""
    guest.put(SKEWED_SELECT.format(param=skew), "/var/lib/postgresql/skewed.sql")
    _ssh(guest, "chown postgres /var/lib/postgresql/skewed.sql")
    return _background(guest, _as_postgres(
        f"pgbench -n -f /var/lib/postgresql/skewed.sql -D scale={int(scale)} -c {clients} -j 2 "
        f"-T {int(duration_s)} {db}"), "/var/log/pgbench.log")


def postgres_pids(guest, postmaster: int) -> list:
    """The postmaster and its children (backends, checkpointer, ...)."""
    out = _ssh(guest, f"pgrep -P {int(postmaster)} || true")
    return [int(postmaster)] + [int(p) for p in out.split()]


def stop_postgres(guest, load_pid: int | None = None) -> None:
    if load_pid:
        _best_effort(guest, f"pkill -P {int(load_pid)}; kill {int(load_pid)}", 60)
    _best_effort(guest, f"pg_ctlcluster --skip-systemctl-redirect {PG_VERSION} {PG_CLUSTER} stop -m fast",
                 180)


# ---------------------------------------------------------------------------
# Ground truth: idle page tracking per 2 MiB chunk
# ---------------------------------------------------------------------------

GROUND_TRUTH_PY = r"""
import json, os, struct, subprocess, sys, time
pid, window, rounds, min_pages, method, between = (int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
                                                  int(sys.argv[4]), sys.argv[5], sys.argv[6])
shared = sys.argv[7] == "1"
PAGE, HUGE = os.sysconf("SC_PAGE_SIZE"), 2 << 20
PER = HUGE // PAGE
BITMAP = "/sys/kernel/mm/page_idle/bitmap"
if method == "auto":
    method = "idle" if os.path.exists(BITMAP) else "soft_dirty"
t0 = time.monotonic()
vmas = []
for line in open("/proc/%d/maps" % pid):
    f = line.split()
    s, e = (int(x, 16) for x in f[0].split("-"))
    path = f[5] if len(f) > 5 else ""
    # private anonymous memory (heap included): what a collapse can act on
    if f[1][3] == "p" and f[4] == "0" and path in ("", "[heap]"):
        vmas.append((s, e))
    # shared anonymous memory (shmem: MAP_SHARED|MAP_ANONYMOUS, SysV, memfd), e.g. shared_buffers
    elif shared and f[1][3] == "s" and path.startswith(("/dev/zero", "/SYSV", "/memfd:")):
        vmas.append((s, e))

def read_chunks():
    pm = open("/proc/%d/pagemap" % pid, "rb")
    out = []      # (start, [pagemap entry] * PER)
    for s, e in vmas:
        a, b = -(-s // HUGE) * HUGE, e // HUGE * HUGE
        if b <= a:
            continue
        pm.seek(a // PAGE * 8)
        ents = struct.unpack("%dQ" % ((b - a) // PAGE), pm.read((b - a) // PAGE * 8))
        out += [(a + i * PAGE, ents[i:i + PER]) for i in range(0, len(ents), PER)]
    return out

pfn = lambda x: x & ((1 << 55) - 1) if x >> 63 & 1 else 0
chunks = read_chunks()
pfns = sorted({pfn(x) for _, c in chunks for x in c if pfn(x)})
if not pfns:
    print(json.dumps({"error": "no resident anonymous memory in whole 2 MiB chunks"})); sys.exit(0)
kf = open("/proc/kpageflags", "rb")
kf.seek(pfns[0] * 8)
flags = struct.unpack("%dQ" % (pfns[-1] - pfns[0] + 1), kf.read((pfns[-1] - pfns[0] + 1) * 8))
is_thp = lambda p: flags[p - pfns[0]] >> 22 & 1
touched = [[0] * len(chunks) for _ in range(rounds)]
retries, flagged_bytes = 0, 0

def sd_vmas():
    flagged, cur = [], None
    for line in open("/proc/%d/smaps" % pid):
        f = line.split()
        if "-" in f[0] and ":" not in f[0]:
            cur = tuple(int(x, 16) for x in f[0].split("-"))
        elif f[0] == "VmFlags:" and "sd" in f[1:]:
            flagged.append(cur)
    return [v for v in flagged if any(s < v[1] and v[0] < e for s, e in vmas)]

for r in range(rounds):
    if method == "idle":
        words = {}
        for p in pfns:
            words[p // 64] = words.get(p // 64, 0) | (1 << (p % 64))
        fd = os.open(BITMAP, os.O_RDWR)
        idx = sorted(words)
        i = 0
        while i < len(idx):      # contiguous runs of bitmap words, one write each
            j = i
            while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
                j += 1
            os.pwrite(fd, struct.pack("%dQ" % (j - i + 1), *(words[w] for w in idx[i:j + 1])), idx[i] * 8)
            i = j + 1
        if between:
            subprocess.run(between, shell=True, check=True, stdout=subprocess.DEVNULL)
        time.sleep(window)
        lo, hi = pfns[0] // 64, pfns[-1] // 64 + 1
        idle = struct.unpack("%dQ" % (hi - lo), os.pread(fd, (hi - lo) * 8, lo * 8))
        os.close(fd)
        for n, (_, c) in enumerate(chunks):
            touched[r][n] = sum(1 for x in c if pfn(x) and not idle[pfn(x) // 64 - lo] >> (pfn(x) % 64) & 1)
        continue
    # Soft-dirty: a VMA created or merged after clear_refs gets VM_SOFTDIRTY ("sd" in VmFlags)
    # and then reports every one of its pages soft-dirty (e.g. the allocator maps a new extent
    # next to the heap). Such a round says nothing per page: redo it (up to 3 times).
    for attempt in range(3):
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("4")         # clear soft-dirty bits (pagemap bit 55) and VM_SOFTDIRTY
        if between:
            subprocess.run(between, shell=True, check=True, stdout=subprocess.DEVNULL)
        time.sleep(window)
        now = dict(read_chunks())
        flagged = sd_vmas()
        if not flagged:
            break
        retries += 1
    flagged_bytes = max(flagged_bytes, sum(e - s for s, e in flagged))
    for n, (start, _) in enumerate(chunks):
        touched[r][n] = sum(1 for x in now.get(start, ()) if x >> 63 & 1 and x >> 55 & 1)
out = []
hot = {"chunks": 0, "resident_bytes": 0, "huge_bytes": 0, "touched_bytes": 0, "touched_huge_bytes": 0}
cold = {"chunks": 0, "resident_bytes": 0, "huge_bytes": 0}
for n, (start, c) in enumerate(chunks):
    present = [pfn(x) for x in c if pfn(x)]
    resident, huge = len(present), sum(1 for p in present if is_thp(p))
    t = [touched[r][n] for r in range(rounds)]
    is_hot = sum(1 for x in t if x >= min_pages) * 2 > rounds   # touched in most rounds
    if resident:
        out.append([start, resident, huge, t, int(is_hot)])
    side = hot if is_hot else cold
    if is_hot or resident:
        side["chunks"] += 1
    side["resident_bytes"] += resident * PAGE
    side["huge_bytes"] += huge * PAGE
    if is_hot:
        hot["touched_bytes"] += max(t) * PAGE
        hot["touched_huge_bytes"] += (max(t) * PAGE) if huge == PER else 0
res = {"pid": pid, "method": method, "window_s": window, "rounds": rounds, "min_touched_pages": min_pages,
       "soft_dirty_retries": retries, "soft_dirty_vma_flagged_bytes": flagged_bytes,
       "vmas": len(vmas), "chunks": len(chunks), "resident_bytes": sum(r[1] for r in out) * PAGE,
       "hot": hot, "cold": cold,
       "hot_huge_fraction": (hot["huge_bytes"] / hot["resident_bytes"]) if hot["resident_bytes"] else None,
       "cold_huge_fraction": (cold["huge_bytes"] / cold["resident_bytes"]) if cold["resident_bytes"] else None,
       "hot_chunks": [hex(r[0]) for r in out if r[4]],
       "per_chunk": out, "seconds": round(time.monotonic() - t0, 1)}
print(json.dumps(res))
"""


def ground_truth(guest, pid: int, window_s: float = 10.0, rounds: int = 2,
                 min_touched_pages: int = 8, method: str = "auto", between: str = "",
                 shared: bool = False, per_chunk: bool = False) -> dict:
    """Which 2 MiB chunks of ``pid`` are hot, without DAMON, and how much of them is huge.

    ``method``: ``idle`` (idle page tracking: every access counts; needs
    CONFIG_IDLE_PAGE_TRACKING, which Debian's *cloud* kernels lack), ``soft_dirty``
    (``clear_refs`` 4 + pagemap bit 55: only writes count), ``auto`` (idle when present).
    Each of ``rounds``: mark, run ``between`` (a guest shell command) if given, wait
    ``window_s``, read. A chunk is hot when at least ``min_touched_pages`` of its pages were
    touched in most rounds. ``hot_huge_fraction``: share of the hot chunks' resident bytes in
    THPs; ``cold_huge_fraction``: share of the other resident bytes in THPs (bloat).
    ``per_chunk`` rows: [start, resident pages, THP pages, touched pages per round, hot].
    Soft-dirty rounds are redone (``soft_dirty_retries``) when a measured mapping was created
    or merged meanwhile (VM_SOFTDIRTY marks all its pages); ``soft_dirty_vma_flagged_bytes``
    > 0 means the last try still had one, and its pages all count as touched.
    Private anonymous mappings only, unless ``shared`` (adds shmem: PostgreSQL's
    shared_buffers is a ``/dev/zero (deleted)`` MAP_SHARED mapping).
    """
    res = _py(guest, GROUND_TRUTH_PY, int(pid), window_s, int(rounds), int(min_touched_pages), method,
              between, int(bool(shared)), timeout=120 + rounds * (window_s + 300))
    if "error" in res:
        raise AppError(f"ground truth for pid {pid}: {res['error']}")
    if not per_chunk:
        res.pop("per_chunk", None)
    return res


# RESP for "SETRANGE key:%012d 0 h" over the hot keys, written to stdout for ``redis-cli --pipe``.
# The hot keys' values are all "h" (HOT_KEYS_LUA), so each command rewrites one byte with itself.
TOUCH_HOT_KEYS_PY = (
    "import sys; w = sys.stdout.write\n"
    "for i in range(int(sys.argv[1])):\n"
    "    k = 'key:%012d' % i\n"
    "    w('*4\\r\\n$8\\r\\nSETRANGE\\r\\n$%d\\r\\n%s\\r\\n$1\\r\\n0\\r\\n$1\\r\\nh\\r\\n' % (len(k), k))\n")


def redis_hot_memory(guest, pid: int, hot_keys: int = 100_000, port: int = REDIS_PORT,
                     min_touched_pages: int = 64, per_chunk: bool = False) -> dict:
    """Exactly the memory of redis's hot keys, whatever the request rate.

    Clears the soft-dirty bits, rewrites the first byte of every hot key in place (SETRANGE
    with the same byte: no reallocation for a raw string, the object header and the value
    buffer are written), then reads which pages became dirty. The GET load should be
    paused or tolerated: its writes (LRU clock in the object header) touch the same pages.
    ``hot.touched_bytes`` is the hot keys' memory, ``hot_huge_fraction`` the share of the
    chunks holding it that is in THPs.

    The commands come through ``redis-cli --pipe``, not a Lua script: a script over the hot
    keys left ~18 MiB of Lua garbage in fresh chunks, which DAMON then (rightly) saw hot and
    the still running collapse scheme made huge -- bloat the measurement itself caused (seen
    on 7.3.4: 9 extra "hot" chunks right after the run, 22 MiB cold huge 35 s later).

    redis also writes in the background (with 1.3 M keys, 34 MB spread over 570 of 757
    chunks in 10 s without any request, a few pages each), so a chunk counts only with at
    least ``min_touched_pages`` dirty pages; the hot keys' chunks are dense (most of 512).
    """
    touch = "python3 -c %s %d | redis-cli -p %d --pipe" % (shlex.quote(TOUCH_HOT_KEYS_PY), hot_keys, port)
    return ground_truth(guest, pid, window_s=0, rounds=1, min_touched_pages=min_touched_pages,
                        method="soft_dirty", between=touch, per_chunk=per_chunk)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.vm.apps", description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--kernel", default="damon-7.3", choices=("damon-7.3", "damon-6.12"))
    ap.add_argument("--memory-mb", type=int, default=4096)
    ap.add_argument("--window", type=float, default=10.0, help="idle-tracking window (s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the guest up until Enter is pressed")
    ap.add_argument("--per-chunk", action="store_true", help="include the per-chunk rows")
    sub = ap.add_subparsers(dest="app", required=True)
    r = sub.add_parser("redis")
    r.add_argument("--cold-keys", type=int, default=1_200_000)
    r.add_argument("--hot-keys", type=int, default=100_000)
    r.add_argument("--value-size", type=int, default=1000)
    r.add_argument("--disable-thp", choices=("yes", "no"), default=None)
    p = sub.add_parser("postgres")
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--shared-buffers", default="128MB")
    args = ap.parse_args(argv)

    from .guest import Guest  # pylint: disable=import-outside-toplevel
    out = {"kernel": args.kernel}
    with Guest(args.kernel, memory_mb=args.memory_mb) as g:
        out["boot_seconds"] = g.boot_seconds
        if args.app == "redis":
            r = start_redis(g, disable_thp=args.disable_thp)
            out["redis"] = dataclasses.asdict(r)
            out["dataset"] = fill_redis(g, args.cold_keys, args.hot_keys, args.value_size)
            load = start_redis_load(g, args.hot_keys, value_size=args.value_size)
            time.sleep(5)
            out["ops_before"] = redis_ops(g)
            # access-based (idle page tracking, or soft-dirty: GETs write the objects' LRU clock)
            out["ground_truth"] = ground_truth(g, r.pid, args.window, args.rounds, per_chunk=args.per_chunk)
            out["ops_after"] = redis_ops(g)
            # exactly the hot keys' memory
            out["hot_keys_memory"] = redis_hot_memory(g, r.pid, args.hot_keys, per_chunk=args.per_chunk)
            pid = r.pid
        else:
            pg = start_postgres(g, shared_buffers=args.shared_buffers)
            out["postgres"] = dataclasses.asdict(pg)
            out["dataset"] = fill_pgbench(g, args.scale)
            load = start_pgbench_load(g, args.scale)
            time.sleep(5)
            pids = postgres_pids(g, pg.pid)
            out["pids"] = pids
            # shared_buffers is shmem in the postmaster and every backend: measure it once
            out["ground_truth"] = ground_truth(g, pids[-1], args.window, args.rounds, shared=True)
            pid = pg.pid
        out["load_pid"] = load
        print(json.dumps(out, indent=2))
        if args.keep:
            print(f"guest up: ssh port {g.port}, key {g.ssh_key}, app pid {pid}; Enter stops it",
                  file=sys.stderr)
            sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
