"""5. A peer side by side: python-amazon-sp-api and ordersync read the same orders.

Each side gets a fresh Amazon simulator (same seed, the same N orders, published
limits at a time scale of 1, i.e. Amazon's real usage plans, both buckets full)
and reads every order of the window with every ``includedData`` section:

- the peer: ``python-amazon-sp-api`` (installed for the benchmark only),
  ``OrdersV20260101.search_orders`` driven as its README shows, through
  ``@throttle_retry()`` and ``@load_all_pages()`` (``paginationToken`` as the
  token parameter). Its LWA client and endpoint point at the simulator;
- ordersync: the Amazon plugin's ``orders_updated`` over the same window, with
  its client-side token buckets.

Reported: wall time of each, their ratio (ordersync / peer), 429s each side
received. (The peer is a client library: it does not write to a shop, so the
comparison is the read; creating the orders in a shop is benchmark 1's subject.)
"""

from __future__ import annotations

import importlib.util
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.sims import SimProcess, SimSpec
from bench.wiring import World, isolated, run_engine

TIME_SCALE = 1.0
CATALOGUE = 200
INCLUDED = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=1), now - timedelta(minutes=3)


def measure_peer(orders: int) -> dict[str, Any]:
    from sp_api.api import OrdersV20260101
    from sp_api.auth import AccessTokenClient
    from sp_api.base import Marketplaces, SellingApiRequestThrottledException
    from sp_api.util import load_all_pages, throttle_retry

    with SimProcess(SimSpec("amazon", time_scale=TIME_SCALE, rate_limits=True)) as amazon:
        amazon.call("seed_orders", per_seller=orders, skus=CATALOGUE)
        settings, env = amazon.settings[0], amazon.env
        host = amazon.base_url.removeprefix("http://")

        class SimulatorToken(AccessTokenClient):  # type: ignore[misc]
            scheme = "http://"
            host = ""

        SimulatorToken.host = host
        credentials = {
            "refresh_token": env[settings["lwa_refresh_token"]["$env"]],
            "lwa_app_id": env[settings["lwa_client_id"]["$env"]],
            "lwa_client_secret": env[settings["lwa_client_secret"]["$env"]],
        }
        client = OrdersV20260101(
            marketplace=Marketplaces.DE,
            credentials=credentials,
            auth_token_client_class=SimulatorToken,
        )
        client.endpoint = amazon.base_url

        @throttle_retry()
        @load_all_pages(next_token_param="paginationToken")
        def load_all_orders(**kwargs: Any) -> Any:
            return client.search_orders(**kwargs)

        since, until = _window()
        client.auth  # noqa: B018 - the token exchange, outside the timing (as for ordersync)
        start = time.perf_counter()
        read = 0
        error = None
        try:
            for page in load_all_orders(
                lastUpdatedAfter=since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                lastUpdatedBefore=until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                marketplaceIds=[Marketplaces.DE.marketplace_id],
                includedData=list(INCLUDED),
                maxResultsPerPage=100,
            ):
                read += len(page.payload.get("orders") or [])
        except SellingApiRequestThrottledException as exc:  # counted; the run ends here
            error = f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - start
        counters = amazon.call("counters")
        client.close()
        client._auth._transport.close()  # noqa: SLF001 - its LWA client has no close()
    return {
        "orders": read,
        "wall_s": round(wall, 3),
        "throttled_429": counters["throttled"],
        "requests": counters["requests"],
        "error": error,
    }


def measure_ordersync(orders: int) -> dict[str, Any]:
    world = World(time_scale=TIME_SCALE, rate_limits=True, catalogue=CATALOGUE)
    try:
        world.amazon.call("seed_orders", per_seller=orders, skus=CATALOGUE)

        async def go() -> dict[str, Any]:
            engine = world.engine
            await engine.test_connection("c0")  # token exchange (separate bucket)
            before = world.counters()
            since, until = _window()
            market = engine.connectors("c0").marketplace
            start = time.perf_counter()
            read = 0
            async for _ in market.orders_updated(since, until):
                read += 1
            wall = time.perf_counter() - start
            after = world.counters()
            await world.aclose()
            return {
                "orders": read,
                "wall_s": round(wall, 3),
                "throttled_429": after["amazon"]["throttled"] - before["amazon"]["throttled"],
                "requests": after["amazon"]["requests"] - before["amazon"]["requests"],
            }

        return run_engine(go())
    finally:
        world.close()


def run(orders: int) -> dict[str, Any]:
    ours = isolated(measure_ordersync, orders)
    if importlib.util.find_spec("sp_api") is None:
        peer: dict[str, Any] = {
            "error": "python-amazon-sp-api is not installed (`make bench` installs it)",
            "wall_s": None,
            "throttled_429": None,
        }
    else:
        peer = isolated(measure_peer, orders)
    return {
        "orders": orders,
        "time_scale": TIME_SCALE,
        "peer": peer,
        "ordersync": ours,
        "wall_ratio": round(ours["wall_s"] / peer["wall_s"], 4) if peer["wall_s"] else None,
        "ordersync_429": ours["throttled_429"],
        "peer_429": peer["throttled_429"],
    }


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(json.dumps(run(n), indent=2))  # noqa: T201
