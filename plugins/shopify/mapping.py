"""Pure conversions between engine models and Shopify GraphQL payloads."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.models import Address, Cancellation, Money, Order, ProductRef, Shipment, ShipmentLine
from plugins.shopify.settings import ShopifySettings

log = logging.getLogger("ordersync.shopify")

LINE_SKU_PROPERTY = "_marketplace_sku"
LINE_ID_PROPERTY = "_marketplace_line_id"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PROVINCE_CODE = re.compile(r"^[A-Za-z0-9]{1,3}$")
_RATE_PLACES = Decimal("0.0001")
_HALF_CENT = Decimal("0.005")


# --- ids, search syntax, time, cursors ----------------------------------------------------


def gid(kind: str, value: str) -> str:
    """``gid://shopify/<kind>/<id>`` from a numeric id or a GID of that kind."""
    value = value.strip()
    if value.isdigit():
        return f"gid://shopify/{kind}/{value}"
    if value.startswith(f"gid://shopify/{kind}/"):
        return value
    raise ValueError(f"not a {kind} id: {value!r}")


def legacy_id(global_id: str) -> str:
    """The numeric part of a GID (``gid://shopify/ProductVariant/42`` → ``42``)."""
    return global_id.rsplit("/", 1)[-1].split("?", 1)[0]


def search_value(value: str) -> str:
    """A value quoted for Shopify's search syntax."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def any_of(field: str, values: Iterable[str]) -> str:
    """``field:"a" OR field:"b"`` ..."""
    return " OR ".join(f"{field}:{search_value(v)}" for v in values)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with second precision, as Shopify prints it."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def encode_cursor(state: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in state.items() if v is not None}, separators=(",", ":"))


def decode_cursor(cursor: str, required: str) -> dict[str, Any]:
    """Read a cursor this connector produced; ``ValueError`` for anything else."""
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict) or required not in state:
        raise ValueError(f"not a Shopify connector cursor: {cursor[:80]!r}")
    return state


# --- orders --------------------------------------------------------------------------------


def money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}


def tax_rate(tax: Decimal, base: Decimal) -> Decimal:
    """Tax as a fraction of the net amount it was charged on.

    Amounts are rounded to the cent, so 6.38 on 33.60 is 0.18988…: the shortest
    rate (2, 3 or 4 places) that reproduces the tax within half a cent is used (0.19).
    """
    if base <= 0 or tax <= 0:
        return Decimal("0")
    exact = tax / base
    for places in ("0.01", "0.001"):
        rate = exact.quantize(Decimal(places), rounding=ROUND_HALF_UP)
        if abs(base * rate - tax) <= _HALF_CENT:
            return rate.normalize()
    return exact.quantize(_RATE_PLACES, rounding=ROUND_HALF_UP).normalize()


def tax_lines(title: str, tax: Money, gross: Decimal, taxes_included: bool) -> list[dict[str, Any]]:
    if tax.amount <= 0:
        return []
    base = gross - tax.amount if taxes_included else gross
    return [
        {
            "title": title,
            "rate": str(tax_rate(tax.amount, base)),
            "priceSet": money_bag(tax.amount, tax.currency),
        }
    ]


def address_input(address: Address | None) -> dict[str, Any] | None:
    """A ``MailingAddressInput``; fields Shopify would reject are left out."""
    if address is None:
        return None
    first, _, last = (address.name or "").strip().rpartition(" ")
    second_line = ", ".join(p for p in (address.line2, address.line3, address.district) if p)
    values: dict[str, Any] = {
        "firstName": first or None,
        "lastName": last or None,
        "company": address.company,
        "address1": address.line1,
        "address2": second_line or None,
        "city": address.city,
        "zip": address.postal_code,
        "countryCode": address.country_code,
    }
    region = (address.state_or_region or "").strip()
    if region and _PROVINCE_CODE.match(region):
        values["provinceCode"] = region.upper()
    phone = re.sub(r"[\s()./-]", "", address.phone or "")
    if phone and _E164.match(phone):
        values["phone"] = phone
    return {k: v for k, v in values.items() if v}


def line_item_input(
    order: Order, products: Mapping[str, ProductRef], title: str
) -> list[dict[str, Any]]:
    items = []
    for line in order.lines:
        ref = products[line.sku]
        if ref.variant_id is None:
            raise ValueError(f"product for SKU {line.sku!r} has no variant id")
        gross = line.unit_price.amount * line.quantity - line.discount.amount
        items.append(
            {
                "variantId": ref.variant_id,
                "quantity": line.quantity,
                "priceSet": money_bag(line.unit_price.amount, line.unit_price.currency),
                "taxLines": tax_lines(title, line.tax, gross, order.taxes_included),
                "requiresShipping": True,
                "properties": [
                    {"name": LINE_SKU_PROPERTY, "value": line.sku},
                    {"name": LINE_ID_PROPERTY, "value": line.line_id},
                ],
            }
        )
    return items


def shipping_line_input(order: Order, title: str) -> list[dict[str, Any]]:
    price = order.shipping_price.amount - order.shipping_discount.amount
    if price < 0:
        log.warning(
            "order %s: shipping discount exceeds the shipping price", order.marketplace_order_id
        )
        price = Decimal("0")
    if price == 0 and order.shipping_tax.amount == 0 and not order.shipping_service:
        return []
    name = order.shipping_service or "Shipping"
    return [
        {
            "title": name,
            "code": name,
            "source": "ordersync",
            "priceSet": money_bag(price, order.currency),
            "taxLines": tax_lines(title, order.shipping_tax, price, order.taxes_included),
        }
    ]


def expected_total(order: Order) -> Decimal:
    """The total Shopify computes from the payload of :func:`order_input`."""
    lines = sum(
        (ln.unit_price.amount * ln.quantity - ln.discount.amount for ln in order.lines), Decimal(0)
    )
    shipping = max(Decimal(0), order.shipping_price.amount - order.shipping_discount.amount)
    tax = sum((ln.tax.amount for ln in order.lines), Decimal(0)) + order.shipping_tax.amount
    return lines + shipping + (Decimal(0) if order.taxes_included else tax)


def order_input(
    order: Order, products: Mapping[str, ProductRef], settings: ShopifySettings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Variables ``order`` (``OrderCreateOrderInput``) and ``options`` for ``orderCreate``."""
    currency = order.currency
    payload: dict[str, Any] = {
        "currency": currency,
        "presentmentCurrency": currency,
        "processedAt": format_time(order.purchased_at),
        "sourceName": settings.source_name,
        "sourceIdentifier": order.marketplace_order_id,
        "tags": settings.all_tags,
        "taxesIncluded": order.taxes_included,
        "financialStatus": "PAID",
        "buyerAcceptsMarketing": False,
        "lineItems": line_item_input(order, products, settings.tax_title),
        "shippingLines": shipping_line_input(order, settings.tax_title),
        "customAttributes": [
            {"key": "marketplace_order_id", "value": order.marketplace_order_id},
            {"key": "marketplace_id", "value": order.marketplace_id},
        ],
    }
    if order.total.amount > 0:
        payload["transactions"] = [
            {
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": settings.payment_gateway,
                "amountSet": money_bag(order.total.amount, currency),
                "processedAt": format_time(order.purchased_at),
            }
        ]
    discount = sum((line.discount.amount for line in order.lines), Decimal(0))
    if discount > 0:
        payload["discountCode"] = {
            "itemFixedDiscountCode": {
                "code": settings.discount_code,
                "amountSet": money_bag(discount, currency),
            }
        }
    if order.buyer.email:
        payload["email"] = order.buyer.email
    shipping = address_input(order.shipping_address)
    if shipping:
        payload["shippingAddress"] = shipping
    billing = address_input(order.billing_address) or shipping
    if billing:
        payload["billingAddress"] = billing
    options = {
        "inventoryBehaviour": settings.inventory_behaviour,
        "sendReceipt": False,
        "sendFulfillmentReceipt": False,
    }
    return payload, options


# --- changes -------------------------------------------------------------------------------


MAX_TEXT = 255
"""Longest tracking number, carrier or shipping method passed on (real ones have < 50)."""
MAX_SKU = 200
"""Longest SKU (as for marketplace order lines)."""
MAX_QUANTITY = 100_000


class UnreadableChange(ValueError):
    """A shop record that cannot become a shipment or cancellation; the text names the field."""


def preview(value: Any) -> str:
    """A value for an error message: short, and its length when it is long."""
    text = repr(value)
    if len(text) <= 60:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    return f"{text[:40]}... ({size})"


def _text(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnreadableChange(f"{field} is not text: {preview(value)}")
    if len(value) > limit:
        raise UnreadableChange(f"{field} is {len(value)} characters long (at most {limit})")
    return value


def _time(value: Any, field: str) -> datetime:
    try:
        return parse_time(value)
    except (TypeError, ValueError, AttributeError):
        raise UnreadableChange(f"{field} is not a time: {preview(value)}") from None


def _attributes(line_item: Mapping[str, Any], field: str) -> dict[str, str]:
    found = line_item.get("customAttributes") or []
    if not isinstance(found, list) or not all(isinstance(a, Mapping) for a in found):
        raise UnreadableChange(f"{field}.customAttributes is not a list: {preview(found)}")
    return {str(a.get("key")): a.get("value") or "" for a in found}


def _shipment_line(item: Any, field: str) -> ShipmentLine | None:
    """One fulfilled line; ``None`` for a line that is not the marketplace's (no SKU)."""
    if not isinstance(item, Mapping):
        raise UnreadableChange(f"{field} is not an object: {preview(item)}")
    line_item = item.get("lineItem")
    if not isinstance(line_item, Mapping):
        raise UnreadableChange(f"{field}.lineItem is missing")
    props = _attributes(line_item, f"{field}.lineItem")
    sku = _text(props.get(LINE_SKU_PROPERTY), f"{field} SKU", MAX_SKU) or _text(
        line_item.get("sku"), f"{field}.lineItem.sku", MAX_SKU
    )
    quantity = item.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise UnreadableChange(f"{field}.quantity is not a whole number: {preview(quantity)}")
    if not 0 < quantity <= MAX_QUANTITY:
        raise UnreadableChange(
            f"{field} ({sku or 'no SKU'}) has quantity {quantity} (1 to {MAX_QUANTITY})"
        )
    if not sku:
        log.info("%s has no SKU: not a marketplace line, left out", field)
        return None
    line_id = _text(props.get(LINE_ID_PROPERTY), f"{field} line id", MAX_SKU)
    return ShipmentLine(sku=sku, quantity=quantity, line_id=line_id)


def shipment(
    order: Mapping[str, Any], fulfillment: Mapping[str, Any], lines: Sequence[Any]
) -> Shipment:
    """One engine shipment per successful Shopify fulfillment.

    Raises :class:`UnreadableChange` for anything that cannot be passed on as it
    is: a quantity below 1, an absurdly long or mistyped field, a missing part.
    """
    shipment_lines = []
    for index, item in enumerate(lines):
        line = _shipment_line(item, f"line {index + 1}")
        if line is not None:
            shipment_lines.append(line)
    if not shipment_lines:
        raise UnreadableChange("no fulfilled line carries a SKU")
    tracking = fulfillment.get("trackingInfo") or [{}]
    if not isinstance(tracking, list) or not isinstance(tracking[0] or {}, Mapping):
        raise UnreadableChange(f"trackingInfo is not a list of objects: {preview(tracking)}")
    first = tracking[0] or {}
    others = [t.get("number") for t in tracking[1:] if isinstance(t, Mapping) and t.get("number")]
    if others:
        log.warning(
            "fulfilment %s of order %s has %d more tracking numbers (%s); Amazon gets the "
            "first, %s, as one package",
            fulfillment.get("id"),
            order.get("name"),
            len(others),
            ", ".join(preview(n) for n in others[:5]),
            preview(first.get("number")),
        )
    shipping = order.get("shippingLine") or {}
    if not isinstance(shipping, Mapping):
        raise UnreadableChange(f"the order's shippingLine is not an object: {preview(shipping)}")
    return Shipment(
        shipment_id=fulfillment["id"],
        marketplace_order_id=order["sourceIdentifier"],
        shop_order_id=order["id"],
        lines=tuple(shipment_lines),
        carrier=_text(first.get("company"), "tracking company"),
        tracking_number=_text(first.get("number"), "tracking number"),
        shipping_method=_text(shipping.get("title"), "shipping method"),
        shipped_at=_time(fulfillment.get("createdAt"), "createdAt"),
    )


def cancellation(order: Mapping[str, Any]) -> Cancellation:
    """A cancelled order; :class:`UnreadableChange` when its fields cannot be read."""
    reason = _text(order.get("cancelReason"), "cancelReason", 50)
    return Cancellation(
        marketplace_order_id=order["sourceIdentifier"],
        shop_order_id=order["id"],
        cancelled_at=_time(order.get("cancelledAt"), "cancelledAt"),
        reason=reason.lower() if reason else None,
    )
