"""Records of the Shopify simulator: what a shop holds, in Shopify's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

ZERO = Decimal("0")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: str | int | None, kind: str) -> int | None:
    """The number in ``gid://shopify/<kind>/<n>`` (or a bare number); ``None`` otherwise."""
    text = str(value or "").strip()
    if text.isdigit():
        return int(text)
    prefix = f"gid://shopify/{kind}/"
    if text.startswith(prefix) and text[len(prefix) :].split("?")[0].isdigit():
        return int(text[len(prefix) :].split("?")[0])
    return None


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class UserError(Exception):
    """A mutation input error: becomes a ``userErrors`` entry."""

    def __init__(
        self, field_path: list[str] | None, message: str, code: str | None = "INVALID"
    ) -> None:
        super().__init__(message)
        self.field = field_path
        self.message = message
        self.code = code


@dataclass
class Location:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    active: bool = True


@dataclass
class Metafield:
    id: int
    namespace: str
    key: str
    value: str
    created_at: datetime
    updated_at: datetime
    type: str = "single_line_text_field"


@dataclass
class Product:
    id: int
    title: str
    handle: str
    created_at: datetime
    updated_at: datetime
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class Variant:
    id: int
    product_id: int
    inventory_item_id: int
    sku: str | None
    barcode: str | None
    title: str
    price: Decimal
    created_at: datetime
    updated_at: datetime
    inventory_policy: str = "DENY"
    metafields: dict[tuple[str, str], Metafield] = field(default_factory=dict)


@dataclass
class InventoryItem:
    id: int
    variant_id: int
    created_at: datetime
    updated_at: datetime
    tracked: bool = True


@dataclass
class InventoryLevel:
    id: int
    item_id: int
    location_id: int
    created_at: datetime
    updated_at: datetime
    available: int = 0
    committed: int = 0

    writes: ClassVar[int] = 0
    """Counts every write to any level, so a reader can tell a cached page list is stale."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        InventoryLevel.writes += 1

    @property
    def on_hand(self) -> int:
        return self.available + self.committed

    def quantity(self, name: str) -> int:
        return {
            "available": self.available,
            "committed": self.committed,
            "on_hand": self.on_hand,
        }.get(name, 0)


@dataclass
class TaxLine:
    title: str
    rate: Decimal
    amount: Decimal
    channel_liable: bool = False


@dataclass
class LineItem:
    id: int
    title: str
    quantity: int
    price: Decimal
    sku: str | None = None
    variant_id: int | None = None
    product_id: int | None = None
    variant_title: str | None = None
    tax_lines: list[TaxLine] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)
    requires_shipping: bool = True
    taxable: bool = True
    discount: Decimal = ZERO
    claimed_location_id: int | None = None
    fulfilled: int = 0

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity

    @property
    def tax(self) -> Decimal:
        return sum((t.amount for t in self.tax_lines), ZERO)


@dataclass
class ShippingLine:
    id: int
    title: str
    price: Decimal
    code: str | None = None
    source: str | None = None
    tax_lines: list[TaxLine] = field(default_factory=list)
    discount: Decimal = ZERO


@dataclass
class Transaction:
    id: int
    kind: str
    status: str
    amount: Decimal
    gateway: str | None
    created_at: datetime
    processed_at: datetime | None = None


@dataclass
class Tracking:
    company: str | None
    number: str | None
    url: str | None = None


@dataclass
class FulfillmentLine:
    id: int
    line_item_id: int
    quantity: int


@dataclass
class Fulfillment:
    id: int
    order_id: int
    name: str
    created_at: datetime
    updated_at: datetime
    lines: list[FulfillmentLine]
    tracking: list[Tracking]
    status: str = "SUCCESS"
    location_id: int | None = None


@dataclass
class Order:
    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    processed_at: datetime
    currency: str
    line_items: list[LineItem]
    shipping_lines: list[ShippingLine] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    fulfillment_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    custom_attributes: list[tuple[str, str]] = field(default_factory=list)
    order_tax_lines: list[TaxLine] = field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    note: str | None = None
    po_number: str | None = None
    source_name: str | None = None
    source_identifier: str | None = None
    taxes_included: bool = False
    test: bool = False
    financial_status: str = "PENDING"
    shipping_address: dict[str, Any] | None = None
    billing_address: dict[str, Any] | None = None
    discount_code: str | None = None
    item_discount: Decimal = ZERO
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    staff_note: str | None = None
    indexed_from: datetime | None = None
    """When the order was written (sub-second); the search index sees it a lag later."""

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def line_total(self) -> Decimal:
        return sum((li.total for li in self.line_items), ZERO)

    @property
    def subtotal(self) -> Decimal:
        return self.line_total - self.item_discount

    @property
    def shipping(self) -> Decimal:
        return sum((s.price - s.discount for s in self.shipping_lines), ZERO)

    @property
    def tax(self) -> Decimal:
        lines = sum((li.tax for li in self.line_items), ZERO)
        shipping = sum((t.amount for s in self.shipping_lines for t in s.tax_lines), ZERO)
        return lines + shipping + sum((t.amount for t in self.order_tax_lines), ZERO)

    @property
    def discounts(self) -> Decimal:
        return self.item_discount + sum((s.discount for s in self.shipping_lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping + (ZERO if self.taxes_included else self.tax)

    @property
    def received(self) -> Decimal:
        return sum(
            (
                t.amount
                for t in self.transactions
                if t.status == "SUCCESS" and t.kind in ("SALE", "CAPTURE")
            ),
            ZERO,
        )

    @property
    def fulfillment_status(self) -> str:
        shipped = sum(li.fulfilled for li in self.line_items)
        if shipped == 0:
            return "UNFULFILLED"
        if all(li.fulfilled >= li.quantity for li in self.line_items):
            return "FULFILLED"
        return "PARTIALLY_FULFILLED"


@dataclass
class BulkOperation:
    id: int
    query: str
    created_at: datetime
    ready_at: float
    lines: list[dict[str, Any]]
    root_count: int
    completed_at: datetime | None = None
    url: str | None = None
