"""Many hosts from one emulator process (tests/emulator/multihost.py): each host is independent."""

from __future__ import annotations

import os

import pytest

from tests.emulator import MultiHostSysfs
from tests.unit.emulator.helpers import Mount

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]


@pytest.fixture
def two_hosts():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("FUSE (/dev/fuse) is not available")
    with MultiHostSysfs(2, kernel="7.3", scenario={"speed": 0, "modules": {"damon_stat": False}}) as emu:
        yield emu


def test_two_host_roots_are_independent(two_hosts, sleeper):
    emu = two_hosts
    assert sorted(os.listdir(emu.root)) == ["h000", "h001"]
    a, b = (Mount(emu.host(name)) for name in emu.names)
    assert a.root == os.path.join(emu.root, "h000") and sorted(os.listdir(a.root)) == sorted(os.listdir(b.root))
    pid = sleeper().pid
    for path, value in (("kdamonds/nr_kdamonds", 1), ("kdamonds/0/contexts/nr_contexts", 1),
                        ("kdamonds/0/contexts/0/targets/nr_targets", 1),
                        ("kdamonds/0/contexts/0/targets/0/pid_target", pid), ("kdamonds/0/state", "on")):
        a.must(path, value)
    a.emu.advance(5)
    # host h000 has a running kdamond and 5 s of virtual time; h001 has neither
    assert a.read("kdamonds/0/state") == "on" and a.emu.time() == 5.0
    assert b.read("kdamonds/nr_kdamonds") == "0" and b.emu.time() == 0.0
    assert [k["state"] for k in a.emu.status()["kdamonds"]] == ["on"] and b.emu.status()["kdamonds"] == []
    # faults too are per host: a read-only h001 does not stop writes on h000
    b.emu.read_only(True)
    assert b.write("kdamonds/nr_kdamonds", 1) == "open:EROFS"
    assert a.write("kdamonds/0/state", "off") == "ok"
    assert a.emu.write_count() == 6 and b.emu.write_count() == 0


def test_unknown_host_and_top_level(two_hosts):
    assert not os.path.exists(os.path.join(two_hosts.root, "h002"))
    with pytest.raises(OSError):
        os.mkdir(os.path.join(two_hosts.root, "h002"))
