"""3. Many connections in one daemon: scheduling lateness, throughput, memory.

N connections run under the daemon's own scheduler (``engine.scheduler.build_scheduler``,
APScheduler 3, one job per connection and flow) for a fixed time. Every
connection has its own Amazon seller (N simulators served by one process, each
under ``/s/<i>``, with published limits at a time scale of 100) holding a few
orders, and its own Shopify shop (N shop simulators in a second process). The
flows run on the default schedule (orders and shipments every 300 s, stock every
120 s) divided by ``speedup``: the quick run has 10 times fewer connections and a
10 times faster schedule, so the daemon starts as many flow runs per second.

- lateness of a run: the moment the engine starts the flow (``Engine.run_flow``
  is entered) minus the run time APScheduler scheduled it for (the earliest of
  the submission's ``scheduled_run_times``); runs skipped because the previous
  one was still running are counted separately;
- throughput: flow runs started per second and orders imported per second;
- RSS per connection: (peak RSS of the engine process − its RSS with everything
  imported but no connection configured) / N.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent

from bench.wiring import World, current_rss_mb, isolated, peak_rss_mb, percentile, run_engine
from engine.runner import Engine
from engine.scheduler import build_scheduler
from engine.sync.context import FlowReport

TIME_SCALE = 100.0
CATALOGUE = 50
DEFAULT_SCHEDULE = {"orders": 300.0, "shipments": 300.0, "stock": 120.0}


class TimedEngine(Engine):
    """Records when each flow run starts (the lateness probe)."""

    started: dict[str, list[float]]

    async def run_flow(self, connection_id: str, flow: str) -> FlowReport | None:
        if not hasattr(self, "started"):
            self.started = defaultdict(list)
        self.started[f"{connection_id}:{flow}"].append(time.time())
        return await super().run_flow(connection_id, flow)


def measure(connections: int, speedup: float, duration: float, orders_each: int) -> dict[str, Any]:
    import plugins.amazon  # noqa: F401 - the baseline includes every module the daemon uses
    import plugins.shopify  # noqa: F401
    from bench.wiring import builtin_plugins

    builtin_plugins()
    baseline = current_rss_mb()
    world = World(
        time_scale=TIME_SCALE,
        rate_limits=True,
        sellers=connections,
        catalogue=CATALOGUE,
        connection_options={"schedule": {k: v / speedup for k, v in DEFAULT_SCHEDULE.items()}},
        engine_class=TimedEngine,
        shop_per_connection=True,
    )
    try:
        if orders_each:
            world.amazon.call("seed_orders", per_seller=orders_each, skus=CATALOGUE)
        result = run_engine(_measure(world, duration))
    finally:
        world.close()
    peak = max(peak_rss_mb(), result.pop("sampled_rss_mb"))
    result.update(
        {
            "connections": connections,
            "schedule_s": {k: v / speedup for k, v in DEFAULT_SCHEDULE.items()},
            "duration_s": duration,
            "baseline_rss_mb": round(baseline, 1),
            "peak_rss_mb": round(peak, 1),
            "rss_mb_per_connection": round(max(0.0, peak - baseline) / connections, 4),
        }
    )
    return result


async def _measure(world: World, duration: float) -> dict[str, Any]:
    engine = world.engine
    assert isinstance(engine, TimedEngine)
    engine.started = defaultdict(list)
    submitted: dict[str, list[float]] = defaultdict(list)
    skipped = 0

    def listener(event: Any) -> None:
        nonlocal skipped
        if event.code == EVENT_JOB_MAX_INSTANCES:
            skipped += 1
            return
        if isinstance(event, JobSubmissionEvent):
            times: list[datetime] = list(event.scheduled_run_times)
            submitted[event.job_id].append(min(t.timestamp() for t in times))

    for name in ("apscheduler", "ordersync.scheduler"):  # cancellations at the end
        logging.getLogger(name).setLevel(logging.CRITICAL)
    scheduler = build_scheduler(engine)
    scheduler.add_listener(listener, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
    before = world.counters()
    start = time.time()
    scheduler.start()
    sampled = 0.0
    while time.time() - start < duration:
        sampled = max(sampled, current_rss_mb())
        await asyncio.sleep(min(0.5, max(0.0, duration - (time.time() - start))))
    engine.stop.set()
    elapsed = time.time() - start
    scheduler.shutdown(wait=False)
    # Let runs that already started finish (those still waiting for their
    # connection's lock see the stop event and return at once).
    current = asyncio.current_task()
    pending = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
    if pending:
        await asyncio.wait(pending, timeout=120)
    after = world.counters()
    lateness = []
    for job_id, scheduled in submitted.items():
        for planned, began in zip(scheduled, engine.started.get(job_id, []), strict=False):
            lateness.append(max(0.0, began - planned))
    runs = sum(len(v) for v in engine.started.values())
    imported = sum(
        world.store.counts_by_state(c.id).get("imported", 0) for c in engine.loaded.connections
    )
    await world.aclose()
    requests = (after["amazon"]["requests"] - before["amazon"]["requests"]) + (
        after["shopify"]["requests"] - before["shopify"]["requests"]
    )
    return {
        "lateness_p50_s": round(percentile(lateness, 50), 4),
        "lateness_p99_s": round(percentile(lateness, 99), 4),
        "lateness_max_s": round(max(lateness, default=0.0), 4),
        "runs": runs,
        "runs_skipped_still_running": skipped,
        "flow_runs_per_s": round(runs / elapsed, 2),
        "orders_imported": imported,
        "orders_per_s": round(imported / elapsed, 2),
        "api_requests_per_s": round(requests / elapsed, 1),
        "throttled_429": after["amazon"]["throttled"] - before["amazon"]["throttled"],
        "sampled_rss_mb": sampled,
    }


def run(connections: int, speedup: float, duration: float, orders_each: int = 2) -> dict[str, Any]:
    result: dict[str, Any] = isolated(measure, connections, speedup, duration, orders_each)
    return result


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    every = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 40.0
    print(json.dumps(run(n, every, seconds), indent=2))  # noqa: T201
