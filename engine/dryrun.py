"""``ordersync sync --dry-run``: run the real flows, write nothing anywhere.

The flows run against a throw-away copy of the state database, with connectors
wrapped so that every read goes to the platforms and every write is recorded
instead of sent. What would have been written is then printed.

Stock values are computed from the shop's stock as it is now: a shop's own stock
change once an order would be created (or cancelled) shows in the next sync.

The wrappers implement every method of the contract themselves (a test checks
it), so neither a batch method nor one added to the contract later can reach
the real connector's writes through an inherited default.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from engine.runner import Connectors, Engine
from engine.state import StateStore

if TYPE_CHECKING:
    from engine.config import LoadedConfig
    from engine.registry import PlatformRegistry


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

    async def listed_quantities(self, skus: Sequence[str]) -> Mapping[str, int] | None:
        return await self.inner.listed_quantities(skus)

    async def aclose(self) -> None:
        await self.inner.aclose()


class DryRunShop(ShopConnector):
    """Reads pass through; creating, completing and cancelling orders are only recorded."""

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

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        planned = self.planned.get(marketplace_order_id)
        found = await self.inner.find_orders(marketplace_order_id)
        return [*found, planned] if planned else found

    async def find_order_refs(
        self, marketplace_order_ids: Sequence[str], *, attempted: bool = False
    ) -> dict[str, ShopOrderRef]:
        planned = {oid: self.planned[oid] for oid in marketplace_order_ids if oid in self.planned}
        rest = [oid for oid in marketplace_order_ids if oid not in planned]
        found = await self.inner.find_order_refs(rest, attempted=attempted) if rest else {}
        return {**found, **planned}

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

    async def create_orders(
        self, items: Sequence[tuple[Order, Mapping[str, ProductRef]]]
    ) -> list[ShopOrderRef | Exception]:
        out: list[ShopOrderRef | Exception] = []
        for order, products in items:
            try:
                out.append(await self.create_order(order, products))
            except Exception as exc:  # noqa: BLE001 - one result per item, as the contract says
                out.append(exc)
        return out

    async def complete_order(self, order: Order, ref: ShopOrderRef) -> ShopOrderRef:
        if type(self.inner).complete_order is not ShopConnector.complete_order:
            self.log.add(
                "shop",
                "complete order",
                order.marketplace_order_id,
                f"finish shop order {ref.number or ref.id}, found instead of created "
                "(an earlier attempt may have stopped before its last step)",
            )
        return ref

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        self.log.add(
            "shop", "cancel order", order.marketplace_order_id, f"shop order {ref.number or ref.id}"
        )

    async def cancel_orders(
        self, items: Sequence[tuple[ShopOrderRef, Order]]
    ) -> list[Exception | None]:
        for ref, order in items:
            await self.cancel_order(ref, order)
        return [None] * len(items)

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


@contextmanager
def dry_run_engine(
    loaded: LoadedConfig, registry: PlatformRegistry, state_path: Path, **engine_options: Any
) -> Iterator[tuple[Engine, DryRunLog]]:
    """An engine on a throw-away copy of the state DB whose connectors write nothing.

    ``engine_options`` go to :class:`~engine.runner.Engine` (``transports``, ``now``);
    no notifier hooks are passed, so a dry run announces nothing either.
    """
    log = DryRunLog()
    with tempfile.TemporaryDirectory(prefix="ordersync-dry-run-") as tmp:
        copy = Path(tmp) / "state.db"
        copy_state(state_path, copy)
        store = StateStore(copy)
        try:
            yield Engine(loaded, registry, store, wrap=wrapper(log), **engine_options), log
        finally:
            store.close()
