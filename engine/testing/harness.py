"""Platform-neutral handles on simulators, for tests, the demo and benchmarks.

A plugin names its harness factory in ``PlatformSpec.simulator`` as
``"module:Factory"``; ``Factory(time_scale=1.0, rate_limits=True, seed=0)``
returns an object with the protocol of its role. The engine never imports a
platform: it finds harnesses through the registry like everything else.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

import httpx

from engine.testing.faults import FaultInjector


class SimHarness(Protocol):
    app: Any
    """The simulator's ASGI application (serve it with ``serve_in_thread``)."""
    faults: FaultInjector

    def transport(self) -> httpx.AsyncBaseTransport: ...

    def settings(self, base_url: str) -> dict[str, Any]:
        """Connector settings pointing at the simulator; secrets as ``{"$env": NAME}``."""

    def env(self) -> dict[str, str]:
        """Values for the environment variables :meth:`settings` refers to."""

    def counters(self) -> dict[str, int]:
        """Requests served and 429s returned (for benchmarks)."""


class ShopSim(SimHarness, Protocol):
    def add_product(self, sku: str, quantity: int, price: Decimal = Decimal("19.99")) -> None: ...
    def set_stock(self, sku: str, quantity: int) -> None: ...
    def stock(self, sku: str) -> int: ...
    def ship(
        self,
        marketplace_order_id: str,
        lines: Mapping[str, int] | None,
        carrier: str,
        tracking: str,
    ) -> None: ...
    def cancel(self, marketplace_order_id: str) -> None: ...
    def count_orders(self, marketplace_order_id: str) -> int: ...
    def orders(self) -> list[dict[str, Any]]:
        """``marketplace_order_id``, ``total`` (Decimal), ``currency``, ``cancelled``."""


class MarketplaceSim(SimHarness, Protocol):
    def add_order(
        self,
        order_id: str,
        skus: Mapping[str, int],
        *,
        marketplace: str = "Amazon.de",
        status: str = "UNSHIPPED",
        age_minutes: float = 10,
    ) -> dict[str, Any]: ...
    def set_status(self, order_id: str, status: str) -> None: ...
    def buyer_cancel(self, order_id: str) -> None: ...
    def marketplace_cancel(self, order_id: str) -> None: ...
    def confirmations(self) -> list[dict[str, Any]]:
        """``order_id``, ``package_reference``, ``carrier``, ``tracking``, ``items``."""

    def cancellations(self) -> list[tuple[str, str]]:
        """``(order_id, reason)`` of seller cancellations received."""

    def quantity(self, sku: str) -> int | None: ...
    def order_total(self, order_id: str) -> Decimal: ...


def load_harness(path: str, **options: Any) -> Any:
    """Instantiate a harness from ``"module:Factory"``."""
    module_name, _, attr = path.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(**options)
