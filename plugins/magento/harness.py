"""The Magento simulator behind the engine's ``ShopSim`` protocol (demo, e2e, benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from plugins.magento.simulator import MagentoSimulator


class MagentoSim:
    """A :class:`MagentoSimulator` addressed by Amazon order ids and SKUs."""

    def __init__(self, time_scale: float = 1.0, rate_limits: bool = True, seed: int = 0) -> None:
        self.sim = MagentoSimulator(time_scale=time_scale, rate_limits=rate_limits, seed=seed)
        self.app = self.sim.app
        self.faults = self.sim.faults

    def transport(self) -> httpx.AsyncBaseTransport:
        return self.sim.transport()

    def settings(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "auth_mode": "oauth",
            "consumer_key": {"$env": "MAGENTO_CONSUMER_KEY"},
            "consumer_secret": {"$env": "MAGENTO_CONSUMER_SECRET"},
            "access_token": {"$env": "MAGENTO_ACCESS_TOKEN"},
            "access_token_secret": {"$env": "MAGENTO_ACCESS_TOKEN_SECRET"},
            "requests_per_second": 200,
            "settle_seconds": 2,
        }

    def env(self) -> dict[str, str]:
        c = self.sim.credentials
        return {
            "MAGENTO_CONSUMER_KEY": c.consumer_key,
            "MAGENTO_CONSUMER_SECRET": c.consumer_secret,
            "MAGENTO_ACCESS_TOKEN": c.access_token,
            "MAGENTO_ACCESS_TOKEN_SECRET": c.access_token_secret,
        }

    def counters(self) -> dict[str, int]:
        return {
            "requests": len(self.sim.requests),
            "throttled": sum(self.sim.limiter.throttled.values()),
        }

    def add_product(self, sku: str, quantity: int, price: Decimal = Decimal("19.99")) -> None:
        self.sim.create_product(sku, price, quantity, name=f"Product {sku}")

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(sku, quantity)

    def stock(self, sku: str) -> int:
        """What the shop can still sell: the source less units sold and not shipped."""
        return self.sim.available_quantity(sku)

    def _order_id(self, marketplace_order_id: str) -> int:
        order = self.sim.order_by_ext(marketplace_order_id)
        if order is None:
            raise KeyError(f"no Magento order for Amazon order {marketplace_order_id}")
        return int(order["entity_id"])

    def ship(
        self,
        marketplace_order_id: str,
        lines: Mapping[str, int] | None,
        carrier: str,
        tracking: str,
    ) -> None:
        track = {"carrier_code": "custom", "title": carrier, "track_number": tracking}
        self.sim.ship_order(self._order_id(marketplace_order_id), lines, [track])

    def cancel(self, marketplace_order_id: str) -> None:
        self.sim.cancel_order(self._order_id(marketplace_order_id))

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.order_count(marketplace_order_id)

    def orders(self) -> list[dict[str, Any]]:
        return [
            {
                "marketplace_order_id": o.get("ext_order_id"),
                "total": Decimal(str(o["grand_total"])),
                "currency": o.get("order_currency_code"),
                "cancelled": o.get("state") == "canceled",
            }
            for o in self.sim.list_orders()
        ]
