"""The engine's simulator harness for Amazon (``engine.testing.harness.MarketplaceSim``).

``ordersync demo``, the conformance suites and benchmarks drive every
marketplace simulator through this small, platform-neutral surface; the full
admin API stays on :class:`AmazonSimulator` (``.sim``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from plugins.amazon.simulator import AmazonSimulator

ENV_CLIENT_ID = "AMAZON_SIM_LWA_CLIENT_ID"
ENV_CLIENT_SECRET = "AMAZON_SIM_LWA_CLIENT_SECRET"  # noqa: S105 - a variable name
ENV_REFRESH_TOKEN = "AMAZON_SIM_REFRESH_TOKEN"  # noqa: S105 - a variable name


class AmazonSimHarness:
    """Wraps one :class:`AmazonSimulator` (same constructor arguments)."""

    def __init__(self, time_scale: float = 1.0, rate_limits: bool = True, seed: int = 0) -> None:
        self.sim = AmazonSimulator(time_scale=time_scale, rate_limits=rate_limits, seed=seed)
        self.app = self.sim.app
        self.faults = self.sim.faults

    def transport(self) -> Any:
        return self.sim.transport()

    def settings(self, base_url: str) -> dict[str, Any]:
        """Connector settings for Amazon.de and Amazon.fr on this simulator."""
        return {
            "marketplaces": ["Amazon.de", "Amazon.fr"],
            "seller_id": self.sim.seller_id,
            "lwa_client_id": {"$env": ENV_CLIENT_ID},
            "lwa_client_secret": {"$env": ENV_CLIENT_SECRET},
            "lwa_refresh_token": {"$env": ENV_REFRESH_TOKEN},
            "endpoint": base_url,
            "lwa_token_url": f"{base_url.rstrip('/')}/auth/o2/token",
        }

    def env(self) -> dict[str, str]:
        creds = self.sim.credentials
        return {
            ENV_CLIENT_ID: creds.client_id,
            ENV_CLIENT_SECRET: creds.client_secret,
            ENV_REFRESH_TOKEN: creds.refresh_token,
        }

    def counters(self) -> dict[str, int]:
        limiter = self.sim.limiter
        throttled = sum(limiter.throttled.values())
        return {"requests": sum(limiter.allowed.values()) + throttled, "throttled": throttled}

    def add_order(
        self,
        order_id: str,
        skus: Mapping[str, int],
        *,
        marketplace: str = "Amazon.de",
        status: str = "UNSHIPPED",
        age_minutes: float = 10,
    ) -> dict[str, Any]:
        created = self.sim.now() - timedelta(minutes=age_minutes)
        return self.sim.create_order(
            skus, order_id=order_id, marketplace=marketplace, status=status, created_at=created
        )

    def set_status(self, order_id: str, status: str) -> None:
        self.sim.set_status(order_id, status)

    def buyer_cancel(self, order_id: str) -> None:
        self.sim.request_cancellation(order_id)

    def marketplace_cancel(self, order_id: str) -> None:
        self.sim.cancel_order(order_id, by="AMAZON", reason="Cancelled by Amazon")

    def confirmations(self) -> list[dict[str, Any]]:
        out = []
        for confirmation in self.sim.confirmations:
            request, order_id = confirmation["request"], confirmation["orderId"]
            skus = self._skus(order_id)
            out.append(
                {
                    "order_id": order_id,
                    "package_reference": request["packageReferenceId"],
                    "carrier": request["carrierCode"],
                    "tracking": request["trackingNumber"],
                    "items": {
                        skus[str(i["orderItemId"])]: i["quantity"] for i in request["orderItems"]
                    },
                }
            )
        return out

    def cancellations(self) -> list[tuple[str, str]]:
        return [
            (c["orderId"], c["reason"]) for c in self.sim.cancellations if c["by"] == "MERCHANT"
        ]

    def quantity(self, sku: str) -> int | None:
        return self.sim.quantities.get(sku)

    def order_total(self, order_id: str) -> Decimal:
        return Decimal(self.sim.order(order_id)["proceeds"]["grandTotal"]["amount"])

    def _skus(self, order_id: str) -> dict[str, str]:
        items = self.sim.order(order_id)["orderItems"]
        return {str(i["orderItemId"]): str(i["product"]["sellerSku"]) for i in items}
