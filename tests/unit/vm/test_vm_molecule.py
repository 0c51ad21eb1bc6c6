"""Fast tests of the molecule wiring (no VM): scenario files, the run_molecule wrapper
(guest cleanup after a failure, a timeout or a leak) and the `guest up/down` CLI that
molecule's create/destroy playbooks call."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.vm import guest as guest_mod
from tests.vm import run_molecule

REPO_ROOT = Path(__file__).resolve().parents[3]
MOLECULE = REPO_ROOT / "molecule"


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path_factory, monkeypatch):
    """$TMPDIR of this test: the wrapper's run directories must all be gone when it ends."""
    tmpdir = tmp_path_factory.mktemp("tmpdir")  # made before tempfile.tempdir changes
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    yield tmpdir
    assert not list(tmpdir.glob("linux-mm-damon-molecule-*")), "run_molecule left its run directory behind"


def test_the_three_scenarios_exist_and_boot_their_own_image():
    assert run_molecule.scenarios() == ["damon-6.12", "damon-7.3", "no-damon"]
    from tests.vm.images import IMAGE_NAMES  # pylint: disable=import-outside-toplevel

    assert set(run_molecule.scenarios()) <= set(IMAGE_NAMES)  # create.yml boots image == scenario name


@pytest.mark.parametrize("name", ["damon-6.12", "damon-7.3", "no-damon"])
def test_scenario_config(name):
    config = yaml.safe_load((MOLECULE / name / "molecule.yml").read_text())
    seq = config["scenario"]["test_sequence"]
    assert seq[0] == "destroy" and seq[-1] == "destroy"  # a stale guest is stopped first
    assert seq.index("create") < seq.index("converge") < seq.index("idempotence") < seq.index("verify")
    assert config["prerun"] is False  # no collection install into a cache (offline, slow)
    assert config["ansible"]["cfg"]["ssh_connection"]["pipelining"] is True
    assert "ControlPersist" in config["ansible"]["cfg"]["ssh_connection"]["ssh_args"]
    for step, playbook in config["ansible"]["playbooks"].items():
        path = (MOLECULE / name / playbook).resolve()
        assert path.is_file(), (step, path)
        plays = yaml.safe_load(path.read_text())
        for play in plays:
            if "hosts" in play:
                assert play.get("gather_facts") is False, (path, play["name"])
                assert play["hosts"] in ("localhost", "guests"), (path, play["hosts"])
        if step not in ("create", "destroy"):  # a missing inventory must fail, not skip
            assert plays[0].get("ansible.builtin.import_playbook", "").endswith("one_guest.yml"), path


def test_molecule_env(tmp_path):
    env = run_molecule.molecule_env(tmp_path)
    assert env["LINUX_MM_DAMON_RUN_DIR"] == str(tmp_path)
    assert env["MOLECULE_EPHEMERAL_DIRECTORY"] == str(tmp_path / "ephemeral")
    assert env["PYTHONPATH"].split(os.pathsep)[0].endswith("tests/guard")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert (Path(env["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections" / "linux_mm" / "damon" / "galaxy.yml").exists()
    assert "ANSIBLE_CONFIG" not in env
    assert run_molecule.GUEST_INVENTORY_ENV not in env  # create boots a guest of its own


def test_molecule_env_hands_a_running_guest_to_create_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv(run_molecule.GUEST_INVENTORY_ENV, "/elsewhere/stale.yml")
    assert run_molecule.GUEST_INVENTORY_ENV not in run_molecule.molecule_env(tmp_path)
    env = run_molecule.molecule_env(tmp_path, tmp_path / "guest.yml")
    assert env[run_molecule.GUEST_INVENTORY_ENV] == str(tmp_path / "guest.yml")
    create = (run_molecule.MOLECULE_DIR / "shared" / "create.yml").read_text()
    assert "lookup('ansible.builtin.env', '%s')" % run_molecule.GUEST_INVENTORY_ENV in create


# A stand-in for molecule: "boots" a fake detached guest (a sleeping process whose
# command line names qemu and its work dir, like the real one) under the run directory,
# then fails, hangs or exits as STUB_MOLECULE_MODE says.
STUB_MOLECULE = textwrap.dedent("""\
    #!{python}
    import json, os, subprocess, sys, time
    run_dir = os.environ["LINUX_MM_DAMON_RUN_DIR"]
    work = os.path.join(run_dir, "lmd-damon-6.12-stub")
    os.makedirs(work)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "qemu-system-x86_64", work],
                            start_new_session=True)
    open(os.path.join(work, "qemu.pid"), "w").write(str(proc.pid))
    json.dump({{"name": "damon-6.12", "pid": proc.pid, "port": 1, "image": work, "workdir": work,
               "console_log": os.path.join(work, "console.log"), "ssh_key": "", "detach": True}},
              open(os.path.join(work, "state.json"), "w"))
    open(os.environ["STUB_MOLECULE_PIDFILE"], "w").write(json.dumps({{"qemu": proc.pid, "me": os.getpid()}}))
    print("INFO     [damon-6.12 > create] Executing", flush=True)
    print("INFO     [damon-6.12 > create] Executed: Successful", flush=True)
    print("args: " + " ".join(sys.argv[1:]), flush=True)
    mode = os.environ.get("STUB_MOLECULE_MODE", "fail")
    if mode == "hang":
        time.sleep(600)
    sys.exit(0 if mode == "ok" else 2)
""")


@pytest.fixture
def stub_molecule(tmp_path, monkeypatch):
    exe = tmp_path / "molecule"
    exe.write_text(STUB_MOLECULE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    pidfile = tmp_path / "pids.json"
    monkeypatch.setenv("LINUX_MM_DAMON_MOLECULE", str(exe))
    monkeypatch.setenv("STUB_MOLECULE_PIDFILE", str(pidfile))
    return pidfile


def _wait_dead(pid, seconds=10.0):
    end = time.monotonic() + seconds
    while guest_mod._pid_alive(pid) and time.monotonic() < end:  # pylint: disable=protected-access
        time.sleep(0.05)
    return not guest_mod._pid_alive(pid)  # pylint: disable=protected-access


def test_failed_scenario_stops_its_leaked_guest(stub_molecule, monkeypatch):
    monkeypatch.setenv("STUB_MOLECULE_MODE", "fail")
    run = run_molecule.run_scenario("damon-6.12", timeout=60, echo=False)
    pids = json.loads(stub_molecule.read_text())
    assert run.rc == 2 and not run.ok
    assert "args: test -s damon-6.12" in run.output
    assert "stopped guest(s) left running by scenario damon-6.12: lmd-damon-6.12-stub" in run.output
    assert _wait_dead(pids["qemu"])
    assert run.steps == [("create", run.steps[0][1])]
    assert run.log.exists() and "args: test -s damon-6.12" in run.log.read_text()


def test_timeout_kills_molecule_and_its_guest(stub_molecule, monkeypatch):
    monkeypatch.setenv("STUB_MOLECULE_MODE", "hang")
    t0 = time.monotonic()
    run = run_molecule.run_scenario("no-damon", timeout=3, echo=False)
    pids = json.loads(stub_molecule.read_text())
    assert time.monotonic() - t0 < 40
    assert run.rc == 124 and "exceeded 3s" in run.output
    assert _wait_dead(pids["me"]) and _wait_dead(pids["qemu"])


def test_unknown_scenario_and_missing_molecule(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="known: damon-6.12, damon-7.3, no-damon"):
        run_molecule.run_scenario("damon-9.9")
    monkeypatch.setenv("LINUX_MM_DAMON_MOLECULE", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="make venv"):
        run_molecule.run_scenario("no-damon")


def _guest_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tests.vm.guest", *args], cwd=str(REPO_ROOT), capture_output=True,
                          text=True, timeout=60, check=False, env=env or dict(os.environ))


def test_guest_up_without_qemu_names_the_package_and_leaves_nothing(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path / "empty-bin"), LINUX_MM_DAMON_RUN_DIR=str(tmp_path / "run"))
    r = _guest_cli("up", "damon-6.12", "--state-file", str(tmp_path / "state.json"),
                   "--inventory", str(tmp_path / "inv.yml"), env=env)
    assert r.returncode == 1
    assert "qemu-system-x86_64" in r.stderr and "apt-get install" in r.stderr and "qemu-system-x86" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "inv.yml").exists()
    assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []


def test_guest_down_is_a_no_op_when_gone_and_rejects_junk(tmp_path):
    assert _guest_cli("down", str(tmp_path / "never-created")).returncode == 0
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    r = _guest_cli("down", str(junk))
    assert r.returncode == 1 and "not a state file written by `up`" in r.stderr
