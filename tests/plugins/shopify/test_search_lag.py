"""The idempotency lookup under search-index lag: a lost ``orderCreate`` answer followed
by a quick re-lookup must not lead to a second order."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import engine.http
from engine.errors import RetriableAPIError
from engine.models import ShopOrderRef
from engine.state import OrderState
from plugins.shopify import connector as connector_module
from plugins.shopify import queries as q
from plugins.shopify.simulator import ShopifySimulator
from tests.reliability.world import (
    CID,
    SHOPIFY_GRAPHQL,
    VISIBLE,
    FastRetrying,
    SimWorld,
    builtin_plugins,
    sim_env,
)

from .conftest import TIME_SCALE, ConnectorFactory, RecordingTransport
from .factories import eur_order

LAG = 60.0


class LostAnswers(httpx.AsyncBaseTransport):
    """Shopify commits ``orderCreate``, then the connection drops: the answer is lost."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "OrdersyncOrderCreate" in str(json.loads(request.content).get("operationName")):
            await response.aread()
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return response


@pytest.fixture
def lagging() -> ShopifySimulator:
    sim = ShopifySimulator(time_scale=TIME_SCALE, search_lag=LAG)
    sim.add_product("SKU-1", quantity=10)
    sim.add_product("SKU-2", quantity=10)
    return sim


async def _lost_creates(make_connector: ConnectorFactory, sim: ShopifySimulator, orders):  # noqa: ANN001, ANN202
    lossy = make_connector(transport=LostAnswers(sim.transport()))
    refs = await lossy.resolve_products("sku", ["SKU-1", "SKU-2"])
    results = await lossy.create_orders([(o, refs) for o in orders])
    assert all(isinstance(r, Exception) for r in results)  # as far as we know: not created
    assert all(sim.count_orders(o.marketplace_order_id) == 1 for o in orders)  # but it was
    return refs


async def test_a_lost_create_is_found_at_once(
    make_connector: ConnectorFactory, lagging: ShopifySimulator
) -> None:
    orders = [eur_order(f"028-3000000-{n:07d}") for n in range(3)]
    await _lost_creates(make_connector, lagging, orders)
    wire = RecordingTransport(lagging.transport())
    connector = make_connector(transport=wire)  # a new process, right after

    found = await connector.find_order_refs(
        [o.marketplace_order_id for o in orders], attempted=True
    )
    one = await connector.find_order(orders[0].marketplace_order_id)

    assert set(found) == {o.marketplace_order_id for o in orders}
    assert one == found[orders[0].marketplace_order_id]
    searched = wire.graphql("OrdersyncFindOrders")[0].response["data"]["orders"]["nodes"]
    assert searched == []  # the search had not indexed them: the recent read found them
    assert [e.body["operationName"] for e in wire.graphql()].count("OrdersyncRecentOrders") == 2


async def test_the_search_alone_would_make_a_duplicate(
    make_connector: ConnectorFactory, lagging: ShopifySimulator
) -> None:
    """Why the recent read exists: with it switched off, the lookup misses the order."""
    order = eur_order("028-3000001-0000001")
    refs = await _lost_creates(make_connector, lagging, [order])
    trusting = make_connector(transport=lagging.transport(), search_lag_seconds=0)

    assert await trusting.find_order_refs([order.marketplace_order_id], attempted=True) == {}
    await trusting.create_orders([(order, refs)])  # what the engine would do next
    assert lagging.count_orders(order.marketplace_order_id) == 2


async def test_recent_read_stops_at_the_lag_window(
    make_connector: ConnectorFactory, lagging: ShopifySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "RECENT_ORDERS_PAGE", 2)
    for n in range(5):
        lagging.add_order({"SKU-1": 1}, source_identifier=f"OLD-{n}")
    lagging.advance(LAG + 10)  # all indexed by now, and older than the window
    for n in range(3):
        lagging.add_order({"SKU-1": 1}, source_identifier=f"NEW-{n}")
    wire = RecordingTransport(lagging.transport())
    connector = make_connector(transport=wire, search_lag_seconds=LAG)

    found = await connector.find_order_refs(["NEW-0", "OLD-0"], attempted=True)

    assert set(found) == {"NEW-0", "OLD-0"}  # OLD-0 through the search
    pages = wire.graphql("OrdersyncRecentOrders")
    assert len(pages) == 2  # 3 new orders, 2 per page; the second page reaches the old ones
    assert (
        pages[1].body["variables"]["after"]
        == pages[0].response["data"]["orders"]["pageInfo"]["endCursor"]
    )


async def test_too_many_new_orders_to_read_is_retried_later(
    make_connector: ConnectorFactory, lagging: ShopifySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "RECENT_ORDERS_PAGE", 2)
    monkeypatch.setattr(connector_module, "RECENT_PAGES", 2)
    for n in range(5):
        lagging.add_order({"SKU-1": 1}, source_identifier=f"BUSY-{n}")
    connector = make_connector(transport=lagging.transport())

    with pytest.raises(RetriableAPIError, match="orders were created in the last 120 s"):
        await connector.find_order_refs(["BUSY-0"], attempted=True)


async def test_a_first_attempt_costs_no_recent_read(
    make_connector: ConnectorFactory, lagging: ShopifySimulator
) -> None:
    """Nothing was attempted, so nothing can be too new to find: the read of recent orders
    (which grows with the shop's order rate) is left out, even while many orders are new."""
    for n in range(5):
        lagging.add_order({"SKU-1": 1}, source_identifier=f"BUSY-{n}")
    order = eur_order("028-3000002-0000002")
    wire = RecordingTransport(lagging.transport())
    connector = make_connector(transport=wire)
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])

    assert await connector.find_order_refs([order.marketplace_order_id]) == {}
    created = await connector.create_orders([(order, refs)])

    assert isinstance(created[0], ShopOrderRef)
    assert wire.graphql("OrdersyncRecentOrders") == []
    assert await connector.find_order_refs([order.marketplace_order_id], attempted=True)
    assert len(wire.graphql("OrdersyncRecentOrders")) == 1
    assert lagging.count_orders(order.marketplace_order_id) == 1


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimWorld]:
    """The real engine with the Amazon and Shopify plugins; crashes at checkpoints."""
    for name, value in sim_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine.http, "AsyncRetrying", FastRetrying)
    made = SimWorld(builtin_plugins())
    made.shop.sim.api.search_lag = LAG
    yield made
    made.close()


CREATE_ANSWERED = f"http.after {SHOPIFY_GRAPHQL} OrdersyncOrderCreate"
"""Shopify committed the create; the daemon dies before it reads the answer."""


@pytest.mark.parametrize("recent_read", [True, False], ids=["recent-read", "search-only"])
def test_crash_right_after_create_then_a_quick_restart(world: SimWorld, recent_read: bool) -> None:
    """The engine asks with ``attempted=True`` after the crash (the intent has an attempt),
    so the recent read finds the order the search does not show yet."""
    if not recent_read:
        world.loaded.plugin_settings(CID, "shop").search_lag_seconds = 0  # type: ignore[attr-defined]
    oid = "302-0000009-0000001"
    world.amazon.add_order(oid, {"REL-A": 2}, age_minutes=0)
    world.tick(VISIBLE)

    fired = world.crash_during("orders", CREATE_ANSWERED)  # and restarts at once
    assert fired is not None and world.shop.count_orders(oid) == 1
    assert world.store.get_order(CID, oid).state is OrderState.IMPORT_INTENDED
    world.sync("orders")  # well within the search lag

    if recent_read:
        assert world.shop.count_orders(oid) == 1
        assert world.store.get_order(CID, oid).state is OrderState.IMPORTED
    else:  # the failure the recent read prevents
        assert world.shop.count_orders(oid) == 2
