"""WooCommerce JSON ↔ :mod:`engine.models`, without any I/O.

Totals: WooCommerce computes taxes itself from its tax tables (``tax_lines`` are
read-only). With ``tax_handling="shop"`` the lines and shipping carry *net*
amounts (Amazon's tax taken out of tax-inclusive prices) and WooCommerce adds its
tax; any cent left between its total and Amazon's is then booked as a non-taxable
fee line (:func:`adjustment_fee`). With ``tax_handling="amazon"`` the shop taxes
nothing: tax-inclusive prices go in as they are, and for tax-exclusive orders
Amazon's tax becomes a non-taxable fee line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from engine.errors import FailureReason, ItemError
from engine.models import (
    Address,
    Cancellation,
    Money,
    Order,
    OrderLine,
    ProductRef,
    Shipment,
    ShipmentLine,
    ShopOrderRef,
    StockLevel,
)
from plugins.woocommerce.settings import WooCommerceSettings

CENT = Decimal("0.01")
LINE_ID_META = "_amazon_order_item_id"
LINE_SKU_META = "_amazon_sku"
MARKETPLACE_META = "_amazon_marketplace_id"
CANCELLED_BY_META = "_ordersync_cancelled_by"
ADJUSTMENT_META = "_ordersync_adjustment"
CANCELLED_BY_US = "ordersync"
TAX_FEE_NAME = "Tax collected by Amazon"
ROUNDING_FEE_NAME = "Rounding difference to the Amazon order total"
UNTRACKED = "complete"
"""Package key of a shipped-status order's remainder when no tracking is recorded."""
# The currencies the documented ``currency`` enum of ``POST /orders`` accepts.
WC_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTC
    BTN BWP BYR BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GGP GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR IQD IRR IRT
    ISK JEP JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
    MKD MMK MNT MOP MRO MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PRB PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STD SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VEF VND VUV WST XAF XCD XOF XPF YER ZAR
    ZMW""".split()
)


# --- small helpers -------------------------------------------------------------------------


def money(value: Decimal) -> str:
    """WooCommerce's amount format: a string with two decimals."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def to_decimal(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def parse_gmt(value: Any) -> datetime | None:
    """A ``*_gmt`` field (``2017-03-22T19:28:08``, no offset) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_gmt(when: datetime) -> str:
    """The ISO 8601 form sent with ``dates_are_gmt=true`` (seconds, no offset)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def meta_values(obj: Mapping[str, Any], key: str) -> list[Any]:
    return [
        m.get("value")
        for m in obj.get("meta_data") or []
        if isinstance(m, dict) and m.get("key") == key
    ]


def meta_value(obj: Mapping[str, Any], key: str) -> Any:
    values = meta_values(obj, key)
    return values[0] if values else None


def split_name(name: str | None) -> tuple[str, str]:
    """``"Jane van Doe"`` → ``("Jane van", "Doe")``; one word goes to the last name."""
    parts = (name or "").strip().rsplit(" ", 1)
    if len(parts) == 2:
        return parts[0].strip(), parts[1].strip()
    return "", parts[0]


def _int_id(value: str, what: str) -> int:
    if not value.isdigit():
        raise ItemError(FailureReason.INVALID_ORDER, f"{what} {value!r} is not a WooCommerce id")
    return int(value)


# --- order create ----------------------------------------------------------------------


def _address(address: Address | None, *, billing: bool, order: Order) -> dict[str, str]:
    """WooCommerce's billing/shipping object; billing falls back to the shipping address
    and names the buyer (who paid) rather than the recipient."""
    addr = address or Address()
    name = addr.name
    if billing and order.billing_address is None:
        name = order.buyer.name or addr.name
    first, last = split_name(name)
    out = {
        "first_name": first,
        "last_name": last,
        "company": addr.company or (order.buyer.company if billing else None) or "",
        "address_1": addr.line1 or "",
        "address_2": ", ".join(p for p in (addr.line2, addr.line3) if p),
        "city": addr.city or "",
        "state": addr.state_or_region or addr.district or "",
        "postcode": addr.postal_code or "",
        "country": addr.country_code or "",
    }
    if billing:
        out["email"] = order.buyer.email or ""
        out["phone"] = addr.phone or ""
    return out


def _line_amounts(line: OrderLine, strip_tax: bool) -> tuple[Decimal, Decimal]:
    """``(subtotal, total)`` of one line as sent to WooCommerce."""
    gross_sub = line.subtotal.amount
    gross_total = gross_sub - line.discount.amount
    if not strip_tax:
        return gross_sub, gross_total
    net_total = gross_total - line.tax.amount
    if line.discount.amount == 0 or gross_total <= 0:
        return net_total + line.discount.amount, net_total
    tax_before_discount = (line.tax.amount * gross_sub / gross_total).quantize(CENT)
    return gross_sub - tax_before_discount, net_total


def amazon_tax(order: Order) -> Decimal:
    return sum((line.tax.amount for line in order.lines), Decimal(0)) + order.shipping_tax.amount


def order_payload(
    order: Order, products: Mapping[str, ProductRef], settings: WooCommerceSettings
) -> dict[str, Any]:
    """The ``POST /orders`` body for a marketplace order."""
    if order.currency not in WC_CURRENCIES:
        raise ItemError(
            FailureReason.INVALID_ORDER, f"WooCommerce does not know currency {order.currency}"
        )
    strip_tax = order.taxes_included and settings.tax_handling == "shop"
    line_items = []
    for line in order.lines:
        ref = products.get(line.sku)
        if ref is None:
            raise ItemError(FailureReason.UNKNOWN_SKU, f"no shop product for SKU {line.sku!r}")
        subtotal, total = _line_amounts(line, strip_tax)
        item: dict[str, Any] = {
            "product_id": _int_id(ref.product_id, "product id"),
            "quantity": line.quantity,
            "subtotal": money(subtotal),
            "total": money(total),
            "meta_data": [
                {"key": LINE_ID_META, "value": line.line_id},
                {"key": LINE_SKU_META, "value": line.sku},
            ],
        }
        if ref.variant_id:
            item["variation_id"] = _int_id(ref.variant_id, "variation id")
        line_items.append(item)
    shipping = order.shipping_price.amount - order.shipping_discount.amount
    if strip_tax:
        shipping -= order.shipping_tax.amount
    service = order.shipping_service or "shipping"
    fee_lines = []
    if settings.tax_handling == "amazon" and not order.taxes_included and amazon_tax(order):
        fee_lines.append(_fee(TAX_FEE_NAME, amazon_tax(order), "amazon_tax"))
    note = f"Amazon order {order.marketplace_order_id}"
    if order.is_prime:
        note += " (Prime)"
    if order.is_business:
        note += " (business customer)"
    payload: dict[str, Any] = {
        "status": settings.new_order_status,
        "set_paid": True,
        "currency": order.currency,
        "payment_method": settings.payment_method,
        "payment_method_title": settings.payment_method_title,
        "transaction_id": order.marketplace_order_id,
        "customer_note": note,
        "billing": _address(
            order.billing_address or order.shipping_address, billing=True, order=order
        ),
        "shipping": _address(order.shipping_address, billing=False, order=order),
        "line_items": line_items,
        # Core order search covers order item names, so the shipping line's title
        # carrying the Amazon order id is what makes find_order work on any shop.
        "shipping_lines": [
            {
                "method_id": settings.shipping_method_id,
                "method_title": f"Amazon {service} ({order.marketplace_order_id})",
                "total": money(max(shipping, Decimal(0))),
            }
        ],
        "meta_data": [
            {"key": settings.amazon_order_id_meta_key, "value": order.marketplace_order_id},
            {"key": MARKETPLACE_META, "value": order.marketplace_id},
        ],
    }
    if fee_lines:
        payload["fee_lines"] = fee_lines
    return payload


def _fee(name: str, amount: Decimal, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "tax_status": "none",
        "total": money(amount),
        "meta_data": [{"key": ADJUSTMENT_META, "value": reason}],
    }


def total_difference(order: Order, wc_order: Mapping[str, Any]) -> Decimal:
    """Amazon's total minus the total WooCommerce computed."""
    return order.total.amount - to_decimal(wc_order.get("total"))


def adjustment_fee(order: Order, wc_order: Mapping[str, Any]) -> dict[str, Any] | None:
    """A non-taxable fee line that makes the shop total equal Amazon's, or ``None``."""
    diff = total_difference(order, wc_order)
    if diff == 0:
        return None
    shop_tax = to_decimal(wc_order.get("total_tax"))
    if not order.taxes_included and shop_tax == 0 and diff == amazon_tax(order):
        return _fee(TAX_FEE_NAME, diff, "amazon_tax")
    return _fee(ROUNDING_FEE_NAME, diff, "rounding")


def order_ref(wc_order: Mapping[str, Any]) -> ShopOrderRef:
    total, currency = wc_order.get("total"), wc_order.get("currency")
    return ShopOrderRef(
        id=str(wc_order["id"]),
        number=str(wc_order.get("number") or wc_order["id"]),
        cancelled=wc_order.get("status") == "cancelled",
        total=Money(amount=to_decimal(total), currency=currency) if total and currency else None,
    )


# --- products ---------------------------------------------------------------------------


def product_key(item: Mapping[str, Any], attribute: str, ean_meta_key: str) -> str | None:
    """The identification attribute's value of a product or variation."""
    if attribute == "sku":
        value = item.get("sku")
    elif attribute == "id":
        value = item.get("id")
    elif attribute == "ean":
        value = meta_value(item, ean_meta_key)
    elif attribute.startswith("meta:") and len(attribute) > 5:
        value = meta_value(item, attribute[5:])
    else:
        raise ValueError(f"unknown identification attribute {attribute!r}")
    text = str(value).strip() if value not in (None, "") else ""
    return text or None


def product_ref(
    item: Mapping[str, Any], key: str, parent: Mapping[str, Any] | None = None
) -> ProductRef | None:
    """A purchasable product or variation as a :class:`ProductRef` (variable parents: ``None``)."""
    kind = item.get("type")
    if kind == "variable":
        return None
    parent_id = parent.get("id") if parent is not None else item.get("parent_id")
    shop_sku = str(item.get("sku") or "") or None
    if parent is not None or (kind == "variation" and parent_id):
        return ProductRef(
            sku=key,
            product_id=str(parent_id),
            variant_id=str(item["id"]),
            shop_sku=shop_sku,
            title=_title(item, parent),
        )
    return ProductRef(
        sku=key, product_id=str(item["id"]), shop_sku=shop_sku, title=_title(item, None)
    )


def _title(item: Mapping[str, Any], parent: Mapping[str, Any] | None) -> str | None:
    name = item.get("name") or (parent.get("name") if parent else None)
    return str(name) if name else None


def stock_level(
    item: Mapping[str, Any],
    attribute: str,
    ean_meta_key: str,
    parent: Mapping[str, Any] | None = None,
) -> StockLevel | None:
    """Stock of a product or variation with managed stock, keyed by the attribute."""
    if item.get("type") == "variable" and parent is None:
        return None
    manage = item.get("manage_stock")
    quantity = item.get("stock_quantity")
    if manage == "parent" and parent is not None:  # variation stock managed by its parent
        manage, quantity = parent.get("manage_stock"), parent.get("stock_quantity")
    if manage is not True or quantity is None:
        return None
    key = product_key(item, attribute, ean_meta_key)
    if key is None:
        return None
    try:
        qty = int(quantity)
    except (TypeError, ValueError):
        return None
    return StockLevel(sku=key, quantity=qty, updated_at=parse_gmt(item.get("date_modified_gmt")))


# --- shipments and cancellations -------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """A tracked parcel as the shop records it; ``items`` empty means "not itemised"."""

    key: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    items: tuple[tuple[str | None, str | None, int], ...] = ()
    """``(order item id, product or variation id, quantity)`` per shipped item."""


@dataclass
class _Line:
    item_id: str
    product_ids: frozenset[str]
    sku: str
    line_id: str | None
    quantity: int
    shipped: int = 0


@dataclass(frozen=True)
class Problem:
    """A tracking record that is there but cannot be read; ``key`` as the package's."""

    key: str
    message: str


class _Unreadable(ValueError):
    pass


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _decode_meta_list(value: Any, what: str) -> list[dict[str, Any]]:
    """A serialised PHP array comes back as a list, an object with numeric keys or a JSON
    string; empty (``None``, ``""``) is an empty list, anything else unreadable."""
    if value in (None, "", [], {}):
        return []
    raw = value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Unreadable(f"{what} is not a list but {_show(raw)}") from None
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: (len(str(k)), str(k)))]
    if not isinstance(value, list):
        raise _Unreadable(f"{what} is not a list but {_show(raw)}")
    for n, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise _Unreadable(f"{what} entry {n + 1} is {_show(entry)}, not an object")
    return value


def _timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        parsed = datetime.fromtimestamp(int(text), tz=UTC) if text.isdigit() else parse_gmt(text)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None:
        raise _Unreadable(f"date_shipped {_show(value)} is not a date")
    return parsed


def _qty(value: Any) -> int:
    """An order line's quantity (0 when unreadable: such a line ships nothing)."""
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0


def _shipped_qty(value: Any) -> int:
    """A package item's quantity: a whole number, 0 or more (0 ships nothing of it);
    anything else makes the record unreadable."""
    try:
        qty = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        qty = Decimal(-1)
    if not qty.is_finite() or qty < 0 or qty != qty.to_integral_value():
        raise _Unreadable(f"item quantity {_show(value)} is not a whole number of 0 or more")
    return int(qty)


def _id_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "", 0, "0") else None


def tracking_packages(
    wc_order: Mapping[str, Any], meta_key: str
) -> tuple[list[Package], list[Problem]]:
    """Packages from the Shipment Tracking meta (``tracking_provider``, ``tracking_number``,
    ``date_shipped``, ...); an item's ``products_list`` (as AST writes it) makes it partial.
    A meta value or entry that cannot be read is a :class:`Problem`, never skipped."""
    packages: list[Package] = []
    problems: list[Problem] = []
    for raw in meta_values(wc_order, meta_key):
        try:
            entries = _decode_meta_list(raw, f"tracking meta {meta_key!r}")
        except _Unreadable as exc:
            problems.append(
                Problem(f"{meta_key}:{_digest(json.dumps(raw, default=str))}", str(exc))
            )
            continue
        for entry in entries:
            number = str(entry.get("tracking_number") or "").strip() or None
            carrier = (
                str(entry.get("tracking_provider") or "").strip()
                or str(entry.get("custom_tracking_provider") or "").strip()
                or None
            )
            key = str(entry.get("tracking_id") or "").strip() or _digest(carrier, number)
            try:
                listed = _decode_meta_list(entry.get("products_list"), "products_list")
                items = tuple(
                    (
                        _id_or_none(p.get("item_id")),
                        _id_or_none(p.get("product")),
                        _shipped_qty(p.get("qty", 1)),
                    )
                    for p in listed
                )
                shipped_at = _timestamp(entry.get("date_shipped"))
            except _Unreadable as exc:
                problems.append(Problem(key, f"tracking {number or key}: {exc}"))
                continue
            packages.append(Package(key, carrier, number, shipped_at, items))
    return packages, problems


def fulfillment_packages(
    fulfillments: Iterable[Mapping[str, Any]],
) -> tuple[list[Package], list[Problem]]:
    """Packages from ``GET /orders/<id>/fulfillments`` (fulfilled ones only); a fulfilment
    whose ``_items`` (required by WooCommerce) cannot be read is a :class:`Problem`."""
    packages: list[Package] = []
    problems: list[Problem] = []
    for ful in fulfillments:
        if not ful.get("is_fulfilled") or ful.get("date_deleted"):
            continue
        key = f"f{ful.get('id')}"
        try:
            listed = _decode_meta_list(meta_value(ful, "_items"), "_items")
            if not listed:
                raise _Unreadable("_items is empty")
            items = tuple(
                (_id_or_none(i.get("item_id")), None, _shipped_qty(i.get("qty", 1))) for i in listed
            )
        except _Unreadable as exc:
            problems.append(Problem(key, f"fulfilment {ful.get('id')}: {exc}"))
            continue
        number = meta_value(ful, "_tracking_number")
        carrier = meta_value(ful, "_shipment_provider")
        packages.append(
            Package(
                key=key,
                carrier=str(carrier) if carrier else None,
                tracking_number=str(number) if number else None,
                shipped_at=parse_gmt(ful.get("date_updated")),
                items=items,
            )
        )
    return packages, problems


def _digest(*parts: str | None) -> str:
    return hashlib.sha1("|".join(p or "" for p in parts).encode()).hexdigest()[:12]  # noqa: S324


def _order_lines(wc_order: Mapping[str, Any]) -> list[_Line]:
    lines = []
    for item in wc_order.get("line_items") or []:
        ids = {str(item.get("product_id") or ""), str(item.get("variation_id") or "")} - {"", "0"}
        sku = meta_value(item, LINE_SKU_META) or item.get("sku") or str(item.get("product_id"))
        line_id = meta_value(item, LINE_ID_META)
        lines.append(
            _Line(
                item_id=str(item.get("id")),
                product_ids=frozenset(ids),
                sku=str(sku),
                line_id=str(line_id) if line_id else None,
                quantity=_qty(item.get("quantity")),
            )
        )
    return lines


def _allocate(lines: list[_Line], package: Package) -> list[ShipmentLine]:
    """The package's items as shipment lines; ``_Unreadable`` when an item names nothing
    on the order (an item or product id the order does not have)."""
    out: dict[str, int] = {}
    for item_id, product_id, qty in package.items:
        line = next((x for x in lines if item_id is not None and x.item_id == item_id), None)
        if line is None:  # no item id, or a stale one (the order was edited): the product
            on_order = [x for x in lines if product_id is not None and product_id in x.product_ids]
            line = next((x for x in on_order if x.shipped < x.quantity), None) or next(
                iter(on_order), None
            )
        if line is None:
            named = " / ".join(
                f"{what} {value}"
                for what, value in (("order item", item_id), ("product", product_id))
                if value is not None
            )
            raise _Unreadable(f"names {named or 'no item'}, which is not on the order")
        take = min(qty, line.quantity - line.shipped)
        if take > 0:
            line.shipped += take
            out[line.item_id] = out.get(line.item_id, 0) + take
    return [
        ShipmentLine(sku=x.sku, quantity=out[x.item_id], line_id=x.line_id)
        for x in lines
        if x.item_id in out
    ]


def shipments(
    wc_order: Mapping[str, Any],
    amazon_order_id: str,
    packages: Sequence[Package],
    shipped_statuses: Iterable[str],
    *,
    unreadable: bool = False,
) -> tuple[list[Shipment], list[Problem]]:
    """Itemised packages become partial shipments; a shipped status ships what is left,
    with the first non-itemised package's tracking (or none). A package naming items the
    order does not have is a :class:`Problem`; then, or when some package was
    ``unreadable``, what is left is held back: it may be that package's, with its tracking."""
    order_id = str(wc_order["id"])
    lines = _order_lines(wc_order)
    fallback_time = (
        parse_gmt(wc_order.get("date_completed_gmt"))
        or parse_gmt(wc_order.get("date_modified_gmt"))
        or datetime.now(UTC)
    )
    out, problems = [], []
    for package in sorted((p for p in packages if p.items), key=_package_order):
        try:
            shipped = _allocate(lines, package)
        except _Unreadable as exc:
            problems.append(Problem(package.key, f"tracking {package.tracking_number}: {exc}"))
            continue
        if shipped:
            out.append(_shipment(order_id, amazon_order_id, package, shipped, fallback_time))
    if wc_order.get("status") in set(shipped_statuses) and not (problems or unreadable):
        rest = [
            ShipmentLine(sku=x.sku, quantity=x.quantity - x.shipped, line_id=x.line_id)
            for x in lines
            if x.quantity > x.shipped
        ]
        if rest:
            plain = sorted((p for p in packages if not p.items), key=_package_order)
            package = plain[0] if plain else Package(UNTRACKED, None, None, None)
            out.append(_shipment(order_id, amazon_order_id, package, rest, fallback_time))
    return out, problems


def _package_order(package: Package) -> tuple[datetime, str]:
    return package.shipped_at or datetime.max.replace(tzinfo=UTC), package.key


def _shipment(
    order_id: str,
    amazon_order_id: str,
    package: Package,
    lines: list[ShipmentLine],
    fallback_time: datetime,
) -> Shipment:
    return Shipment(
        shipment_id=f"{order_id}:{package.key}",
        marketplace_order_id=amazon_order_id,
        shop_order_id=order_id,
        lines=tuple(lines),
        carrier=package.carrier,
        tracking_number=package.tracking_number,
        shipped_at=package.shipped_at or fallback_time,
    )


def cancellation(wc_order: Mapping[str, Any], amazon_order_id: str) -> Cancellation | None:
    """A shop-side cancellation (our own, marked with meta, are left out)."""
    if wc_order.get("status") != "cancelled":
        return None
    if meta_value(wc_order, CANCELLED_BY_META) == CANCELLED_BY_US:
        return None
    when = parse_gmt(wc_order.get("date_modified_gmt")) or datetime.now(UTC)
    return Cancellation(
        marketplace_order_id=amazon_order_id,
        shop_order_id=str(wc_order["id"]),
        cancelled_at=when,
        reason="cancelled in WooCommerce",
    )
