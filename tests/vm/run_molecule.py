"""Run the molecule scenarios (top-level ``molecule/``) against the QEMU guests.

    python -m tests.vm.run_molecule [SCENARIO ...] [--timeout S] [-- extra molecule args]
    make molecule

Each scenario (``damon-6.12``, ``damon-7.3``, ``no-damon``; default: all, one after the
other — two TCG guests at once are slower on 2 cores) runs ``molecule test -s NAME``
whose create/destroy playbooks boot and stop the guest of the same name through
``python -m tests.vm.guest up|down``. This wrapper supplies what molecule needs: the venv's
``bin`` on PATH, the ``ansible_collections/linux_mm/damon`` tree on
ANSIBLE_COLLECTIONS_PATH, the host sysfs guard on PYTHONPATH, and a private run
directory for the guests' overlays. Whatever happens (failure, timeout, SIGTERM,
Ctrl-C), every guest started under that directory is stopped at the end. The output of
each scenario is also kept in ``<cache>/logs/molecule-<scenario>-<time>.log``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MOLECULE_DIR = REPO_ROOT / "molecule"
GUARD_DIR = REPO_ROOT / "tests" / "guard"
# An inventory of a guest that is already running (the test session's shared guest): create adopts it,
# destroy leaves it to its owner.
GUEST_INVENTORY_ENV = "LINUX_MM_DAMON_MOLECULE_INVENTORY"
DEFAULT_TIMEOUT = float(os.environ.get("LINUX_MM_DAMON_MOLECULE_TIMEOUT", "1200"))


def molecule_exe() -> str:
    """The molecule executable of this venv (``LINUX_MM_DAMON_MOLECULE`` overrides it)."""
    exe = os.environ.get("LINUX_MM_DAMON_MOLECULE") or str(Path(sys.executable).parent / "molecule")
    if not os.access(exe, os.X_OK):
        raise FileNotFoundError("molecule not found at %s: run `make venv` (requirements/test.txt pins it)" % exe)
    return exe


def scenarios() -> list:
    """Scenario names (directories of molecule/ with a molecule.yml), in run order."""
    return sorted(p.parent.name for p in MOLECULE_DIR.glob("*/molecule.yml"))


STEP_MARK = re.compile(r"\[[^\]>]+ > (\w+)\] (Executing|Executed)")


@dataclass
class ScenarioRun:
    name: str
    rc: int
    seconds: float
    output: str
    log: Path
    steps: list = field(default_factory=list)  # [(step, seconds)] in order

    def step_summary(self) -> str:
        return ", ".join("%s %.0fs" % (step, secs) for step, secs in self.steps)

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def tail(self, lines: int = 120) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def molecule_env(run_dir: Path, inventory: Path | None = None) -> dict:
    """Environment for molecule: venv tools, our collection, the guard, a private run dir; with ``inventory``,
    create uses that running guest instead of booting one (molecule/shared/create.yml)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.tooling import collection_tree  # pylint: disable=import-outside-toplevel

    collection = collection_tree.build()
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collection.parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        [str(GUARD_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(GUARD_DIR)])
    env["LINUX_MM_DAMON_RUN_DIR"] = str(run_dir)
    env.setdefault("LINUX_MM_DAMON_BOOT_ATTEMPTS", "2")
    env["MOLECULE_GLOB"] = "molecule/*/molecule.yml"  # top-level molecule/, not extensions/molecule
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="False", PYTHONUNBUFFERED="1")
    for key in ("ANSIBLE_CONFIG", "ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_LIBRARY"):
        env.pop(key, None)  # molecule writes its own ansible.cfg per scenario
    # A fresh ephemeral directory (inventory, ansible.cfg, state) per run: nothing stale
    # from an interrupted earlier run, and two checkouts never share one.
    env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(run_dir / "ephemeral")
    env.pop(GUEST_INVENTORY_ENV, None)
    if inventory is not None:
        env[GUEST_INVENTORY_ENV] = str(inventory)
    return env


def stop_guests(run_dir: Path) -> list:
    """Stop every guest whose work directory is under ``run_dir``; returns their names."""
    from tests.vm.guest import Guest  # pylint: disable=import-outside-toplevel

    stopped = []
    for state in sorted(Path(run_dir).glob("lmd-*/state.json")):
        try:
            Guest.from_state(state.parent).stop()
            stopped.append(state.parent.name)
        except Exception as exc:  # pylint: disable=broad-except
            print("[molecule] could not stop the guest in %s: %s" % (state.parent, exc), file=sys.stderr)
    return stopped


def _log_path(name: str) -> Path:
    from tests.vm.guest import log_dir  # pylint: disable=import-outside-toplevel

    return log_dir() / ("molecule-%s-%s-%d.log" % (name, time.strftime("%Y%m%d-%H%M%S"), os.getpid()))


def run_scenario(name: str, timeout: float = DEFAULT_TIMEOUT, extra: tuple = (), echo: bool = True,
                 inventory: Path | None = None) -> ScenarioRun:
    """``molecule test -s name`` with its own run directory; guests it booted are always stopped. With
    ``inventory`` it runs against that running guest (which its owner stops)."""
    if name not in scenarios():
        raise ValueError("unknown molecule scenario %r; known: %s" % (name, ", ".join(scenarios())))
    cmd = [molecule_exe(), "test", "-s", name] + list(extra)
    log = _log_path(name)
    start = time.monotonic()
    lines = []
    steps = []
    step_start = {}
    proc = None
    rc = None
    with open(log, "w", encoding="utf-8") as logf:

        def pump(stream):
            # A thread, so that a process left holding the pipe (a leaked guest) cannot
            # block the wrapper after molecule itself exited.
            for line in stream:
                now = time.monotonic()
                lines.append(line)
                logf.write("[%6.1fs] %s" % (now - start, line))
                logf.flush()
                mark = STEP_MARK.search(line)
                if mark and mark.group(2) == "Executing":
                    step_start[mark.group(1)] = now
                elif mark and mark.group(1) in step_start:
                    steps.append((mark.group(1), round(now - step_start.pop(mark.group(1)), 1)))
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()

        logf.write("$ %s\n" % " ".join(cmd))
        reader = None
        # Made right before the try whose finally removes it: nothing that can fail
        # (molecule missing, an unknown scenario, the log) may leave it behind in $TMPDIR.
        run_dir = Path(tempfile.mkdtemp(prefix="linux-mm-damon-molecule-"))
        try:
            proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=molecule_env(run_dir, inventory), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
            reader.start()
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc = 124
                lines.append("[molecule] scenario %s exceeded %.0fs and was stopped "
                             "(LINUX_MM_DAMON_MOLECULE_TIMEOUT)\n" % (name, timeout))
            reader.join(timeout=10)
        finally:
            if proc is not None and proc.poll() is None:  # interrupted (Ctrl-C, SIGTERM)
                _kill_group(proc)
            leaked = stop_guests(run_dir)  # also closes a pipe a leaked guest held open
            if leaked:
                lines.append("[molecule] stopped guest(s) left running by scenario %s: %s\n"
                             % (name, ", ".join(leaked)))
            if reader is not None:
                reader.join(timeout=10)
            shutil.rmtree(run_dir, ignore_errors=True)
            for line in lines[-2:]:
                if line.startswith("[molecule]"):
                    logf.write(line)
    return ScenarioRun(name, rc, round(time.monotonic() - start, 1), "".join(lines), log, steps)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def _raise_on_sigterm(signum, frame):  # pylint: disable=unused-argument
    raise KeyboardInterrupt("SIGTERM")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    ap = argparse.ArgumentParser(prog="python -m tests.vm.run_molecule", description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("scenario", nargs="*", help="default: all of %s" % ", ".join(scenarios()))
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per scenario, seconds")
    args = ap.parse_args(argv)
    names = args.scenario or scenarios()
    unknown = [n for n in names if n not in scenarios()]
    if unknown:
        ap.error("unknown scenario(s) %s; known: %s" % (", ".join(unknown), ", ".join(scenarios())))
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    results = []
    for name in names:
        print("=== molecule %s" % name, flush=True)
        run = run_scenario(name, args.timeout, tuple(extra))
        results.append(run)
        print("=== molecule %s: %s in %.0fs (%s; log %s)" % (
            name, "ok" if run.ok else "FAILED rc=%d" % run.rc, run.seconds, run.step_summary(), run.log), flush=True)
    summary = ", ".join("%s %s %.0fs" % (r.name, "ok" if r.ok else "FAILED", r.seconds) for r in results)
    print("=== molecule summary: " + summary, flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
