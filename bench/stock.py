"""4. Stock at scale: N SKUs in the shop, 1 % of them changed between cycles.

Both simulators enforce their published limits at a time scale of 100 (the
engine's ``time_scale`` matches). The first cycle reads every SKU (a Shopify
bulk operation) and pushes all of them (``JSON_LISTINGS_FEED`` feeds of up to
25,000 SKUs); it is reported but not the figure. Then, for each measured cycle,
the shop's clock moves on by the default stock interval (120 s), 1 % of the
SKUs get a new quantity in the shop and one stock flow runs: it reads
what changed (``updated_at`` search, with the reader's look-back window) and
pushes only the SKUs whose quantity differs from what was last pushed. The
first such cycle is a warm-up (see below); the figures are medians over the others.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.wiring import World, delta, isolated, median, run_engine

TIME_SCALE = 100.0
OLD_CATALOGUE = 24 * 3600.0
"""The catalogue's stock was last changed a day ago (the shop's clock moves forward)."""
INTERVAL = 120.0
"""Shop time between cycles: the default stock schedule. The reader's 300 s look-back
window therefore reads the changes of the last two cycles again (not pushed twice)."""


def measure(skus: int, cycles: int) -> dict[str, Any]:
    world = World(
        time_scale=TIME_SCALE,
        rate_limits=True,
        catalogue=skus,
        stock=50,
        # The simulator runs a bulk operation inside bulkOperationRunQuery (Shopify
        # answers at once and runs it in the background): at 100,000 SKUs that call
        # outlasts the default 30 s request timeout.
        shop_settings={"timeout": 900.0},
    )
    try:
        return run_engine(_measure(world, skus, cycles))
    finally:
        world.close()


def _requests(counters: dict[str, Any]) -> int:
    return int(counters["amazon"]["requests"]) + int(counters["shopify"]["requests"])


async def _measure(world: World, skus: int, cycles: int) -> dict[str, Any]:
    engine = world.engine
    world.shop.call("advance", seconds=OLD_CATALOGUE)
    await engine.test_connection("c0")
    before = world.counters()
    start = time.perf_counter()
    report = await engine.run_flow("c0", "stock")
    full_wall = time.perf_counter() - start
    full = {
        "cycle_s": round(full_wall, 3),
        "pushed": report.counts.get("pushed", 0) if report else 0,
        "api_calls": _requests(delta(world.counters(), before)),
        "errors": report.errors[:2] if report else ["no report"],
    }
    changed_per_cycle = max(1, skus // 100)
    rows = []
    for _ in range(cycles + 1):
        world.shop.call("advance", seconds=INTERVAL)
        changed = world.shop.call("change_stock", count=changed_per_cycle, catalogue=skus)
        await asyncio.sleep(1.0)  # the shop's updated_at has one-second resolution
        before = world.counters()
        start = time.perf_counter()
        report = await engine.run_flow("c0", "stock")
        wall = time.perf_counter() - start
        after = delta(world.counters(), before)
        rows.append(
            {
                "cycle_s": wall,
                "changed": len(changed),
                "pushed": report.counts.get("pushed", 0) if report else 0,
                "read": report.counts.get("skus read", 0) if report else 0,
                "api_calls": _requests(after),
                "amazon_calls": int(after["amazon"]["requests"]),
                "shop_calls": int(after["shopify"]["requests"]),
                "throttled_429": int(after["amazon"]["throttled"]),
                "errors": report.errors[:2] if report else ["no report"],
            }
        )
    await world.aclose()
    # The full read leaves the cursor at the newest stock change minus the look-back
    # window; every seeded SKU has the same timestamp, so the first change cycle reads
    # the whole catalogue once more (pushing only what changed). It is a warm-up.
    warmup, rows = rows[0], rows[1:]
    return {
        "skus": skus,
        "cycles": rows,
        "warmup_cycle": warmup,
        "cycle_s": round(median([r["cycle_s"] for r in rows]), 3),
        "changed": changed_per_cycle,
        "pushed": int(median([r["pushed"] for r in rows])),
        "pushed_equals_changed": all(r["pushed"] == r["changed"] for r in rows),
        "api_calls": int(median([r["api_calls"] for r in rows])),
        "first_full_cycle": full,
    }


def run(skus: int, cycles: int = 3) -> dict[str, Any]:
    result: dict[str, Any] = isolated(measure, skus, cycles)
    return result


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(run(n), indent=2))  # noqa: T201
