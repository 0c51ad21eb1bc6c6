"""Record ground-truth facts about a kernel's DAMON sysfs, THP sysfs and DAMON modules.

Runs INSIDE a disposable test guest as root (never on a host you care about: it writes
DAMON and module files).  Standard library only, Python 3.9+.  Usage from the host::

    ssh root@guest python3 - < tests/vm/probe_sysfs.py > fixture.json
    # or: Guest.python(Path("tests/vm/probe_sysfs.py").read_text())
    python3 tests/vm/probe_sysfs.py /path/to/emulator/mount   # another sysfs root

The only argument is the sysfs root (default ``/sys``): the same sequence runs on an
emulator mount (tests/emulator) for the conformance test (tests/conformance/).

What it does (every write and its result is recorded):
  1. dumps /sys/kernel/mm/damon/admin as found;
  2. stages one of everything: nr_kdamonds=1, then every ``nr_*`` count file that reads
     0 (nr_contexts, nr_targets, nr_regions, nr_schemes, nr_goals, nr_filters in
     filters/core_filters/ops_filters, nr_dests, nr_probes, ...) is set to 1 until no
     new one appears, and dumps every file with mode, value or read errno;
  3. tries every known keyword for operations, action, filter type, goal metric,
     watermark metric and goal tuner, numbers and strings in every other writable file
     (``value_writes``: result and read-back), a set of bad writes, and ``nr_*`` rewrites;
  4. tries every known ``state`` word on the idle kdamond, turns it on (recording each
     failure and the fix applied: valid target, no regions/filters, DAMON_STAT off),
     tries every word while it runs, dumps the running tree, turns it off;
  5. records behaviour facts (``facts``, probe v4): a zombie target keeps a vaddr
     kdamond on until reaped; schemes apply every sample at their own apply interval;
     tried regions right after ``on`` and after a ``commit`` adding a scheme; ``commit``
     with an out-of-range ``obsolete_target``; paddr ``addr_unit`` and the minimum region
     size; ``commit`` with ``sample_us`` outside the intervals goal's range; each fact as a
     yes/no or errno, never a timing;
  6. dumps THP sysfs and /sys/module/damon_*/parameters, and restores what it changed
     outside the DAMON admin tree (DAMON_STAT ``enabled``), then watches DAMON_STAT's
     result parameters for ~12 s (refreshed every 5 s while it runs).
The JSON result goes to stdout.
"""

import errno
import json
import os
import platform
import signal
import sys
import time

PROBE_VERSION = 4
SYS = "/sys"
DAMON = SYS + "/kernel/mm/damon"
ADMIN = DAMON + "/admin"
THP = SYS + "/kernel/mm/transparent_hugepage"
MODULES = SYS + "/module"


def set_root(root):
    """Point the probe at another sysfs root (an emulator mount)."""
    global SYS, DAMON, ADMIN, THP, MODULES  # pylint: disable=global-statement
    SYS = root.rstrip("/") or "/"
    DAMON = SYS + "/kernel/mm/damon"
    ADMIN = DAMON + "/admin"
    THP = SYS + "/kernel/mm/transparent_hugepage"
    MODULES = SYS + "/module"


NR_FILES = ("nr_kdamonds", "nr_contexts", "nr_targets", "nr_regions", "nr_schemes",
            "nr_goals", "nr_filters", "nr_dests", "nr_probes")
# "" is an empty write(2): the kernel never calls the store method, so it "succeeds".
STATE_WORDS = ("commit", "commit_schemes_quota_goals", "update_schemes_stats",
               "update_schemes_tried_bytes", "update_schemes_tried_regions",
               "clear_schemes_tried_regions", "update_schemes_effective_quotas",
               "update_tuned_intervals", "bogus_word", "", "\n", "commit\n", " commit")
OPERATIONS = ("vaddr", "fvaddr", "paddr", "bogus_ops")
ACTIONS = ("willneed", "cold", "pageout", "hugepage", "nohugepage", "collapse", "lru_prio",
           "lru_deprio", "migrate_hot", "migrate_cold", "stat", "bogus_action")
FILTER_TYPES = ("anon", "memcg", "young", "hugepage_size", "unmapped", "active", "addr",
                "target", "bogus_filter")
GOAL_METRICS = ("user_input", "some_mem_psi_us", "node_mem_used_bp", "node_mem_free_bp",
                "node_memcg_used_bp", "node_memcg_free_bp", "active_mem_bp",
                "inactive_mem_bp", "node_eligible_mem_bp", "hugepage_mem_bp", "bogus_metric")
WMARK_METRICS = ("none", "free_mem_rate", "bogus_metric")
GOAL_TUNERS = ("consist", "temporal", "bogus_tuner")
BOOLS = ("Y", "N", "1", "0", "yes", "no", "true", "false", "on", "off", "maybe")
# value_writes: what every other writable file takes (integer width, sign, base, junk).
NUMBERS = ("0", "7", "-1", "2147483648", "4294967296", "18446744073709551615",
           "18446744073709551616", "0x10", "010", "12abc", "5\n")
STRINGS = ("/", "/probe/path", "x" * 300)
KEYWORD_FILES = ("operations", "action", "type", "target_metric", "metric", "goal_tuner")
BOOL_FILES = ("matching", "allow", "obsolete_target", "pause")
STRING_FILES = ("memcg_path", "path")

K0 = "kdamonds/0"
C0 = K0 + "/contexts/0"
S0 = C0 + "/schemes/0"


def ename(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno))


def a(rel):
    return rel if rel.startswith("/") else ADMIN + "/" + rel


def read(rel):
    """Return (value, None) or (None, errno name)."""
    try:
        with open(a(rel), "rb") as f:
            return f.read().decode(errors="replace"), None
    except OSError as exc:
        return None, ename(exc)


def val(rel, default=None):
    v = read(rel)[0]
    return v.strip() if v is not None else default


def write(rel, value):
    """Write ``value`` (no newline added) the way ``echo -n`` would; 'ok' or errno name."""
    try:
        fd = os.open(a(rel), os.O_WRONLY)
    except OSError as exc:
        return "open:" + ename(exc)
    try:
        os.write(fd, value.encode())
        result = "ok"
    except OSError as exc:
        result = ename(exc)
    try:
        os.close(fd)
    except OSError as exc:  # pragma: no cover
        result = "close:" + ename(exc)
    return result


LOG = []


def logged_write(rel, value, why=""):
    r = write(rel, value)
    LOG.append({"path": rel, "value": value, "result": r, "why": why})
    return r


def dump(root, rel_to=None):
    """Every dir/file under ``root``: mode (octal), type, value or read errno."""
    rel_to = rel_to or root
    out = {}
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort(key=_natural)
        for name in sorted(dirnames, key=_natural) + sorted(filenames, key=_natural):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, rel_to)
            try:
                st = os.lstat(full)
            except OSError as exc:
                out[rel] = {"type": "?", "stat_errno": ename(exc)}
                continue
            mode = "%04o" % (st.st_mode & 0o7777)
            if os.path.islink(full):
                out[rel] = {"type": "link", "mode": mode, "target": os.readlink(full)}
            elif name in dirnames:
                out[rel] = {"type": "dir", "mode": mode}
            else:
                v, err = read(full)
                ent = {"type": "file", "mode": mode}
                if err:
                    ent["read_errno"] = err
                else:
                    ent["value"] = v
                out[rel] = ent
    return out


def _natural(s):
    return [int(t) if t.isdigit() else t for t in _split_digits(s)]


def _split_digits(s):
    out, cur, dig = [], "", None
    for ch in s:
        d = ch.isdigit()
        if cur and d != dig:
            out.append(cur)
            cur = ""
        cur += ch
        dig = d
    if cur:
        out.append(cur)
    return [("%010d" % int(t)) if t.isdigit() else t for t in out]


def stage_all(why):
    """nr_kdamonds=1, then set every nr_* count file that reads 0 to 1 until fixpoint."""
    writes = []
    r = logged_write("kdamonds/nr_kdamonds", "1", why)
    writes.append(["kdamonds/nr_kdamonds", "1", r])
    for _round in range(20):
        changed = False
        for dirpath, dirnames, filenames in os.walk(ADMIN):
            dirnames.sort(key=_natural)
            for fn in sorted(filenames):
                if fn not in NR_FILES:
                    continue
                rel = os.path.relpath(os.path.join(dirpath, fn), ADMIN)
                if "/stats/" in "/" + rel or "tried_regions" in rel:
                    continue
                if val(rel) == "0":
                    r = logged_write(rel, "1", why)
                    writes.append([rel, "1", r])
                    if r == "ok":
                        changed = True
        if not changed:
            break
    return writes


def try_words(rel, words):
    """Write each word to ``rel``; record result and read-back; restore the original."""
    if not os.path.exists(a(rel)):
        return None
    orig = val(rel)
    res = {}
    for w in words:
        r = write(rel, w)
        res[w] = {"result": r, "read_back": val(rel)}
    if orig is not None:
        # Some files read back as "[word] other" lists; take the bracketed or first word.
        restore = orig
        if "[" in orig:
            restore = orig[orig.index("[") + 1:orig.index("]")]
        write(rel, restore)
    return {"original": orig, "words": res}


def value_writes():
    """Every writable file of the staged tree that is not a count, state, keyword or bool
    file: write each of NUMBERS (STRINGS for path files), record result and read-back,
    then restore the original value."""
    out = {}
    for rel, ent in dump(ADMIN).items():
        name = rel.rsplit("/", 1)[-1]
        if ent.get("type") != "file" or not int(ent.get("mode", "0"), 8) & 0o200:
            continue
        if name in NR_FILES or name == "state" or name in KEYWORD_FILES or name in BOOL_FILES:
            continue
        orig = val(rel)
        res = {}
        for w in (STRINGS if name in STRING_FILES else NUMBERS):
            res[w] = [write(rel, w), val(rel)]
        if orig is not None:
            write(rel, orig)
        out[rel] = res
    return out


def filter_dirs():
    out = []
    for d in ("filters", "core_filters", "ops_filters"):
        if os.path.isdir(a(S0 + "/" + d)):
            out.append(d)
    return out


def module_params():
    out = {}
    base = MODULES
    for m in sorted(os.listdir(base)):
        if not m.startswith("damon"):
            continue
        out[m] = dump(os.path.join(base, m, "parameters"))
    return out


def find_module_param(name):
    p = MODULES + "/%s/parameters/enabled" % name
    return p if os.path.exists(p) else None


def kernel_info():
    info = {"uname_r": platform.release(), "python": platform.python_version()}
    for k, p in (("proc_version", "/proc/version"), ("cmdline", "/proc/cmdline")):
        try:
            with open(p) as f:
                info[k] = f.read().strip()
        except OSError as exc:
            info[k] = "errno:" + ename(exc)
    cfg = "/boot/config-" + platform.release()
    info["config"] = {}
    if os.path.exists(cfg):
        with open(cfg) as f:
            for line in f:
                line = line.strip()
                if ("DAMON" in line or "TRANSPARENT_HUGEPAGE" in line) and line:
                    if line.startswith("# "):
                        info["config"][line[2:].split()[0]] = "n"
                    elif "=" in line:
                        k, v = line.split("=", 1)
                        info["config"][k] = v
    return info


def running_tests(result):
    """kdamond 0 is on: record state words, nr_* writes, the running tree, then off."""
    result["state_read_on"] = val(K0 + "/state")
    result["pid_read_on"] = val(K0 + "/pid")
    time.sleep(1.0)
    words = {}
    for w in STATE_WORDS + ("on",):
        t = time.time()
        words[w] = {"result": write(K0 + "/state", w), "seconds": round(time.time() - t, 3)}
    result["state_words_on"] = words
    result["nr_writes_on"] = {
        "kdamonds/nr_kdamonds=1": write("kdamonds/nr_kdamonds", "1"),
        "kdamonds/nr_kdamonds=2": write("kdamonds/nr_kdamonds", "2"),
        C0 + "/targets/nr_targets=1": write(C0 + "/targets/nr_targets", "1"),
    }
    result["nr_targets_after_write_on"] = val(C0 + "/targets/nr_targets")
    # Make the scheme match everything (stat), commit, let it run, then refresh.
    write(C0 + "/targets/0/pid_target", str(os.getpid()))
    write(S0 + "/action", "stat")
    write(S0 + "/access_pattern/sz/max", str(2**63))
    write(S0 + "/access_pattern/nr_accesses/max", "100")
    write(S0 + "/access_pattern/age/max", str(2**31))
    result["commit_with_maxima"] = write(K0 + "/state", "commit")
    stats_path = S0 + "/stats/nr_tried"
    result["stats_before_update"] = val(stats_path)
    time.sleep(2.0)
    result["stats_without_update_after_2s"] = val(stats_path)
    refresh = {}
    for w in ("update_schemes_stats", "update_schemes_tried_regions",
              "update_schemes_effective_quotas", "update_tuned_intervals"):
        refresh[w] = write(K0 + "/state", w)
    result["refresh_writes"] = refresh
    result["stats_after_update"] = val(stats_path)
    result["tree_running"] = dump(ADMIN)
    result["clear_tried_regions"] = write(K0 + "/state", "clear_schemes_tried_regions")
    result["tried_regions_after_clear"] = sorted(os.listdir(a(S0 + "/tried_regions")))
    t = time.time()
    result["off_result"] = write(K0 + "/state", "off")
    result["off_seconds"] = round(time.time() - t, 3)
    time.sleep(0.5)
    result["state_read_after_off"] = val(K0 + "/state")
    result["pid_read_after_off"] = val(K0 + "/pid")
    result["off_again_result"] = write(K0 + "/state", "off")
    result["tree_after_off"] = dump(ADMIN)


# --- 5. behaviour facts (each a yes/no or an errno name; no timings) -----------------

FACT_SCHEME = (("access_pattern/sz/max", str(2**63)), ("access_pattern/nr_accesses/max", "100"),
               ("access_pattern/age/max", str(2**31)), ("action", "stat"))


def stage_fact_kdamond(ops, pids, apply_intervals, regions=None, addr_unit=None):
    """nr_kdamonds=1, one ctx of ``ops`` on ``pids`` (or one paddr region), stat schemes
    matching everything with the given apply intervals. Returns the writes that failed."""
    failed = []

    def w(rel, value):
        r = write(rel, value)
        if r != "ok":
            failed.append([rel, value, r])

    w("kdamonds/nr_kdamonds", "0")
    w("kdamonds/nr_kdamonds", "1")
    w(K0 + "/contexts/nr_contexts", "1")
    w(C0 + "/operations", ops)
    if addr_unit is not None:
        w(C0 + "/addr_unit", str(addr_unit))
    w(C0 + "/monitoring_attrs/intervals/sample_us", "5000")
    w(C0 + "/monitoring_attrs/intervals/aggr_us", "100000")
    w(C0 + "/targets/nr_targets", str(len(pids) if pids else 1))
    for i, pid in enumerate(pids):
        w(C0 + "/targets/%d/pid_target" % i, str(pid))
    if regions:
        w(C0 + "/targets/0/regions/nr_regions", "1")
        w(C0 + "/targets/0/regions/0/start", str(regions[0]))
        w(C0 + "/targets/0/regions/0/end", str(regions[1]))
    set_fact_schemes(apply_intervals, w)
    return failed


def set_fact_schemes(apply_intervals, w):
    w(C0 + "/schemes/nr_schemes", str(len(apply_intervals)))
    for i, interval in enumerate(apply_intervals):
        base = C0 + "/schemes/%d/" % i
        for rel, value in FACT_SCHEME:
            w(base + rel, value)
        if interval is not None:
            w(base + "apply_interval_us", str(interval))


def nr_tried_regions(scheme):
    d = a(C0 + "/schemes/%d/tried_regions" % scheme)
    return len([n for n in os.listdir(d) if n.isdigit()]) if os.path.isdir(d) else None


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def wait_for(predicate, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def fact_zombie():
    out = {}
    child = os.fork()
    if child == 0:  # pragma: no cover - the target process
        time.sleep(120)
        os._exit(0)
    try:
        out["stage_failures"] = stage_fact_kdamond("vaddr", [child], [None])
        out["on"] = write(K0 + "/state", "on")
        os.kill(child, signal.SIGKILL)
        out["target_became_zombie"] = wait_for(lambda: proc_state(child) == "Z", 10)
        time.sleep(1.0)
        out["state_while_zombie"] = val(K0 + "/state")
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(child, 0)
    out["off_after_reap"] = wait_for(lambda: val(K0 + "/state") == "off", 10)
    write(K0 + "/state", "off")
    return out


def fact_schemes():
    out = {}
    has_interval = os.path.exists(a(S0 + "/apply_interval_us"))
    # scheme 0: every sample (5 ms); scheme 1: every aggregation (100 ms)
    out["stage_failures"] = stage_fact_kdamond("vaddr", [os.getpid()], [5000, 0] if has_interval else [None, None])
    out["on"] = write(K0 + "/state", "on")
    if out["on"] != "ok":
        return out
    out["update_tried_right_after_on"] = write(K0 + "/state", "update_schemes_tried_regions")
    out["tried_right_after_on"] = bool(nr_tried_regions(0))
    time.sleep(2.0)
    out["update_stats"] = write(K0 + "/state", "update_schemes_stats")
    tried = [int(val(C0 + "/schemes/%d/stats/nr_tried" % i, "0")) for i in range(2)]
    out["aggregation_scheme_tried"] = tried[1] > 0
    if has_interval:
        out["per_sample_scheme_tried_5x_more"] = tried[0] >= 5 * tried[1]
    failed = []
    set_fact_schemes([5000 if has_interval else None] * 3, lambda rel, v: failed.append([rel, v, write(rel, v)]))
    out["restage_failures"] = [f for f in failed if f[2] != "ok"]
    out["commit_adding_a_scheme"] = write(K0 + "/state", "commit")
    out["update_tried_after_commit"] = write(K0 + "/state", "update_schemes_tried_regions")
    out["tried_after_commit"] = [bool(nr_tried_regions(i)) for i in range(3)]
    write(K0 + "/state", "off")
    return out


def fact_obsolete_commit():
    if not os.path.exists(a(C0 + "/targets/0/obsolete_target")):
        return None
    out = {"stage_failures": stage_fact_kdamond("vaddr", [os.getpid()], [None])}
    out["on"] = write(K0 + "/state", "on")
    out["nr_targets_2"] = write(C0 + "/targets/nr_targets", "2")
    write(C0 + "/targets/0/pid_target", str(os.getpid()))
    write(C0 + "/targets/1/pid_target", str(os.getpid()))
    out["obsolete_1"] = write(C0 + "/targets/1/obsolete_target", "Y")
    out["commit_obsolete_beyond_running"] = write(K0 + "/state", "commit")
    out["state_after"] = val(K0 + "/state")
    write(K0 + "/state", "off")
    return out


def fact_paddr_addr_unit():
    if not os.path.exists(a(C0 + "/addr_unit")):
        return None
    region = (1 << 30, (1 << 30) + (64 << 20))
    out = {}
    for unit in ("3", "5", "1024", "1000", "8192"):
        failed = stage_fact_kdamond("paddr", [], [None], regions=region, addr_unit=unit)
        out["on_addr_unit_" + unit] = write(K0 + "/state", "on") if not failed else failed
        write(K0 + "/state", "off")
    stage_fact_kdamond("paddr", [], [None], regions=region, addr_unit=1)
    out["on_addr_unit_1"] = write(K0 + "/state", "on")
    write(C0 + "/addr_unit", "3")
    out["commit_addr_unit_3"] = write(K0 + "/state", "commit")
    out["state_after_commit_3"] = val(K0 + "/state")
    write(C0 + "/addr_unit", "2")
    out["commit_addr_unit_2"] = write(K0 + "/state", "commit")
    write(K0 + "/state", "off")
    return out


def fact_intervals_goal_commit():
    """≥ 6.15: a commit whose sample_us lies outside the goal's [min_sample_us, max_sample_us] is refused
    (EINVAL) and the kdamond keeps running (hugepage_step fits the tuned intervals in before it commits)."""
    goal = C0 + "/monitoring_attrs/intervals/intervals_goal/"
    intervals = C0 + "/monitoring_attrs/intervals/"
    if not os.path.exists(a(goal)):
        return None
    out = {"stage_failures": stage_fact_kdamond("vaddr", [os.getpid()], [None])}
    for name, value in (("access_bp", "400"), ("aggrs", "3"), ("min_sample_us", "5000"), ("max_sample_us", "1000000")):
        out["stage_failures"] += [[name, value, r] for r in [write(goal + name, value)] if r != "ok"]
    out["on"] = write(K0 + "/state", "on")
    write(goal + "min_sample_us", "200000")
    write(intervals + "sample_us", "5000")
    write(intervals + "aggr_us", "100000")
    out["commit_sample_below_min"] = write(K0 + "/state", "commit")
    out["state_after_refused"] = val(K0 + "/state")
    write(intervals + "sample_us", "200000")
    write(intervals + "aggr_us", "4000000")
    out["commit_sample_raised_to_min"] = write(K0 + "/state", "commit")
    write(goal + "min_sample_us", "5000")
    write(goal + "max_sample_us", "100000")
    out["commit_sample_above_max"] = write(K0 + "/state", "commit")
    write(K0 + "/state", "off")
    return out


def behaviour_facts():
    facts = {}
    for name, fn in (("zombie_target", fact_zombie), ("scheme_apply", fact_schemes),
                     ("obsolete_commit", fact_obsolete_commit), ("paddr_addr_unit", fact_paddr_addr_unit),
                     ("intervals_goal_commit", fact_intervals_goal_commit)):
        try:
            facts[name] = fn()
        except Exception as exc:  # pylint: disable=broad-except  # record, go on with the rest
            facts[name] = {"error": repr(exc)}
    write("kdamonds/nr_kdamonds", "0")
    return facts


STAT_RESULTS = ("aggr_interval_us", "estimated_memory_bandwidth", "memory_idle_ms_percentiles")


def damon_stat_refresh(seconds=13.0, step=0.1):
    """While DAMON_STAT runs: when do its result parameters change? (every 5 s)"""
    base = MODULES + "/damon_stat/parameters/"
    if not all(os.path.exists(base + n) for n in STAT_RESULTS) or val(base + "enabled") != "Y":
        return None
    t0 = time.time()
    last = [val(base + n) for n in STAT_RESULTS]
    changes = []
    while time.time() - t0 < seconds:
        time.sleep(step)
        now = [val(base + n) for n in STAT_RESULTS]
        if now != last:
            at = time.time() - t0
            # one refresh rewrites three files: a reader between them sees it twice, 0.1 s apart
            if not changes or at - changes[-1] > 1.0:
                changes.append(at)
            last = now
    gaps = [b - a_ for a_, b in zip(changes, changes[1:])]
    return {"changes_seen_ge_2": len(changes) >= 2,
            "gaps_ge_4_5s": bool(gaps) and min(gaps) >= 4.5,
            "gaps_le_7s": bool(gaps) and max(gaps) <= 7.0}


def main():
    result = {"probe_version": PROBE_VERSION, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["kernel"] = kernel_info()
    result["damon_dir_present"] = os.path.isdir(DAMON)
    result["damon_admin_present"] = os.path.isdir(ADMIN)
    result["sys_kernel_mm"] = sorted(os.listdir(SYS + "/kernel/mm"))
    result["thp"] = dump(THP)
    result["module_params"] = module_params()
    result["damon_modules"] = sorted(m for m in os.listdir(MODULES) if m.startswith("damon"))
    if not result["damon_admin_present"]:
        result["note"] = "no DAMON sysfs interface on this kernel"
        json.dump(result, sys.stdout, indent=1, sort_keys=True)
        return 0

    result["tree_initial"] = dump(ADMIN)
    nr = val("kdamonds/nr_kdamonds", "0")
    for i in range(int(nr or 0)):
        if val("kdamonds/%d/state" % i) == "on":
            result["error"] = "kdamond %d is running; refusing to touch a live system" % i
            json.dump(result, sys.stdout, indent=1, sort_keys=True)
            return 1

    # 2. stage one of everything and dump it
    result["staging_writes"] = stage_all("stage")
    result["tree"] = dump(ADMIN)
    result["avail_operations"] = val(C0 + "/avail_operations")

    # 3. keywords
    result["operations_words"] = try_words(C0 + "/operations", OPERATIONS)
    result["action_words"] = try_words(S0 + "/action", ACTIONS)
    result["filter_types"] = {d: try_words(S0 + "/" + d + "/0/type", FILTER_TYPES)
                              for d in filter_dirs()}
    result["goal_metrics"] = try_words(S0 + "/quotas/goals/0/target_metric", GOAL_METRICS)
    result["goal_tuners"] = try_words(S0 + "/quotas/goal_tuner", GOAL_TUNERS)
    result["watermark_metrics"] = try_words(S0 + "/watermarks/metric", WMARK_METRICS)
    bool_files = {}
    for rel in (S0 + "/filters/0/matching", S0 + "/filters/0/allow",
                C0 + "/targets/0/obsolete_target", C0 + "/pause"):
        if os.path.exists(a(rel)):
            bool_files[rel] = try_words(rel, BOOLS)
    result["bool_words"] = bool_files
    result["value_writes"] = value_writes()

    # bad writes (each restored afterwards where it had a value)
    bad = []
    cases = [
        ("kdamonds/nr_kdamonds", "-1"), ("kdamonds/nr_kdamonds", "abc"),
        ("kdamonds/nr_kdamonds", ""), ("kdamonds/nr_kdamonds", "1 2"),
        (K0 + "/contexts/nr_contexts", "2"), (K0 + "/contexts/nr_contexts", "-1"),
        (C0 + "/targets/nr_targets", "-1"), (C0 + "/schemes/nr_schemes", "x"),
        (C0 + "/monitoring_attrs/intervals/sample_us", "abc"),
        (C0 + "/monitoring_attrs/intervals/sample_us", "-1"),
        (C0 + "/monitoring_attrs/intervals/sample_us", "99999999999999999999999"),
        (C0 + "/monitoring_attrs/nr_regions/min", "0"),
        (C0 + "/targets/0/pid_target", "abc"), (C0 + "/targets/0/pid_target", "-5"),
        (S0 + "/access_pattern/nr_accesses/max", "-1"),
        (S0 + "/quotas/ms", "abc"), (S0 + "/watermarks/high", "-1"),
        (K0 + "/pid", "1"), (C0 + "/avail_operations", "vaddr"),
        (S0 + "/stats/nr_tried", "1"), (S0 + "/tried_regions/total_bytes", "1"),
        (K0 + "/refresh_ms", "abc"), (K0 + "/refresh_ms", "-1"),
    ]
    for rel, v in cases:
        if not os.path.exists(a(rel)):
            continue
        before = val(rel)
        r = write(rel, v)
        after = val(rel)
        bad.append({"path": rel, "value": v, "result": r, "before": before, "after": after})
        if before is not None and after != before and r != "ok":
            write(rel, before)
    result["bad_writes"] = bad
    # some writes above may have altered the tree (e.g. nr_* accepted): restage
    result["restage_after_bad_writes"] = stage_all("restage")

    # nr_* rewrite semantics
    sem = {}
    write(C0 + "/monitoring_attrs/intervals/sample_us", "12345")
    write(S0 + "/action", "pageout")
    write(C0 + "/targets/0/pid_target", "4242")
    sem["nr_targets_same_value"] = write(C0 + "/targets/nr_targets", "1")
    sem["pid_target_after_nr_targets_rewrite"] = val(C0 + "/targets/0/pid_target")
    sem["nr_schemes_same_value"] = write(C0 + "/schemes/nr_schemes", "1")
    sem["action_after_nr_schemes_rewrite"] = val(S0 + "/action")
    sem["sample_us_after_nr_schemes_rewrite"] = val(C0 + "/monitoring_attrs/intervals/sample_us")
    sem["nr_kdamonds_same_value"] = write("kdamonds/nr_kdamonds", "1")
    sem["nr_contexts_after_nr_kdamonds_rewrite"] = val(K0 + "/contexts/nr_contexts")
    sem["nr_kdamonds_zero"] = write("kdamonds/nr_kdamonds", "0")
    sem["listing_after_zero"] = sorted(os.listdir(a("kdamonds")))
    sem["nr_kdamonds_two"] = write("kdamonds/nr_kdamonds", "2")
    sem["listing_after_two"] = sorted(os.listdir(a("kdamonds")))
    sem["nr_kdamonds_read_after_two"] = read("kdamonds/nr_kdamonds")[0]
    sem["contexts_of_new_kdamond"] = read(K0 + "/contexts/nr_contexts")[0]
    result["nr_semantics"] = sem
    write("kdamonds/nr_kdamonds", "0")
    stage_all("restage")

    # 4. state words on the idle kdamond
    off = {}
    for w in STATE_WORDS + ("off",):
        off[w] = write(K0 + "/state", w)
    result["state_words_off"] = off
    result["state_read_off"] = read(K0 + "/state")[0]
    result["pid_read_off"] = read(K0 + "/pid")[0]

    attempts = []
    stat_param = find_module_param("damon_stat")
    stat_orig = None
    if stat_param:
        with open(stat_param) as f:
            stat_orig = f.read().strip()

    def attempt(change):
        r = write(K0 + "/state", "on")
        attempts.append({"change_before": change, "result": r, "state": val(K0 + "/state")})
        return r == "ok"

    fixes = [
        ("none (fully staged tree, pid_target 0, region 0-0, default filters)", lambda: None),
        ("pid_target = probe pid", lambda: write(C0 + "/targets/0/pid_target", str(os.getpid()))),
        ("targets/0/regions/nr_regions = 0",
         lambda: write(C0 + "/targets/0/regions/nr_regions", "0")),
        ("nr_filters = 0 in every filter dir",
         lambda: [write(S0 + "/" + d + "/nr_filters", "0") for d in filter_dirs()]),
        ("nr_dests = 0, nr_goals = 0",
         lambda: (write(S0 + "/dests/nr_dests", "0") if os.path.exists(a(S0 + "/dests")) else None,
                  write(S0 + "/quotas/goals/nr_goals", "0"))),
        ("monitoring_attrs/nr_probes = 0",
         lambda: write(C0 + "/monitoring_attrs/probes/nr_probes", "0")
         if os.path.exists(a(C0 + "/monitoring_attrs/probes/nr_probes")) else None),
        ("access_pattern maxima set, action stat",
         lambda: [write(S0 + "/access_pattern/sz/max", str(2**63)),
                  write(S0 + "/access_pattern/nr_accesses/max", "100"),
                  write(S0 + "/access_pattern/age/max", str(2**31)),
                  write(S0 + "/action", "stat")]),
        ("nr_regions min/max = 10/1000, intervals 5000/100000/1000000",
         lambda: [write(C0 + "/monitoring_attrs/nr_regions/min", "10"),
                  write(C0 + "/monitoring_attrs/nr_regions/max", "1000"),
                  write(C0 + "/monitoring_attrs/intervals/sample_us", "5000"),
                  write(C0 + "/monitoring_attrs/intervals/aggr_us", "100000"),
                  write(C0 + "/monitoring_attrs/intervals/update_us", "1000000")]),
    ]
    if stat_param:
        fixes.append(("damon_stat enabled = N", lambda: write(stat_param, "N")))
    on = False
    for desc, fix in fixes:
        fix()
        if attempt(desc):
            on = True
            break
    result["on_attempts"] = attempts
    result["damon_stat_enabled_original"] = stat_orig
    if on:
        result["tree_on_start"] = dump(ADMIN)
        running_tests(result)
        # with DAMON_STAT still disabled: can it be enabled while our kdamond is off?
        result["facts"] = behaviour_facts()
    if stat_param and stat_orig is not None:
        result["damon_stat_restore"] = write(stat_param, stat_orig)
        result["damon_stat_enabled_after_restore"] = val(stat_param)
    result["nr_kdamonds_zero_final"] = write("kdamonds/nr_kdamonds", "0")
    result["module_params_after"] = module_params()
    result["damon_stat_refresh"] = damon_stat_refresh()
    result["write_log"] = LOG
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        set_root(sys.argv[1])
    sys.exit(main())
