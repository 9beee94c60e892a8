"""2. Rate-limit efficiency: actual time vs the theoretical minimum under Amazon's limits.

Both simulators enforce their published limits at a time scale of 100 (buckets
refill 100 times faster), and the engine's ``time_scale`` is 100 too, so its
client-side buckets match. One token bucket per operation, starting full:
``n`` calls of an operation with rate ``r`` (requests/s) and burst ``b`` cannot
finish before ``max(0, n - b) / r`` seconds, divided by the time scale. The
theoretical minimum of a step is the largest of these over the Amazon
operations it needs, computed from the *published* rates and bursts
(``plugins.amazon.client.RATE_LIMITS``), never from the client's own.

- orders: import N orders: ``ceil(N / 100)`` ``searchOrders`` calls (pages of 100,
  items included, so no ``getOrder`` per order);
- shipments: confirm N shipments: N ``confirmShipment`` calls;
- stock: push N changed SKUs one ``patchListingsItem`` each (the connection's
  ``stock_batch_threshold`` is raised above N; with the default of 20 a push of
  more SKUs is one ``JSON_LISTINGS_FEED`` feed, whose four calls fit in the bursts).

The actual time is the wall time of the engine's flow run that does the work
(orders: read every page and create every order in the shop; shipments: read
the shop's fulfilments and confirm each, confirming while pages are read). For
stock it is the push alone (``push_stock``), which starts once the shop's stock is
read: that read is paced by Shopify's cost bucket, not by Amazon, and is reported
beside it (``shop_read_s``, ``flow_wall_s``).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from bench.wiring import World, cpu_seconds, delta, isolated, run_engine
from plugins.amazon.client import RATE_LIMITS

TIME_SCALE = 100.0
PAGE_SIZE = 100
ORDER_SKUS = 200


def minimum_seconds(operation: str, calls: int, time_scale: float = TIME_SCALE) -> float:
    """Shortest time for ``calls`` calls of ``operation`` from a full bucket, in real seconds."""
    limit = RATE_LIMITS[operation]
    return max(0.0, (calls - limit.burst) / limit.rate) / time_scale


def _cpu(world: World) -> dict[str, float]:
    return {
        "engine": cpu_seconds(),
        "amazon_sim": world.amazon.cpu_seconds(),
        "shopify_sim": world.shop.cpu_seconds(),
    }


def _cpu_since(world: World, before: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before[k], 2) for k, v in _cpu(world).items()}


def _step(
    name: str,
    wall: float,
    needed: dict[str, int],
    counters: dict[str, Any],
    done: int,
    wanted: int,
) -> dict[str, Any]:
    minimum = max(minimum_seconds(op, n) for op, n in needed.items())
    amazon_ops = counters["amazon"].get("operations", {})
    return {
        "n": wanted,
        "done": done,
        "wall_s": round(wall, 3),
        "minimum_s": round(minimum, 3),
        "ratio_to_minimum": round(wall / minimum, 4) if minimum > 0 else None,
        "throttled_429": int(counters["amazon"].get("throttled", 0)),
        "shop_throttled": int(counters["shopify"].get("throttled", 0)),
        "calls": {op: amazon_ops.get(op, {}).get("allowed", 0) for op in needed},
        "needed_calls": needed,
        "step": name,
    }


def measure(orders: int, shipments: int, skus: int) -> dict[str, Any]:
    world = World(
        time_scale=TIME_SCALE,
        rate_limits=True,
        catalogue=max(skus, ORDER_SKUS),
        amazon_settings={"stock_batch_threshold": max(skus, ORDER_SKUS)},
    )
    try:
        return run_engine(_measure(world, orders, shipments, skus))
    finally:
        world.close()


async def _measure(world: World, orders: int, shipments: int, skus: int) -> dict[str, Any]:
    engine = world.engine
    out: dict[str, Any] = {}
    await engine.test_connection("c0")  # token exchange and connection pools, outside the timing
    await engine.run_flow("c0", "shipments")  # the shop's change cursor starts "now"

    # -- orders ---------------------------------------------------------------------------
    world.amazon.call("seed_orders", per_seller=orders, skus=ORDER_SKUS)
    before, cpu = world.counters(), _cpu(world)
    start = time.perf_counter()
    report = await engine.run_flow("c0", "orders")
    wall = time.perf_counter() - start
    used = _cpu_since(world, cpu)
    imported = report.counts.get("imported", 0) if report else 0
    pages = max(1, math.ceil(orders / PAGE_SIZE))
    out["orders"] = {"cpu_s": used} | _step(
        "orders",
        wall,
        {"searchOrders": pages},
        delta(world.counters(), before),
        imported,
        orders,
    )

    # -- shipments ------------------------------------------------------------------------
    # Merchants ship later than the import, and the daemon reads shop changes every
    # few minutes: an hour passes in the shop, one order ships and a shipments run
    # catches up (moving the change cursor past the order creations, which the shop
    # reader's 300 s look-back would otherwise read again). Then N orders ship.
    world.shop.call("advance", seconds=3600)
    world.shop.call("ship_all", limit=1)
    await asyncio.sleep(1.0)
    await engine.run_flow("c0", "shipments")
    shipped = world.shop.call("ship_all", limit=shipments)
    await asyncio.sleep(1.0)  # a change is visible once its second has passed
    before, cpu = world.counters(), _cpu(world)
    start = time.perf_counter()
    report = await engine.run_flow("c0", "shipments")
    wall = time.perf_counter() - start
    used = _cpu_since(world, cpu)
    confirmed = report.counts.get("shipments confirmed", 0) if report else 0
    out["shipments"] = {"cpu_s": used} | _step(
        "shipments",
        wall,
        {"confirmShipment": shipped},
        delta(world.counters(), before),
        confirmed,
        shipments,
    )

    # -- stock ----------------------------------------------------------------------------
    # The flow first reads the shop's stock (paced by Shopify's cost bucket, not by
    # Amazon), then pushes: the ratio is the push's, the flow's whole time is reported.
    marketplace = engine.connector("c0", "marketplace")
    push_stock = marketplace.push_stock
    push_wall: list[float] = []

    async def timed_push(levels: Any) -> Any:
        began = time.perf_counter()
        try:
            return await push_stock(levels)
        finally:
            push_wall.append(time.perf_counter() - began)

    marketplace.push_stock = timed_push  # type: ignore[method-assign]
    before, cpu = world.counters(), _cpu(world)
    start = time.perf_counter()
    report = await engine.run_flow("c0", "stock")
    wall = time.perf_counter() - start
    used = _cpu_since(world, cpu)
    pushed = report.counts.get("pushed", 0) if report else 0
    catalogue = max(skus, ORDER_SKUS)
    out["stock"] = (
        {"cpu_s": used}
        | _step(
            "stock",
            sum(push_wall),
            {"patchListingsItem": catalogue},
            delta(world.counters(), before),
            pushed,
            catalogue,
        )
        | {"flow_wall_s": round(wall, 3), "shop_read_s": round(wall - sum(push_wall), 3)}
    )
    await world.aclose()
    return out


def run(orders: int, shipments: int, skus: int) -> dict[str, Any]:
    result: dict[str, Any] = isolated(measure, orders, shipments, skus)
    return result


if __name__ == "__main__":
    import json
    import sys

    args = [int(a) for a in sys.argv[1:4]] or [2500, 500, 1000]
    print(json.dumps(run(*args), indent=2))  # noqa: T201
