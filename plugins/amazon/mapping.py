"""Orders API v2026-01-01 ``Order`` JSON → :class:`engine.models.Order`.

Money rules (all exact ``Decimal``):

- line ``unit_price`` = ``product.price.unitPrice`` (a unit price in v2026);
- line ``tax`` = the item's ``TAX`` proceeds minus its ``SHIPPING`` tax subtype;
- line ``discount`` = the item's ``DISCOUNT`` proceeds minus the shipping
  subtype, as a positive number;
- order ``shipping_price``/``shipping_tax``/``shipping_discount`` = the
  ``SHIPPING`` parts summed over items (the order-level ``SHIPPING`` breakdown
  when items carry none), **plus the other charges** the engine's ``Order`` has
  no field for: ``GIFT_WRAP``, ``COD_FEE``, ``OTHER`` (with their tax and
  discount subtypes) and the order-level ``DELIVERY_TIP``. They are money the
  buyer paid on top of the items, so the shop order's total stays Amazon's;
  :data:`EXTRA_CHARGES` lists them, ``Order.raw`` keeps the breakdown;
- ``taxes_included`` is read from each order's proceeds: when the breakdowns
  sum to ``grandTotal`` with ``TAX`` added, tax is on top (the model's UK
  example does this although UK prices usually include VAT); without it, tax is
  inside; when no tax or no total tells, the marketplace's convention;
- order ``total`` = ``proceeds.grandTotal``; computed from the lines only when
  Amazon sends none (e.g. some PENDING orders).

So for every order: lines (unit x quantity - discount) + shipping_price -
shipping_discount (+ line tax + shipping_tax when ``taxes_included`` is false)
== total, to the cent, whenever Amazon's own parts add up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import FailureReason, ItemError
from engine.models import (
    FulfillmentChannel,
    Order,
    OrderStatus,
)
from plugins.amazon import marketplaces

INCLUDED_DATA: tuple[str, ...] = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
)
"""``includedData`` requested by searchOrders and getOrder (enum values of the model)."""

ITEM_CHARGES = ("GIFT_WRAP", "COD_FEE", "OTHER")
"""Item proceeds types besides ITEM/SHIPPING/TAX/DISCOUNT: charged to the buyer."""
ORDER_CHARGES = ("DELIVERY_TIP",)
"""Order-level proceeds not attributed to any item."""
EXTRA_CHARGES = ITEM_CHARGES + ORDER_CHARGES
"""Charges carried in ``shipping_price`` (the engine's Order has no field for them)."""
CHARGE_SUBTYPES = ("SHIPPING", *ITEM_CHARGES)
"""TAX/DISCOUNT subtypes that belong to a charge, not to the item itself."""

STATUSES: dict[str, OrderStatus] = {
    "PENDING_AVAILABILITY": OrderStatus.PENDING,
    "PENDING": OrderStatus.PENDING,
    "UNSHIPPED": OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELLED,
    "UNFULFILLABLE": OrderStatus.UNFULFILLABLE,
}

CHANNELS: dict[str, FulfillmentChannel] = {
    "MERCHANT": FulfillmentChannel.MERCHANT,
    "AMAZON": FulfillmentChannel.MARKETPLACE,
}


def parse_time(value: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset → aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _decimal(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ItemError(FailureReason.INVALID_ORDER, f"{where}: bad amount {value!r}") from None
    if not amount.is_finite():
        raise ItemError(FailureReason.INVALID_ORDER, f"{where}: bad amount {value!r}")
    return amount


class _Amounts:
    """Reads Money objects of one order, checking they share its currency."""

    def __init__(self, order_id: str, currency: str) -> None:
        self.order_id = order_id
        self.currency = currency

    def money(self, data: Any, where: str) -> Decimal:
        if not isinstance(data, dict) or "amount" not in data:
            return Decimal(0)
        code = str(data.get("currencyCode") or self.currency).upper()
        if code != self.currency:
            raise ItemError(
                FailureReason.INVALID_ORDER,
                f"order {self.order_id}: {where} is in {code}, the order in {self.currency}",
            )
        return _decimal(data["amount"], f"order {self.order_id} {where}")

    def summary(self, breakdowns: Iterable[Any]) -> dict[str, tuple[Decimal, Decimal]]:
        """Per proceeds category, ``(total, part on charges)``, in one pass: the part is the
        sum of the ``SHIPPING``, ``GIFT_WRAP``, ``COD_FEE`` and ``OTHER`` subtypes."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for entry in breakdowns:
            if not isinstance(entry, dict):
                continue
            kind = str(entry.get("type"))
            total, charges = out.get(kind, (Decimal(0), Decimal(0)))
            total += self.money(entry.get("subtotal"), kind)
            for detail in entry.get("detailedBreakdowns") or ():
                subtype = detail.get("subtype") if isinstance(detail, dict) else None
                if subtype in CHARGE_SUBTYPES:
                    charges += self.money(detail.get("value"), f"{kind}/{subtype}")
            out[kind] = (total, charges)
        return out

    def taxes_included(
        self, summary: dict[str, tuple[Decimal, Decimal]], total: Decimal, default: bool
    ) -> bool:
        """Whether ``TAX`` is inside the other parts, read off how they sum to ``total``."""
        tax = summary.get("TAX", _NONE)[0]
        if not tax or not summary:
            return default
        parts = sum((t for kind, (t, _) in summary.items() if kind != "TAX"), Decimal(0))
        if parts + tax == total:
            return False
        if parts == total:
            return True
        return default


_NONE = (Decimal(0), Decimal(0))


def _charges(summary: dict[str, tuple[Decimal, Decimal]], kinds: Iterable[str]) -> Decimal:
    return sum((summary.get(kind, _NONE)[0] for kind in kinds), Decimal(0))


def _currency(data: dict[str, Any], marketplace_id: str) -> str:
    grand = (data.get("proceeds") or {}).get("grandTotal")
    if isinstance(grand, dict) and grand.get("currencyCode"):
        return str(grand["currencyCode"]).upper()
    for item in data.get("orderItems") or ():
        price = ((item.get("product") or {}).get("price") or {}).get("unitPrice")
        if isinstance(price, dict) and price.get("currencyCode"):
            return str(price["currencyCode"]).upper()
    known = marketplaces.get(marketplace_id)
    if known is None:
        raise ItemError(FailureReason.INVALID_ORDER, "order has no amount and no known marketplace")
    return known.currency


def _address(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return str(value).strip() or None if value is not None else None

    country = text("countryCode")
    if country == "UK":
        country = "GB"
    return {
        "name": text("name"),
        "company": text("companyName"),
        "line1": text("addressLine1"),
        "line2": text("addressLine2"),
        "line3": text("addressLine3"),
        "city": text("city"),
        "district": text("districtOrCounty") or text("municipality"),
        "state_or_region": text("stateOrRegion"),
        "postal_code": text("postalCode"),
        "country_code": country,
        "phone": text("phone"),
    }


def _buyer(data: dict[str, Any]) -> dict[str, Any]:
    buyer = data.get("buyer") or {}
    tax_id = None
    for registration in (data.get("tax") or {}).get("taxRegistrations") or ():
        if registration.get("entityType") == "BUYER" and registration.get("taxRegistrationNumber"):
            tax_id = str(registration["taxRegistrationNumber"])
            break
    return {
        "name": buyer.get("buyerName") or None,
        "email": buyer.get("buyerEmail") or None,
        "company": buyer.get("buyerCompanyName") or None,
        "tax_id": tax_id,
    }


def _cancellation_requested(items: Iterable[dict[str, Any]]) -> bool:
    """A buyer asked and nobody has executed the cancellation yet."""
    for item in items:
        cancellation = item.get("cancellation") or {}
        if cancellation.get("cancellationRequest") and not cancellation.get(
            "cancellationExecution"
        ):
            return True
    return False


def order_from_api(data: dict[str, Any], default_marketplace: str = "") -> Order:
    """Map one v2026 ``Order``; raises :class:`ItemError` for unusable data."""
    order_id = str(data.get("orderId") or "")
    if not order_id:
        raise ItemError(FailureReason.INVALID_ORDER, "order without orderId")
    sales = data.get("salesChannel") or {}
    marketplace_id = str(sales.get("marketplaceId") or default_marketplace)
    currency = _currency(data, marketplace_id)
    amounts = _Amounts(order_id, currency)

    def money(amount: Decimal) -> dict[str, Any]:
        return {"amount": amount, "currency": currency}

    items = [i for i in data.get("orderItems") or () if isinstance(i, dict)]
    lines: list[dict[str, Any]] = []  # validated as OrderLine with the Order, at the end
    shipping = shipping_tax = shipping_discount = Decimal(0)
    item_kinds: set[str] = set()
    all_item_breakdowns: list[Any] = []
    for item in items:
        breakdowns = (item.get("proceeds") or {}).get("breakdowns") or ()
        all_item_breakdowns.extend(breakdowns)
        summary = amounts.summary(breakdowns)
        ship = _charges(summary, ("SHIPPING", *ITEM_CHARGES))
        tax, tax_on_shipping = summary.get("TAX", _NONE)
        discount, discount_on_shipping = summary.get("DISCOUNT", _NONE)
        item_kinds.update(summary)
        shipping += ship
        shipping_tax += tax_on_shipping
        shipping_discount += abs(discount_on_shipping)
        quantity = int(item.get("quantityOrdered") or 0)
        if quantity < 0:
            raise ItemError(
                FailureReason.INVALID_ORDER,
                f"order item {item.get('orderItemId')} has a negative quantity ({quantity})",
            )
        if quantity == 0:
            continue  # fully cancelled line: nothing to sell or ship
        product = item.get("product") or {}
        price = (product.get("price") or {}).get("unitPrice")
        if isinstance(price, dict):
            unit = amounts.money(price, "unitPrice")
        else:  # no unit price (e.g. PENDING): derive it from the ITEM proceeds
            item_total = summary.get("ITEM", _NONE)[0]
            unit = (item_total / quantity).quantize(item_total)
        sku = product.get("sellerSku") or product.get("asin")
        if not sku:
            raise ItemError(
                FailureReason.INVALID_ORDER,
                f"order {order_id}: item {item.get('orderItemId')} has no SKU",
            )
        lines.append(
            {
                "line_id": str(item["orderItemId"]),
                "sku": str(sku),
                "title": product.get("title"),
                "quantity": quantity,
                "unit_price": money(unit),
                "tax": money(tax - tax_on_shipping),
                "discount": money(abs(discount - discount_on_shipping)),
                "quantity_shipped": int(
                    (item.get("fulfillment") or {}).get("quantityFulfilled") or 0
                ),
            }
        )

    proceeds = data.get("proceeds") or {}
    order_breakdowns = list(proceeds.get("breakdowns") or ())
    # Order-level categories aggregate the items'; use them only where items carry none.
    missing = [k for k in ("SHIPPING", *ITEM_CHARGES) if k not in item_kinds]
    order_summary = amounts.summary(order_breakdowns)
    shipping += _charges(order_summary, (*missing, *ORDER_CHARGES))

    known = marketplaces.get(marketplace_id)
    taxes_included = known.tax_inclusive if known else False
    if isinstance(proceeds.get("grandTotal"), dict):
        total = amounts.money(proceeds["grandTotal"], "grandTotal")
        taxes_included = amounts.taxes_included(
            order_summary if order_breakdowns else amounts.summary(all_item_breakdowns),
            total,
            taxes_included,
        )
    else:
        total = sum(
            (
                line["unit_price"]["amount"] * line["quantity"] - line["discount"]["amount"]
                for line in lines
            ),
            Decimal(0),
        )
        total += shipping - shipping_discount
        if not taxes_included:
            total += sum((line["tax"]["amount"] for line in lines), Decimal(0)) + shipping_tax

    fulfillment = data.get("fulfillment") or {}
    programs = set(data.get("programs") or ())
    # One validation of the whole order (nested in pydantic-core), not one per part.
    return Order.model_validate(
        {
            "marketplace_order_id": order_id,
            "marketplace_id": marketplace_id,
            "status": STATUSES.get(str(fulfillment.get("fulfillmentStatus")), OrderStatus.PENDING),
            "fulfillment_channel": CHANNELS.get(
                str(fulfillment.get("fulfilledBy")), FulfillmentChannel.MERCHANT
            ),
            "purchased_at": parse_time(data["createdTime"]),
            "updated_at": parse_time(data["lastUpdatedTime"]),
            "currency": currency,
            "buyer": _buyer(data),
            "shipping_address": _address((data.get("recipient") or {}).get("deliveryAddress")),
            "lines": lines,
            "shipping_price": money(shipping),
            "shipping_tax": money(shipping_tax),
            "shipping_discount": money(shipping_discount),
            "total": money(total),
            "taxes_included": taxes_included,
            "shipping_service": fulfillment.get("fulfillmentServiceLevel"),
            "is_prime": "PRIME" in programs,
            "is_business": "AMAZON_BUSINESS" in programs,
            "cancellation_requested": _cancellation_requested(items),
            "raw": data,
        }
    )
