"""changes_since: fulfillments → shipments, cancelled orders → cancellations."""

from __future__ import annotations

import json

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
