"""Guest-side probe (stdlib only): what makes MADV_COLLAPSE fail, one factor at a time.

Run inside a guest as root: ``python3 - < collapse_facts.py`` prints one JSON object.
Each case maps 4 private anonymous 2 MiB-aligned chunks, prepares chunk 2 one way, then
calls process_madvise(MADV_COLLAPSE) once over all 4 chunks and once per chunk, and records
the errno and the khugepaged scan status (tracepoint huge_memory:mm_khugepaged_scan_pmd).
"""

import ctypes
import errno
import json
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
H, P = 2 << 20, 4096
MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE = 4, 8, 14, 15, 25
PROT_RW, MAP_PRIVATE, MAP_SHARED, MAP_ANON, MAP_FIXED = 3, 0x02, 0x01, 0x20, 0x10
T = "/sys/kernel/tracing"
EV = T + "/events/huge_memory/mm_khugepaged_scan_pmd/enable"
THP = "/sys/kernel/mm/transparent_hugepage/"


class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def collapse(pidfd, start, length):
    iov = (Iov * 1)(Iov(start, length))
    r = libc.syscall(440, pidfd, iov, 1, MADV_COLLAPSE, 0)
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]


def traced(fn):
    with open(T + "/trace", "w") as f:
        f.write("")
    with open(EV, "w") as f:
        f.write("1")
    try:
        r = fn()
    finally:
        with open(EV, "w") as f:
            f.write("0")
    with open(T + "/trace") as f:
        st = [line.split("status=")[1].split(",")[0] for line in f if "scan_pmd" in line]
    return r, st


def region(n=4, flags=MAP_PRIVATE | MAP_ANON):
    raw = libc.mmap(None, (n + 1) * H, PROT_RW, flags, -1, 0)
    return -(-raw // H) * H


def smaps_field(addr, key):
    cur = False
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and ":" not in parts[0]:
                s, e = (int(x, 16) for x in parts[0].split("-"))
                cur = s <= addr < e
            elif cur and parts[0] == key + ":":
                return " ".join(parts[1:])
    return None


def rss_anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def prep(kind, c):
    if kind == "never_touched":
        return
    if kind == "only_read":
        b = (ctypes.c_char * H).from_address(c)
        for i in range(0, H, P):
            unused = b[i]  # a read touches the page
        return
    if kind == "one_page_written":
        ctypes.memset(c, 1, P)
        return
    ctypes.memset(c, 1, H)
    if kind == "dontneed_whole":
        libc.madvise(c, H, MADV_DONTNEED)
    elif kind == "dontneed_all_but_one":
        libc.madvise(c + P, H - P, MADV_DONTNEED)
    elif kind == "free_whole":
        libc.madvise(c, H, MADV_FREE)
    elif kind == "nohugepage":
        libc.madvise(c, H, MADV_NOHUGEPAGE)


def chunk_cases(pidfd):
    out = {}
    for kind in ("all_written", "never_touched", "dontneed_whole", "dontneed_all_but_one", "free_whole",
                 "only_read", "one_page_written", "nohugepage"):
        res = {}
        for mode in ("one_call", "per_chunk"):
            a = region()
            for i in range(4):
                if i == 2:
                    prep(kind, a + i * H)
                else:
                    ctypes.memset(a + i * H, 1, H)
            if mode == "one_call":
                res["thp_eligible"] = smaps_field(a, "THPeligible")
                res["vm_flags"] = smaps_field(a, "VmFlags")
                before = rss_anon_kb()
                r, st = traced(lambda a=a: collapse(pidfd, a, 4 * H))
                res["rss_anon_growth_kb"] = rss_anon_kb() - before
            else:
                r, st = traced(lambda a=a: [collapse(pidfd, a + i * H, H) for i in range(4)])
            res[mode] = {"result": r, "scan": st}
        out[kind] = res
    return out


def prctl_case():
    """A child after prctl(PR_SET_THP_DISABLE, 1): THP_enabled and a collapse of its own memory."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc.prctl(41, 1, 0, 0, 0)
        a = region(1)
        ctypes.memset(a, 1, H)
        with open("/proc/self/status") as f:
            thp = [line.split()[1] for line in f if line.startswith("THP_enabled")]
        fd = libc.syscall(434, os.getpid(), 0)
        os.write(w, json.dumps({"THP_enabled": thp[0] if thp else None,
                                "collapse": collapse(fd, a, H)}).encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 4096)
    os.waitpid(pid, 0)
    return json.loads(data)


def shmem_cases(pidfd):
    """Shared anonymous memory per shmem_enabled setting: where the kernel places new mappings
    (4 of them, 16 MiB + 20 KiB each so that placement is not aligned by accident), and
    MADV_COLLAPSE on a 2 MiB-aligned and on a misaligned (address - offset) placement."""
    with open(THP + "shmem_enabled") as f:
        orig = f.read().split("[")[1].split("]")[0]
    out = {}
    try:
        for setting in ("never", "advise"):
            with open(THP + "shmem_enabled", "w") as f:
                f.write(setting)
            n = 8 * H + 5 * P
            placed = [libc.mmap(None, n, PROT_RW, MAP_SHARED | MAP_ANON, -1, 0) for unused in range(4)]
            out["%s/default_placement_aligned" % setting] = sum(1 for a in placed if a % H == 0)
            for placement, shift in (("aligned", 0), ("misaligned", P)):
                hint = region(9)  # an aligned reservation, then a shared mapping over it
                a = libc.mmap(hint + shift, 8 * H, PROT_RW, MAP_SHARED | MAP_ANON | MAP_FIXED, -1, 0)
                ctypes.memset(a, 1, 8 * H)
                s = -(-a // H) * H
                r, st = traced(lambda s=s: collapse(pidfd, s, 2 * H))
                out["%s/%s" % (setting, placement)] = {
                    "result": r, "shmem_pmd_mapped": smaps_field(a, "ShmemPmdMapped")}
    finally:
        with open(THP + "shmem_enabled", "w") as f:
            f.write(orig)
    return out


def main():
    if not os.path.exists(T + "/events"):
        os.system("mount -t tracefs nodev " + T)
    pidfd = libc.syscall(434, os.getpid(), 0)
    with open(THP + "enabled") as f:
        enabled = f.read().strip()
    print(json.dumps({
        "kernel": os.uname().release, "enabled": enabled,
        "chunks": chunk_cases(pidfd), "prctl": prctl_case(), "shmem": shmem_cases(pidfd),
    }))


main()
