"""changes_since: fulfillments → shipments, cancelled orders → cancellations."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.errors import RetriableAPIError
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, RecordingTransport
from .factories import eur_order


async def _create(connector: ShopifyConnector, order):  # noqa: ANN001, ANN202
    refs = await connector.resolve_products("sku", [line.sku for line in order.lines])
    return await connector.create_order(order, refs)


async def _drain(connector: ShopifyConnector, cursor: str):  # noqa: ANN202
    """Read pages until ``has_more`` is false; returns (shipments, cancellations, cursor, pages)."""
    shipments, cancellations, pages = [], [], 0
    while True:
        page = await connector.changes_since(cursor)
        pages += 1
        shipments += page.shipments
        cancellations += page.cancellations
        cursor = page.cursor
        if not page.has_more:
            return shipments, cancellations, cursor, pages


async def test_first_call_starts_from_now(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    ref = await _create(connector, eur_order())
    sim.advance(5)
    sim.fulfil(ref.id)
    sim.advance(5)

    page = await connector.changes_since(None)

    assert page.shipments == () and page.cancellations == () and not page.has_more
    state = json.loads(page.cursor)
    assert state["since"] == sim.get_order(ref.id)["updated_at"]  # Shopify's clock, not ours
    shipments, *_ = await _drain(connector, page.cursor)
    assert shipments == []


async def test_events_in_the_starting_second_are_not_lost(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    ref = await _create(connector, eur_order())
    sim.fulfil(ref.id, {"SKU-1": 1})
    cursor = (await connector.changes_since(None)).cursor
    later = sim.fulfil(ref.id, {"SKU-2": 1})  # same second as the start

    shipments, *_ = await _drain(connector, cursor)
    assert [s.shipment_id for s in shipments] == [later]


async def test_empty_shop_starts_at_the_beginning(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    cursor = (await connector.changes_since(None)).cursor
    ref = await _create(connector, eur_order())
    sim.fulfil(ref.id)
    shipments, *_ = await _drain(connector, cursor)
    assert len(shipments) == 1


async def test_partial_fulfilments_are_separate_shipments(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    order = eur_order()
    ref = await _create(connector, order)
    cursor = (await connector.changes_since(None)).cursor

    first = sim.fulfil(
        ref.id, {"SKU-1": 1}, tracking_company="DHL", tracking_number="00340434161094042557"
    )
    second = sim.fulfil(
        ref.id,
        {"SKU-1": 1, "SKU-2": 1},
        tracking_company="UPS",
        tracking_number="1Z999AA10123456784",
    )
    shipments, cancellations, _, _ = await _drain(connector, cursor)

    assert cancellations == []
    by_id = {s.shipment_id: s for s in shipments}
    assert set(by_id) == {first, second}
    one, two = by_id[first], by_id[second]
    assert one.marketplace_order_id == order.marketplace_order_id
    assert one.shop_order_id == ref.id
    assert (one.carrier, one.tracking_number) == ("DHL", "00340434161094042557")
    assert [(ln.sku, ln.quantity, ln.line_id) for ln in one.lines] == [
        ("SKU-1", 1, "11111111111111")
    ]
    assert (two.carrier, two.tracking_number) == ("UPS", "1Z999AA10123456784")
    assert sorted((ln.sku, ln.quantity) for ln in two.lines) == [("SKU-1", 1), ("SKU-2", 1)]
    assert one.shipping_method == "Standard"


async def test_marketplace_sku_is_reported_not_the_shop_sku(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    """Orders resolved by barcode ship under the marketplace's SKU (kept as a line property)."""
    order = eur_order()
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    amazon = order.model_copy(
        update={
            "lines": tuple(ln.model_copy(update={"sku": f"AMZ-{ln.sku}"}) for ln in order.lines)
        }
    )
    ref = await connector.create_order(amazon, {f"AMZ-{k}": v for k, v in refs.items()})
    cursor = (await connector.changes_since(None)).cursor
    sim.fulfil(ref.id)

    shipments, *_ = await _drain(connector, cursor)
    assert sorted(ln.sku for ln in shipments[0].lines) == ["AMZ-SKU-1", "AMZ-SKU-2"]


async def test_cancellations(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    order = eur_order()
    ref = await _create(connector, order)
    cursor = (await connector.changes_since(None)).cursor

    sim.cancel(ref.id, reason="CUSTOMER")
    shipments, cancellations, _, _ = await _drain(connector, cursor)

    assert shipments == []
    assert len(cancellations) == 1
    cancellation = cancellations[0]
    assert cancellation.marketplace_order_id == order.marketplace_order_id
    assert cancellation.shop_order_id == ref.id
    assert cancellation.reason == "customer"


async def test_only_orders_created_by_ordersync(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    cursor = (await connector.changes_since(None)).cursor
    web = sim.add_order({"SKU-2": 1})
    tagged_without_id = sim.add_order({"SKU-2": 1}, tags=["ordersync"])
    sim.fulfil(web)
    sim.fulfil(tagged_without_id)
    sim.cancel(web)

    shipments, cancellations, _, _ = await _drain(connector, cursor)
    assert shipments == [] and cancellations == []


async def test_pagination_across_pages(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    connector = make_connector(orders_page_size=2)
    cursor = (await connector.changes_since(None)).cursor
    refs = []
    for n in range(5):
        refs.append(await _create(connector, eur_order(f"028-0000000-000000{n}")))
    for ref in refs:
        sim.fulfil(ref.id, {"SKU-2": 1}, tracking_company="DHL", tracking_number=f"T{ref.id[-3:]}")

    shipments, _, final, pages = await _drain(connector, cursor)

    assert pages == 3
    assert sorted(s.marketplace_order_id for s in shipments) == [
        f"028-0000000-000000{n}" for n in range(5)
    ]
    calls = recorder.graphql("OrdersyncChangedOrders")
    assert calls[0].body["variables"]["query"].endswith('tag:"ordersync"')
    assert calls[0].body["variables"]["query"].startswith("updated_at:>=")
    assert calls[1].body["variables"]["after"] is not None
    assert "after" not in json.loads(final)


async def test_cursor_moves_on(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    ref = await _create(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(10)
    sim.fulfil(ref.id, {"SKU-1": 1})
    shipments, _, cursor, _ = await _drain(connector, cursor)
    assert len(shipments) == 1

    sim.advance(10)
    later = sim.fulfil(ref.id, {"SKU-2": 1})
    shipments, *_ = await _drain(connector, cursor)
    assert [s.shipment_id for s in shipments] == [later]


async def test_many_fulfilments_and_lines_are_all_read(
    connector: ShopifyConnector, sim: ShopifySimulator
) -> None:
    """More fulfilments than the first query lists and more lines than one page holds."""
    skus = [f"L-{n:02d}" for n in range(25)]
    for sku in skus:
        sim.add_product(sku, quantity=100)
    order = eur_order()
    line = order.lines[0]
    lines = tuple(line.model_copy(update={"sku": s, "line_id": s, "quantity": 8}) for s in skus)
    order = order.model_copy(update={"lines": lines})
    refs = await connector.resolve_products("sku", skus)
    ref = await connector.create_order(order, refs)
    cursor = (await connector.changes_since(None)).cursor

    for _ in range(7):
        sim.fulfil(ref.id, {s: 1 for s in skus})
    shipments, *_ = await _drain(connector, cursor)

    assert len(shipments) == 7
    assert all(len(s.lines) == 25 for s in shipments)


async def test_lookback_window_does_not_report_twice(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    connector = make_connector(lookback_seconds=300)
    ref = await _create(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(10)
    first = sim.fulfil(ref.id, {"SKU-1": 1})
    shipments, _, cursor, _ = await _drain(connector, cursor)
    assert [s.shipment_id for s in shipments] == [first]

    sim.advance(10)
    second = sim.fulfil(ref.id, {"SKU-1": 1})
    sim.cancel(ref.id)
    shipments, cancellations, cursor, _ = await _drain(connector, cursor)
    assert [s.shipment_id for s in shipments] == [second]
    assert len(cancellations) == 1

    shipments, cancellations, _, _ = await _drain(connector, cursor)
    assert shipments == [] and cancellations == []


async def test_cancelled_fulfilments_are_not_shipments(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    """Only successful fulfilments are reported, before or after they were read."""
    ref = await _create(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(5)
    wrong = sim.fulfil(ref.id, {"SKU-1": 2}, tracking_company="DHL", tracking_number="WRONG")
    sim.cancel_fulfillment(wrong)
    right = sim.fulfil(ref.id, {"SKU-1": 2}, tracking_company="DHL", tracking_number="RIGHT")
    shipments, _, cursor, _ = await _drain(connector, cursor)
    assert [s.shipment_id for s in shipments] == [right]

    sim.advance(5)
    sim.cancel_fulfillment(right)  # a reported fulfilment cancelled later: not a new shipment
    shipments, cancellations, _, _ = await _drain(connector, cursor)
    assert shipments == [] and cancellations == []
    assert sim.get_order(ref.id)["fulfillment_status"] == "UNFULFILLED"


class Rewrite(httpx.AsyncBaseTransport):
    """Alters one operation's answers: a shop sending what its schema does not allow."""

    def __init__(self, inner: httpx.AsyncBaseTransport, operation: str, change) -> None:  # noqa: ANN001
        self.inner, self.operation, self.change = inner, operation, change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if json.loads(request.content).get("operationName") != self.operation:
            return response
        body = json.loads(await response.aread())
        self.change(body["data"])
        return httpx.Response(200, json=body, request=request)


def _first_line(data: dict) -> None:
    node = next(n for n in data["nodes"] if n)
    node["fulfillmentLineItems"]["nodes"][0]["quantity"] = "two"


def _tracking_object(data: dict) -> None:
    next(n for n in data["nodes"] if n)["trackingInfo"] = {"number": "1"}


BAD_SHIPMENTS = {
    "zero quantity": (lambda f: setattr(f.lines[0], "quantity", 0), None, "has quantity 0"),
    "negative quantity": (lambda f: setattr(f.lines[0], "quantity", -2), None, "quantity -2"),
    "10 MB tracking number": (
        lambda f: setattr(f.tracking[0], "number", "9" * 10_000_000),
        None,
        "tracking number is 10000000 characters long (at most 255)",
    ),
    "tracking number of the wrong type": (
        lambda f: setattr(f.tracking[0], "number", {"x": "9" * 1_000_000}),
        None,
        "Shopify could not return trackingInfo.0.number: String cannot represent value",
    ),
    "quantity of the wrong type": (None, _first_line, "line 1.quantity is not a whole number"),
    "tracking info not a list": (None, _tracking_object, "trackingInfo is not a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHIPMENTS))
async def test_an_unreadable_fulfilment_is_rejected_and_the_page_goes_on(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict, case: str
) -> None:
    spoil, rewrite, expected = BAD_SHIPMENTS[case]
    transport: httpx.AsyncBaseTransport = sim.transport()
    if rewrite is not None:
        transport = Rewrite(transport, "OrdersyncFulfillmentDetails", rewrite)
    connector = make_connector(transport=transport)
    bad_order, good_order = eur_order("028-4000000-0000001"), eur_order("028-4000000-0000002")
    bad, good = await _create(connector, bad_order), await _create(connector, good_order)
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(5)
    spoilt = sim.fulfil(bad.id, {"SKU-1": 1}, tracking_company="DHL", tracking_number="BAD-1")
    if spoil is not None:
        spoil(sim.state.fulfillments[int(spoilt.rsplit("/", 1)[-1])])
    sim.advance(1)
    healthy = sim.fulfil(good.id, {"SKU-1": 2}, tracking_company="DHL", tracking_number="GOOD")

    page = await connector.changes_since(cursor)

    assert [s.shipment_id for s in page.shipments] == [healthy]
    assert page.shipments[0].tracking_number == "GOOD"
    assert len(page.rejected) == 1
    rejected = page.rejected[0]
    assert (rejected.kind, rejected.key) == ("shipment", spoilt)
    assert rejected.marketplace_order_id == bad_order.marketplace_order_id
    assert rejected.message.startswith(
        f"Shopify order {bad.number} (marketplace order {bad_order.marketplace_order_id}): "
        f"fulfilment {spoilt}: "
    )
    assert expected in rejected.message
    assert len(rejected.message) < 400
    again = await connector.changes_since(page.cursor)  # reported once, not on every read
    assert again.rejected == () and again.shipments == ()


async def test_an_unreadable_cancellation_is_rejected(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    def spoil(data: dict) -> None:
        for node in data["orders"]["nodes"]:
            if node["sourceIdentifier"] == "028-4000001-0000001" and node["cancelledAt"]:
                node["cancelledAt"] = "yesterday"

    connector = make_connector(transport=Rewrite(sim.transport(), "OrdersyncChangedOrders", spoil))
    bad = await _create(connector, eur_order("028-4000001-0000001"))
    good = await _create(connector, eur_order("028-4000001-0000002"))
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(5)
    sim.cancel(bad.id)
    sim.cancel(good.id)

    shipments, cancellations, _, _ = await _drain(connector, cursor)
    page = await connector.changes_since(cursor)

    assert [c.shop_order_id for c in cancellations] == [good.id]
    assert [(r.kind, r.key, r.marketplace_order_id) for r in page.rejected] == [
        ("cancellation", bad.id, "028-4000001-0000001")
    ]
    assert "cancelledAt is not a time: 'yesterday'" in page.rejected[0].message


async def test_a_transient_field_error_fails_the_read_not_the_record(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    """An outage inside the answer is retried later, not recorded against a fulfilment."""

    class Outage(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await sim.transport().handle_async_request(request)
            if json.loads(request.content).get("operationName") != "OrdersyncFulfillmentDetails":
                return response
            body = json.loads(await response.aread())
            body["data"]["nodes"][0] = None
            body["errors"] = [
                {
                    "message": "Internal error",
                    "path": ["nodes", 0, "trackingInfo"],
                    "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                }
            ]
            return httpx.Response(200, json=body, request=request)

    connector = make_connector(transport=Outage())
    ref = await _create(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(5)
    sim.fulfil(ref.id)

    with pytest.raises(RetriableAPIError, match="Internal error"):
        await connector.changes_since(cursor)


async def test_extra_tracking_numbers_are_not_dropped_silently(
    connector: ShopifyConnector,
    sim: ShopifySimulator,
    catalog: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Amazon takes one tracking number per package: the first; the others are logged."""
    from plugins.shopify.simulator_records import Tracking

    ref = await _create(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(5)
    shipped = sim.fulfil(ref.id, tracking_company="DHL", tracking_number="FIRST-1")
    fulfillment = sim.state.fulfillments[int(shipped.rsplit("/", 1)[-1])]
    fulfillment.tracking.append(Tracking("DHL", "SECOND-2"))

    shipments, *_ = await _drain(connector, cursor)

    assert [s.tracking_number for s in shipments] == ["FIRST-1"]
    assert "1 more tracking numbers ('SECOND-2')" in caplog.text
    assert "Amazon gets the first, 'FIRST-1'" in caplog.text
