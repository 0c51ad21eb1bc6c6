"""Fast tests of tests/vm/images.py: apt source parsing, mirror choice, cache keys,
wheel installation into a root filesystem tree, error messages.  No network, no root."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from tests.vm import _common, images

MIRROR = "http://mirror.invalid/debian"


def _etc_apt(tmp_path: Path, sources_list: str = "", parts: dict | None = None) -> Path:
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(sources_list)
    for name, text in (parts or {}).items():
        (etc / "sources.list.d" / name).write_text(text)
    return etc


def test_one_line_sources_with_options_and_comments():
    text = (
        "# a comment\n"
        f"deb [arch=amd64 signed-by=/k.gpg] {MIRROR} bookworm main contrib # trailing\n"
        f"deb-src {MIRROR} bookworm main\n"
        "garbage line\n"
    )
    entries = images.parse_one_line_sources(text)
    assert len(entries) == 2
    e = entries[0]
    assert e["uris"] == [MIRROR] and e["suites"] == ["bookworm"]
    assert e["components"] == ["main", "contrib"] and e["signed_by"] == "/k.gpg"
    assert entries[1]["types"] == ["deb-src"]


def test_deb822_sources_skip_comment_lines_inside_stanzas():
    text = (
        "Types: deb\n"
        "# http://snapshot.invalid/archive/debian/20250520T000000Z\n"
        f"URIs: {MIRROR}\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://security.invalid/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
    )
    entries = images.parse_deb822_sources(text)
    assert [e["uris"] for e in entries] == [[MIRROR], ["http://security.invalid/debian-security"]]
    assert entries[0]["suites"] == ["bookworm", "bookworm-updates"]
    assert entries[0]["signed_by"] == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_mirror_prefers_debian_archive_over_third_party_and_security(tmp_path, monkeypatch):
    monkeypatch.delenv("LINUX_MM_DAMON_DEBIAN_MIRROR", raising=False)
    etc = _etc_apt(tmp_path, parts={
        "a-vendor.list": "deb https://vendor.invalid/apt cloud-sdk-bookworm main\n",
        "b-node.sources": ("Types: deb\nURIs: https://node.invalid/node_20.x\nSuites: nodistro\n"
                           "Components: main\n"),
        "c-security.sources": ("Types: deb\nURIs: http://sec.invalid/debian-security\n"
                               "Suites: bookworm-security\nComponents: main\n"),
        "d-disabled.sources": ("Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\n"
                               "Components: main\nEnabled: no\n"),
        "debian.sources": (f"Types: deb\nURIs: {MIRROR}/\nSuites: bookworm\nComponents: main\n"
                           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"),
    })
    uri, signed_by = images.debian_mirror(etc)
    assert uri == MIRROR  # trailing slash stripped
    assert signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_mirror_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("LINUX_MM_DAMON_DEBIAN_MIRROR", "http://override.invalid/debian/")
    assert images.debian_mirror(_etc_apt(tmp_path)) == ("http://override.invalid/debian", None)


def test_no_mirror_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LINUX_MM_DAMON_DEBIAN_MIRROR", raising=False)
    etc = _etc_apt(tmp_path, "deb https://vendor.invalid/apt nodistro main\n")
    with pytest.raises(_common.VMError, match="LINUX_MM_DAMON_DEBIAN_MIRROR"):
        images.debian_mirror(etc)


def test_source_lines_include_backports_suite():
    lines = images.source_lines(images.RECIPES["damon-7.3"], MIRROR, "/k.gpg")
    assert lines == [f"deb [signed-by=/k.gpg] {MIRROR} trixie main",
                     f"deb [signed-by=/k.gpg] {MIRROR} trixie-backports main"]


def test_recipes_cover_the_three_images():
    assert set(images.IMAGE_NAMES) == {"damon-6.12", "damon-7.3", "no-damon"}
    import re
    rx = re.compile(images.RECIPES["damon-7.3"].kernel)
    assert rx.match("linux-image-7.3.4+deb13-cloud-amd64")
    assert not rx.match("linux-image-7.3.4+deb13-cloud-amd64-dbg")
    assert not rx.match("linux-image-7.3.4+deb13-amd64")
    assert not rx.match("linux-image-7.2.1+deb13-cloud-amd64")


def _resolution(**packages):
    return images.Resolution("damon-6.12", images.RECIPES["damon-6.12"], ["deb x"], ["a"],
                             "linux-image-cloud-amd64", "6.12.1", dict(packages))


def test_cache_key_depends_on_versions_workload_and_wheel():
    base = images.cache_key(_resolution(a="1", b="2"), "w", "d")
    assert base == images.cache_key(_resolution(b="2", a="1"), "w", "d")  # order-free
    assert base != images.cache_key(_resolution(a="1", b="3"), "w", "d")
    assert base != images.cache_key(_resolution(a="1", b="2"), "w2", "d")
    assert base != images.cache_key(_resolution(a="1", b="2"), "w", "d2")
    assert len(base) == 16


def _wheel(tmp_path: Path) -> Path:
    w = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(w, "w") as zf:
        zf.writestr("demo/__init__.py", "")
        zf.writestr("demo/cli.py", "def main():\n    return 0\n")
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        zf.writestr("demo-1.0.dist-info/RECORD", "")
        zf.writestr("demo-1.0.dist-info/entry_points.txt", "[console_scripts]\ndemo = demo.cli:main\n")
    return w


def test_install_wheel_into_rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    os.symlink("python3.13", root / "usr/bin/python3")
    site = images.install_wheel(root, _wheel(tmp_path))
    assert site == "/usr/local/lib/python3.13/dist-packages"
    assert (root / site.lstrip("/") / "demo/cli.py").is_file()
    assert (root / site.lstrip("/") / "demo-1.0.dist-info/INSTALLER").is_file()
    script = root / "usr/local/bin/demo"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/usr/bin/python3\n")
    assert "from demo.cli import main" in script.read_text()


def test_guest_python_version_error(tmp_path):
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    os.symlink("pypy", root / "usr/bin/python3")
    with pytest.raises(_common.VMError, match="Python version"):
        images.install_wheel(root, _wheel(tmp_path))


def test_cached_images_only_lists_complete_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("LINUX_MM_DAMON_CACHE", str(tmp_path))
    good = tmp_path / "images" / "no-damon-aaaa"
    bad = tmp_path / "images" / "no-damon-bbbb"
    for d in (good, bad):
        d.mkdir(parents=True)
    for f in ("rootfs.raw", "vmlinuz", "initrd.img", "id_ed25519"):
        (good / f).write_text("x")
    (good / "manifest.json").write_text(json.dumps({"kernel_release": "6.1.0-1-cloud-amd64"}))
    (bad / "rootfs.raw").write_text("x")
    found = images.cached_images("no-damon")
    assert [i.path for i in found] == [good]
    assert found[0].kernel_release == "6.1.0-1-cloud-amd64"


def test_offline_ensure_uses_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LINUX_MM_DAMON_CACHE", str(tmp_path))
    monkeypatch.setenv("LINUX_MM_DAMON_IMAGES_OFFLINE", "1")
    monkeypatch.setattr(images, "_ENSURED", {})
    d = tmp_path / "images" / "damon-7.3-cccc"
    d.mkdir(parents=True)
    for f in ("rootfs.raw", "vmlinuz", "initrd.img", "id_ed25519", "manifest.json"):
        (d / f).write_text("{}")
    assert images.ensure("damon-7.3").path == d


def test_ensure_falls_back_to_cache_when_mirror_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("LINUX_MM_DAMON_CACHE", str(tmp_path))
    monkeypatch.delenv("LINUX_MM_DAMON_IMAGES_OFFLINE", raising=False)
    monkeypatch.setattr(images, "_ENSURED", {})
    d = tmp_path / "images" / "damon-6.12-dddd"
    d.mkdir(parents=True)
    for f in ("rootfs.raw", "vmlinuz", "initrd.img", "id_ed25519", "manifest.json"):
        (d / f).write_text("{}")

    def boom(name):
        raise _common.VMError("apt-get update failed")
    monkeypatch.setattr(images, "resolve", boom)
    assert images.ensure("damon-6.12").path == d
    with pytest.raises(_common.VMError, match="apt-get update failed"):
        images.ensure("no-damon")  # nothing cached: the error surfaces


def test_unknown_image_name():
    with pytest.raises(_common.VMError, match="unknown image"):
        images.build("damon-9.9")


def test_cli_rejects_unknown_name(capsys):
    with pytest.raises(SystemExit):
        images.main(["build", "nope"])


def test_workload_source_is_private_anonymous():
    src = images.WORKLOAD_SRC.read_text()
    assert "MAP_PRIVATE | MAP_ANONYMOUS" in src
    assert "MAP_SHARED" not in src
