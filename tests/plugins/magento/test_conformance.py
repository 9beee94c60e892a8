"""The engine's shop conformance suite, against the simulator in both create modes.

Magento timestamps have whole seconds, so the harness lets 20 s of shop time pass
after each admin action (more than ``settle_seconds``), as time passes between a
merchant's clicks in a real shop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pytest

from engine.models import ShopOrderRef
from engine.testing.conformance import ShopConformance, _drain_changes
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import connector_for

STEP = 20


@dataclass
class MagentoHarness:
    sim: MagentoSimulator
    connector: MagentoConnector
    attribute: str = "sku"

    def add_product(self, sku: str, quantity: int) -> None:
        self.sim.create_product(sku, "19.99", quantity)
        self.sim.advance(STEP)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(sku, quantity)
        self.sim.advance(STEP)

    def ship(
        self, ref: ShopOrderRef, lines: Mapping[str, int], carrier: str, tracking: str
    ) -> None:
        track = {"carrier_code": "custom", "title": carrier, "track_number": tracking}
        self.sim.ship_order(int(ref.id), dict(lines), [track])
        self.sim.advance(STEP)

    def cancel(self, ref: ShopOrderRef) -> None:
        assert self.sim.cancel_order(int(ref.id))
        self.sim.advance(STEP)

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.order_count(marketplace_order_id)

    def order_total(self, ref: ShopOrderRef) -> Decimal:
        return Decimal(str(self.sim.orders[int(ref.id)]["grand_total"]))


async def _harness(**settings: object) -> AsyncIterator[MagentoHarness]:
    sim = MagentoSimulator(rate_limits=False)
    connector = connector_for(sim, **settings)
    yield MagentoHarness(sim, connector)
    await connector.aclose()


class MagentoConformance(ShopConformance):
    """The engine's shop suite; the tracking carrier title must come back as the carrier."""

    async def test_shipment_carrier_and_tracking_come_back(self, harness: MagentoHarness) -> None:
        harness.add_product("CONF-G", 9)
        first = await self._create(harness, self.order("CONF-ORDER-4", {"CONF-G": 4}))
        _, _, cursor = await _drain_changes(harness.connector, None)
        harness.ship(first, {"CONF-G": 1}, "DHL", "TRK-1")
        harness.ship(first, {"CONF-G": 2}, "UPS", "TRK-2")
        shipments, _, cursor = await _drain_changes(harness.connector, cursor)
        assert [(s.tracking_number, s.carrier, s.lines[0].quantity) for s in shipments] == [
            ("TRK-1", "DHL", 1),
            ("TRK-2", "UPS", 2),
        ]
        again, _, _ = await _drain_changes(harness.connector, cursor)
        assert again == []


class TestOrdersCreateConformance(MagentoConformance):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[MagentoHarness]:  # type: ignore[override]
        async for harness in _harness():
            yield harness


class TestCartConformance(MagentoConformance):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[MagentoHarness]:  # type: ignore[override]
        async for harness in _harness(order_create_mode="cart", auth_mode="bearer"):
            yield harness


class TestTaxExclusiveUsdConformance(MagentoConformance):
    currency = "USD"
    taxes_included = False

    @pytest.fixture
    async def harness(self) -> AsyncIterator[MagentoHarness]:  # type: ignore[override]
        async for harness in _harness():
            yield harness
