"""The engine's shop conformance suite against the WooCommerce connector and simulator,
and the simulator harness the demo and benchmarks use."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pytest

from engine.interfaces import ShopConnector
from engine.models import ShopOrderRef
from engine.registry import PlatformRegistry
from engine.testing.conformance import ShopConformance
from engine.testing.harness import load_harness
from plugins import woocommerce
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import WooCommerceSimHarness, WooCommerceSimulator
from tests.plugins.woocommerce.conftest import connector


@dataclass
class Harness:
    connector: WooCommerceConnector
    sim: WooCommerceSimulator
    attribute: str = "sku"

    def add_product(self, sku: str, quantity: int) -> None:
        self.sim.create_product(sku, "19.99", quantity)

    def _id(self, sku: str) -> int:
        return next(pid for pid, p in self.sim.products.items() if p["sku"] == sku)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(self._id(sku), quantity)

    def ship(
        self, ref: ShopOrderRef, lines: Mapping[str, int], carrier: str, tracking: str
    ) -> None:
        items = [{"sku": sku, "qty": qty} for sku, qty in lines.items()]
        self.sim.ship_order(
            int(ref.id), [{"provider": carrier, "number": tracking, "items": items}], complete=False
        )

    def cancel(self, ref: ShopOrderRef) -> None:
        self.sim.cancel_order(int(ref.id))

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.count_orders(marketplace_order_id)

    def order_total(self, ref: ShopOrderRef) -> Decimal:
        return Decimal(self.sim.get_order(int(ref.id))["total"])


class TestWooCommerceConformance(ShopConformance):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        sim = WooCommerceSimulator(rate_limits=False)
        conn = connector(sim.transport())
        yield Harness(conn, sim)
        await conn.aclose()


class TestWooCommerceConformanceUSD(TestWooCommerceConformance):
    """Tax-exclusive prices: Amazon's sales tax lands in a fee line, totals still exact."""

    currency = "USD"
    taxes_included = False


def test_the_harness_is_registered_and_loads() -> None:
    registry = PlatformRegistry()
    woocommerce.register_platforms(registry.register)
    spec = registry.get("woocommerce", "shop")
    harness = load_harness(spec.simulator or "", time_scale=2.0, rate_limits=False)
    assert isinstance(harness, WooCommerceSimHarness)
    settings = harness.settings("http://127.0.0.1:8103")
    assert settings["consumer_key"] == {"$env": "WOOCOMMERCE_SIM_CONSUMER_KEY"}
    assert set(harness.env()) == {"WOOCOMMERCE_SIM_CONSUMER_KEY", "WOOCOMMERCE_SIM_CONSUMER_SECRET"}


async def test_harness_drives_the_store_through_the_connector() -> None:
    from tests.plugins.woocommerce.conftest import make_order

    harness = WooCommerceSimHarness(rate_limits=False)
    harness.add_product("H-MUG", 5, Decimal("9.99"))
    harness.add_product("H-CAP", 2)
    woo = connector(harness.transport())
    try:
        order = make_order("302-1-1", [("H-MUG", 2, "9.99", "3.19"), ("H-CAP", 1, "19.99", "3.19")])
        await woo.create_order(order, await woo.resolve_products("sku", ["H-MUG", "H-CAP"]))
        start = await woo.changes_since(None)
        harness.ship("302-1-1", {"H-MUG": 1}, "Hermes", "H-1")
        harness.ship("302-1-1", None, "DHL Paket", "D-1")
        changes = await woo.changes_since(start.cursor)
    finally:
        await woo.aclose()
    assert sorted((s.carrier, s.tracking_number) for s in changes.shipments) == [
        ("DHL Paket", "D-1"),
        ("Hermes", "H-1"),
    ]
    assert harness.stock("H-MUG") == 3 and harness.count_orders("302-1-1") == 1
    [summary] = harness.orders()
    assert summary == {
        "marketplace_order_id": "302-1-1",
        "total": order.total.amount,
        "currency": "EUR",
        "cancelled": False,
    }
    harness.set_stock("H-CAP", 9)
    harness.cancel("302-1-1")
    assert harness.stock("H-CAP") == 10 and harness.orders()[0]["cancelled"]
    assert harness.counters()["requests"] > 0


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n, v in vars(WooCommerceConnector).items()
        if callable(v) and not n.startswith("_") and hasattr(ShopConnector, n)
    ),
)
def test_every_override_keeps_the_contracts_signature(name: str) -> None:
    """A helper that shadows a contract method with another shape breaks the engine's
    calls at run time (``create_orders`` and ``cancel_orders`` once did)."""
    ours = inspect.signature(getattr(WooCommerceConnector, name))
    theirs = inspect.signature(getattr(ShopConnector, name))
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.annotation for p in ours.parameters.values()] == [
        p.annotation for p in theirs.parameters.values()
    ]
    assert ours.return_annotation == theirs.return_annotation


async def test_harness_with_fulfillments_ships_through_them() -> None:
    from tests.plugins.woocommerce.conftest import make_order

    harness = WooCommerceSimHarness(rate_limits=False, tracking_source="fulfillments")
    assert harness.settings("https://x.test")["tracking_source"] == "fulfillments"
    harness.add_product("H-MUG", 5, Decimal("9.99"))
    woo = connector(harness.transport(), tracking_source="fulfillments")
    try:
        order = make_order("302-2-2", [("H-MUG", 2, "9.99", "3.19")])
        await woo.create_order(order, await woo.resolve_products("sku", ["H-MUG"]))
        start = await woo.changes_since(None)
        harness.ship("302-2-2", {"H-MUG": 1}, "Hermes", "H-9")
        changes = await woo.changes_since(start.cursor)
    finally:
        await woo.aclose()
    [shipment] = changes.shipments
    assert (shipment.tracking_number, shipment.lines[0].quantity) == ("H-9", 1)
    assert list(harness.sim.fulfillments.values())[0][0]["meta_data"][1]["value"] == "H-9"
    with pytest.raises(ValueError, match="tracking_source"):
        WooCommerceSimHarness(tracking_source="email")
