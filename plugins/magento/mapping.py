"""Magento 2 REST JSON ↔ :mod:`engine.models`.

Amounts: every Magento total is derived from Amazon's figures, never recomputed from
the catalogue. Unit prices carry 4 decimals (Magento stores ``decimal(20,4)``), row
totals and order totals 2. ``grand_total`` is Amazon's order total. ``base_*`` mirror
the order currency (rate 1): the Amazon amounts are the only ones we have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.models import Address, Cancellation, Order, ProductRef, Shipment, ShipmentLine
from plugins.magento.settings import MagentoSettings

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CANCEL_MARKER = "[ordersync] cancelled because the marketplace cancelled the order"

CENT = Decimal("0.01")
UNIT = Decimal("0.0001")

JSON = dict[str, Any]


def to_magento_time(value: datetime) -> str:
    """Magento timestamps: UTC, ``YYYY-MM-DD HH:MM:SS``."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_magento_time(value: str) -> datetime:
    return datetime.strptime(value[:19], TIME_FORMAT).replace(tzinfo=UTC)


def dec(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


def num(value: Decimal, step: Decimal = CENT) -> float:
    """A JSON number; a float's repr of a 2- or 4-decimal value is that same decimal."""
    return float(value.quantize(step, rounding=ROUND_HALF_UP))


# --- amounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineAmounts:
    qty: int
    row_total: Decimal
    row_total_incl_tax: Decimal
    tax: Decimal
    discount: Decimal

    @property
    def price(self) -> Decimal:
        return (self.row_total / self.qty).quantize(UNIT, rounding=ROUND_HALF_UP)

    @property
    def price_incl_tax(self) -> Decimal:
        return (self.row_total_incl_tax / self.qty).quantize(UNIT, rounding=ROUND_HALF_UP)

    @property
    def tax_percent(self) -> Decimal:
        if not self.row_total:
            return Decimal(0)
        return (self.tax * 100 / self.row_total).quantize(CENT, rounding=ROUND_HALF_UP)

    def __add__(self, other: LineAmounts) -> LineAmounts:
        return LineAmounts(
            qty=self.qty + other.qty,
            row_total=self.row_total + other.row_total,
            row_total_incl_tax=self.row_total_incl_tax + other.row_total_incl_tax,
            tax=self.tax + other.tax,
            discount=self.discount + other.discount,
        )


@dataclass(frozen=True)
class OrderAmounts:
    lines: tuple[LineAmounts, ...]
    subtotal: Decimal
    subtotal_incl_tax: Decimal
    shipping_amount: Decimal
    shipping_incl_tax: Decimal
    shipping_tax: Decimal
    shipping_discount: Decimal
    tax: Decimal
    discount: Decimal
    """Positive; Magento stores the order's discount as a negative number."""
    grand_total: Decimal

    @property
    def computed_total(self) -> Decimal:
        return self.subtotal + self.shipping_amount + self.tax - self.discount


def order_amounts(order: Order) -> OrderAmounts:
    """Split Amazon's prices into Magento's net/gross fields.

    Tax-inclusive orders (EU): unit and shipping prices are gross, net = gross - tax.
    Tax-exclusive orders (US): they are net, gross = net + tax.
    """
    lines = []
    for line in order.lines:
        base = line.subtotal.amount
        tax = line.tax.amount
        net, gross = (base - tax, base) if order.taxes_included else (base, base + tax)
        lines.append(LineAmounts(line.quantity, net, gross, tax, line.discount.amount))
    ship = order.shipping_price.amount
    ship_tax = order.shipping_tax.amount
    ship_net, ship_gross = (
        (ship - ship_tax, ship) if order.taxes_included else (ship, ship + ship_tax)
    )
    return OrderAmounts(
        lines=tuple(lines),
        subtotal=sum((x.row_total for x in lines), Decimal(0)),
        subtotal_incl_tax=sum((x.row_total_incl_tax for x in lines), Decimal(0)),
        shipping_amount=ship_net,
        shipping_incl_tax=ship_gross,
        shipping_tax=ship_tax,
        shipping_discount=order.shipping_discount.amount,
        tax=sum((x.tax for x in lines), Decimal(0)) + ship_tax,
        discount=sum((x.discount for x in lines), Decimal(0)) + order.shipping_discount.amount,
        grand_total=order.total.amount,
    )


def _with_base(fields: dict[str, float]) -> dict[str, float]:
    return {**fields, **{f"base_{k}": v for k, v in fields.items()}}


def order_money_fields(a: OrderAmounts) -> dict[str, float]:
    return _with_base(
        {
            "subtotal": num(a.subtotal),
            "subtotal_incl_tax": num(a.subtotal_incl_tax),
            "shipping_amount": num(a.shipping_amount),
            "shipping_incl_tax": num(a.shipping_incl_tax),
            "shipping_tax_amount": num(a.shipping_tax),
            "shipping_discount_amount": num(a.shipping_discount),
            "tax_amount": num(a.tax),
            "discount_amount": num(-a.discount),
            "grand_total": num(a.grand_total),
            "total_paid": num(a.grand_total),
            "total_due": 0.0,
        }
    )


def item_money_fields(x: LineAmounts) -> dict[str, float]:
    return _with_base(
        {
            "price": num(x.price, UNIT),
            "original_price": num(x.price, UNIT),
            "price_incl_tax": num(x.price_incl_tax, UNIT),
            "row_total": num(x.row_total),
            "row_total_incl_tax": num(x.row_total_incl_tax),
            "tax_amount": num(x.tax),
            "discount_amount": num(x.discount),
        }
    ) | {"tax_percent": num(x.tax_percent)}


# --- addresses -------------------------------------------------------------------------


def split_name(name: str | None) -> tuple[str, str]:
    """Magento needs a first and a last name; ``-`` fills a missing one."""
    parts = (name or "").split()
    if not parts:
        return "-", "-"
    if len(parts) == 1:
        return parts[0], "-"
    return " ".join(parts[:-1]), parts[-1]


def _address_core(addr: Address, email: str, settings: MagentoSettings) -> JSON:
    first, last = split_name(addr.name)
    street = [s for s in (addr.line1, addr.line2, addr.line3) if s] or ["-"]
    out: JSON = {
        "firstname": first,
        "lastname": last,
        "street": street,
        "city": addr.city or "-",
        "postcode": addr.postal_code or "-",
        "country_id": addr.country_code or "",
        "telephone": addr.phone or settings.placeholder_phone,
        "email": email,
        "region": addr.state_or_region or "",
    }
    if addr.company:
        out["company"] = addr.company
    return out


def order_address(addr: Address, kind: str, email: str, settings: MagentoSettings) -> JSON:
    """``sales-data-order-address-interface``."""
    return {"address_type": kind, **_address_core(addr, email, settings)}


def quote_address(addr: Address, email: str, settings: MagentoSettings) -> JSON:
    """``quote-data-address-interface``; Magento resolves ``region_id`` from ``region_code``."""
    out = _address_core(addr, email, settings)
    out["region_code"] = addr.state_or_region or ""
    out["region_id"] = 0
    return out


def buyer_email(order: Order, settings: MagentoSettings) -> str:
    return order.buyer.email or settings.placeholder_email


# --- orders ----------------------------------------------------------------------------


def magento_sku(ref: ProductRef) -> str:
    """The Magento SKU :meth:`MagentoConnector.resolve_products` found for a product."""
    return ref.shop_sku or ref.sku


def order_entity(
    order: Order,
    products: Mapping[str, ProductRef],
    settings: MagentoSettings,
    store_id: int,
) -> JSON:
    """``sales-data-order-interface`` for ``PUT /V1/orders/create``: one item per line."""
    amounts = order_amounts(order)
    email = buyer_email(order, settings)
    ship_to = order.shipping_address or Address()
    bill_to = order.billing_address or ship_to
    first, last = split_name(order.buyer.name or ship_to.name)
    items = []
    for line, money in zip(order.lines, amounts.lines, strict=True):
        ref = products[line.sku]
        items.append(
            {
                "sku": magento_sku(ref),
                "name": line.title or ref.title or magento_sku(ref),
                "product_id": int(ref.product_id),
                "product_type": "simple",
                "qty_ordered": line.quantity,
                "ext_order_item_id": line.line_id,
                "store_id": store_id,
                **item_money_fields(money),
            }
        )
    entity: JSON = {
        "ext_order_id": order.marketplace_order_id,
        "store_id": store_id,
        "state": "processing",
        "status": "processing",
        "customer_is_guest": 1,
        "customer_group_id": 0,
        "customer_email": email,
        "customer_firstname": first,
        "customer_lastname": last,
        **currency_fields(order.currency),
        "is_virtual": 0,
        "total_qty_ordered": sum(line.quantity for line in order.lines),
        "total_item_count": len(items),
        "shipping_description": shipping_description(order, settings),
        **order_money_fields(amounts),
        "items": items,
        "billing_address": order_address(bill_to, "billing", email, settings),
        "payment": {
            "method": settings.payment_method,
            "account_status": "",
            "additional_information": [f"Amazon order {order.marketplace_order_id}"],
            "cc_last4": "",
            **_with_base(
                {
                    "amount_ordered": num(amounts.grand_total),
                    "amount_paid": num(amounts.grand_total),
                    "shipping_amount": num(amounts.shipping_amount),
                }
            ),
        },
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": order_address(ship_to, "shipping", email, settings),
                        "method": f"{settings.shipping_carrier_code}_{settings.shipping_method_code}",
                        "total": _with_base(
                            {
                                "shipping_amount": num(amounts.shipping_amount),
                                "shipping_incl_tax": num(amounts.shipping_incl_tax),
                                "shipping_tax_amount": num(amounts.shipping_tax),
                                "shipping_discount_amount": num(amounts.shipping_discount),
                            }
                        ),
                    },
                    "items": [],
                }
            ]
        },
    }
    if settings.use_amazon_increment_id:
        entity["increment_id"] = f"{settings.increment_id_prefix}{order.marketplace_order_id}"
    return entity


def shipping_description(order: Order, settings: MagentoSettings) -> str:
    if order.shipping_service:
        return f"{settings.shipping_description} - {order.shipping_service}"
    return settings.shipping_description


@dataclass(frozen=True)
class CartLine:
    """Amazon lines merged per Magento SKU: a Magento cart has one item per SKU."""

    sku: str
    amounts: LineAmounts
    line_ids: tuple[str, ...]


def cart_lines(order: Order, products: Mapping[str, ProductRef]) -> list[CartLine]:
    merged: dict[str, CartLine] = {}
    for line, money in zip(order.lines, order_amounts(order).lines, strict=True):
        sku = magento_sku(products[line.sku])
        prev = merged.get(sku)
        if prev is None:
            merged[sku] = CartLine(sku, money, (line.line_id,))
        else:
            merged[sku] = CartLine(sku, prev.amounts + money, (*prev.line_ids, line.line_id))
    return list(merged.values())


def aligned_entity(
    order: Order, placed: JSON, lines: Sequence[CartLine], settings: MagentoSettings
) -> JSON:
    """``POST /V1/orders`` body that puts Amazon's amounts and id on a cart-placed order."""
    by_sku = {line.sku: line for line in lines}
    items = []
    for item in placed.get("items") or []:
        line = by_sku.get(item.get("sku", ""))
        if line is None or item.get("parent_item_id"):
            continue
        items.append(
            {
                "item_id": item["item_id"],
                "sku": item["sku"],
                "ext_order_item_id": ",".join(line.line_ids),
                **item_money_fields(line.amounts),
            }
        )
    return {
        "entity_id": placed["entity_id"],
        "ext_order_id": order.marketplace_order_id,
        "customer_email": placed.get("customer_email") or buyer_email(order, settings),
        "state": "processing",
        "status": "processing",
        "shipping_description": shipping_description(order, settings),
        **currency_fields(order.currency),
        **order_money_fields(order_amounts(order)),
        "items": items,
    }


def placed_for(
    raw: JSON, order: Order, lines: Sequence[CartLine], settings: MagentoSettings
) -> bool:
    """Whether an unstamped order is the cart checkout of ``order``: our payment method,
    the same SKUs and quantities, the same recipient's last name and postcode."""
    if raw.get("ext_order_id") or (raw.get("payment") or {}).get("method") != (
        settings.payment_method
    ):
        return False
    items: dict[str, Decimal] = {}
    for item in raw.get("items") or []:
        if not item.get("parent_item_id"):
            key = str(item.get("sku") or "").casefold()
            items[key] = items.get(key, Decimal(0)) + dec(item.get("qty_ordered"))
    if items != {line.sku.casefold(): Decimal(line.amounts.qty) for line in lines}:
        return False
    ship_to = order.shipping_address or Address()
    assignments = (raw.get("extension_attributes") or {}).get("shipping_assignments") or [{}]
    placed_to = (assignments[0].get("shipping") or {}).get("address") or {}
    _, last = split_name(ship_to.name)
    return (
        str(placed_to.get("lastname") or "").casefold() == last.casefold()
        and str(placed_to.get("postcode") or "").casefold()
        == (ship_to.postal_code or "-").casefold()
    )


def currency_fields(currency: str) -> JSON:
    """All currency codes are the order's; rates are 1 (Amazon gives no conversion)."""
    codes = ("order", "base", "global", "store")
    rates = ("base_to_global", "base_to_order", "store_to_base", "store_to_order")
    return {f"{c}_currency_code": currency for c in codes} | {f"{r}_rate": 1 for r in rates}


def has_marker(order: JSON, marker: str) -> bool:
    return any(marker in (h.get("comment") or "") for h in order.get("status_histories") or [])


# --- products and stock ----------------------------------------------------------------


def attribute_value(product: JSON, attribute: str, ean_code: str) -> str | None:
    """The identification value of a product: its ``sku``, entity ``id`` or EAN attribute."""
    if attribute == "sku":
        return str(product["sku"])
    if attribute == "id":
        return str(product["id"]) if product.get("id") is not None else None
    for attr in product.get("custom_attributes") or []:
        if attr.get("attribute_code") == ean_code and attr.get("value") not in (None, ""):
            return str(attr["value"])
    return None


def product_ref(product: JSON, key: str) -> ProductRef:
    return ProductRef(
        sku=key,
        product_id=str(product["id"]),
        shop_sku=str(product["sku"]),
        title=product.get("name"),
    )


def unshipped_quantity(item: JSON) -> int:
    """Units of an order item still to ship: ordered less cancelled and less what has
    left (shipped) or was refunded, whichever is more; never below 0."""
    left = dec(item.get("qty_ordered")) - dec(item.get("qty_canceled"))
    left -= max(dec(item.get("qty_shipped")), dec(item.get("qty_refunded")))
    return max(0, int(left))


def available_quantity(source_item: JSON) -> int:
    """Sellable units at a source: 0 when out of stock or negative, whole units only."""
    if int(source_item.get("status") or 0) != 1:
        return 0
    return max(0, int(dec(source_item.get("quantity"))))


# --- shipments and cancellations -------------------------------------------------------


class Unreadable(ValueError):
    """A shop record that cannot be read; the message says what is wrong."""


def _time(raw: JSON, name: str) -> datetime:
    try:
        return parse_magento_time(str(raw[name]))
    except (KeyError, TypeError, ValueError):
        raise Unreadable(f"{name} {raw.get(name)!r} is not a Magento timestamp") from None


def _quantity(value: Any) -> int:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise Unreadable(f"quantity {value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise Unreadable(f"quantity {value!r} is not a whole number")
    return int(number)


def shipment_lines(raw: JSON, order: JSON) -> list[ShipmentLine]:
    """The shipped units per order line (child items of a configurable are skipped)."""
    order_items = {item.get("item_id"): item for item in order.get("items") or []}
    lines = []
    for item in raw.get("items") or []:
        qty = _quantity(item.get("qty"))
        order_item = order_items.get(item.get("order_item_id"))
        if qty <= 0 or (order_item and order_item.get("parent_item_id")):
            continue
        sku = (order_item or item).get("sku")
        if not sku:
            raise Unreadable(f"shipment item {item.get('entity_id')} has no SKU")
        ext_line = (order_item or {}).get("ext_order_item_id") or None
        line_id = ext_line if ext_line and "," not in ext_line else None
        lines.append(ShipmentLine(sku=str(sku), quantity=qty, line_id=line_id))
    if not lines:
        raise Unreadable("the shipment has no item with a quantity")
    return lines


def counted_tracks(raw: JSON, delay: timedelta) -> list[JSON]:
    """The tracks a shipment is confirmed with: those saved together with its first
    track, if that came within ``delay`` of the shipment. A track added later cannot be
    given its own items any more (the shipment went out untracked or with the others)."""
    created = _time(raw, "created_at")
    tracks = [t for t in raw.get("tracks") or [] if str(t.get("track_number") or "").strip()]
    if not tracks:
        return []
    stamps = {id(t): _time(t, "created_at") if t.get("created_at") else created for t in tracks}
    tracks.sort(key=lambda t: (stamps[id(t)], int(t.get("entity_id") or 0)))
    first = stamps[id(tracks[0])]
    if first > created + delay:
        return []
    return [t for t in tracks if stamps[id(t)] == first]


def _even(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def split_lines(lines: Sequence[ShipmentLine], parts: int) -> list[list[ShipmentLine]]:
    """Lines spread over ``parts`` parcels in order: whole lines when there are enough,
    otherwise units, as evenly as possible (fewer parcels than units are never empty)."""
    if len(lines) >= parts:
        groups, start = [], 0
        for size in _even(len(lines), parts):
            groups.append(list(lines[start : start + size]))
            start += size
        return groups
    units = [(line, n) for line in lines for n in range(line.quantity)]
    groups = []
    start = 0
    for size in _even(len(units), min(parts, len(units))):
        chunk: dict[int, ShipmentLine] = {}
        for line, _ in units[start : start + size]:
            prev = chunk.get(id(line))
            qty = prev.quantity + 1 if prev else 1
            chunk[id(line)] = line.model_copy(update={"quantity": qty})
        groups.append(list(chunk.values()))
        start += size
    return groups


def shipments_from(
    raw: JSON, order: JSON, now: datetime, delay: timedelta
) -> list[Shipment] | None:
    """A Magento shipment → one :class:`Shipment` per counted track (the first keeps the
    shipment's id), or an untracked one once ``delay`` has passed; ``None`` while it may
    still get a track, ``[]`` when the order is not from the marketplace.

    Raises :class:`Unreadable` for a record that cannot be read.
    """
    marketplace_id = order.get("ext_order_id")
    if not marketplace_id:
        return []
    lines = shipment_lines(raw, order)
    created = _time(raw, "created_at")
    tracks = counted_tracks(raw, delay)
    if not tracks and now < created + delay:
        return None
    packages = list(zip(tracks, split_lines(lines, len(tracks)), strict=False)) or [({}, lines)]
    out = []
    for n, (track, part) in enumerate(packages):
        code = track.get("carrier_code") or None
        carrier = track.get("title") if code in (None, "custom") else code
        suffix = f"-{track.get('entity_id')}" if n else ""
        out.append(
            Shipment(
                shipment_id=f"{raw['entity_id']}{suffix}",
                marketplace_order_id=str(marketplace_id),
                shop_order_id=str(raw["order_id"]),
                lines=tuple(part),
                carrier=carrier or None,
                tracking_number=str(track.get("track_number") or "").strip() or None,
                shipping_method=order.get("shipping_description"),
                shipped_at=created,
            )
        )
    return out


def cancellation_from(order: JSON) -> Cancellation | None:
    """A cancelled Amazon order, unless ordersync cancelled it on Amazon's request.

    Raises :class:`Unreadable` for a record that cannot be read.
    """
    if order.get("state") != "canceled" or not order.get("ext_order_id"):
        return None
    if has_marker(order, CANCEL_MARKER):
        return None
    return Cancellation(
        marketplace_order_id=str(order["ext_order_id"]),
        shop_order_id=str(order["entity_id"]),
        cancelled_at=_time(order, "updated_at" if order.get("updated_at") else "created_at"),
    )
