"""The engine's marketplace conformance suite, run against the Amazon simulator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from engine.interfaces import ConnectorContext
from engine.models import CancelRequest, Order, Shipment, ShipmentLine, StockLevel
from engine.registry import PlatformRegistry
from engine.testing.conformance import MarketplaceConformance
from engine.testing.harness import load_harness
from plugins.amazon import register_platforms
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.settings import AmazonSettings
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory
from tests.plugins.amazon.test_settings import EXAMPLE


@dataclass
class AmazonHarness:
    connector: AmazonConnector
    sim: AmazonSimulator
    sample_settings: dict[str, Any]

    def add_order(self, order_id: str, skus: Mapping[str, int]) -> None:
        self.sim.create_order(
            skus, order_id=order_id, created_at=self.sim.now() - timedelta(minutes=10)
        )

    def is_cancelled(self, order_id: str) -> bool:
        return bool(self.sim.order(order_id)["fulfillment"]["fulfillmentStatus"] == "CANCELLED")

    def quantity(self, sku: str) -> int | None:
        return self.sim.quantities.get(sku)

    def shipments(self, order_id: str) -> int:
        return len(self.sim.order(order_id).get("packages") or ())


class TestAmazonConformance(MarketplaceConformance):
    @pytest.fixture
    def harness(self, sim: AmazonSimulator, make_connector: ConnectorFactory) -> AmazonHarness:
        return AmazonHarness(make_connector(), sim, dict(EXAMPLE))


def test_carrier_codes_do_not_collide_once_normalized() -> None:
    keys = [re.sub(r"[^a-z0-9]", "", c.lower()) for c in AmazonConnector.carrier_codes]
    assert len(keys) == len(set(keys))
    assert "BuyerCanceled" in AmazonConnector.cancellation_reasons


async def test_engine_harness_drives_the_simulator() -> None:
    """``PlatformSpec.simulator`` loads a harness the demo and benchmarks can use."""
    registry = PlatformRegistry()
    register_platforms(lambda spec: registry.register(spec, plugin="amazon"))
    spec = registry.get("amazon")
    assert spec.simulator is not None
    harness = load_harness(spec.simulator, time_scale=1000.0, seed=3)

    raw = harness.settings("http://sim")
    resolved = {k: harness.env()[v["$env"]] if isinstance(v, dict) else v for k, v in raw.items()}
    settings = AmazonSettings(**resolved)
    context = ConnectorContext("harness", transport=harness.transport(), time_scale=1000.0)
    connector = AmazonConnector(settings, context)
    try:
        harness.add_order("302-0000001-0000001", {"MUG": 2}, marketplace="Amazon.fr")
        harness.add_order("302-0000002-0000002", {"CAP": 1})
        order = await connector.get_order("302-0000001-0000001")
        assert isinstance(order, Order) and order.total.amount == harness.order_total(
            order.marketplace_order_id
        )
        shipment = Shipment(
            shipment_id="s1",
            marketplace_order_id=order.marketplace_order_id,
            shop_order_id="1",
            lines=(ShipmentLine(sku="MUG", quantity=2),),
            carrier="Hermes Kurier",
            tracking_number="H1",
            shipped_at=order.purchased_at,
        )
        await connector.confirm_shipment(order, shipment, "Other")
        await connector.cancel_orders(
            [CancelRequest(marketplace_order_id="302-0000002-0000002", reason="NoInventory")]
        )
        await connector.push_stock([StockLevel(sku="MUG", quantity=5)])
    finally:
        await connector.aclose()

    (confirmation,) = harness.confirmations()
    assert confirmation["order_id"] == "302-0000001-0000001"
    assert (confirmation["carrier"], confirmation["tracking"]) == ("Other", "H1")
    assert confirmation["items"] == {"MUG": 2}
    assert confirmation["package_reference"].isdigit()
    assert harness.cancellations() == [("302-0000002-0000002", "NoInventory")]
    assert harness.quantity("MUG") == 5 and harness.quantity("NONE") is None
    harness.buyer_cancel("302-0000001-0000001")
    harness.marketplace_cancel("302-0000001-0000001")
    assert harness.cancellations() == [("302-0000002-0000002", "NoInventory")]  # seller only
    counters = harness.counters()
    assert counters["requests"] >= 8 and counters["throttled"] == 0
