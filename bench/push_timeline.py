"""Where the stock push of benchmark 2 loses time: a timeline of its ``patchListingsItem`` calls.

``python -m bench.push_timeline [ORDERS SHIPMENTS SKUS]`` runs :func:`bench.rate_limit.measure`
(default sizes: the full run's) in this process and records, on the engine's clock, every
token the client's bucket grants, every answer, and every garbage collection of the engine.
It prints the push's excess over a grant every ``1 / rate`` seconds, and each gap between
two grants longer than :data:`GAP_SECONDS` with what explains it:

- ``engine gc``: a collection in the engine overlapped the gap (the event loop stood still);
- ``all in flight``: no call was waiting for a token, so the engine was waiting for answers
  (the simulator or the machine was slow);
- ``loop``: a call was waiting, no collection ran: the event loop woke late.

A diagnostic, not a benchmark figure: the instrumentation itself costs a little.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import engine.http
import engine.ratelimit
from bench import rate_limit
from plugins.amazon.client import RATE_LIMITS

OPERATION = "patchListingsItem"
GAP_SECONDS = 0.006
"""Three tokens at 100x: longer than the client's burst of two can make up."""


@dataclass
class Timeline:
    """Engine-clock (``time.monotonic``) events of one operation's calls."""

    events: list[tuple[str, float]] = field(default_factory=list)  # enter, grant, done
    collections: list[tuple[int, float, float]] = field(default_factory=list)  # gen, start, s

    def gaps(self, longer_than: float = GAP_SECONDS) -> list[dict[str, Any]]:
        waiting, last_grant, waiting_at_grant = 0, None, 0
        found = []
        for kind, at in self.events:
            if kind == "enter":
                waiting += 1
            elif kind == "grant":
                waiting -= 1
                if last_grant is not None and at - last_grant > longer_than:
                    found.append(self._explain(last_grant, at, waiting_at_grant))
                last_grant, waiting_at_grant = at, waiting
        return found

    def _explain(self, start: float, end: float, waiting: int) -> dict[str, Any]:
        overlapping = [
            (gen, seconds)
            for gen, began, seconds in self.collections
            if began < end and began + seconds > start
        ]
        if overlapping:
            cause = "engine gc " + ", ".join(
                f"gen{g} {len(times)}x {sum(times) * 1000:.1f} ms"
                for g in (0, 1, 2)
                if (times := [s for gen, s in overlapping if gen == g])
            )
        elif waiting == 0:
            cause = "all in flight"
        else:
            cause = "loop"
        grants = self.grants()
        return {"at_s": start - grants[0], "gap_s": end - start, "cause": cause}

    def grants(self) -> list[float]:
        return [at for kind, at in self.events if kind == "grant"]


@contextmanager
def recording(operation: str = OPERATION) -> Iterator[Timeline]:
    """Record ``operation``'s grants and answers, and the engine's collections, meanwhile."""
    timeline = Timeline()
    acquire = engine.ratelimit.OperationLimiter.acquire
    send_once = engine.http.ApiClient._send_once

    async def recorded_acquire(self: Any, name: str) -> None:
        if name != operation:
            return await acquire(self, name)
        timeline.events.append(("enter", time.monotonic()))
        await acquire(self, name)
        timeline.events.append(("grant", time.monotonic()))

    async def recorded_send(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        try:
            return await send_once(self, method, url, **kwargs)
        finally:
            if kwargs.get("operation") == operation:
                timeline.events.append(("done", time.monotonic()))

    started: list[float] = []

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.monotonic())
        elif started:
            began = started.pop()
            timeline.collections.append((info["generation"], began, time.monotonic() - began))

    engine.ratelimit.OperationLimiter.acquire = recorded_acquire  # type: ignore[method-assign]
    engine.http.ApiClient._send_once = recorded_send  # type: ignore[method-assign]
    gc.callbacks.append(on_collection)
    try:
        yield timeline
    finally:
        engine.ratelimit.OperationLimiter.acquire = acquire  # type: ignore[method-assign]
        engine.http.ApiClient._send_once = send_once  # type: ignore[method-assign]
        gc.callbacks.remove(on_collection)


def report(timeline: Timeline, time_scale: float = rate_limit.TIME_SCALE) -> list[str]:
    grants = timeline.grants()
    if len(grants) < 2:
        return [f"{len(grants)} {OPERATION} grants: nothing to show"]
    step = 1.0 / (RATE_LIMITS[OPERATION].rate * time_scale)
    span = grants[-1] - grants[0]
    ideal = (len(grants) - 1) * step
    during = [c for c in timeline.collections if grants[0] <= c[1] <= grants[-1]]
    lines = [
        f"{len(grants)} grants in {span:.3f} s; one every {step * 1000:.1f} ms would take "
        f"{ideal:.3f} s: excess {span - ideal:.3f} s",
        "engine collections during the push: "
        + ", ".join(
            f"gen{g} {sum(1 for c in during if c[0] == g)}x "
            f"{sum(c[2] for c in during if c[0] == g) * 1000:.0f} ms"
            for g in (0, 1, 2)
        ),
        f"gaps over {GAP_SECONDS * 1000:.0f} ms between grants:",
    ]
    gaps = timeline.gaps()
    lines += [
        f"  {g['gap_s'] * 1000:7.1f} ms at {g['at_s']:6.3f} s  {g['cause']}" for g in gaps
    ] or ["  none"]
    lines.append(f"  together {sum(g['gap_s'] for g in gaps):.3f} s")
    return lines


def main(argv: list[str]) -> None:
    orders, shipments, skus = [int(a) for a in argv[:3]] or [10_000, 2000, 2500]
    with recording() as timeline:
        figures = rate_limit.measure(orders, shipments, skus)["stock"]
    print(  # noqa: T201
        f"stock push: {figures['wall_s']} s, {figures['ratio_to_minimum']}x the minimum "
        f"({figures['minimum_s']} s), {figures['throttled_429']} 429s"
    )
    for line in report(timeline):
        print(line)  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1:])
