"""Normalized domain models shared by the engine and every platform plugin.

Money is always ``Decimal`` plus an ISO 4217 code; datetimes are timezone-aware.
No model here knows any platform's JSON: plugins map to and from them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.currencies import ISO_4217


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


AMOUNT_LIMIT = Decimal("1e12")


class Money(_Model):
    """An exact amount in one currency."""

    amount: Annotated[Decimal, Field(allow_inf_nan=False, gt=-AMOUNT_LIMIT, lt=AMOUNT_LIMIT)]
    """Finite and within ±10^12 (checked in pydantic-core: money is on every hot path)."""
    currency: str

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.upper()
        if code not in ISO_4217:
            raise ValueError(f"unknown currency code {value!r}")
        return code

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal("0"), currency=currency)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def times(self, factor: int) -> Money:
        return Money(amount=self.amount * factor, currency=self.currency)


Text = Annotated[str, Field(max_length=1000)]


class Address(_Model):
    name: Text | None = None
    company: Text | None = None
    line1: Text | None = None
    line2: Text | None = None
    line3: Text | None = None
    city: Text | None = None
    district: Text | None = None
    state_or_region: Text | None = None
    postal_code: Text | None = None
    country_code: str | None = None
    phone: Text | None = None

    @field_validator("country_code")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 2 or not value.isalpha():
            raise ValueError(f"country code must be ISO 3166-1 alpha-2, got {value!r}")
        return value.upper()

    def missing_for_shipping(self) -> list[str]:
        """Fields a shop needs to create a shippable order that are empty here."""
        required = ("name", "line1", "city", "postal_code", "country_code")
        return [field for field in required if not getattr(self, field)]


class Buyer(_Model):
    name: Text | None = None
    email: Text | None = None
    company: Text | None = None
    tax_id: Text | None = None


class OrderStatus(StrEnum):
    """Marketplace-side order status, normalized."""

    PENDING = "pending"
    UNSHIPPED = "unshipped"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    UNFULFILLABLE = "unfulfillable"


class FulfillmentChannel(StrEnum):
    MERCHANT = "merchant"
    MARKETPLACE = "marketplace"


class OrderLine(_Model):
    """One line of a marketplace order; ``sku`` is the seller SKU."""

    line_id: str
    sku: str = Field(min_length=1, max_length=200)
    title: Text | None = None
    quantity: int = Field(gt=0, le=100_000)
    unit_price: Money
    tax: Money
    """Total tax for the whole line (all units)."""
    discount: Money
    """Total promotion discount for the whole line (positive number)."""
    quantity_shipped: int = 0

    @model_validator(mode="after")
    def _one_currency(self) -> OrderLine:
        currencies = {self.unit_price.currency, self.tax.currency, self.discount.currency}
        if len(currencies) != 1:
            raise ValueError(f"line {self.line_id} mixes currencies {sorted(currencies)}")
        if self.unit_price.amount < 0 or self.tax.amount < 0 or self.discount.amount < 0:
            raise ValueError(f"line {self.line_id} has a negative amount")
        return self

    @property
    def subtotal(self) -> Money:
        return self.unit_price.times(self.quantity)


class Order(_Model):
    """A marketplace order as the engine sees it."""

    marketplace_order_id: str = Field(min_length=1, max_length=100)
    marketplace_id: str
    status: OrderStatus
    fulfillment_channel: FulfillmentChannel = FulfillmentChannel.MERCHANT
    purchased_at: AwareDatetime
    updated_at: AwareDatetime
    currency: str
    buyer: Buyer = Buyer()
    shipping_address: Address | None = None
    billing_address: Address | None = None
    lines: tuple[OrderLine, ...]
    shipping_price: Money
    shipping_tax: Money
    shipping_discount: Money
    total: Money
    taxes_included: bool = False
    """True when unit and shipping prices already include tax (EU marketplaces)."""
    shipping_service: str | None = None
    is_prime: bool = False
    is_business: bool = False
    cancellation_requested: bool = False
    """The buyer asked to cancel; the seller still has to act."""
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return Money(amount=Decimal(0), currency=value).currency

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        moneys = [self.shipping_price, self.shipping_tax, self.shipping_discount, self.total]
        for line in self.lines:
            moneys.append(line.unit_price)
        wrong = {m.currency for m in moneys} - {self.currency}
        if wrong:
            raise ValueError(
                f"order {self.marketplace_order_id} mixes currencies {sorted(wrong)} "
                f"with {self.currency}"
            )
        return self

    @property
    def importable(self) -> bool:
        """Whether the order may be created in a shop (paid and not cancelled)."""
        return self.status in (
            OrderStatus.UNSHIPPED,
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
        )

    def quantities_by_sku(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.sku] = out.get(line.sku, 0) + line.quantity
        return out


class RejectedOrder(_Model):
    """An order the marketplace returned that cannot be read (bad or absurd data).

    Yielded instead of raising, so one bad order never blocks the window.
    """

    marketplace_order_id: str
    message: str


class ProductRef(_Model):
    """A shop product matched to a marketplace SKU."""

    sku: str
    """The marketplace seller SKU (= value of the identification attribute)."""
    product_id: str
    variant_id: str | None = None
    shop_sku: str | None = None
    """The shop's own SKU, when the shop addresses products by it."""
    title: str | None = None


class ShopOrderRef(_Model):
    """Where an order lives in the shop."""

    id: str
    number: str | None = None
    cancelled: bool = False
    total: Money | None = None
    """The order's grand total as the shop holds it, when the lookup returns it."""


class ShipmentLine(_Model):
    sku: str
    quantity: int = Field(gt=0)
    line_id: str | None = None
    """Marketplace order line id when the shop kept it."""


class Shipment(_Model):
    """A shipment made in the shop for an imported marketplace order."""

    shipment_id: str
    """Stable id in the shop, unique per shop (the dedupe key)."""
    marketplace_order_id: str
    shop_order_id: str
    lines: tuple[ShipmentLine, ...]
    carrier: str | None = None
    tracking_number: str | None = None
    shipping_method: str | None = None
    shipped_at: AwareDatetime


class Cancellation(_Model):
    """An order cancelled in the shop."""

    marketplace_order_id: str
    shop_order_id: str
    cancelled_at: AwareDatetime
    reason: str | None = None


class CancelRequest(_Model):
    """Ask the marketplace to cancel an order with a reason code."""

    marketplace_order_id: str
    reason: str
    lines: tuple[OrderLine, ...] = ()


class StockLevel(_Model):
    """Available quantity of one SKU (the identification attribute's value)."""

    sku: str
    quantity: int
    updated_at: datetime | None = None


class RejectedChange(_Model):
    """A shop-side shipment or cancellation that cannot be read (bad or absurd data).

    Returned in :attr:`ShopChanges.rejected` instead of raising, so one bad record
    never blocks the page; the engine records it as a typed failure.
    """

    kind: Literal["shipment", "cancellation"]
    key: str
    """The shop's id of the record (fulfilment id, order id)."""
    marketplace_order_id: str | None = None
    message: str


class ShopChanges(_Model):
    """A page of shop-side events plus the cursor to resume after it."""

    shipments: tuple[Shipment, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()
    rejected: tuple[RejectedChange, ...] = ()
    cursor: str | None = None
    has_more: bool = False


class StockPage(_Model):
    """A page of stock levels plus the cursor to resume after it."""

    levels: tuple[StockLevel, ...] = ()
    cursor: str | None = None
    has_more: bool = False


class ItemResult(_Model):
    """The outcome of one item in a batch write (a SKU, an order)."""

    key: str
    ok: bool
    code: str | None = None
    message: str | None = None


class CheckResult(_Model):
    """Outcome of a test-connection call."""

    ok: bool
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
