"""``ordersync sync --dry-run``: run the real flows, write nothing anywhere.

The flows run against a throw-away copy of the state database, with connectors
wrapped so that every read goes to the platforms and every write is recorded
instead of sent. What would have been written is then printed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.models import (
    CancelRequest,
    CheckResult,
    ItemResult,
    Order,
    ProductRef,
    RejectedOrder,
    Shipment,
    ShopChanges,
    ShopOrderRef,
    StockLevel,
    StockPage,
)
from engine.runner import Connectors


@dataclass
class PlannedWrite:
    side: str
    action: str
    key: str
    detail: str


@dataclass
class DryRunLog:
    writes: list[PlannedWrite] = field(default_factory=list)

    def add(self, side: str, action: str, key: str, detail: str) -> None:
        self.writes.append(PlannedWrite(side, action, key, detail))


class DryRunMarketplace(MarketplaceConnector):
    """Reads pass through; confirmations, cancellations and stock are only recorded."""

    def __init__(self, inner: MarketplaceConnector, log: DryRunLog) -> None:
        super().__init__(inner.settings, inner.context)
        self.inner = inner
        self.log = log
        self.safety_margin = inner.safety_margin  # type: ignore[misc]
        self.default_lookback = inner.default_lookback  # type: ignore[misc]

    async def check(self) -> CheckResult:
        return await self.inner.check()

    def orders_updated(
        self, since: datetime, until: datetime
    ) -> AsyncIterator[Order | RejectedOrder]:
        return self.inner.orders_updated(since, until)

    async def get_order(self, marketplace_order_id: str) -> Order | RejectedOrder | None:
        return await self.inner.get_order(marketplace_order_id)

    async def allowed_carriers(self) -> frozenset[str]:
        return await self.inner.allowed_carriers()

    async def confirm_shipment(self, order: Order, shipment: Shipment, carrier_code: str) -> None:
        lines = ", ".join(f"{line.quantity}× {line.sku}" for line in shipment.lines)
        self.log.add(
            "amazon",
            "confirm shipment",
            order.marketplace_order_id,
            f"{carrier_code} {shipment.tracking_number or ''} ({lines})".strip(),
        )

    async def shipment_confirmed(self, order: Order, shipment: Shipment) -> bool:
        return await self.inner.shipment_confirmed(order, shipment)

    async def cancel_orders(self, requests: Sequence[CancelRequest]) -> list[ItemResult]:
        for request in requests:
            self.log.add(
                "amazon", "cancel order", request.marketplace_order_id, f"reason {request.reason}"
            )
        return [ItemResult(key=r.marketplace_order_id, ok=True) for r in requests]

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemResult]:
        for level in levels:
            self.log.add("amazon", "set quantity", level.sku, str(max(0, level.quantity)))
        return [ItemResult(key=level.sku, ok=True) for level in levels]

    async def aclose(self) -> None:
        await self.inner.aclose()


class DryRunShop(ShopConnector):
    """Reads pass through; order creation and cancellation are only recorded."""

    def __init__(self, inner: ShopConnector, log: DryRunLog) -> None:
        super().__init__(inner.settings, inner.context)
        self.inner = inner
        self.log = log
        self.planned: dict[str, ShopOrderRef] = {}

    async def check(self) -> CheckResult:
        return await self.inner.check()

    async def resolve_products(
        self, attribute: str, skus: Sequence[str]
    ) -> Mapping[str, ProductRef]:
        return await self.inner.resolve_products(attribute, skus)

    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        planned = self.planned.get(marketplace_order_id)
        return planned or await self.inner.find_order(marketplace_order_id)

    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        lines = ", ".join(f"{line.quantity}× {line.sku}" for line in order.lines)
        self.log.add(
            "shop",
            "create order",
            order.marketplace_order_id,
            f"{order.total.amount} {order.currency}: {lines}",
        )
        ref = ShopOrderRef(id=f"dry-run:{order.marketplace_order_id}", number="(dry run)")
        self.planned[order.marketplace_order_id] = ref
        return ref

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        self.log.add(
            "shop", "cancel order", order.marketplace_order_id, f"shop order {ref.number or ref.id}"
        )

    async def changes_since(self, cursor: str | None) -> ShopChanges:
        return await self.inner.changes_since(cursor)

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        return await self.inner.stock_levels(attribute, cursor)

    async def aclose(self) -> None:
        await self.inner.aclose()


def wrapper(log: DryRunLog) -> Any:
    """An ``Engine(wrap=...)`` callable that puts both connectors in dry-run mode."""

    def wrap(pair: Connectors) -> Connectors:
        return Connectors(
            marketplace=DryRunMarketplace(pair.marketplace, log), shop=DryRunShop(pair.shop, log)
        )

    return wrap


def copy_state(source: Path, target: Path) -> None:
    """A consistent copy of the state database (SQLite online backup)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
