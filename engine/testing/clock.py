"""A scalable clock so simulators can run rate limits faster than real time."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class ScaledClock:
    """Simulated seconds = real seconds × ``time_scale``."""

    time_scale: float = 1.0

    def __post_init__(self) -> None:
        self._origin = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward (tests)."""
        self._offset += seconds
