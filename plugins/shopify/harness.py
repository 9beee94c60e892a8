"""The engine's simulator harness for Shopify (``engine.testing.harness.ShopSim``).

``ordersync demo``, end-to-end tests and benchmarks drive every shop simulator
through this small, platform-neutral surface; the full admin API stays on
:class:`ShopifySimulator` (``.sim``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from plugins.shopify.simulator import ShopifySimulator
from plugins.shopify.simulator_records import Order, gid

ENV_ACCESS_TOKEN = "SHOPIFY_SIM_ACCESS_TOKEN"  # noqa: S105 - a variable name


class ShopifySimHarness:
    """Wraps one :class:`ShopifySimulator` (same constructor arguments)."""

    def __init__(self, time_scale: float = 1.0, rate_limits: bool = True, seed: int = 0) -> None:
        self.sim = ShopifySimulator(time_scale=time_scale, rate_limits=rate_limits, seed=seed)
        self.app = self.sim.app
        self.faults = self.sim.faults

    def transport(self) -> httpx.AsyncBaseTransport:
        return self.sim.transport()

    def settings(self, base_url: str) -> dict[str, Any]:
        """Connector settings for this simulator (stock at its "Warehouse" location)."""
        return {
            "shop_domain": self.sim.state.domain,
            "access_token": {"$env": ENV_ACCESS_TOKEN},
            "endpoint": base_url,
            "location": "Warehouse",
        }

    def env(self) -> dict[str, str]:
        return {ENV_ACCESS_TOKEN: self.sim.access_token}

    def counters(self) -> dict[str, int]:
        return {
            "requests": self.sim.api.requests,
            "throttled": self.sim.limiter.throttled,
            "notifications": len(self.sim.notifications()),
        }

    def add_product(self, sku: str, quantity: int, price: Decimal = Decimal("19.99")) -> None:
        self.sim.add_product(sku, quantity=quantity, price=price, title=f"Product {sku}")

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(sku, quantity)

    def stock(self, sku: str) -> int:
        return self.sim.stock(sku)["available"]

    def ship(
        self,
        marketplace_order_id: str,
        lines: Mapping[str, int] | None,
        carrier: str,
        tracking: str,
    ) -> None:
        """Fulfil the shop order of a marketplace order (all remaining units when ``lines`` is None)."""
        order = self._order(marketplace_order_id)
        self.sim.fulfil(
            gid("Order", order.id), lines, tracking_company=carrier, tracking_number=tracking
        )

    def cancel(self, marketplace_order_id: str) -> None:
        self.sim.cancel(gid("Order", self._order(marketplace_order_id).id))

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.count_orders(marketplace_order_id)

    def orders(self) -> list[dict[str, Any]]:
        with self.sim.state.lock:
            return [
                {
                    "marketplace_order_id": o.source_identifier,
                    "total": o.total,
                    "currency": o.currency,
                    "cancelled": o.cancelled_at is not None,
                }
                for o in self.sim.state.orders.values()
                if o.source_identifier
            ]

    def _order(self, marketplace_order_id: str) -> Order:
        with self.sim.state.lock:
            found = [
                o
                for o in self.sim.state.orders.values()
                if o.source_identifier == marketplace_order_id
            ]
        if not found:
            raise KeyError(f"no shop order for {marketplace_order_id}")
        return next((o for o in found if o.cancelled_at is None), found[0])
