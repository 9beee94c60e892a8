"""The engine's conformance suites, run against the in-test plugins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pytest

from engine.interfaces import ConnectorContext
from engine.models import ShopOrderRef
from engine.testing.conformance import MarketplaceConformance, ShopConformance
from tests.fakes import FakeMarketplace, FakeSettings, FakeShop, World


@dataclass
class FakeShopHarness:
    world: World
    connector: FakeShop
    attribute: str = "sku"

    def add_product(self, sku: str, quantity: int) -> None:
        self.world.add_product(sku, quantity)

    def set_stock(self, sku: str, quantity: int) -> None:
        from datetime import timedelta

        self.world.now += timedelta(seconds=1)
        self.world.set_stock(sku, quantity)

    def ship(
        self, ref: ShopOrderRef, lines: Mapping[str, int], carrier: str, tracking: str
    ) -> None:
        order = next(o for o in self.world.shop_orders if o.id == ref.id)
        self.world.ship(order.marketplace_order_id, lines, carrier, tracking)

    def cancel(self, ref: ShopOrderRef) -> None:
        order = next(o for o in self.world.shop_orders if o.id == ref.id)
        self.world.cancel_in_shop(order.marketplace_order_id)

    def count_orders(self, marketplace_order_id: str) -> int:
        return len(self.world.shop_order_for(marketplace_order_id))

    def order_total(self, ref: ShopOrderRef) -> Decimal:
        return next(o for o in self.world.shop_orders if o.id == ref.id).order.total.amount


class TestFakeShopConformance(ShopConformance):
    @pytest.fixture
    def harness(self, world):
        return FakeShopHarness(world, FakeShop(FakeSettings(), ConnectorContext("conf")))


@dataclass
class FakeMarketplaceHarness:
    world: World
    connector: FakeMarketplace
    sample_settings = {"world": "default"}

    def add_order(self, order_id: str, skus: Mapping[str, int]) -> None:
        from datetime import UTC, datetime

        self.world.now = datetime.now(UTC)
        self.world.add_order(order_id, skus)

    def is_cancelled(self, order_id: str) -> bool:
        return any(c[0] == order_id for c in self.world.amazon_cancellations)

    def quantity(self, sku: str) -> int | None:
        return self.world.amazon_stock.get(sku)

    def shipments(self, order_id: str) -> int:
        return sum(1 for c in self.world.confirmations if c[0] == order_id)


class TestFakeMarketplaceConformance(MarketplaceConformance):
    @pytest.fixture
    def harness(self, world):
        return FakeMarketplaceHarness(
            world, FakeMarketplace(FakeSettings(), ConnectorContext("conf"))
        )


def test_suites_are_not_empty():
    shop_tests = [n for n in dir(ShopConformance) if n.startswith("test_")]
    market_tests = [n for n in dir(MarketplaceConformance) if n.startswith("test_")]
    assert len(shop_tests) >= 8 and len(market_tests) >= 6
