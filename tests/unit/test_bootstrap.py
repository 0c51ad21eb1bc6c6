# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
""".ci/bootstrap-host — the one list of system packages and its installer — with stub tools.

The script runs with PATH set to a directory of stubs only (dpkg-query, apt-get, id,
sudo), so the real package database is never asked and nothing is ever installed.
Each stub appends its arguments to a log; dpkg-query answers from a file of
"installed" packages, which the apt-get stub extends on install.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "bootstrap-host"
BASH = "/bin/bash"

STUBS = {
    # dpkg-query -W -f=FORMAT PKG...: "PKG ii " for installed ones, an error for the others.
    "dpkg-query": r"""
echo "dpkg-query $*" >> "$STUB_LOG"
shift 2
rc=0
for pkg in "$@"; do
  found=
  while read -r line; do [[ $line == "$pkg" ]] && found=1; done < "$STUB_INSTALLED"
  if [[ -n $found ]]; then echo "$pkg ii "; else echo "dpkg-query: no packages found matching $pkg" >&2; rc=1; fi
done
exit $rc
""",
    "apt-get": r"""
echo "apt-get $*" >> "$STUB_LOG"
if [[ $1 == install ]]; then
  for arg in "$@"; do [[ $arg == -* || $arg == install ]] || echo "$arg" >> "$STUB_INSTALLED"; done
fi
""",
    "id": r"""echo "$STUB_UID" """,
    # sudo -n fails (a password would be needed) unless STUB_SUDO_OK is set.
    "sudo": r"""
echo "sudo $*" >> "$STUB_LOG"
[[ -n ${STUB_SUDO_OK:-} ]] || { echo "sudo: a password is required" >&2; exit 1; }
[[ $1 == -n ]] && shift
"$@"
""",
}


@pytest.fixture
def host(tmp_path):
    """A fake host: stub tools, an installed-package file and a log of calls."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in STUBS.items():
        path = bindir / name
        path.write_text("#!%s\n%s" % (BASH, body))
        path.chmod(0o755)

    class Host:
        installed = tmp_path / "installed"
        log = tmp_path / "log"

        def __init__(self):
            self.installed.write_text("")
            self.log.write_text("")

        def install(self, *packages):
            with self.installed.open("a") as f:
                f.write("".join(p + "\n" for p in packages))

        def calls(self):
            return self.log.read_text().splitlines()

        def run(self, *args, uid=0, sudo_ok=False, without=(), no_apt=False):
            for name in without:
                (bindir / name).unlink()
            env = dict(os.environ, PATH=str(bindir), STUB_LOG=str(self.log), STUB_INSTALLED=str(self.installed),
                       STUB_UID=str(uid), STUB_SUDO_OK="1" if sudo_ok else "")
            env.pop("LINUX_MM_DAMON_NO_APT", None)
            if no_apt:
                env["LINUX_MM_DAMON_NO_APT"] = "1"
            return subprocess.run([BASH, str(SCRIPT), *args], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, timeout=60, check=False)

    return Host()


def group_packages(groups):
    """Packages of GROUPS (plus base) in the script's order, read from its table."""
    table = dict(re.findall(r'^\s*\[(\w+)\]="([^"]*)"', SCRIPT.read_text(), re.M))
    all_groups = re.search(r"^GROUP_ORDER=\(([^)]*)\)", SCRIPT.read_text(), re.M).group(1).split()
    order = [g for g in all_groups if g == "base" or g in groups or "all" in groups]
    seen = []
    for group in order:
        seen += [p for p in table[group].split() if p not in seen]
    return seen


def test_all_present_is_a_quiet_no_op(host):
    host.install(*group_packages(["all"]))
    done = host.run("all")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "missing" not in done.stderr
    assert [c.split()[0] for c in host.calls()] == ["dpkg-query"]  # one query, no apt-get update


def test_root_installs_only_the_missing_packages(host):
    wanted = group_packages(["emulator", "workloads"])
    host.install(*[p for p in wanted if p not in ("fuse3", "gcc")])
    done = host.run("emulator", "workloads")
    assert done.returncode == 0, done.stderr
    calls = host.calls()
    assert calls[1] == "apt-get update -q"
    assert calls[2] == "apt-get install -y -q --no-install-recommends fuse3 gcc"
    assert calls[3].startswith("dpkg-query")  # checked again after the install
    assert len(calls) == 4

    again = host.run("emulator", "workloads")  # idempotent: the second run only asks dpkg
    assert again.returncode == 0 and [c.split()[0] for c in host.calls()[4:]] == ["dpkg-query"]


def test_non_root_with_passwordless_sudo_installs_through_sudo(host):
    done = host.run("base", uid=1000, sudo_ok=True)
    assert done.returncode == 0, done.stderr
    calls = host.calls()
    assert "sudo -n true" in calls
    assert "sudo -n apt-get update -q" in calls
    assert any(c.startswith("sudo -n apt-get install") and "python3-venv" in c for c in calls)


@pytest.mark.parametrize("without", [(), ("sudo",)], ids=["sudo-needs-password", "no-sudo"])
def test_non_root_without_sudo_prints_the_one_command_and_changes_nothing(host, without):
    host.install("python3", "git")
    done = host.run("base", "guests", uid=1000, without=without)
    assert done.returncode == 1
    assert not any(c.startswith("apt-get") or "apt-get" in c for c in host.calls()), host.calls()
    missing = [p for p in group_packages(["guests"]) if p not in ("python3", "git")]
    commands = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("sudo ")]
    assert commands == ["sudo sh -c 'apt-get update && apt-get install -y -q --no-install-recommends %s'"
                        % " ".join(missing)], done.stderr
    assert "nothing was changed" in done.stderr


@pytest.mark.parametrize("how", ["--check", "LINUX_MM_DAMON_NO_APT"])
def test_check_only_reports(host, how):
    done = host.run("--check", "emulator") if how == "--check" else host.run("emulator", no_apt=True)
    assert done.returncode == 1 and "missing Debian packages:" in done.stderr and "fuse3" in done.stderr
    assert [c.split()[0] for c in host.calls()] == ["dpkg-query"]


def test_a_failed_install_fails(host):
    (host.log.parent / "bin" / "apt-get").write_text("#!%s\necho \"apt-get $*\" >> \"$STUB_LOG\"\n" % BASH)
    done = host.run("emulator")
    assert done.returncode == 1 and "still missing after apt-get install" in done.stderr


def test_non_debian_host_names_the_packages_and_goes_on(host):
    done = host.run("emulator", without=("dpkg-query",))
    assert done.returncode == 0 and "not a Debian/Ubuntu host" in done.stderr and "fuse3" in done.stderr


@pytest.mark.parametrize("args", [(), ("nonsense",), ("--frobnicate", "base")])
def test_usage_errors(host, args):
    done = host.run(*args)
    assert done.returncode == 2 and "usage:" in done.stderr and host.calls() == []


def test_ci_run_and_every_make_target_go_through_it():
    ci = (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert ".ci/bootstrap-host all" in ci
    for text in (ci, makefile):  # the package list lives in one place
        assert "apt-get install" not in text and "fuse3" not in text and "qemu-system-x86" not in text
    env = dict(os.environ, MAKEFLAGS="")
    for target in ("test", "test-fast", "demo", "demo-emulated", "images", "bench", "venv", "sanity", "test-guests"):
        out = subprocess.run(["make", "-n", "-C", str(REPO), target], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, check=True, env=env).stdout
        lines = [line for line in out.splitlines() if not line.startswith("make")]
        assert "/.ci/bootstrap-host " in lines[0], (target, out)  # first, before venvs or tests
    fast = subprocess.run(["make", "-n", "-C", str(REPO), "test-fast"], stdout=subprocess.PIPE, text=True,
                          check=True, env=env).stdout
    assert "bootstrap-host base emulator workloads" in fast
