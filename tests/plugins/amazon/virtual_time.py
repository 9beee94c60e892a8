"""An asyncio event loop on a virtual clock, for tests at ``time_scale`` 1.

Whenever nothing is ready to run, the clock jumps to the next timer instead of
sleeping, so ``asyncio.sleep``, the connector's token buckets (aiolimiter uses
the loop's clock) and the simulator (``on_advance``) all see minutes pass at once.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
TICK = 1e-6


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self, on_advance: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.virtual = 0.0
        self.on_advance = on_advance
        selector: selectors.BaseSelector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            events = real_select(0)
            if not events:
                # Idle until the next timer: jump there. Each turn of the loop also
                # takes a microsecond, as real time would: a timer set for "now"
                # by float rounding (aiolimiter does that) cannot spin forever.
                step = max(timeout or 0.0, TICK)
                self.virtual += step
                if self.on_advance is not None:
                    self.on_advance(step)
            return events

        selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self.virtual


def run_virtual(
    coroutine: Coroutine[Any, Any, T], on_advance: Callable[[float], None] | None = None
) -> tuple[T, float]:
    """Run ``coroutine`` on a fresh virtual-clock loop; its result and the seconds it took."""
    loop = VirtualClockLoop(on_advance)
    try:
        result = loop.run_until_complete(coroutine)
        loop.run_until_complete(loop.shutdown_asyncgens())
        return result, loop.virtual
    finally:
        loop.close()
