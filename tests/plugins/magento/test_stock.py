"""MSI stock: a paginated full scan, then only what changed, with periodic full scans."""

from __future__ import annotations

from engine.models import StockLevel, StockPage
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import EAN_1, ConnectorFactory, eur_order, import_order


async def read_all(
    connector: MagentoConnector, attribute: str, cursor: str | None
) -> tuple[dict[str, int], str | None, int]:
    levels: dict[str, int] = {}
    pages = 0
    while True:
        page: StockPage = await connector.stock_levels(attribute, cursor)
        pages += 1
        levels.update({level.sku: level.quantity for level in page.levels})
        cursor = page.cursor
        if not page.has_more:
            return levels, cursor, pages


async def test_full_scan_is_paginated(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.create_product("SKU-4", "1.00", 0)
    sim.create_product("SKU-5", "1.00", 2, source_code="warehouse-2")
    connector = make_connector(page_size=2)
    levels, cursor, pages = await read_all(connector, "sku", None)
    assert levels == {"SKU-1": 10, "SKU-2": 3, "SKU-3": 5, "SKU-4": 0}
    assert pages == 2
    assert cursor is not None


async def test_changed_since_returns_only_changes(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    sim.advance(120)  # the catalogue was created before the lookback window
    _, cursor, _ = await read_all(connector, "sku", None)
    sim.advance(120)
    nothing, cursor, _ = await read_all(connector, "sku", cursor)
    assert nothing == {}

    sim.advance(120)
    sim.set_stock("SKU-3", 42)  # merchant edits the product
    await import_order(connector, eur_order())  # an order takes SKU-1 and SKU-2
    sim.advance(5)  # a change in the very second of a read is read again next time
    changed, cursor, _ = await read_all(connector, "sku", cursor)
    assert changed == {"SKU-1": 7, "SKU-2": 2, "SKU-3": 42}

    sim.advance(120)
    quiet, _, _ = await read_all(connector, "sku", cursor)
    assert quiet == {}


async def test_changes_outside_products_and_orders_wait_for_a_full_read(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    """An API write to a source item does not touch the product (as in Magento)."""
    sim.advance(120)
    _, cursor, _ = await read_all(connector, "sku", None)
    sim.advance(120)
    sim.set_stock("SKU-2", 9, touch_product=False)
    missed, cursor, _ = await read_all(connector, "sku", cursor)
    assert missed == {}
    full, _, _ = await read_all(connector, "sku", None)  # the engine's periodic full read
    assert full == {"SKU-1": 10, "SKU-2": 9, "SKU-3": 5}


async def test_lookback_reads_a_window_again(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(lookback_seconds=60)
    sim.advance(120)
    _, cursor, _ = await read_all(connector, "sku", None)
    sim.set_stock("SKU-3", 1)
    sim.advance(30)
    changed, cursor, _ = await read_all(connector, "sku", cursor)
    sim.advance(30)
    again, _, _ = await read_all(connector, "sku", cursor)
    assert changed == again == {"SKU-3": 1}


async def test_too_many_changes_fall_back_to_a_full_scan(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(max_changed_skus=1)
    sim.advance(120)
    _, cursor, _ = await read_all(connector, "sku", None)
    sim.advance(120)
    sim.set_stock("SKU-1", 1)
    sim.set_stock("SKU-2", 1)
    levels, _, _ = await read_all(connector, "sku", cursor)
    assert levels == {"SKU-1": 1, "SKU-2": 1, "SKU-3": 5}


async def test_keyed_by_ean_or_id(sim: MagentoSimulator, connector: MagentoConnector) -> None:
    by_ean, _, _ = await read_all(connector, "ean", None)
    assert by_ean == {EAN_1: 10, "5901234123457": 5}  # SKU-2 has no EAN
    by_id, _, _ = await read_all(connector, "id", None)
    assert by_id == {"1": 10, "2": 3, "3": 5}


async def test_out_of_stock_status_and_negative_quantities_read_as_zero(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    sim.source_items[("default", "SKU-1")]["status"] = 0
    sim.source_items[("default", "SKU-2")]["quantity"] = -2
    page = await connector.stock_levels("sku", None)
    assert StockLevel(sku="SKU-1", quantity=0) in page.levels
    assert StockLevel(sku="SKU-2", quantity=0) in page.levels
