"""The engine's shop conformance suite, run against the Shopify simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pytest

from engine.models import ShopOrderRef
from engine.testing.conformance import ShopConformance
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory


@dataclass
class ShopifyHarness:
    connector: ShopifyConnector
    sim: ShopifySimulator
    attribute: str = "sku"

    def add_product(self, sku: str, quantity: int) -> None:
        self.sim.add_product(sku, quantity=quantity, price="19.99")

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(sku, quantity)

    def ship(
        self, ref: ShopOrderRef, lines: Mapping[str, int], carrier: str, tracking: str
    ) -> None:
        self.sim.fulfil(ref.id, lines, tracking_company=carrier, tracking_number=tracking)

    def cancel(self, ref: ShopOrderRef) -> None:
        self.sim.cancel(ref.id)

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.count_orders(marketplace_order_id)

    def order_total(self, ref: ShopOrderRef) -> Decimal:
        return Decimal(self.sim.get_order(ref.id)["totals"]["total"])


class TestShopifyConformanceEUR(ShopConformance):
    currency = "EUR"
    taxes_included = True

    @pytest.fixture
    def harness(self, make_connector: ConnectorFactory, sim: ShopifySimulator) -> ShopifyHarness:
        return ShopifyHarness(connector=make_connector(), sim=sim)


class TestShopifyConformanceUSD(ShopConformance):
    currency = "USD"
    taxes_included = False

    @pytest.fixture
    def harness(self, make_connector: ConnectorFactory, sim: ShopifySimulator) -> ShopifyHarness:
        return ShopifyHarness(connector=make_connector(lookback_seconds=300), sim=sim)
