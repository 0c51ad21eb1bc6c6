# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small workload programs for host tests, built on demand with gcc.

:func:`build` compiles ``tests/workloads/<name>.c`` into a cache directory
under ``$TMPDIR`` keyed by the hash of the source and the compiler command, so
repeated test runs reuse the binary and an edited source is rebuilt.

:class:`HotCold` runs ``hotcold`` (see hotcold.c for its options) and waits for
its JSON description::

    with HotCold(hot_mb=32, cold_mb=64) as w:
        w.pid, w.hot, w.cold      # (start, end) tuples of the two regions

A workload that is not ``idle`` accesses its hot region in every 10 ms period but only
for ``busy_pct`` % of it (default ``$LINUX_MM_DAMON_WORKLOAD_BUSY_PCT`` or 10): on the
emulator the access model, not the real accesses, decides what DAMON sees, so a workload
spinning a whole CPU only slowed the other tests down (issue 11). ``busy_pct=100`` (or the
variable set to 100) gives the old continuous loop; detection by CPU share (``min_cpu_pct``
below 10) still sees the workload.

Only processes started here are ever stopped, by their own PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CFLAGS = ("-O2", "-Wall", "-Wextra", "-std=gnu11")
BUSY_PCT_ENV = "LINUX_MM_DAMON_WORKLOAD_BUSY_PCT"


class WorkloadUnavailable(RuntimeError):
    """No C compiler (tests skip with this message)."""


def cache_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "linux_mm_damon-workloads"
    path.mkdir(mode=0o755, exist_ok=True)
    return path


def build(name: str = "hotcold") -> Path:
    """Path of the compiled workload ``name`` (built once per source hash)."""
    source = HERE / (name + ".c")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise WorkloadUnavailable("no C compiler (gcc or cc) on PATH to build %s" % source)
    digest = hashlib.sha256(source.read_bytes() + repr((cc, CFLAGS)).encode()).hexdigest()[:16]
    binary = cache_dir() / ("%s-%s" % (name, digest))
    if binary.exists():
        return binary
    tmp = binary.with_name(binary.name + ".tmp%d" % os.getpid())
    proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(source)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("building %s failed:\n%s" % (source, proc.stdout))
    os.chmod(tmp, 0o755)
    os.replace(tmp, binary)
    return binary


class HotCold:
    """A running hotcold process; stop() (or leaving the with block) kills it."""

    def __init__(self, hot_mb=32, cold_mb=64, cold_stride_kb=64, chase=False, nohugepage=False, idle=False,
                 duration=0, user=None, timeout=20.0, busy_pct=None):
        self.args = ["--hot-mb", str(hot_mb), "--cold-mb", str(cold_mb), "--cold-stride-kb", str(cold_stride_kb)]
        if busy_pct is None:
            busy_pct = int(os.environ.get(BUSY_PCT_ENV) or 10)
        if not idle and busy_pct < 100:
            self.args += ["--busy-pct", str(busy_pct)]
        if chase:
            self.args.append("--chase")
        if nohugepage:
            self.args.append("--nohugepage")
        if idle:
            self.args.append("--idle")
        if duration:
            self.args += ["--duration", str(duration)]
        self.user = user
        self.timeout = timeout
        self.proc = None
        self.info = None
        self.out = None
        self._dir = None

    def start(self):
        binary = build("hotcold")
        self._dir = tempfile.mkdtemp(prefix="hotcold-")
        os.chmod(self._dir, 0o777)
        out = self.out = os.path.join(self._dir, "hotcold.json")  # unique: its command line tells it apart
        cmd = [str(binary), *self.args, "--out", out]
        if self.user is not None:
            cmd = ["setpriv", "--reuid=%d" % self.user, "--regid=%d" % self.user, "--clear-groups", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(out):
            if self.proc.poll() is not None:
                raise RuntimeError("hotcold exited with %s: %s" % (self.proc.returncode, self.proc.stderr.read()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("hotcold did not describe itself within %ss" % self.timeout)
            time.sleep(0.01)
        with open(out) as f:
            self.info = json.load(f)
        return self

    @property
    def pid(self) -> int:
        return self.info["pid"]

    @property
    def hot(self):
        return tuple(self.info["hot"])

    @property
    def cold(self):
        return tuple(self.info["cold"])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
