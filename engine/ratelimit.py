"""Client-side rate limiting: one token bucket per (connection, operation).

Built on :mod:`aiolimiter` (a leaky bucket with capacity = burst). A bucket's
rate can be replaced at run time when a platform announces its limit, e.g.
Amazon's ``x-amzn-RateLimit-Limit`` header.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiolimiter import AsyncLimiter


@dataclass(frozen=True)
class RateLimit:
    """Requests per second and burst size, as the platform publishes them.

    A client may keep a fractional burst (the published one minus a safety margin).
    """

    rate: float
    burst: float


class OperationLimiter:
    """Token buckets keyed by operation name, for one connection."""

    def __init__(self, limits: dict[str, RateLimit], time_scale: float = 1.0) -> None:
        self.limits = dict(limits)
        self.time_scale = time_scale
        self._buckets: dict[str, AsyncLimiter] = {}

    def _bucket(self, operation: str) -> AsyncLimiter | None:
        limit = self.limits.get(operation)
        if limit is None:
            return None
        bucket = self._buckets.get(operation)
        if bucket is None:
            rate = limit.rate * self.time_scale
            bucket = AsyncLimiter(max_rate=limit.burst, time_period=limit.burst / rate)
            self._buckets[operation] = bucket
        return bucket

    async def acquire(self, operation: str) -> None:
        """Wait until a request for ``operation`` may be sent."""
        bucket = self._bucket(operation)
        if bucket is not None:
            await bucket.acquire()

    def update_rate(self, operation: str, rate_per_second: float) -> None:
        """Adopt a rate the server announced (already in its own time scale)."""
        limit = self.limits.get(operation)
        if limit is None or rate_per_second <= 0:
            return
        scaled = rate_per_second / self.time_scale
        if abs(scaled - limit.rate) / limit.rate < 0.01:
            return
        self.limits[operation] = RateLimit(rate=scaled, burst=limit.burst)
        old = self._buckets.pop(operation, None)
        new = self._bucket(operation)
        if old is not None and new is not None:
            # Keep what was already spent so a rate change grants no extra burst.
            new._level = old._level  # noqa: SLF001
            new._last_check = old._last_check  # noqa: SLF001
