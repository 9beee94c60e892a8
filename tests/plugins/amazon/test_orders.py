"""Reading orders: pagination, windows, lookback, token expiry, 429s, status changes."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from engine.errors import FatalAPIError
from engine.interfaces import ConnectorContext
from engine.models import Order, OrderStatus, RejectedOrder
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory, read_orders, settings_for, token_headers
from tests.plugins.amazon.contract import RecordingTransport
from tests.plugins.amazon.virtual_time import run_virtual


def _seed(sim: AmazonSimulator, count: int, start_minutes_ago: int = 120) -> list[str]:
    start = (sim.now() - timedelta(minutes=start_minutes_ago)).replace(microsecond=0)
    return [
        sim.create_order({f"SKU-{n}": 1}, created_at=start + timedelta(minutes=n))["orderId"]
        for n in range(count)
    ]


def _searches(recorder: RecordingTransport) -> list[dict[str, list[str]]]:
    return [
        parse_qs(e.url.query.decode())
        for e in recorder.exchanges
        if e.method == "GET" and e.url.path == "/orders/2026-01-01/orders"
    ]


async def test_pagination_reads_every_page_and_repeats_the_filters(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    ids = _seed(sim, 7)
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder, page_size=2)

    orders = await read_orders(connector, sim.now() - timedelta(hours=3), sim.now())

    assert sorted(o.marketplace_order_id for o in orders) == sorted(ids)
    searches = _searches(recorder)
    assert len(searches) == 4  # 2 + 2 + 2 + 1
    assert "paginationToken" not in searches[0]
    filters = {k: v for k, v in searches[0].items()}
    for later in searches[1:]:
        # v2026: the token plus every other parameter with the same values
        assert {k: v for k, v in later.items() if k != "paginationToken"} == filters
        assert later["paginationToken"][0]
    assert filters["maxResultsPerPage"] == ["2"]
    assert filters["includedData"] == [
        "BUYER,RECIPIENT,PROCEEDS,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX"
    ]
    assert filters["marketplaceIds"] == ["A1PA6795UKMFR9"]


async def test_window_ends_two_minutes_before_now(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recent = sim.create_order({"A": 1}, created_at=sim.now() - timedelta(seconds=60))["orderId"]
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)

    first = await read_orders(connector, sim.now() - timedelta(hours=1), sim.now())
    assert first == []
    before = _searches(recorder)[0]["lastUpdatedBefore"][0]
    assert before <= (sim.now() - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    sim.advance(120)
    later = await read_orders(connector, sim.now() - timedelta(hours=1), sim.now())
    assert [o.marketplace_order_id for o in later] == [recent]


async def test_window_is_half_open(sim: AmazonSimulator, connector: AmazonConnector) -> None:
    start = (sim.now() - timedelta(hours=1)).replace(microsecond=0)
    at_start = sim.create_order({"A": 1}, created_at=start)["orderId"]
    at_end = sim.create_order({"B": 1}, created_at=start + timedelta(minutes=10))["orderId"]

    orders = await read_orders(connector, start, start + timedelta(minutes=10))

    assert [o.marketplace_order_id for o in orders] == [at_start]
    assert at_end not in {o.marketplace_order_id for o in orders}


async def test_late_indexed_order_is_found_by_rereading_a_lookback_window(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    start = (sim.now() - timedelta(hours=1)).replace(microsecond=0)
    sim.create_order({"EARLY": 1}, created_at=start + timedelta(minutes=5))
    # updated 5 minutes ago, but Amazon's index shows it only 10 minutes after the update
    late = sim.create_order(
        {"LATE": 1}, created_at=sim.now() - timedelta(minutes=5), index_lag=600
    )["orderId"]
    sim.create_order({"AFTER": 1}, created_at=sim.now() - timedelta(minutes=3))

    first = await read_orders(connector, start, sim.now())
    assert late not in {o.marketplace_order_id for o in first}
    cursor = max(o.updated_at for o in first)

    sim.advance(600)
    resumed = await read_orders(connector, cursor + timedelta(seconds=1), sim.now())
    assert late not in {o.marketplace_order_id for o in resumed}  # a plain cursor misses it
    lookback = cursor - connector.default_lookback
    again = await read_orders(connector, lookback, sim.now())
    assert late in {o.marketplace_order_id for o in again}


async def test_expired_pagination_token_restarts_the_window_without_loss_or_duplicates(
    sim: AmazonSimulator, make_connector: ConnectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _seed(sim, 5)
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder, page_size=2)
    orders = connector.orders_updated(sim.now() - timedelta(hours=3), sim.now())
    got = [await anext(orders), await anext(orders)]

    sim.advance(25 * 3600)  # the nextToken of page 1 is now older than 24 hours
    with caplog.at_level(logging.WARNING):
        got += [o async for o in orders]

    assert sorted(o.marketplace_order_id for o in got) == sorted(ids)
    assert len(got) == len(ids)
    assert "pagination token expired" in caplog.text
    statuses = [e.status for e in recorder.exchanges if e.url.path.endswith("/orders")]
    # page 1; page 2 (access token expired too: 403, refresh, then 400 for the page
    # token); the window again from the start: 3 pages
    assert statuses == [200, 403, 400, 200, 200, 200]
    assert "paginationToken" not in _searches(recorder)[-3]


async def test_any_rejected_page_token_restarts_the_window(
    sim: AmazonSimulator, make_connector: ConnectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Amazon's wording is unknown: "Invalid paginationToken" restarts the window too."""
    ids = _seed(sim, 5)
    connector = make_connector(page_size=2)
    orders = connector.orders_updated(sim.now() - timedelta(hours=3), sim.now())
    got = [await anext(orders), await anext(orders)]

    sim.page_tokens.clear()  # Amazon no longer knows the token it handed out
    with caplog.at_level(logging.WARNING):
        got += [o async for o in orders]

    assert sorted(o.marketplace_order_id for o in got) == sorted(ids)
    assert "pagination token rejected" in caplog.text


async def test_window_restarts_are_bounded(
    make_connector: ConnectorFactory,
) -> None:
    sim = AmazonSimulator(time_scale=1000, page_token_ttl=-1)  # every token is stale at once
    _seed(sim, 3)
    connector = make_connector(transport=sim.transport(), page_size=2)
    connector.now = sim.now
    with pytest.raises(FatalAPIError, match="expired"):
        _ = await read_orders(connector, sim.now() - timedelta(hours=3), sim.now())
    assert sim.calls["searchOrders"] == 2 * (1 + connector.max_window_restarts)


async def test_a_host_clock_a_few_seconds_ahead_still_reads_the_window(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    ids = _seed(sim, 2)
    connector = make_connector()
    connector.now = lambda: sim.now() + timedelta(seconds=5)
    orders = await read_orders(connector, sim.now() - timedelta(hours=3), sim.now())
    assert sorted(o.marketplace_order_id for o in orders) == sorted(ids)


async def test_other_bad_requests_are_not_retried_as_expiry(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector()
    connector.now = lambda: sim.now() + timedelta(minutes=10)  # a clock ahead of Amazon's
    with pytest.raises(FatalAPIError) as caught:
        _ = await read_orders(connector, sim.now() - timedelta(hours=1), sim.now())
    assert caught.value.status == 400
    assert caught.value.code == "InvalidInput"
    assert "two minutes" in caught.value.message
    assert sim.calls["searchOrders"] == 1


def test_429_on_a_later_page_is_retried_and_no_page_is_lost() -> None:
    """Amazon's own throttling, as it answers: another client of the seller empties the
    searchOrders bucket between pages; the 429 has no Retry-After. At time_scale 1 on
    a virtual clock, the page is asked again after one token's refill (178.6 s)."""
    sim = AmazonSimulator(time_scale=1.0, seed=11)
    ids = _seed(sim, 5)
    recorder = RecordingTransport(sim.transport())
    context = ConnectorContext("amazon-test", transport=recorder, time_scale=1.0)
    connector = AmazonConnector(settings_for(sim, page_size=2), context)
    connector.now = sim.now

    async def scenario() -> list[Order]:
        orders = connector.orders_updated(sim.now() - timedelta(hours=3), sim.now())
        got = [await anext(orders), await anext(orders)]
        async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as other:
            headers = await token_headers(other, sim)
            query = {"lastUpdatedAfter": "2026-01-01T00:00:00Z"}
            while (
                await other.get("/orders/2026-01-01/orders", params=query, headers=headers)
            ).status_code != 429:
                pass
        got += [o async for o in orders]
        await connector.aclose()
        return [o for o in got if isinstance(o, Order)]

    got, _ = run_virtual(scenario(), on_advance=sim.advance)

    assert sorted(o.marketplace_order_id for o in got) == sorted(ids)
    assert len(got) == len(ids)
    pages = [e for e in recorder.exchanges if e.url.path == "/orders/2026-01-01/orders"]
    assert [e.status for e in pages] == [200, 429, 200, 200]
    assert "retry-after" not in pages[1].response_headers
    assert pages[1].url == pages[2].url  # the same page (same token) asked again
    assert connector.client.api.stats["throttled"] == 1


async def test_get_order_and_unknown_order(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order_id = sim.create_order({"A": 2}, prime=True)["orderId"]
    order = await connector.get_order(order_id)
    assert isinstance(order, Order) and order.is_prime and order.lines[0].quantity == 2
    assert await connector.get_order("000-0000000-0000000") is None


async def test_status_changes_reach_the_connector(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    start = (sim.now() - timedelta(hours=1)).replace(microsecond=0)
    order_id = sim.create_order({"A": 1}, created_at=start, status="PENDING")["orderId"]
    sim.advance(180)

    async def read() -> list[Order]:
        return await read_orders(connector, start, sim.now())

    (pending,) = await read()
    assert pending.status is OrderStatus.PENDING and not pending.importable
    assert pending.shipping_address is not None and pending.shipping_address.line1 is None

    sim.set_status(order_id, "UNSHIPPED")
    sim.advance(180)
    (unshipped,) = await read()
    assert unshipped.status is OrderStatus.UNSHIPPED and unshipped.importable
    assert unshipped.updated_at > pending.updated_at
    assert unshipped.shipping_address is not None and unshipped.shipping_address.line1

    sim.request_cancellation(order_id, "Found it cheaper")
    sim.advance(180)
    (requested,) = await read()
    assert requested.cancellation_requested and requested.status is OrderStatus.UNSHIPPED

    sim.cancel_order(order_id, by="AMAZON", reason="Payment failed")
    sim.advance(180)
    (cancelled,) = await read()
    assert cancelled.status is OrderStatus.CANCELLED
    assert not cancelled.cancellation_requested  # executed, nothing left to decide
    assert cancelled.updated_at > requested.updated_at > unshipped.updated_at


async def test_marketplace_filter_covers_every_configured_marketplace(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    start = (sim.now() - timedelta(hours=1)).replace(microsecond=0)
    de = sim.create_order({"A": 1}, created_at=start, marketplace="Amazon.de")["orderId"]
    fr = sim.create_order({"A": 1}, created_at=start, marketplace="Amazon.fr")["orderId"]
    sim.create_order({"A": 1}, created_at=start, marketplace="Amazon.it")
    connector = make_connector(marketplaces=["Amazon.de", "Amazon.fr"])
    orders = await read_orders(connector, start, sim.now())
    assert {o.marketplace_order_id for o in orders} == {de, fr}


async def test_unreadable_order_is_yielded_as_rejected_and_the_rest_go_on(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    start = (sim.now() - timedelta(hours=1)).replace(microsecond=0)
    good = sim.create_order({"A": 1}, created_at=start)["orderId"]
    bad = sim.create_order({"B": 1}, created_at=start + timedelta(minutes=1))
    bad["proceeds"]["grandTotal"]["currencyCode"] = "GBP"  # items are in EUR

    found = [o async for o in connector.orders_updated(start, sim.now())]

    assert [type(o).__name__ for o in found] == ["Order", "RejectedOrder"]
    assert found[0].marketplace_order_id == good
    rejected = found[1]
    assert isinstance(rejected, RejectedOrder)
    assert rejected.marketplace_order_id == bad["orderId"]
    assert "GBP" in rejected.message and "EUR" in rejected.message
    again = await connector.get_order(bad["orderId"])
    assert isinstance(again, RejectedOrder)
