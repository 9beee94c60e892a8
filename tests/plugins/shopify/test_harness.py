"""The platform-neutral simulator harness used by ``ordersync demo`` and benchmarks."""

from __future__ import annotations

from decimal import Decimal

from engine.interfaces import ConnectorContext
from engine.plugins import load_plugins
from engine.testing.harness import load_harness
from plugins.shopify import ShopifyConnector, ShopifySettings
from plugins.shopify.harness import ShopifySimHarness

from .factories import eur_order


async def test_harness_drives_the_simulator() -> None:
    spec = load_plugins(entry_points_group=None, extra_modules=("plugins.shopify",)).registry.get(
        "shopify", "shop"
    )
    assert spec.simulator is not None
    harness: ShopifySimHarness = load_harness(spec.simulator, time_scale=100.0)
    harness.add_product("SKU-1", 10, Decimal("19.99"))
    harness.add_product("SKU-2", 5)

    raw = harness.settings("http://127.0.0.1:8102")
    assert raw["access_token"] == {"$env": "SHOPIFY_SIM_ACCESS_TOKEN"}
    settings = ShopifySettings(**{**raw, "access_token": harness.env()["SHOPIFY_SIM_ACCESS_TOKEN"]})
    context = ConnectorContext(connection_id="h", transport=harness.transport(), time_scale=100.0)
    connector = ShopifyConnector(settings, context)
    try:
        assert (await connector.check()).ok
        order = eur_order()
        ref = await connector.create_order(
            order, await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
        )
        assert harness.stock("SKU-1") == 8
        harness.set_stock("SKU-2", 3)
        assert harness.stock("SKU-2") == 3

        cursor = (await connector.changes_since(None)).cursor
        harness.ship(order.marketplace_order_id, {"SKU-1": 1}, "DHL", "T-1")
        harness.ship(order.marketplace_order_id, None, "UPS", "T-2")
        page = await connector.changes_since(cursor)
        assert sorted(s.tracking_number for s in page.shipments) == ["T-1", "T-2"]

        harness.cancel(order.marketplace_order_id)
        assert harness.count_orders(order.marketplace_order_id) == 1
        assert harness.orders() == [
            {
                "marketplace_order_id": order.marketplace_order_id,
                "total": Decimal("49.97"),
                "currency": "EUR",
                "cancelled": True,
            }
        ]
        assert ref.id.startswith("gid://shopify/Order/")
        counters = harness.counters()
        assert counters["requests"] > 0 and counters["throttled"] == 0
    finally:
        await connector.aclose()
