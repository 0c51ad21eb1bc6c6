# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of plugins/module_utils/_procfs.py (the /proc parsers and their errors).

Parsers get the kernel's text formats; a few tests read this process's own /proc
files, which every Linux host has.
"""

from __future__ import annotations

import errno
import os

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


def test_ancestors_of_self():
    chain = procfs.ancestors(os.getpid())
    assert chain[0] == os.getpid()
    assert chain[1] == os.getppid()
    assert len(chain) == len(set(chain))


def test_identity_and_pid_bounds():
    assert procfs.read_identity(os.getpid())[1] is False
    assert procfs.read_identity(2) == ("kthreadd", True), "PID 2 is kthreadd on Linux"
    assert procfs.read_identity(procfs.PID_MAX_LIMIT + 1) is None
    assert procfs.bad_pid(1) is None and procfs.bad_pid(procfs.PID_MAX_LIMIT - 1) is None
    for pid in (0, -1, procfs.PID_MAX_LIMIT, True, "7"):
        assert "is not a valid PID" in procfs.bad_pid(pid)
