# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_procfs.py.

Parsers get the kernel's text formats; the process scan runs on a fake /proc
tree in tmp_path whose ``sleep`` hook changes the tree between the two samples
(CPU used, processes exiting, PIDs reused). A few tests read this process's own
/proc files, which every Linux host has.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
from array import array

import pytest

from ansible_collections.linux_mm.damon.plugins.module_utils import _procfs as procfs

# --------------------------------------------------------------------------
# parsers

STAT_SELF = ("11703 (cat) R 11701 11701 29271 0 -1 4194304 101 0 0 0 7 3 0 0 20 0 1 0 68638 3133440 382 "
             "18446744073709551615 93910553403392 93910553423273 140724443467808 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0")
STAT_KTHREADD = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0 0"


def test_parse_stat_fields():
    st = procfs.parse_stat(STAT_SELF)
    assert st == {"pid": 11703, "comm": "cat", "state": "R", "ppid": 11701, "flags": 4194304, "utime": 7,
                  "stime": 3, "num_threads": 1, "starttime": 68638, "rss_pages": 382}


def test_parse_stat_comm_with_parens_and_spaces():
    text = STAT_SELF.replace("(cat)", "(a) b (c)")
    st = procfs.parse_stat(text)
    assert st["comm"] == "a) b (c"
    assert st["ppid"] == 11701 and st["utime"] == 7


def test_kernel_thread_detection():
    kthreadd = procfs.parse_stat(STAT_KTHREADD)
    assert kthreadd["flags"] & procfs.PF_KTHREAD
    assert procfs.is_kernel_thread(kthreadd)
    user = procfs.parse_stat(STAT_SELF)
    assert not procfs.is_kernel_thread(user)
    assert not procfs.is_kernel_thread(user, ["cat"])
    # No PF_KTHREAD (old kernel view), child of kthreadd with an empty cmdline.
    child = dict(user, ppid=2)
    assert procfs.is_kernel_thread(child, [])
    assert not procfs.is_kernel_thread(child, ["x"])


def test_read_stat_of_self():
    st = procfs.read_stat(os.getpid())
    assert st["pid"] == os.getpid()
    assert st["ppid"] == os.getppid()
    assert not procfs.is_kernel_thread(st)


def test_parse_status_and_kb():
    status = procfs.parse_status("Name:\tcat\nUid:\t1000\t1001\t1002\t1003\nRssAnon:\t     112 kB\nTHP_enabled:\t1\n")
    assert status["Name"] == "cat"
    assert procfs.status_uid(status) == 1001
    assert procfs.status_uid(status, "real") == 1000
    assert procfs.kb_value(status["RssAnon"]) == 112 * 1024
    assert procfs.kb_value(None) is None
    assert procfs.kb_value("") is None
    assert procfs.kb_value("x kB") is None
    assert procfs.kb_value("7") == 7


def test_parse_cmdline():
    assert procfs.parse_cmdline(b"") == []
    assert procfs.parse_cmdline(b"python3\0-c\0print(1)\0") == ["python3", "-c", "print(1)"]
    assert procfs.parse_cmdline(b"weird\xff\0") == ["weird\ufffd"]
    assert procfs.read_cmdline(os.getpid())[0]


CGROUP_HYBRID = """9:name=systemd:/user.slice/session-1.scope
4:memory:/process_api/abc
1:cpu:/
0::/
"""


def test_cgroup_parsing_and_matching():
    entries = procfs.parse_cgroup(CGROUP_HYBRID)
    assert [e["hierarchy"] for e in entries] == [9, 4, 1, 0]
    assert entries[1]["controllers"] == ["memory"]
    assert procfs.main_cgroup_path(entries) == "/process_api/abc"
    v2 = procfs.parse_cgroup("0::/system.slice/nginx.service\n")
    assert procfs.main_cgroup_path(v2) == "/system.slice/nginx.service"
    assert procfs.main_cgroup_path([]) is None
    assert procfs.cgroup_matches(v2, "/system.slice")
    assert procfs.cgroup_matches(v2, "/system.slice/")
    assert procfs.cgroup_matches(v2, "/system.slice/nginx.service")
    assert not procfs.cgroup_matches(v2, "/system.sl")
    assert procfs.cgroup_matches(v2, "nginx")
    assert procfs.cgroup_matches(v2, "/")
    assert procfs.cgroup_matches(entries, "/user.slice")
    assert procfs.cgroup_matches(entries, "process_api")
    assert not procfs.cgroup_matches(entries, "/process")


SMAPS = """559bc7fe1000-559bc7fe2000 r--p 00000000 fe:00 2146427                    /tmp/hc
Size:                  4 kB
Rss:                   4 kB
AnonHugePages:         0 kB
THPeligible:           0
VmFlags: rd mr mw me
7fa337800000-7fa339800000 rw-p 00000000 00:00 0
Size:              32768 kB
Rss:               32768 kB
Anonymous:         32768 kB
AnonHugePages:     32768 kB
THPeligible:           1
VmFlags: rd wr mr mw me nr
7fa339800000-7fa339a00000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)
Size:               2048 kB
AnonHugePages:         0 kB
VmFlags: rd wr sh mr mw me ms
7fa339a00000-7fa33da00000 rw-p 00000000 00:00 0                          [anon:cold]
Size:              65536 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me nh
"""


def test_parse_smaps_and_find_vma():
    vmas = procfs.parse_smaps(SMAPS)
    assert len(vmas) == 4
    exe, hot, shared, cold = vmas
    assert exe.path == "/tmp/hc" and exe.inode == 2146427 and not exe.anonymous
    assert hot.start == 0x7fa337800000 and hot.end == 0x7fa339800000
    assert hot.anon_huge_bytes == 32 << 20 and hot.thp_eligible is True
    assert hot.private and hot.anonymous and hot.ineligibility() is None
    assert "nr" in hot.vm_flags
    assert not shared.private
    assert "shared" in shared.ineligibility()
    assert cold.anonymous and cold.path == "[anon:cold]"
    assert "VM_NOHUGEPAGE" in cold.ineligibility()
    assert procfs.find_vma(vmas, hot.start, hot.start + (2 << 20)) is hot
    # Straddles hot and shared: not inside a single mapping.
    assert procfs.find_vma(vmas, hot.end - (1 << 20), hot.end + (1 << 20)) is None
    assert procfs.find_vma(vmas, 0x1000, 0x2000) is None
    assert hot.as_dict()["vm_flags"] == sorted(hot.vm_flags)
    maps = procfs.parse_maps("\n".join(line for line in SMAPS.splitlines() if "-" in line.split()[0]))
    assert [(v.start, v.end) for v in maps] == [(v.start, v.end) for v in vmas]
    assert maps[0].vm_flags is None


def test_parse_smaps_rollup():
    text = ("55b2a69c7000-7ffd5b255000 ---p 00000000 00:00 0                          [rollup]\n"
            "Rss:                1740 kB\nAnonymous:           112 kB\nAnonHugePages:      4096 kB\n")
    rollup = procfs.parse_smaps_rollup(text)
    assert rollup == {"Rss": 1740 * 1024, "Anonymous": 112 * 1024, "AnonHugePages": 4096 * 1024}
    assert procfs.anon_huge_bytes(os.getpid()) >= 0


# --------------------------------------------------------------------------
# errors while reading

def test_missing_process_is_process_gone(tmp_path):
    with pytest.raises(procfs.ProcessGone) as info:
        procfs.read_stat(12345, str(tmp_path))
    assert info.value.errno == errno.ENOENT
    assert "12345" in str(info.value)


def test_empty_stat_is_process_gone(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text("")
    with pytest.raises(procfs.ProcessGone):
        procfs.read_stat(7, str(tmp_path))


def test_garbage_stat_is_proc_error(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text("garbage")
    with pytest.raises(procfs.ProcError) as info:
        procfs.read_stat(7, str(tmp_path))
    assert not isinstance(info.value, procfs.ProcessGone)
    assert "unexpected format" in str(info.value)


def test_access_denied_is_its_own_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(procfs.ProcAccessDenied):
        procfs.read_bytes(str(tmp_path / "x"))


# --------------------------------------------------------------------------
# pagemap and kpageflags

def write_entries(path, index, values):
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.seek(index * 8)
        f.write(array("Q", values).tobytes())


PAGE = 4096
PER = 512
HUGE = PAGE * PER


def fake_pagemap(tmp_path, pid, entries_at):
    """entries_at: {virtual page index: entry}."""
    d = tmp_path / str(pid)
    d.mkdir(exist_ok=True)
    path = str(d / "pagemap")
    open(path, "wb").close()
    for index, value in entries_at.items():
        write_entries(path, index, [value])
    return path


class FakeKpf:
    def __init__(self, flags_by_pfn, available=True):
        self.flags_by_pfn = flags_by_pfn
        self.available = available

    def flags(self, pfn, count=1):
        return array("Q", [self.flags_by_pfn.get(pfn + i, 0) for i in range(count)])


def thp_flags(pfn0):
    flags = {pfn0: procfs.KPF_THP | procfs.KPF_COMPOUND_HEAD}
    for i in range(1, PER):
        flags[pfn0 + i] = procfs.KPF_THP | procfs.KPF_COMPOUND_TAIL
    return flags


def present(pfn=0):
    return procfs.PM_PRESENT | pfn


def test_count_populated_and_pfns_known():
    entries = array("Q", [present(5), procfs.PM_SWAP, 0, present(0)])
    assert procfs.count_populated(entries) == (2, 1)
    assert procfs.pfns_known(entries)
    assert not procfs.pfns_known(array("Q", [present(0), 0]))
    assert not procfs.pfns_known(array("Q", [0, procfs.PM_SWAP]))


def test_is_whole_thp():
    pfn0 = 0x40000
    whole = array("Q", [present(pfn0 + i) for i in range(PER)])
    kpf = FakeKpf(thp_flags(pfn0))
    assert procfs.is_whole_thp(whole, kpf) is True
    # Same PFNs but not a THP folio (e.g. contiguous base pages).
    assert procfs.is_whole_thp(whole, FakeKpf({})) is False
    # Misaligned first PFN, a hole, a non-contiguous PFN.
    assert procfs.is_whole_thp(array("Q", [present(pfn0 + 1 + i) for i in range(PER)]), kpf) is False
    holed = array("Q", whole)
    holed[7] = 0
    assert procfs.is_whole_thp(holed, kpf) is False
    moved = array("Q", whole)
    moved[9] = present(pfn0 + 4096)
    assert procfs.is_whole_thp(moved, kpf) is False
    # mTHP: first page is a head but page 16 is a head too.
    mthp = thp_flags(pfn0)
    mthp[pfn0 + 16] = procfs.KPF_THP | procfs.KPF_COMPOUND_HEAD
    assert procfs.is_whole_thp(whole, FakeKpf(mthp)) is False
    # No PFNs (not CAP_SYS_ADMIN) or no kpageflags: cannot tell.
    assert procfs.is_whole_thp(array("Q", [present(0)] * PER), kpf) is None
    assert procfs.is_whole_thp(whole, FakeKpf({}, available=False)) is None
    assert procfs.is_whole_thp(whole, None) is None
    assert procfs.is_whole_thp(array("Q", [0] * PER), kpf) is False
    assert procfs.is_whole_thp(array("Q"), kpf) is False


def test_pagemap_reads_entries_of_a_span(tmp_path):
    base_page = 0x10000  # virtual page index of the span
    fake_pagemap(tmp_path, 42, {base_page: present(1), base_page + 3: procfs.PM_SWAP, base_page + 1023: present(2)})
    with procfs.Pagemap(42, str(tmp_path), page=PAGE) as pm:
        entries = pm.entries(base_page * PAGE, (base_page + 1024) * PAGE)
        assert len(entries) == 1024
        assert entries[0] == present(1) and entries[3] == procfs.PM_SWAP and entries[1023] == present(2)
        assert procfs.count_populated(entries) == (2, 1)
        # Past the end of the (fake) file: the mm went away.
        with pytest.raises(procfs.ProcessGone):
            pm.entries((base_page + 1024) * PAGE, (base_page + 2048) * PAGE)
    assert pm.fd is None


def test_pagemap_of_missing_process(tmp_path):
    with pytest.raises(procfs.ProcessGone):
        procfs.Pagemap(99, str(tmp_path))


def test_kpageflags_unavailable(tmp_path):
    kpf = procfs.KPageFlags(str(tmp_path / "nope"))
    assert not kpf.available
    assert kpf.flags(0, 4) is None
    kpf.close()


def test_kpageflags_reads_a_file(tmp_path):
    path = str(tmp_path / "kpageflags")
    write_entries(path, 1000, [procfs.KPF_THP, procfs.KPF_ZERO_PAGE])
    with procfs.KPageFlags(path) as kpf:
        assert kpf.available
        assert list(kpf.flags(1000, 2)) == [procfs.KPF_THP, procfs.KPF_ZERO_PAGE]


def test_pagemap_of_own_private_memory():
    """The present bit of our own freshly touched private anonymous pages."""
    size = 4 * HUGE
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf = (ctypes.c_char * size).from_buffer(m)
        addr = ctypes.addressof(buf)
        page = procfs.page_size()
        for off in range(0, size // 2, page):
            m[off] = 1
        with procfs.Pagemap(os.getpid()) as pm:
            entries = pm.entries(addr, addr + size)
        present_count = procfs.count_populated(entries)[0]
        assert present_count == (size // 2) // page
        del buf
    finally:
        m.close()


def test_range_huge_bytes_of_own_small_pages():
    size = 4 * HUGE
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf = (ctypes.c_char * size).from_buffer(m)
        addr = ctypes.addressof(buf)
        for off in range(0, size, procfs.page_size()):
            m[off] = 1
        value = procfs.range_huge_bytes(os.getpid(), addr, addr + size)
        # None without CAP_SYS_ADMIN; as root, at most the aligned part (THP=always may back it).
        assert value is None or 0 <= value <= size
        assert procfs.range_huge_bytes(os.getpid(), addr, addr + 4096) == 0
        del buf
    finally:
        m.close()


def test_pmd_size_and_page_size(tmp_path):
    assert procfs.page_size() == mmap.PAGESIZE
    assert procfs.pmd_size(str(tmp_path)) == mmap.PAGESIZE * (mmap.PAGESIZE // 8)
    thp = tmp_path / "kernel" / "mm" / "transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "hpage_pmd_size").write_text("536870912\n")
    assert procfs.pmd_size(str(tmp_path)) == 536870912


# --------------------------------------------------------------------------
# the hot-process scan on a fake /proc

TICKS = os.sysconf("SC_CLK_TCK")


class FakeProc:
    """A fake /proc: one directory per PID with stat, status, cmdline, cgroup, smaps_rollup."""

    def __init__(self, root):
        self.root = root

    def add(self, pid, comm="app", ppid=1, ticks=0, starttime=1000, flags=0x400000, state="S", uid=0,
            anon_kb=65536, cmdline=None, cgroup="0::/system.slice/app.service\n", huge_kb=0, thp_enabled=1,
            threads=1):
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        utime, stime = ticks - ticks // 3, ticks // 3
        fields = [state, ppid, ppid, 0, 0, -1, flags, 0, 0, 0, 0, utime, stime, 0, 0, 20, 0, threads, 0,
                  starttime, 0, 100]
        (d / "stat").write_text("%d (%s) %s\n" % (pid, comm, " ".join(str(f) for f in fields)))
        status = "Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n" % (comm, uid, uid, uid, uid)
        if anon_kb is not None:
            status += "RssAnon:\t%d kB\n" % anon_kb
        status += "THP_enabled:\t%d\n" % thp_enabled
        (d / "status").write_text(status)
        args = [comm] if cmdline is None else cmdline
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in args))
        (d / "cgroup").write_text(cgroup)
        (d / "smaps_rollup").write_text("Rss: %d kB\nAnonymous: %d kB\nAnonHugePages: %d kB\n"
                                        % (anon_kb or 0, anon_kb or 0, huge_kb))

    def remove(self, pid):
        d = self.root / str(pid)
        for f in d.iterdir():
            f.unlink()
        d.rmdir()

    def set_ticks(self, pid, ticks):
        path = self.root / str(pid) / "stat"
        parts = path.read_text().split()
        parts[13], parts[14] = str(ticks - ticks // 3), str(ticks // 3)
        path.write_text(" ".join(parts) + "\n")


@pytest.fixture
def fake_proc(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    proc = FakeProc(root)
    proc.add(1, comm="init", ppid=0, ticks=500, cmdline=["/sbin/init"])
    proc.add(2, comm="kthreadd", ppid=0, flags=0x208040, anon_kb=None, cmdline=[])
    proc.add(3, comm="kworker/0:1", ppid=2, flags=0x4208060, anon_kb=None, cmdline=[])
    proc.add(50, comm="ansible", ppid=1, ticks=100, cmdline=["ansible-playbook", "site.yml"])
    proc.add(51, comm="python3", ppid=50, ticks=10, cmdline=["python3", "AnsiballZ_hot_processes.py"])
    return proc


def scan(proc, changes, **kwargs):
    """find_hot_processes on the fake tree; ``changes`` runs between the samples."""
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        changes()

    kwargs.setdefault("self_pid", 51)
    kwargs.setdefault("huge", HUGE)
    result = procfs.find_hot_processes(proc_root=str(proc.root), sleep=sleep, **kwargs)
    assert slept == [kwargs.get("window_s", 1.0)]
    return result


def test_scan_ranks_by_cpu_delta_ties_by_pid(fake_proc):
    fake_proc.add(100, comm="idle", ticks=1000)
    fake_proc.add(101, comm="busy", ticks=1000)
    fake_proc.add(102, comm="busier", ticks=0)
    fake_proc.add(103, comm="tie", ticks=50)
    fake_proc.add(104, comm="tie", ticks=70)

    def changes():
        fake_proc.set_ticks(101, 1000 + TICKS // 2)
        fake_proc.set_ticks(102, TICKS)
        fake_proc.set_ticks(103, 50 + 3)
        fake_proc.set_ticks(104, 70 + 3)
        fake_proc.set_ticks(1, 500 + 5 * TICKS)  # an ancestor: never reported

    processes, summary = scan(fake_proc, changes, top=0)
    assert [p["pid"] for p in processes] == [102, 101, 103, 104, 100]
    busier = processes[0]
    assert busier["cpu_seconds"] == pytest.approx(1.0, abs=0.01)
    assert busier["cpu_pct"] > 0
    assert busier["comm"] == "busier" and busier["cmdline"] == ["busier"]
    assert busier["user"] == "root" and busier["uid"] == 0
    assert busier["cgroup"] == "/system.slice/app.service"
    assert busier["anon_rss_bytes"] == 64 << 20
    assert busier["anon_huge_bytes"] == 0
    assert busier["thp_eligible"] is True
    assert processes[-1]["cpu_seconds"] == 0
    assert summary["kernel_threads"] == 2
    assert summary["excluded"] == 3  # 51 itself, 50 and 1
    assert summary["matched"] == 5
    assert summary["scanned"] == 10


def test_scan_top_limits_and_reads_rollup_only_for_returned(fake_proc):
    for pid in range(100, 110):
        fake_proc.add(pid, ticks=0)

    def changes():
        for pid in range(100, 110):
            fake_proc.set_ticks(pid, pid - 99)
        # A process below the top-3 cut whose smaps_rollup is gone: not read, so no harm.
        (fake_proc.root / "100" / "smaps_rollup").unlink()

    processes, summary = scan(fake_proc, changes, top=3)
    assert [p["pid"] for p in processes] == [109, 108, 107]
    assert summary["matched"] == 10


def test_scan_handles_exits_and_pid_reuse(fake_proc):
    fake_proc.add(100, comm="leaves", ticks=10)
    fake_proc.add(101, comm="old", ticks=5000, starttime=100)
    fake_proc.add(102, comm="vanishes", ticks=0)

    def changes():
        fake_proc.remove(100)
        # PID 101 reused by a new process (other start time): its whole CPU time counts.
        fake_proc.add(101, comm="new", ticks=20, starttime=9999)
        fake_proc.add(103, comm="born", ticks=7)
        fake_proc.set_ticks(102, 50)
        # 102 loses its status file between the samples' stat read and the detail read.
        (fake_proc.root / "102" / "status").unlink()

    processes, summary = scan(fake_proc, changes, top=0)
    assert [(p["pid"], p["comm"]) for p in processes] == [(101, "new"), (103, "born")]
    assert processes[0]["cpu_seconds"] == pytest.approx(20.0 / TICKS)
    assert summary["exited"] == 2  # 100 between the samples, 102 while reading


def test_scan_skips_zombies_and_unreadable(fake_proc, monkeypatch):
    fake_proc.add(100, comm="zombie", state="Z", anon_kb=None, cmdline=[])
    fake_proc.add(101, comm="secret", ticks=0)
    real = procfs.read_status

    def read_status(pid, proc_root=procfs.PROC):
        if pid == 101:
            raise procfs.ProcAccessDenied("/proc/101/status", errno.EACCES)
        return real(pid, proc_root)

    monkeypatch.setattr(procfs, "read_status", read_status)
    processes, summary = scan(fake_proc, lambda: None, top=0)
    assert processes == []
    assert summary["exited"] == 1 and summary["unreadable"] == 1


def test_scan_filters(fake_proc):
    fake_proc.add(100, comm="postgres", uid=0, anon_kb=1 << 20, cmdline=["/usr/bin/postgres", "-D", "/db"],
                  cgroup="0::/system.slice/postgresql.service\n")
    fake_proc.add(101, comm="kube-controller", uid=65534, anon_kb=1024,
                  cmdline=["/usr/local/bin/kube-controller-manager", "--v=2"], cgroup="0::/kubepods/pod1\n")
    fake_proc.add(102, comm="java", uid=65534, anon_kb=4 << 20, cmdline=["java", "-jar", "app.jar"],
                  cgroup="0::/user.slice/user-1000.slice\n", thp_enabled=0)

    def pids(**kwargs):
        return [p["pid"] for p in scan(fake_proc, lambda: None, top=0, **kwargs)[0]]

    assert pids() == [100, 101, 102]
    assert pids(min_anon_rss_bytes=2 << 20) == [100, 102]
    assert pids(name_pattern="^kube-controller-manager$") == [101]  # base name of argv[0], comm is cut
    assert pids(name_pattern="gres") == [100]
    assert pids(cmdline_pattern=r"-jar\s+app") == [102]
    assert pids(users=["nobody"]) == [101, 102]
    assert pids(users=[65534, "0"]) == [100, 101, 102]
    assert pids(cgroup="/system.slice") == [100]
    assert pids(cgroup="/system") == []
    assert pids(cgroup="pod1") == [101]
    assert pids(exclude_pids=[100, 101]) == [102]
    assert pids(min_cpu_pct=1.0) == []
    java = scan(fake_proc, lambda: None, top=0, cmdline_pattern="java")[0][0]
    assert java["thp_eligible"] is False and java["user"] == "nobody"


def test_scan_bad_filters(fake_proc):
    with pytest.raises(procfs.HotProcessError, match="name_pattern"):
        scan(fake_proc, lambda: None, name_pattern="(")
    with pytest.raises(procfs.HotProcessError, match="no user named"):
        procfs.resolve_users(["no-such-user-xyz"])
    with pytest.raises(procfs.HotProcessError):
        procfs.resolve_users([True])


def test_rank_by_cpu_is_deterministic():
    first = {1: {"utime": 1, "stime": 0, "starttime": 5}, 2: {"utime": 0, "stime": 0, "starttime": 5}}
    second = {2: {"utime": 3, "stime": 0, "starttime": 5}, 1: {"utime": 4, "stime": 0, "starttime": 5},
              3: {"utime": 0, "stime": 3, "starttime": 9}}
    assert procfs.rank_by_cpu(first, second) == [(3, 1), (3, 2), (3, 3)]


def test_ancestors_of_self():
    chain = procfs.ancestors(os.getpid())
    assert chain[0] == os.getpid()
    assert chain[1] == os.getppid()
    assert len(chain) == len(set(chain))


def test_sample_cpu_of_the_real_proc():
    stats, when = procfs.sample_cpu()
    assert os.getpid() in stats
    assert when > 0
    assert struct.calcsize("Q") == procfs.ENTRY_SIZE
