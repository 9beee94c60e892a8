"""Where a rate-limited step of benchmark 2 loses time: a timeline of its Amazon calls.

``python -m bench.timeline [--step stock|shipments] [ORDERS SHIPMENTS SKUS]`` runs
:func:`bench.rate_limit.measure` (default sizes: the full run's) in this process and
records, on the engine's clock, the step's flow run, every token the client's bucket
grants for the step's operation (``patchListingsItem`` or ``confirmShipment``), every
answer, and every garbage collection of the engine. It prints how long the flow ran
before its first call, the calls' excess over one grant per token, and each gap
between two grants longer than :data:`GAP_TOKENS` tokens with what explains it:

- ``engine gc``: a collection in the engine overlapped the gap (the event loop stood still);
- ``all in flight``: the next call came late because it waited for an answer to free
  its slot (the simulator, or the machine, was slow);
- ``nothing to send``: no call was unanswered either: the flow had no work ready
  (for shipments, it was waiting for the shop's next page);
- ``loop``: a call was waiting through the gap and no collection ran: the event loop
  woke late.

A diagnostic, not a benchmark figure: the instrumentation itself costs a little.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import engine.http
import engine.ratelimit
import engine.runner
from bench import rate_limit
from plugins.amazon.client import RATE_LIMITS

STEPS = {"stock": ("stock", "patchListingsItem"), "shipments": ("shipments", "confirmShipment")}
"""Step name: (flow, Amazon operation)."""
GAP_TOKENS = 3
"""Gaps longer than this many tokens are listed (the stock push's client burst is two)."""


@dataclass
class Timeline:
    """Engine-clock (``time.monotonic``) events of one operation's calls."""

    events: list[tuple[str, float]] = field(default_factory=list)  # enter, grant, done
    collections: list[tuple[int, float, float]] = field(default_factory=list)  # gen, start, s
    flows: list[tuple[float, float]] = field(default_factory=list)  # start, end

    def gaps(self, longer_than: float) -> list[dict[str, Any]]:
        """Each gap between two grants longer than ``longer_than`` seconds, explained."""
        waiting: deque[float] = deque()  # entry times of calls not granted yet (FIFO)
        in_flight, last_grant, found = 0, None, []
        in_flight_before_entry: dict[float, int] = {}
        for kind, at in self.events:
            if kind == "enter":
                waiting.append(at)
                in_flight_before_entry[at] = in_flight
            elif kind == "grant":
                entered = waiting.popleft() if waiting else at
                if last_grant is not None and at - last_grant > longer_than:
                    found.append(
                        self._explain(
                            last_grant, at, entered, in_flight_before_entry.get(entered, 0)
                        )
                    )
                last_grant = at
                in_flight += 1
            elif kind == "done":
                in_flight -= 1
        return found

    def _explain(self, start: float, end: float, entered: float, in_flight: int) -> dict[str, Any]:
        """Why no token was granted from ``start`` to ``end``: the call granted at
        ``end`` entered at ``entered``, with ``in_flight`` calls unanswered then."""
        gap = end - start
        overlapping = [
            (gen, seconds)
            for gen, began, seconds in self.collections
            if began < end and began + seconds > start
        ]
        if entered <= start:
            cause = "loop"  # a call was waiting through the whole gap
        elif in_flight:
            cause = "all in flight"  # the next call waited for an answer to free a slot
        else:
            cause = "nothing to send"  # e.g. the flow waited for the shop's next page
        collected = sum(seconds for _, seconds in overlapping)
        if overlapping:
            by_generation = ", ".join(
                f"gen{g} {len(times)}x {sum(times) * 1000:.1f} ms"
                for g in (0, 1, 2)
                if (times := [s for gen, s in overlapping if gen == g])
            )
            cause = (
                f"engine gc {by_generation}"
                if collected >= gap / 2
                else f"{cause} (engine gc {by_generation})"
            )
        grants = self.grants()
        return {"at_s": start - grants[0], "gap_s": gap, "cause": cause}

    def between(self, start: float, end: float) -> Timeline:
        """What happened from ``start`` to ``end`` (flows: only those inside)."""
        return Timeline(
            events=[(kind, at) for kind, at in self.events if start <= at <= end],
            collections=[c for c in self.collections if start <= c[1] <= end],
            flows=[f for f in self.flows if start <= f[0] and f[1] <= end],
        )

    def grants(self) -> list[float]:
        return [at for kind, at in self.events if kind == "grant"]


@contextmanager
def recording(operation: str, flow: str | None = None) -> Iterator[Timeline]:
    """Record ``operation``'s grants and answers, runs of ``flow`` and the engine's
    collections, meanwhile."""
    timeline = Timeline()
    acquire = engine.ratelimit.OperationLimiter.acquire
    send_once = engine.http.ApiClient._send_once
    run_flow = engine.runner.Engine.run_flow

    async def recorded_run_flow(self: Any, connection_id: str, name: str, *a: Any, **k: Any) -> Any:
        began = time.monotonic()
        try:
            return await run_flow(self, connection_id, name, *a, **k)
        finally:
            if name == flow:
                timeline.flows.append((began, time.monotonic()))

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
    engine.runner.Engine.run_flow = recorded_run_flow  # type: ignore[method-assign]
    gc.callbacks.append(on_collection)
    try:
        yield timeline
    finally:
        engine.ratelimit.OperationLimiter.acquire = acquire  # type: ignore[method-assign]
        engine.http.ApiClient._send_once = send_once  # type: ignore[method-assign]
        engine.runner.Engine.run_flow = run_flow  # type: ignore[method-assign]
        gc.callbacks.remove(on_collection)


def report(
    timeline: Timeline, operation: str, time_scale: float = rate_limit.TIME_SCALE
) -> list[str]:
    """The last flow run's calls (the measured one; earlier runs prepared it), or all."""
    lines = []
    if timeline.flows:
        began, ended = timeline.flows[-1]
        timeline = timeline.between(began, ended)
    grants = timeline.grants()
    if len(grants) < 2:
        return [f"{len(grants)} {operation} grants: nothing to show"]
    if timeline.flows:
        lines.append(
            f"flow run {ended - began:.3f} s: first grant after {grants[0] - began:.3f} s, "
            f"{ended - grants[-1]:.3f} s after the last"
        )
    step = 1.0 / (RATE_LIMITS[operation].rate * time_scale)
    span = grants[-1] - grants[0]
    ideal = (len(grants) - 1) * step
    during = [c for c in timeline.collections if grants[0] <= c[1] <= grants[-1]]
    lines += [
        f"{len(grants)} {operation} grants in {span:.3f} s; one every {step * 1000:.1f} ms "
        f"would take {ideal:.3f} s: excess {span - ideal:.3f} s",
        "engine collections meanwhile: "
        + ", ".join(
            f"gen{g} {sum(1 for c in during if c[0] == g)}x "
            f"{sum(c[2] for c in during if c[0] == g) * 1000:.0f} ms"
            for g in (0, 1, 2)
        ),
        f"gaps over {GAP_TOKENS} tokens ({GAP_TOKENS * step * 1000:.0f} ms) between grants:",
    ]
    gaps = timeline.gaps(longer_than=GAP_TOKENS * step)
    lines += [
        f"  {g['gap_s'] * 1000:7.1f} ms at {g['at_s']:6.3f} s  {g['cause']}" for g in gaps
    ] or ["  none"]
    lines.append(f"  together {sum(g['gap_s'] for g in gaps):.3f} s")
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--step", choices=sorted(STEPS), default="stock")
    parser.add_argument("sizes", nargs="*", type=int, metavar="ORDERS SHIPMENTS SKUS")
    args = parser.parse_args(argv)
    orders, shipments, skus = args.sizes[:3] or [10_000, 2000, 2500]
    flow, operation = STEPS[args.step]
    with recording(operation, flow) as timeline:
        figures = rate_limit.measure(orders, shipments, skus)[args.step]
    print(  # noqa: T201
        f"{args.step}: {figures['wall_s']} s, {figures['ratio_to_minimum']}x the minimum "
        f"({figures['minimum_s']} s), {figures['throttled_429']} 429s"
    )
    for line in report(timeline, operation):
        print(line)  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1:])
