"""Real applications in the guest images (tests/vm/images.py): packages and boot-time services."""

from __future__ import annotations

import os
from pathlib import Path

from tests.vm import apps, images


def test_applications_only_in_the_damon_images():
    for name in ("damon-6.12", "damon-7.3"):
        assert set(images.RECIPES[name].app_packages) >= {"redis-server", "redis-tools", "postgresql"}
    assert images.RECIPES["no-damon"].app_packages == ()


def _link(root: Path, rel: str, target: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)
    return p


def test_disable_app_services_removes_wants_links_and_aliases(tmp_path):
    root = tmp_path
    wants = _link(root, "etc/systemd/system/multi-user.target.wants/redis-server.service",
                  "/usr/lib/systemd/system/redis-server.service")
    alias = _link(root, "etc/systemd/system/redis.service", "/usr/lib/systemd/system/redis-server.service")
    pg = _link(root, "etc/systemd/system/multi-user.target.wants/postgresql.service",
               "/usr/lib/systemd/system/postgresql.service")
    ssh = _link(root, "etc/systemd/system/multi-user.target.wants/ssh.service",
                "/usr/lib/systemd/system/ssh.service")
    conf = root / "etc/postgresql/17/main/start.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# Automatic startup configuration\nauto\n")
    changed = images.disable_app_services(root)
    assert not wants.is_symlink() and not alias.is_symlink() and not pg.is_symlink()
    assert ssh.is_symlink()                       # other services stay enabled
    assert conf.read_text() == "# Automatic startup configuration\nmanual\n"
    assert sorted(changed) == sorted([
        "etc/systemd/system/multi-user.target.wants/redis-server.service",
        "etc/systemd/system/redis.service",
        "etc/systemd/system/multi-user.target.wants/postgresql.service",
        "etc/postgresql/17/main/start.conf"])
    assert images.disable_app_services(root) == []   # idempotent


class _Res:
    def __init__(self, rc=0, stdout="", stderr=""):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr


class _FakeGuest:
    """Records commands; answers redis-cli/cat like a guest with redis running."""

    def __init__(self):
        self.cmds = []

    def ssh(self, cmd, timeout=120, check=False, input=None):
        self.cmds.append(cmd)
        if "ping" in cmd:
            return _Res(0, "PONG\n4242\n")
        if cmd.startswith("cat /proc/4242/status") or cmd == "cat /proc/4242/status":
            return _Res(0, "Name:\tredis-server\nRssAnon:\t  1000 kB\nVmRSS:\t 1200 kB\nTHP_enabled:\t1\n")
        if "DBSIZE" in cmd:
            return _Res(0, "1300000\n")
        if cmd.startswith("cat /run/redis-"):
            return _Res(0, "4242\n")
        return _Res(0, "")


def test_start_and_fill_redis_commands():
    g = _FakeGuest()
    r = apps.start_redis(g, disable_thp="no")
    assert r.pid == 4242 and r.thp_enabled == "1"
    start = g.cmds[0]
    assert start.startswith("redis-server ") and "--disable-thp no" in start
    assert "--enable-debug-command yes" in start and "--save ''" in start
    ds = apps.fill_redis(g, cold_keys=1_200_000, hot_keys=50_000, value_size=1000, batch=20_000)
    assert ds["dbsize"] == 1300000 and ds["rss_anon_bytes"] == 1000 * 1024
    populate = [c for c in g.cmds if "POPULATE" in c]
    assert populate == ["redis-cli -p 6379 DEBUG POPULATE 1200000 cold 1000"]
    evals = [c for c in g.cmds if " EVAL " in c]
    # hot keys in 3 batches, named like redis-benchmark -r names its keys
    assert [c.split()[-3:-1] for c in evals] == [["0", "19999"], ["20000", "39999"], ["40000", "49999"]]
    assert "key:%012d" in evals[0]
