"""stock_levels: full reads, changed-since reads, pagination and the bulk operation path."""

from __future__ import annotations

import json

import pytest

from engine.models import StockLevel
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, RecordingTransport


async def _read_all(connector: ShopifyConnector, attribute: str, cursor: str | None):  # noqa: ANN202
    levels: list[StockLevel] = []
    pages = 0
    while True:
        page = await connector.stock_levels(attribute, cursor)
        pages += 1
        levels += page.levels
        cursor = page.cursor
        if not page.has_more:
            return {lv.sku: lv.quantity for lv in levels}, cursor, pages


async def test_full_read_then_changed_since(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    levels, cursor, pages = await _read_all(connector, "sku", None)
    assert levels == {"SKU-1": 10, "SKU-2": 5, "SKU-3": 0}
    assert pages == 1

    sim.advance(30)
    sim.set_stock("SKU-2", 42)
    changed, cursor, _ = await _read_all(connector, "sku", cursor)
    assert changed["SKU-2"] == 42
    query = recorder.graphql("OrdersyncStockLevels")[-1].body["variables"]["query"]
    assert query.startswith("updated_at:>=")

    sim.advance(30)
    sim.set_stock("SKU-3", 7)
    changed, _, _ = await _read_all(connector, "sku", cursor)
    # SKU-1 did not change; the newest change's second (SKU-2) is read again (inclusive).
    assert changed == {"SKU-2": 42, "SKU-3": 7}


async def test_only_the_configured_location(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    store = sim.add_location("Store Berlin")
    sim.set_stock("SKU-1", 3, location=store)
    sim.add_product("ONLY-IN-STORE", quantity=9, location=store)

    warehouse, _, _ = await _read_all(make_connector(), "sku", None)
    berlin, _, _ = await _read_all(make_connector(location="Store Berlin"), "sku", None)

    assert warehouse == {"SKU-1": 10, "SKU-2": 5, "SKU-3": 0}
    assert berlin == {"SKU-1": 3, "ONLY-IN-STORE": 9}


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("barcode", {"4006381333931": 10, "4006381333948": 5, "4006381333955": 0}),
        ("metafield:custom.ean", {"EAN-1": 10, "EAN-2": 5}),
    ],
)
async def test_keyed_by_the_identification_attribute(
    connector: ShopifyConnector, catalog: dict, attribute: str, expected: dict[str, int]
) -> None:
    levels, _, _ = await _read_all(connector, attribute, None)
    assert levels == expected


async def test_keyed_by_variant_id(connector: ShopifyConnector, catalog: dict) -> None:
    levels, _, _ = await _read_all(connector, "id", None)
    expected = {
        ids["variant_id"].rsplit("/", 1)[-1]: q
        for ids, q in zip(catalog.values(), (10, 5, 0), strict=True)
    }
    assert levels == expected


async def test_untracked_items_are_left_out(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    sim.add_product("DIGITAL", quantity=0, tracked=False)
    levels, _, _ = await _read_all(connector, "sku", None)
    assert "DIGITAL" not in levels


async def test_pagination_across_pages(
    make_connector: ConnectorFactory, sim: ShopifySimulator, recorder: RecordingTransport
) -> None:
    for n in range(7):
        sim.add_product(f"P-{n}", quantity=n)
    connector = make_connector(stock_page_size=3)

    levels, cursor, pages = await _read_all(connector, "sku", None)

    assert levels == {f"P-{n}": n for n in range(7)}
    assert pages == 3
    calls = recorder.graphql("OrdersyncStockLevels")
    assert [c.body["variables"]["after"] is None for c in calls] == [True, False, False]
    assert "after" not in json.loads(cursor)


async def test_bulk_operation_for_large_catalogs(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    for n in range(5):
        sim.add_product(f"BULK-{n}", quantity=100 + n, metafields={"custom.ean": f"BE-{n}"})
    connector = make_connector(bulk_threshold=4, bulk_page_size=3, bulk_poll_interval=0.5)

    levels, cursor, pages = await _read_all(connector, "metafield:custom.ean", None)

    assert levels == {"EAN-1": 10, "EAN-2": 5, **{f"BE-{n}": 100 + n for n in range(5)}}
    assert pages == 3
    run = recorder.graphql("OrdersyncBulkRun")
    assert len(run) == 1
    assert 'metafield(namespace: "custom", key: "ean")' in run[0].body["variables"]["query"]
    assert len(recorder.graphql("OrdersyncBulkStatus")) >= 2  # polled until COMPLETED
    downloads = [e for e in recorder.exchanges if e.path.startswith("/bulk-results/")]
    assert len(downloads) == 1
    assert "x-shopify-access-token" not in downloads[0].headers
    assert recorder.graphql("OrdersyncStockLevels") == []

    sim.advance(60)
    sim.set_stock("BULK-3", 1)
    changed, _, _ = await _read_all(connector, "metafield:custom.ean", cursor)
    assert changed["BE-3"] == 1
    assert len(recorder.graphql("OrdersyncBulkRun")) == 1  # changed-since reads page normally
    assert (
        recorder.graphql("OrdersyncStockLevels")[0]
        .body["variables"]["query"]
        .startswith("updated_at:>=")
    )


async def test_bulk_page_survives_a_restart(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    """A new connector (after a restart) resumes a bulk cursor by downloading again."""
    first = make_connector(bulk_threshold=1, bulk_page_size=2, bulk_poll_interval=0.5)
    page = await first.stock_levels("sku", None)
    assert page.has_more and len(page.levels) == 2

    second = make_connector(bulk_threshold=1, bulk_page_size=2)
    rest, _, _ = await _read_all(second, "sku", page.cursor)
    assert {lv.sku for lv in page.levels} | set(rest) == {"SKU-1", "SKU-2", "SKU-3"}
