"""The emulator's virtual clock: real time × speed, plus explicit advances.

Virtual time starts at 0 at mount. ``speed`` 0 freezes it, so only
``.emulator/advance`` (or ``EmulatedSysfs.advance()``) moves it: deterministic tests.
"""

from __future__ import annotations

import time


class VirtualClock:
    def __init__(self, speed: float = 1.0, monotonic=time.monotonic):
        self._monotonic = monotonic
        self._speed = float(speed)
        self._base_real = monotonic()
        self._base_us = 0

    def now_us(self) -> int:
        return self._base_us + int((self._monotonic() - self._base_real) * self._speed * 1e6)

    def now(self) -> float:
        return self.now_us() / 1e6

    def advance_us(self, us: int) -> None:
        if us < 0:
            raise ValueError("the virtual clock never goes back")
        self._base_us += int(us)

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError("speed must be >= 0")
        self._base_us = self.now_us()
        self._base_real = self._monotonic()
        self._speed = float(value)
