# SPDX-License-Identifier: GPL-3.0-or-later
"""Control plane over real SSH (section `control-ssh`): a fleet of N hosts behind one local sshd.

The fleet: one private, unprivileged-config `sshd` (its own host key, config, authorized_keys and
log under build/bench/control-ssh/ssh/) bound to 127.0.0.1 on a free high port, running as the
current user; N inventory hosts h000, h001, ... that all connect to it (ansible_host 127.0.0.1, the
same port) but each has its own ControlPath (`ansible_control_path`), so with persistent
connections every host gets its own SSH master and TCP connection, as real hosts would; and its own
emulated sysfs root (one directory of ONE multi-host emulator process, tests/emulator/multihost.py,
kernel 7.3), ownership file and learned-state file. One real sleeping process is the application;
each host's access model declares its 32 MiB hot / 64 MiB cold ranges (as in `control`).

Per fleet size and setting, bench/playbooks/tune.yml (policy adaptive, interval_s 0.3, a fixed
max_iterations) runs once with fixed forks. Settings (ansible's ssh connection plugin):

  plain               no pipelining, no ControlMaster: every remote command is a new SSH connection
  persist             ControlMaster=auto, ControlPersist=60s, no pipelining (ansible's stock ssh_args
                      without -C)
  pipelining          pipelining, no ControlMaster: one new connection per module call
  pipelining+persist  both
  local               ansible_connection local (no SSH at all): the reference
  pipelining+persist+blocking
                      both, and strategy linux_mm.damon.linear_blocking (plugins/strategy/): the
                      linear strategy without its busy wait for a free worker (the documented default,
                      docs/ssh.md)
  pipelining+persist+pollNms
                      both, and ansible-playbook's main process polls its workers every N ms
                      (`internal_poll_interval`, ansible.cfg [defaults]; ansible's default is 1 ms)

Counting:
  controller CPU  = CPU of the ansible-playbook process tree (wait4 rusage, includes every ssh client;
                    its main process alone is sampled from /proc every 0.2 s: the strategy loop)
                    + CPU of the ControlPersist masters (they detach from ansible; this process is
                    their child subreaper and reaps them, by PID, after the run); for `local` minus the
                    module executions, which then run inside that tree;
  module CPU      = the wrapper interpreter's /usr/bin/time line per module execution (as `control`);
  sshd CPU        = CPU of the sshd daemon and its reaped children (/proc/PID/stat) minus module CPU:
                    the target-side SSH server, session and shell cost;
  connections     = "Accepted publickey" lines in sshd's log (new SSH connections).
"""

from __future__ import annotations

import argparse
import ctypes
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import BENCH, BUILD, MIB, load_raw, log, run_playbook, save_raw

SETTINGS = {
    "plain": dict(pipelining=False, persist=False),
    "persist": dict(pipelining=False, persist=True),
    "pipelining": dict(pipelining=True, persist=False),
    "pipelining+persist": dict(pipelining=True, persist=True),
    "local": dict(pipelining=False, persist=False, local=True),
}
# ansible's default internal_poll_interval (s): how often ansible-playbook's main process polls its workers
ANSIBLE_POLL_S = 0.001
# both, and the collection's strategy plugin instead of ansible.builtin.linear
SETTINGS["pipelining+persist+blocking"] = dict(pipelining=True, persist=True, strategy="linux_mm.damon.linear_blocking")
# both, with a slower internal_poll_interval (ini only); run only when asked for: it changed nothing measurable
POLL_SETTINGS = {"pipelining+persist+poll%dms" % ms: dict(pipelining=True, persist=True, poll_s=ms / 1000.0)
                 for ms in (10, 50, 100)}
SETTINGS.update(POLL_SETTINGS)
DOCUMENTED = "pipelining+persist+blocking"
SSH_ARGS = {True: "-o ControlMaster=auto -o ControlPersist=60s", False: "-o ControlMaster=no"}
GUARD = BENCH.parent / "tests" / "guard"
WRAPPER = """#!/bin/sh
# bench: one line per module execution: its user and system CPU seconds (host sysfs write guard on)
PYTHONPATH=%(guard)s exec /usr/bin/time -a -o %(log)s -f "%%U %%S" %(python)s "$@"
"""
SLEEPER = r"""
import ctypes, mmap, time
m = mmap.mmap(-1, 100 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
print((addr + (2 << 20) - 1) // (2 << 20) * (2 << 20), flush=True)
time.sleep(1e6)
"""
SSHD_CONFIG = """# bench/control_ssh.py: a private sshd for the simulated fleet, loopback only
Port %(port)d
ListenAddress 127.0.0.1
HostKey %(dir)s/host_ed25519
PidFile %(dir)s/sshd.pid
AuthorizedKeysFile %(dir)s/authorized_keys
# the key directory is 0700 and ours; its parents may be /tmp (sticky, world-writable)
StrictModes no
AllowUsers %(user)s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 200
LogLevel INFO
Subsystem sftp internal-sftp
"""
SSH_CONFIG = """# bench/control_ssh.py: client side (passed with -F; ~/.ssh is not read)
Host *
  StrictHostKeyChecking yes
  UserKnownHostsFile %(dir)s/known_hosts
  GlobalKnownHostsFile /dev/null
  IdentityFile %(dir)s/client_ed25519
  IdentitiesOnly yes
  BatchMode yes
  CheckHostIP no
  LogLevel ERROR
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    text = Path("/proc/%d/stat" % pid).read_text()
    comm = text[text.index("(") + 1:text.rindex(")")]
    return comm, text[text.rindex(")") + 2:].split()


def proc_cpu_s(pid, children=True):
    """utime+stime (+ cutime+cstime: reaped children) of a live process, seconds."""
    fields = _proc_stat(pid)[1]
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / CLK_TCK


class Sshd:
    """A private sshd on 127.0.0.1:<free port>, its keys and config in `base`; stopped by PID."""

    def __init__(self, base: Path):
        self.dir = base
        self.proc = None
        self.port = None
        self.user = getpass.getuser()

    def start(self):
        sshd = "/usr/sbin/sshd"
        if not os.access(sshd, os.X_OK):
            raise RuntimeError("no %s: install the Debian package openssh-server (.ci/bootstrap-host bench)" % sshd)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for name in ("host_ed25519", "client_ed25519"):
            key = self.dir / name
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-" + name, "-f", str(key)],
                               check=True)
        with socket.socket() as s:  # a free port on loopback; sshd binds it right after
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cfg = {"dir": self.dir, "port": self.port, "user": self.user}
        (self.dir / "sshd_config").write_text(SSHD_CONFIG % cfg)
        (self.dir / "ssh_config").write_text(SSH_CONFIG % cfg)
        (self.dir / "authorized_keys").write_text('from="127.0.0.1",no-agent-forwarding,no-port-forwarding,'
                                                  'no-X11-forwarding ' + (self.dir / "client_ed25519.pub").read_text())
        host_pub = (self.dir / "host_ed25519.pub").read_text().split()
        (self.dir / "known_hosts").write_text("[127.0.0.1]:%d %s %s\n" % (self.port, host_pub[0], host_pub[1]))
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755)  # sshd's privilege separation directory, needed as root
        self.log = self.dir / "sshd.log"
        self.log.write_text("")
        self.proc = subprocess.Popen([sshd, "-D", "-f", str(self.dir / "sshd_config"), "-E", str(self.log)],
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited with %s: %s" % (self.proc.returncode, self.log.read_text()[-2000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def connections(self):
        return self.log.read_text().count("Accepted publickey")

    def wait_sessions_reaped(self, timeout=30):
        """Until sshd has no child left (every session's CPU is in its cutime)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _children(self.proc.pid):
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _children(ppid, comm=None):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name, fields = _proc_stat(int(entry))
        except (OSError, ValueError):
            continue
        if int(fields[1]) == ppid and (comm is None or name == comm):
            out.append(int(entry))
    return out


def set_child_subreaper():
    """Orphaned descendants (ssh ControlPersist masters) become our children, so we can reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_masters():
    """Stop the ssh masters that detached from ansible (our children now), by PID; their CPU."""
    cpu, n = 0.0, 0
    for pid in _children(os.getpid(), comm="ssh"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        ru = os.wait4(pid, 0)[2]
        cpu += ru.ru_utime + ru.ru_stime
        n += 1
    return cpu, n


def _terminated(signum, frame):
    for pid in _children(os.getpid()):  # a running ansible-playbook first (its ssh masters are reaped later)
        try:
            if b"ansible-playbook" in Path("/proc/%d/cmdline" % pid).read_bytes():
                os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    sys.exit(128 + signum)


def _sleeper():
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def _model(pid, start):
    return [{"pid": pid, "regions": [{"start": start, "size": 32 * MIB, "rate": 0.35},
                                     {"start": start + 32 * MIB, "size": 64 * MIB, "rate": 0.0}]}]


def inventory(work, emu, sshd, setting, wrapper):
    local = SETTINGS[setting].get("local")
    hosts = {}
    for name in emu.names:
        own = work / "own" / setting / name / "ownership.json"  # learned state: learned.json beside it
        own.parent.mkdir(parents=True, exist_ok=True)
        for old in own.parent.iterdir():
            old.unlink()
        h = {"ansible_python_interpreter": str(wrapper), "sysfs_root": emu.host_root(name),
             "kernel_release": "7.3.4", "ownership_file": str(own)}
        if local:
            h["ansible_connection"] = "local"
        else:
            h.update(ansible_connection="ssh", ansible_host="127.0.0.1", ansible_port=sshd.port,
                     ansible_user=sshd.user, ansible_ssh_common_args="-F %s" % (sshd.dir / "ssh_config"),
                     ansible_control_path="%(directory)s/" + name, ansible_remote_tmp=str(work / "remote-tmp"))
        hosts[name] = h
    path = work / ("inventory-%d-%s.json" % (len(emu.names), setting))
    path.write_text(json.dumps({"all": {"hosts": hosts}}))
    return path


class MainCpu(threading.Thread):
    """Samples the ansible-playbook main process's own CPU (not its workers') every 0.2 s while it runs:
    the strategy loop: queueing hosts to workers (ansible.builtin.linear polls them every 0.1 ms while all are
    busy) and collecting their results."""

    def __init__(self, marker):
        super().__init__(daemon=True)
        self.marker, self.cpu_s, self.done = marker, 0.0, threading.Event()

    def run(self):
        pid = None
        while not self.done.wait(0.2):
            try:
                if pid is None:
                    pid = next((c for c in _children(os.getpid()) if self.marker in
                                Path("/proc/%d/cmdline" % c).read_bytes().decode(errors="replace")), None)
                if pid is not None:
                    self.cpu_s = proc_cpu_s(pid, children=False)
            except OSError:  # it exited: keep the last sample
                if pid is not None:
                    return


def measure(work, emu, sshd, app_pid, setting, forks, interval_s, iterations):
    """One ansible-playbook run of tune.yml over the fleet with one setting; one row."""
    calls_log = work / "module_calls.log"
    wrapper = work / "bench-python"
    wrapper.write_text(WRAPPER % {"log": calls_log, "python": sys.executable, "guard": GUARD})
    wrapper.chmod(0o755)
    calls_log.write_text("")
    hosts = len(emu.names)
    s = SETTINGS[setting]
    cpdir = work / "cp"
    cpdir.mkdir(exist_ok=True)
    env = {"ANSIBLE_PIPELINING": str(s["pipelining"]), "ANSIBLE_SSH_ARGS": SSH_ARGS[s["persist"]],
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cpdir), "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_TIMEOUT": "30"}
    if s.get("strategy"):
        env["ANSIBLE_STRATEGY"] = s["strategy"]
    poll_s = s.get("poll_s", ANSIBLE_POLL_S)
    if poll_s != ANSIBLE_POLL_S:
        cfg = work / ("ansible-%s.cfg" % setting)
        cfg.write_text("[defaults]\ninternal_poll_interval = %g\n" % poll_s)
        env["ANSIBLE_CONFIG"] = str(cfg)
    inv = inventory(work, emu, sshd, setting, wrapper)
    extra = dict(bench_apps=[{"name": "app", "pid": app_pid}], bench_policy="adaptive", bench_interval_s=interval_s,
                 bench_max_iterations=iterations, bench_timeout_s=600)
    sshd_cpu0, conns0, emu_cpu0 = sshd.cpu_s(), sshd.connections(), proc_cpu_s(emu.proc.pid, children=False)
    load0 = os.getloadavg()
    main_cpu = MainCpu(str(inv))
    main_cpu.start()
    res = run_playbook(BENCH / "playbooks" / "tune.yml", inv, extra, work / "ansible.log",
                       work / ("record-%d-%s.jsonl" % (hosts, setting)), forks=forks, timeout=3600, env_extra=env)
    main_cpu.done.set()
    main_cpu.join()
    masters_cpu, masters = reap_masters()
    sshd.wait_sessions_reaped()
    load1 = os.getloadavg()
    # "U S" per execution; /usr/bin/time adds "Command exited with non-zero status N" before a failed one's
    lines = [ln.split() for ln in calls_log.read_text().splitlines() if ln.strip() and ln[0].isdigit()]
    module_cpu = sum(float(a) + float(b) for a, b in lines)
    tunes = [r for r in res["records"] if r["task"] == "Tune"]
    its = sum(r["result"].get("iterations", 0) for r in tunes)
    local = bool(s.get("local"))
    controller = res["cpu_s"] + masters_cpu - (module_cpu if local else 0.0)
    sshd_cpu = 0.0 if local else sshd.cpu_s() - sshd_cpu0 - module_cpu
    conns = sshd.connections() - conns0

    def per(x):
        return x / its if its else None

    settings = dict(s, forks=forks, poll_s=poll_s, strategy=s.get("strategy", "linear"),
                    ssh_args=None if local else env["ANSIBLE_SSH_ARGS"])
    row = dict(hosts=hosts, setting=setting, settings=settings,
               forks=forks, max_iterations=iterations, interval_s=interval_s, rc=res["rc"], wall_s=res["wall_s"],
               hosts_ok=sum(1 for r in tunes if r["status"] == "ok"), iterations=its, module_calls=len(lines),
               ansible_tree_cpu_s=res["cpu_s"], ansible_main_cpu_s=main_cpu.cpu_s, masters=masters, masters_cpu_s=masters_cpu,
               controller_cpu_s=controller, module_cpu_s=module_cpu, sshd_cpu_s=sshd_cpu,
               emulator_cpu_s=proc_cpu_s(emu.proc.pid, children=False) - emu_cpu0, connections=conns,
               cpu_s_per_host_iteration=per(controller), main_cpu_s_per_host_iteration=per(main_cpu.cpu_s),
               module_cpu_s_per_call=module_cpu / len(lines) if lines else None,
               sshd_cpu_s_per_host_iteration=per(sshd_cpu), connections_per_host_iteration=per(conns),
               wall_s_per_iteration=res["wall_s"] * hosts / its if its else None,
               loadavg_before=load0, loadavg_after=load1, time=time.strftime("%Y-%m-%dT%H:%M:%S"),
               failures=[r["result"].get("msg") for r in tunes if r["status"] != "ok"][:3])
    log("control-ssh: %d hosts, %-18s %6.1f s wall (%.2f s per fleet iteration), %d/%d ok, %d iterations, "
        "controller %.1f ms per host-iteration (main process %.1f ms; masters %d: %.2f s), module %.0f ms per call, sshd %.1f ms, "
        "%.2f connections per host-iteration" % (
            hosts, setting, res["wall_s"], row["wall_s_per_iteration"] or 0, row["hosts_ok"], hosts, its,
            1000 * (per(controller) or 0), 1000 * (per(main_cpu.cpu_s) or 0), masters, masters_cpu, 1000 * (row["module_cpu_s_per_call"] or 0),
            1000 * (per(sshd_cpu) or 0), per(conns) or 0))
    return row


def _one(work, sshd, hosts, setting, forks, interval_s, iterations, speed):
    """A fresh fleet (every setting starts from the same state) and one measured run."""
    from tests.emulator import MultiHostSysfs  # noqa: PLC0415

    sleeper, start = _sleeper()
    t = time.monotonic()
    # one process, `hosts` independent emulated hosts, running at `speed` from the mount on
    emu = MultiHostSysfs(hosts, kernel="7.3", scenario={"speed": speed, "targets": _model(sleeper.pid, start)},
                         start_timeout=300)
    try:
        emu.start()
        log("control-ssh: %d emulated hosts up in %.1f s (one process), sshd on 127.0.0.1:%d" % (
            hosts, time.monotonic() - t, sshd.port))
        return measure(work, emu, sshd, sleeper.pid, setting, forks, interval_s, iterations)
    finally:
        emu.stop()
        sleeper.kill()
        sleeper.wait()


def default_settings(hosts):
    """Every setting but the poll variants up to 200 hosts; above, only the documented one (bounds the run:
    1000 hosts × 2 iterations take about 18 min per setting on 2 CPUs, most of it the 2000 module executions)."""
    return tuple(k for k in SETTINGS if k not in POLL_SETTINGS) if hosts <= 200 else (DOCUMENTED,)


def run(sizes=(50, 200, 1000), settings=None, forks=25, interval_s=0.3, iterations=2, speed=20.0,
        work=None, save=True):
    """Rows of every (fleet size, setting); merged into results/raw/control-ssh.json when `save`.
    settings None: default_settings(hosts) per fleet size."""
    work = Path(work) if work else BUILD / "control-ssh"
    work.mkdir(parents=True, exist_ok=True)
    (work / "ansible.log").write_text("")
    set_child_subreaper()
    signal.signal(signal.SIGTERM, _terminated)  # clean up (finally blocks) when stopped by SIGTERM
    rows = []
    raw = (load_raw("control-ssh") if save else None) or {"fleet": []}
    sshd = Sshd(work / "ssh").start()
    try:
        for hosts in sizes:
            for setting in settings or default_settings(hosts):
                row = _one(work, sshd, hosts, setting, forks, interval_s, iterations, speed)
                rows.append(row)
                if save:
                    raw["fleet"] = [r for r in raw["fleet"] if (r["hosts"], r["setting"]) != (hosts, setting)]
                    raw["fleet"].append(row)
                    raw["fleet"].sort(key=lambda r: (r["hosts"], list(SETTINGS).index(r["setting"])))
                    save_raw("control-ssh", raw)
    finally:
        reap_masters()
        sshd.stop()
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.control_ssh", description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="50,200,1000", help="comma-separated fleet sizes")
    ap.add_argument("--settings", help="comma-separated, of: %s (default: all up to 200 hosts, %s above)" % (
        ", ".join(SETTINGS), DOCUMENTED))
    ap.add_argument("--iterations", type=int, default=2, help="max_iterations of every host's loop")
    ap.add_argument("--forks", type=int, default=25)
    ap.add_argument("--work", help="working directory (default build/bench/control-ssh)")
    ap.add_argument("--no-save", action="store_true", help="print the rows, do not touch bench/results/raw")
    args = ap.parse_args(argv)
    settings = tuple(args.settings.split(",")) if args.settings else None
    unknown = set(settings or ()) - set(SETTINGS)
    if unknown:
        ap.error("unknown settings: %s" % ", ".join(sorted(unknown)))
    rows = run(sizes=tuple(int(x) for x in args.hosts.split(",")), settings=settings, forks=args.forks,
               iterations=args.iterations, work=args.work, save=not args.no_save)
    print(json.dumps(rows, indent=1, default=str))
    return 0 if all(r["rc"] == 0 and r["hosts_ok"] == r["hosts"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
