"""``<mount>/.emulator/``: the test's side door, outside ``kernel/`` and ``module/``.

=============  ====  =====================================================================
file           mode  meaning
=============  ====  =====================================================================
status.json    r     everything below as JSON (virtual time, kdamonds with live stats and
                     regions, model targets with per-range huge-page bytes, THP, modules)
time           r     virtual time in seconds
advance        rw    write N (seconds, float) to move the virtual clock forward; reads time
speed          rw    virtual seconds per real second (0 = frozen)
model          rw    the access model's targets as JSON; write a JSON/YAML list (or
                     {"targets": [...]}) to replace them (huge-page state is kept per key)
faults         rw    fault injection (faults.py): write one JSON command
                     ({"op": "inject", ...}); read the state, write_count and hung writes
writes         r     the write log: index, path, value, writer pid, result, fault
=============  ====  =====================================================================
"""

from __future__ import annotations

import errno
import json

from . import kernel_input as ki
from . import scenario
from .access_model import AccessModel
from .tree import Node

RW_644 = 0o644
RO_444 = 0o444


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        ki.fail(errno.EINVAL)


class ControlDir(Node):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel
        self.attr("status.json", lambda: json.dumps(kernel.status(), indent=1) + "\n", mode=RO_444)
        self.attr("time", lambda: "%.6f\n" % kernel.clock.now(), mode=RO_444)
        self.attr("advance", lambda: "%.6f\n" % kernel.clock.now(), self._advance, RW_644)
        self.attr("speed", lambda: "%g\n" % kernel.clock.speed, self._speed, RW_644)
        self.attr("model", lambda: json.dumps(kernel.model.to_list()) + "\n", self._model, RW_644)
        self.attr("faults", lambda: json.dumps(kernel.faults.status()) + "\n", self._faults, RW_644)
        self.attr("writes", lambda: json.dumps(kernel.faults.writes()) + "\n", mode=RO_444)

    def _advance(self, text: str) -> None:
        seconds = _parse_float(text)
        if seconds < 0:
            ki.fail(errno.EINVAL)
        self.kernel.advance(seconds)

    def _speed(self, text: str) -> None:
        speed = _parse_float(text)
        if speed < 0:
            ki.fail(errno.EINVAL)
        self.kernel.catch_up()
        self.kernel.clock.speed = speed

    def _model(self, text: str) -> None:
        try:
            data = scenario.parse(text)
            if isinstance(data, dict):
                data = data.get("targets", [])
            model = AccessModel(data or [])
        except (ValueError, TypeError, KeyError):
            ki.fail(errno.EINVAL)
        self.kernel.replace_model(model)

    def _faults(self, text: str) -> None:
        try:
            cmd = json.loads(text)
            self.kernel.faults.command(cmd)
        except (ValueError, TypeError, KeyError):
            ki.fail(errno.EINVAL)
