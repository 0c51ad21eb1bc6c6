# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small fleet of EMULATED hosts for playbook tests: one inventory host per emulated DAMON sysfs tree.

Each host gets its own FUSE emulator mount (tests/emulator), its own ``hotcold`` workload
(tests/workloads) whose hot part the emulator's access model shows as hot and its cold part as
cold, and its own ownership record; the inventory file gives every host the ``hugepage_*``
variables that point the role there (local connection, never the host's /sys)::

    with EmulatedFleet(tmp_path, ["h1", "h2", "h3"]) as fleet:
        run = run_playbook(playbook, inventory=str(fleet.inventory), extra_vars=...)
        fleet.touched("h3")       # whether any emulated sysfs file of h3 was written
        fleet.kdamonds("h1")      # the emulated kdamonds of h1 (emu.status()["kdamonds"])
        fleet.restart("h1", nohugepage=True)   # a new workload process, same application name

Only the processes and mounts started here are stopped, when the block ends.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.emulator import EmulatedSysfs
from tests.workloads import HotCold

APP = "app"  # the application name every host's hugepage_apps gives its workload


def hot_cold_model(workload, hot_rate=0.5):
    """The access model of one hotcold workload: its hot part seen in ``hot_rate`` of the samples, its cold part never."""
    return {"pid": workload.pid, "regions": [
        {"start": workload.hot[0], "end": workload.hot[1], "rate": hot_rate},
        {"start": workload.cold[0], "end": workload.cold[1], "rate": 0.0}]}


class EmulatedFleet:
    """``names`` inventory hosts, each an emulated Linux ``kernel`` DAMON sysfs with an idle hotcold workload.

    ``workload`` holds HotCold options for every host, ``per_host`` HotCold options by host name
    (e.g. ``{"h1": {"cold_stride_kb": 4}}``), ``host_vars`` extra inventory variables by host name,
    ``kernels`` ``(kernel, release)`` by host name for hosts that differ from ``kernel``/``release``
    (e.g. ``{"h2": ("6.1", "6.1.0")}``: Debian 6.1, no DAMON).
    The workloads run with ``idle=True``: the emulator's model, not real accesses, decides what
    DAMON sees, so the fleet burns no CPU.
    """

    def __init__(self, tmp_path, names, kernel="6.12", release="6.12.117", workload=None, per_host=None,
                 host_vars=None, kernels=None, speed=20):
        self.tmp_path = Path(tmp_path)
        self.names = list(names)
        self.kernel, self.release, self.speed = kernel, release, speed
        self.workload_options = dict(dict(hot_mb=8, cold_mb=16, idle=True), **(workload or {}))
        self.per_host = per_host or {}
        self.host_vars = host_vars or {}
        self.kernels = kernels or {}
        self.workloads, self.emulators = {}, {}
        self.inventory = self.tmp_path / "fleet-inventory.json"
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        try:
            for name in self.names:
                self._start_workload(name)
                model = hot_cold_model(self.workloads[name])
                kernel = self.kernels.get(name, (self.kernel, self.release))[0]
                self.emulators[name] = self._stack.enter_context(
                    EmulatedSysfs(kernel=kernel, scenario={"speed": self.speed, "targets": [model]}))
            self.write_inventory()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def _start_workload(self, name, **options):
        opts = dict(self.workload_options, **self.per_host.get(name, {}))
        opts.update(options)
        workload = HotCold(**opts)
        self._stack.enter_context(workload)
        self.workloads[name] = workload
        return workload

    def vars_of(self, name):
        """The inventory variables of host ``name``."""
        own = self.tmp_path / name / "ownership.json"
        return dict({
            "hugepage_sysfs_root": self.emulators[name].root,
            "hugepage_kernel_release": self.kernels.get(name, (self.kernel, self.release))[1],
            "hugepage_ownership_file": str(own), "hugepage_learned_file": str(own.parent / "learned.json"),
            "hugepage_apps": [{"name": APP, "pid": self.workloads[name].pid}],
            "hugepage_interval_s": 0.5,
            "hugepage_exclusive_modules": "stop",
        }, **self.host_vars.get(name, {}))

    def write_inventory(self):
        """(Re)write the inventory: group ``fleet`` with every host and its variables (JSON is YAML)."""
        data = {"all": {"children": {"fleet": {"hosts": dict((n, self.vars_of(n)) for n in self.names)}}}}
        self.inventory.write_text(json.dumps(data, indent=1))
        return self.inventory

    def restart(self, name, **options):
        """Stop the workload of ``name`` and start a new process (HotCold ``options`` on top of the fleet's);
        the emulator's model and the inventory follow the new pid, the application keeps its name."""
        old = self.workloads[name]
        old.stop()
        workload = self._start_workload(name, **options)
        self.emulators[name].set_model([hot_cold_model(workload)])
        self.write_inventory()
        return workload

    def touched(self, name):
        """Whether anything wrote to the emulated sysfs of host ``name`` (its write log is not empty)."""
        return self.emulators[name].write_count() > 0

    def kdamonds(self, name):
        """The emulated kdamonds of host ``name``."""
        return self.emulators[name].status()["kdamonds"]

    def running(self, name):
        """How many kdamonds of host ``name`` run."""
        return sum(1 for k in self.kdamonds(name) if k["state"] == "on")
