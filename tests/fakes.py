"""In-test marketplace and shop plugins: small, stateful, with crash points.

They exercise the engine without any real platform. A ``World`` holds both
sides' state; ``crash_at`` makes a connector raise :class:`Crash` (a
``BaseException``, like a killed process) at a named point, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from engine import hookimpl
from engine.errors import FailureReason, FatalAPIError, ItemError, RetriableAPIError
from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.models import (
    Address,
    Cancellation,
    CancelRequest,
    CheckResult,
    ItemResult,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    ProductRef,
    RejectedChange,
    RejectedOrder,
    Shipment,
    ShipmentLine,
    ShopChanges,
    ShopOrderRef,
    StockLevel,
    StockPage,
)
from engine.registry import PlatformSpec

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Crash(BaseException):
    """Simulates the process dying at a crash point."""


@dataclass
class ShopOrder:
    id: str
    marketplace_order_id: str
    order: Order
    cancelled: bool = False


@dataclass
class World:
    """Both platforms' state for one test."""

    now: datetime = T0
    amazon: dict[str, Order] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)  # sku -> product id
    stock: dict[str, int] = field(default_factory=dict)
    stock_changed: dict[str, datetime] = field(default_factory=dict)
    shop_orders: list[ShopOrder] = field(default_factory=list)
    shop_events: list[tuple[datetime, Shipment | Cancellation | RejectedChange]] = field(
        default_factory=list
    )
    confirmations: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # order, shipment, carrier
    amazon_cancellations: list[tuple[str, str]] = field(default_factory=list)
    amazon_stock: dict[str, int] = field(default_factory=dict)
    stock_push_calls: list[list[StockLevel]] = field(default_factory=list)
    failing_skus: set[str] = field(default_factory=set)
    carriers: frozenset[str] = frozenset({"DHL", "UPS", "DPD", "Other"})
    crash_at: set[str] = field(default_factory=set)
    fail_next: dict[str, Exception] = field(default_factory=dict)
    page_size: int = 3
    unreadable: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    lists_quantities: bool = True
    """``FakeMarketplace.listed_quantities`` reads ``amazon_stock``; ``False``: it returns
    ``None``, like a marketplace that cannot tell."""

    def point(self, name: str) -> None:
        self.calls.append(name)
        if name in self.crash_at:
            self.crash_at.discard(name)
            raise Crash(name)
        exc = self.fail_next.pop(name, None)
        if exc is not None:
            raise exc

    # -- building data --------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        skus: Mapping[str, int] | None = None,
        *,
        status: OrderStatus = OrderStatus.UNSHIPPED,
        updated_at: datetime | None = None,
        address: Address | None = None,
        price: str = "10.00",
        purchased_at: datetime | None = None,
    ) -> Order:
        skus = skus or {"SKU-1": 1}
        eur = "EUR"
        lines = tuple(
            OrderLine(
                line_id=f"{order_id}-{i}",
                sku=sku,
                quantity=qty,
                unit_price=Money(amount=Decimal(price), currency=eur),
                tax=Money(amount=Decimal("1.60") * qty, currency=eur),
                discount=Money.zero(eur),
            )
            for i, (sku, qty) in enumerate(skus.items())
        )
        total = sum((line.unit_price.amount * line.quantity for line in lines), Decimal("4.90"))
        order = Order(
            marketplace_order_id=order_id,
            marketplace_id="A1PA6795UKMFR9",
            status=status,
            purchased_at=purchased_at or self.now - timedelta(hours=1),
            updated_at=updated_at or self.now - timedelta(minutes=10),
            currency=eur,
            shipping_address=address
            or Address(
                name="Erika Mustermann",
                line1="Hauptstr. 1",
                city="Berlin",
                postal_code="10115",
                country_code="DE",
            ),
            lines=lines,
            shipping_price=Money(amount=Decimal("4.90"), currency=eur),
            shipping_tax=Money(amount=Decimal("0.78"), currency=eur),
            shipping_discount=Money.zero(eur),
            total=Money(amount=total, currency=eur),
            taxes_included=True,
        )
        self.amazon[order_id] = order
        return order

    def update_order(self, order_id: str, **changes: object) -> Order:
        order = self.amazon[order_id].model_copy(
            update={"updated_at": self.now - timedelta(minutes=5), **changes}
        )
        self.amazon[order_id] = order
        return order

    def add_product(self, sku: str, quantity: int = 10) -> None:
        self.products[sku] = f"P-{sku}"
        self.set_stock(sku, quantity)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.stock[sku] = quantity
        self.stock_changed[sku] = self.now

    def shop_order_for(self, order_id: str) -> list[ShopOrder]:
        return [o for o in self.shop_orders if o.marketplace_order_id == order_id]

    def ship(
        self,
        order_id: str,
        lines: Mapping[str, int] | None = None,
        carrier: str | None = "DHL",
        tracking: str = "TRK1",
    ) -> Shipment:
        shop_order = self.shop_order_for(order_id)[0]
        lines = lines or shop_order.order.quantities_by_sku()
        shipment = Shipment(
            shipment_id=f"F-{len(self.shop_events) + 1}",
            marketplace_order_id=order_id,
            shop_order_id=shop_order.id,
            lines=tuple(ShipmentLine(sku=s, quantity=q) for s, q in lines.items()),
            carrier=carrier,
            tracking_number=tracking,
            shipped_at=self.now,
        )
        self.shop_events.append((self.now, shipment))
        return shipment

    def unreadable_in_shop(
        self, kind: str, key: str, order_id: str | None, message: str
    ) -> RejectedChange:
        """A shop record the shop plugin cannot read (``ShopChanges.rejected``)."""
        rejected = RejectedChange(
            kind=kind,
            key=key,
            marketplace_order_id=order_id,
            message=message,
        )
        self.shop_events.append((self.now, rejected))
        return rejected

    def cancel_in_shop(self, order_id: str) -> None:
        shop_order = self.shop_order_for(order_id)[0]
        shop_order.cancelled = True
        self.shop_events.append(
            (
                self.now,
                Cancellation(
                    marketplace_order_id=order_id,
                    shop_order_id=shop_order.id,
                    cancelled_at=self.now,
                ),
            )
        )


WORLDS: dict[str, World] = {}


class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    world: str = "default"
    token: SecretStr | None = None


class FakeMarketplace(MarketplaceConnector):
    settings_model = FakeSettings
    carrier_codes: ClassVar[frozenset[str]] = frozenset({"DHL", "UPS", "DPD", "Other"})
    cancellation_reasons: ClassVar[frozenset[str]] = frozenset({"NoInventory", "BuyerCanceled"})

    @property
    def world(self) -> World:
        return WORLDS.setdefault(self.settings.world, World())  # type: ignore[attr-defined]

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, message="fake marketplace reachable")

    async def orders_updated(self, since: datetime, until: datetime) -> AsyncIterator[Order]:
        matching = sorted(
            (o for o in self.world.amazon.values() if since <= o.updated_at < until),
            key=lambda o: o.updated_at,
        )
        for start in range(0, len(matching), self.world.page_size):
            self.world.point("mkt.page")
            for order in matching[start : start + self.world.page_size]:
                yield self._readable(order)

    def _readable(self, order: Order) -> Order | RejectedOrder:
        if order.marketplace_order_id in self.world.unreadable:
            return RejectedOrder(
                marketplace_order_id=order.marketplace_order_id,
                message=f"order {order.marketplace_order_id}: currency 'XXX' is unknown",
            )
        return order

    async def get_order(self, marketplace_order_id: str) -> Order | RejectedOrder | None:
        self.world.point("mkt.get_order")
        order = self.world.amazon.get(marketplace_order_id)
        return None if order is None else self._readable(order)

    async def allowed_carriers(self) -> frozenset[str]:
        return self.world.carriers

    async def confirm_shipment(self, order: Order, shipment: Shipment, carrier_code: str) -> None:
        self.world.point("mkt.confirm.before")
        self.world.confirmations.append(
            (order.marketplace_order_id, shipment.shipment_id, carrier_code)
        )
        self.world.point("mkt.confirm.after")

    async def shipment_confirmed(self, order: Order, shipment: Shipment) -> bool:
        return any(c[1] == shipment.shipment_id for c in self.world.confirmations)

    async def cancel_orders(self, requests: Sequence[CancelRequest]) -> list[ItemResult]:
        self.world.point("mkt.cancel.before")
        results = []
        for request in requests:
            self.world.amazon_cancellations.append((request.marketplace_order_id, request.reason))
            order = self.world.amazon[request.marketplace_order_id]
            self.world.amazon[request.marketplace_order_id] = order.model_copy(
                update={"status": OrderStatus.CANCELLED}
            )
            results.append(ItemResult(key=request.marketplace_order_id, ok=True))
        self.world.point("mkt.cancel.after")
        return results

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemResult]:
        self.world.point("mkt.stock.before")
        self.world.stock_push_calls.append(list(levels))
        results = []
        for level in levels:
            if level.sku in self.world.failing_skus:
                results.append(
                    ItemResult(key=level.sku, ok=False, code="8541", message="SKU not in catalog")
                )
                continue
            self.world.amazon_stock[level.sku] = level.quantity
            results.append(ItemResult(key=level.sku, ok=True))
        return results

    async def listed_quantities(self, skus: Sequence[str]) -> dict[str, int] | None:
        if not self.world.lists_quantities:
            return None
        return {s: self.world.amazon_stock[s] for s in skus if s in self.world.amazon_stock}


class FakeShop(ShopConnector):
    settings_model = FakeSettings
    identification_attributes: ClassVar[frozenset[str]] = frozenset({"sku", "ean", "meta:"})

    @property
    def world(self) -> World:
        return WORLDS.setdefault(self.settings.world, World())  # type: ignore[attr-defined]

    async def check(self) -> CheckResult:
        if self.settings.token is not None and self.settings.token.get_secret_value() == "wrong":  # type: ignore[attr-defined]
            return CheckResult(ok=False, message="shop rejected the token")
        return CheckResult(ok=True, message="fake shop reachable")

    async def resolve_products(self, attribute: str, skus: Sequence[str]) -> dict[str, ProductRef]:
        self.world.point("shop.resolve")
        return {
            s: ProductRef(sku=s, product_id=self.world.products[s])
            for s in skus
            if s in self.world.products
        }

    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        self.world.point("shop.find")
        found = await self.find_orders(marketplace_order_id)
        return found[0] if found else None

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        return [
            ShopOrderRef(id=o.id, number=o.id, cancelled=o.cancelled, total=o.order.total)
            for o in self.world.shop_order_for(marketplace_order_id)
        ]

    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        self.world.point("shop.create.before")
        missing = sorted({line.sku for line in order.lines if line.sku not in products})
        if missing:
            raise ItemError(FailureReason.UNKNOWN_SKU, f"no fake product for {', '.join(missing)}")
        if order.buyer.name == "REJECT":
            raise FatalAPIError(
                "customer name is invalid", platform="fake", operation="create", status=422
            )
        shop_id = f"S{len(self.world.shop_orders) + 1}"
        self.world.shop_orders.append(
            ShopOrder(id=shop_id, marketplace_order_id=order.marketplace_order_id, order=order)
        )
        for sku, qty in order.quantities_by_sku().items():
            self.world.set_stock(sku, self.world.stock.get(sku, 0) - qty)
        self.world.point("shop.create.after")
        return ShopOrderRef(id=shop_id, number=shop_id)

    async def complete_order(self, order: Order, ref: ShopOrderRef) -> ShopOrderRef:
        self.world.point("shop.complete")
        return ref

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        self.world.point("shop.cancel.before")
        for shop_order in self.world.shop_orders:
            if shop_order.id == ref.id:
                shop_order.cancelled = True
        self.world.point("shop.cancel.after")

    async def changes_since(self, cursor: str | None) -> ShopChanges:
        self.world.point("shop.changes")
        start = int(cursor) if cursor is not None else len(self.world.shop_events)
        events = self.world.shop_events[start : start + self.world.page_size]
        end = start + len(events)
        return ShopChanges(
            shipments=tuple(e for _, e in events if isinstance(e, Shipment)),
            cancellations=tuple(e for _, e in events if isinstance(e, Cancellation)),
            rejected=tuple(e for _, e in events if isinstance(e, RejectedChange)),
            cursor=str(end),
            has_more=end < len(self.world.shop_events),
        )

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        self.world.point("shop.stock")
        since = datetime.fromisoformat(cursor) if cursor else None
        levels = tuple(
            StockLevel(sku=sku, quantity=qty)
            for sku, qty in sorted(self.world.stock.items())
            if since is None or self.world.stock_changed[sku] >= since
        )
        return StockPage(levels=levels, cursor=self.world.now.isoformat(), has_more=False)


@hookimpl
def register_platforms(register):  # noqa: ANN001, ANN201
    register(
        PlatformSpec(
            name="fakemarket",
            role="marketplace",
            connector=FakeMarketplace,
            settings_model=FakeSettings,
        )
    )
    register(
        PlatformSpec(name="fakeshop", role="shop", connector=FakeShop, settings_model=FakeSettings)
    )


__all__ = ["Crash", "FakeMarketplace", "FakeShop", "RetriableAPIError", "World", "WORLDS", "T0"]
