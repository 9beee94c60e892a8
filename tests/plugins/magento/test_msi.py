"""Stock as MSI keeps it: imports, shipments and cancellations in both create modes.

The shelf (source quantity) only moves when Magento ships; the level reported to the
marketplace is the shelf less what open orders have not shipped yet.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugins.magento import mapping
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, eur_order, import_order, levels

MODES = ["orders_create", "cart"]


@pytest.mark.parametrize("mode", MODES)
async def test_ship_and_cancel_after_import_neither_double_nor_lose_stock(
    sim: MagentoSimulator, make_connector: ConnectorFactory, mode: str
) -> None:
    connector = make_connector(order_create_mode=mode)
    shipped_order, cancelled_order = eur_order(), eur_order("302-2222222-2222222")
    shipped = await import_order(connector, shipped_order)  # SKU-1 x 3, SKU-2 x 1
    cancelled = await import_order(connector, cancelled_order)
    assert await levels(connector) == {"SKU-1": 4, "SKU-2": 1, "SKU-3": 5}

    sim.ship_order(int(shipped.id))
    assert (sim.source_quantity("SKU-1"), sim.source_quantity("SKU-2")) == (7, 2)  # once
    assert await levels(connector) == {"SKU-1": 4, "SKU-2": 1, "SKU-3": 5}

    await connector.cancel_order(cancelled, cancelled_order)
    assert (sim.source_quantity("SKU-1"), sim.source_quantity("SKU-2")) == (7, 2)
    assert await levels(connector) == {"SKU-1": 7, "SKU-2": 2, "SKU-3": 5}
    assert sim.available_quantity("SKU-1") == 7
    if mode == "cart":  # Magento's own reservations agree
        assert sim.salable_quantity("SKU-1") == 7


@pytest.mark.parametrize("mode", MODES)
async def test_incremental_reads_follow_import_shipment_and_cancellation(
    sim: MagentoSimulator, make_connector: ConnectorFactory, mode: str
) -> None:
    connector = make_connector(order_create_mode=mode)
    sim.advance(120)
    cursor = (await connector.stock_levels("sku", None)).cursor

    async def changed() -> dict[str, int]:
        nonlocal cursor
        sim.advance(30)
        page = await connector.stock_levels("sku", cursor)
        cursor = page.cursor
        return {level.sku: level.quantity for level in page.levels}

    order = eur_order()
    ref = await import_order(connector, order)
    assert await changed() == {"SKU-1": 7, "SKU-2": 2}
    sim.ship_order(int(ref.id), {"SKU-1": 1})
    assert await changed() == {"SKU-1": 7, "SKU-2": 2}
    await connector.cancel_order(ref, order)
    assert await changed() == {"SKU-1": 9, "SKU-2": 3}


async def test_web_shop_orders_hold_stock_too(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim._persist(  # noqa: SLF001 - a storefront order, no ext_order_id
        {
            "customer_email": "web@example.com",
            "grand_total": 5,
            "base_grand_total": 5,
            "state": "processing",
            "items": [{"sku": "SKU-2", "qty_ordered": 2}],
        }
    )
    assert (await levels(make_connector()))["SKU-2"] == 1


async def test_orders_older_than_the_window_hold_nothing(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(open_order_days=2)
    await import_order(connector, eur_order())
    assert (await levels(connector))["SKU-1"] == 7
    sim.advance(timedelta(days=2, seconds=1).total_seconds())
    assert (await levels(connector))["SKU-1"] == 10


async def test_later_pages_of_a_pass_reuse_its_open_orders(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(page_size=2)
    await import_order(connector, eur_order())
    before = len(sim.requests)
    assert await levels(connector) == {"SKU-1": 7, "SKU-2": 2, "SKU-3": 5}
    reads = [path for _, path in sim.requests[before:]]
    assert reads.count("/rest/default/V1/orders") == 1
    assert reads.count("/rest/default/V1/inventory/source-items") == 2


@pytest.mark.parametrize(
    ("item", "left"),
    [
        ({"qty_ordered": 3}, 3),
        ({"qty_ordered": 3, "qty_shipped": 1}, 2),
        ({"qty_ordered": 3, "qty_shipped": 1, "qty_canceled": 2}, 0),
        ({"qty_ordered": 3, "qty_refunded": 3}, 0),  # refunded before shipping
        ({"qty_ordered": 3, "qty_shipped": 1, "qty_refunded": 1}, 2),  # refund of a shipped one
        ({"qty_ordered": 1, "qty_shipped": 2}, 0),
    ],
)
def test_unshipped_quantity(item: dict[str, int], left: int) -> None:
    assert mapping.unshipped_quantity(item) == left
