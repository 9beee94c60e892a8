"""Orders for the simulator: realistic v2026-01-01 ``Order`` JSON and its projections.

Money convention of the simulator (Amazon's models do not settle it): in
tax-inclusive marketplaces (EU, JP, ...) ``unitPrice``, ``ITEM`` and
``SHIPPING`` are gross and ``TAX`` is the tax they contain, so ``grandTotal``
= ITEM + SHIPPING - DISCOUNT. In the US and Canada tax is added:
``grandTotal`` = ITEM + SHIPPING - DISCOUNT + TAX.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from plugins.amazon import marketplaces
from plugins.amazon.marketplaces import Marketplace

INCLUDED_DATA = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)
FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
_ORDER_SECTIONS = {
    "BUYER": "buyer",
    "RECIPIENT": "recipient",
    "PROCEEDS": "proceeds",
    "PAYMENT": "payment",
    "TAX": "tax",
    "FULFILLMENT": "fulfillment",
    "PACKAGES": "packages",
    "FULFILLMENT_ORDERS": "fulfillmentOrders",
}
_ITEM_SECTIONS = {
    "PROCEEDS": "proceeds",
    "EXPENSE": "expense",
    "PROMOTION": "promotion",
    "CANCELLATION": "cancellation",
    "FULFILLMENT": "fulfillment",
    "TAX": "tax",
}

# Simulator defaults, not Amazon data: standard VAT/GST rates and sales tax.
TAX_RATES = {
    "DE": "0.19",
    "FR": "0.20",
    "IT": "0.22",
    "ES": "0.21",
    "UK": "0.20",
    "NL": "0.21",
    "BE": "0.21",
    "IE": "0.23",
    "SE": "0.25",
    "PL": "0.23",
    "JP": "0.10",
    "AU": "0.10",
    "US": "0.0725",
    "CA": "0.05",
}
_ADDRESSES = {
    "DE": ("Erika Mustermann", "Hauptstraße 12", "Berlin", "10115", "DE"),
    "FR": ("Marie Dupont", "12 rue de la Paix", "Paris", "75002", "FR"),
    "UK": ("Jane Smith", "10 High Street", "London", "SW1A 1AA", "GB"),
    "IT": ("Mario Rossi", "Via Roma 1", "Milano", "20121", "IT"),
    "ES": ("Lucía García", "Calle Mayor 5", "Madrid", "28013", "ES"),
    "US": ("John Doe", "410 Terry Ave N", "Seattle", "98109", "US"),
    "JP": ("山田 太郎", "千代田1-1", "東京都", "100-0001", "JP"),
}


def money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": currency}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def quantum(currency: str) -> Decimal:
    return Decimal(1) if currency in ("JPY", "KRW") else Decimal("0.01")


@dataclass
class SimOrder:
    """One order as the simulator stores it (full JSON, all included data)."""

    data: dict[str, Any]
    visible_at: datetime
    """Searches made before this moment do not see the latest update (index lag)."""

    @property
    def id(self) -> str:
        return str(self.data["orderId"])

    @property
    def status(self) -> str:
        return str((self.data.get("fulfillment") or {}).get("fulfillmentStatus", "PENDING"))

    @property
    def updated(self) -> datetime:
        return datetime.fromisoformat(self.data["lastUpdatedTime"].replace("Z", "+00:00"))

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.data["createdTime"].replace("Z", "+00:00"))

    def item(self, order_item_id: str) -> dict[str, Any] | None:
        items: list[dict[str, Any]] = self.data.get("orderItems") or []
        return next((i for i in items if str(i.get("orderItemId")) == order_item_id), None)

    def touch(self, now: datetime, index_lag: float = 0.0) -> None:
        """Record an update: ``lastUpdatedTime`` always moves forward."""
        stamp = now.replace(microsecond=0)
        if stamp <= self.updated:
            stamp = self.updated + timedelta(seconds=1)
        self.data["lastUpdatedTime"] = iso(stamp)
        self.visible_at = stamp + timedelta(seconds=index_lag)

    def view(self, included: set[str]) -> dict[str, Any]:
        """The order as an API answer with only the requested ``includedData``."""
        data = copy.deepcopy(self.data)
        if self.status in ("PENDING", "PENDING_AVAILABILITY"):
            _strip_pii(data)  # like v0: no name or street before payment clears
        for flag, key in _ORDER_SECTIONS.items():
            if flag not in included:
                data.pop(key, None)
        for item in data.get("orderItems") or ():
            for flag, key in _ITEM_SECTIONS.items():
                if flag not in included:
                    item.pop(key, None)
        return data


def _strip_pii(data: dict[str, Any]) -> None:
    buyer = data.get("buyer")
    if isinstance(buyer, dict):
        for key in ("buyerName", "buyerEmail"):
            buyer.pop(key, None)
    address = (data.get("recipient") or {}).get("deliveryAddress")
    if isinstance(address, dict):
        for key in ("name", "addressLine1", "addressLine2", "addressLine3", "phone"):
            address.pop(key, None)


class OrderFactory:
    """Builds realistic orders from ``{sku: quantity}`` (seeded, reproducible)."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng

    def order_id(self) -> str:
        r = self.random
        return (
            f"{r.randint(100, 999):03d}-{r.randint(0, 9_999_999):07d}-{r.randint(0, 9_999_999):07d}"
        )

    def build(
        self,
        items: Mapping[str, int],
        *,
        now: datetime,
        marketplace: str = "Amazon.de",
        prime: bool = False,
        business: bool = False,
        status: str = "UNSHIPPED",
        fulfilled_by: str = "MERCHANT",
        prices: Mapping[str, Decimal | str] | None = None,
        discounts: Mapping[str, Decimal | str] | None = None,
        shipping: Decimal | str | None = None,
        tax_rate: Decimal | str | None = None,
        order_id: str | None = None,
    ) -> dict[str, Any]:
        """A v2026 ``Order`` with every included-data section filled in."""
        if not items or any(q <= 0 for q in items.values()):
            raise ValueError("an order needs at least one SKU with a positive quantity")
        if status not in FULFILLMENT_STATUSES:
            raise ValueError(f"unknown fulfillment status {status!r}")
        market = marketplaces.resolve(marketplace)
        currency = market.currency
        q = quantum(currency)
        rate = Decimal(
            str(tax_rate)
            if tax_rate is not None
            else TAX_RATES.get(market.country_code, "0.20" if market.tax_inclusive else "0")
        )
        ship_total = Decimal(str(shipping)) if shipping is not None else None
        if ship_total is None:
            ship_total = (
                Decimal(0) if prime else (Decimal(500) if currency == "JPY" else Decimal("4.99"))
            )
        created = now.replace(microsecond=0)

        def tax_of(amount: Decimal) -> Decimal:
            if market.tax_inclusive:
                return (amount * rate / (1 + rate)).quantize(q, ROUND_HALF_UP)
            return (amount * rate).quantize(q, ROUND_HALF_UP)

        order_items = []
        totals: dict[str, Decimal] = {"ITEM": Decimal(0), "SHIPPING": Decimal(0)}
        totals.update({"TAX": Decimal(0), "DISCOUNT": Decimal(0)})
        for index, (sku, quantity) in enumerate(items.items()):
            if prices and sku in prices:
                unit = Decimal(str(prices[sku]))
            else:
                unit = (Decimal(self.random.randint(500, 9999)) / 100).quantize(q, ROUND_HALF_UP)
            discount = (
                Decimal(str(discounts[sku])) if discounts and sku in discounts else Decimal(0)
            )
            line = unit * quantity
            ship = ship_total if index == 0 else Decimal(0)
            item_tax, ship_tax = tax_of(line - discount), tax_of(ship)
            breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": money(line, currency)}]
            if ship:
                breakdowns.append({"type": "SHIPPING", "subtotal": money(ship, currency)})
            if item_tax or ship_tax:
                details = [{"subtype": "ITEM", "value": money(item_tax, currency)}]
                if ship_tax:
                    details.append({"subtype": "SHIPPING", "value": money(ship_tax, currency)})
                breakdowns.append(
                    {
                        "type": "TAX",
                        "subtotal": money(item_tax + ship_tax, currency),
                        "detailedBreakdowns": details,
                    }
                )
            if discount:
                breakdowns.append(
                    {
                        "type": "DISCOUNT",
                        "subtotal": money(-discount, currency),
                        "detailedBreakdowns": [
                            {"subtype": "ITEM", "value": money(-discount, currency)}
                        ],
                    }
                )
            proceeds = line + ship - discount
            if not market.tax_inclusive:
                proceeds += item_tax + ship_tax
            totals["ITEM"] += line
            totals["SHIPPING"] += ship
            totals["TAX"] += item_tax + ship_tax
            totals["DISCOUNT"] -= discount
            item: dict[str, Any] = {
                "orderItemId": f"{self.random.randint(10**13, 10**14 - 1)}",
                "quantityOrdered": quantity,
                "product": {
                    "asin": f"B0{self.random.randint(10**7, 10**8 - 1)}",
                    "title": f"Simulated product {sku}",
                    "sellerSku": sku,
                    "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                    "price": {"unitPrice": money(unit, currency)},
                },
                "proceeds": {"proceedsTotal": money(proceeds, currency), "breakdowns": breakdowns},
                "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": quantity},
            }
            if business:
                item["product"]["price"]["priceDesignation"] = "BUSINESS_PRICE"
            if discount:
                item["promotion"] = {"breakdowns": [{"promotionId": f"SIM-PROMO-{sku}"}]}
            order_items.append(item)

        grand = totals["ITEM"] + totals["SHIPPING"] + totals["DISCOUNT"]
        if not market.tax_inclusive:
            grand += totals["TAX"]
        programs = [p for p, on in (("PRIME", prime), ("AMAZON_BUSINESS", business)) if on]
        return {
            "orderId": order_id or self.order_id(),
            "createdTime": iso(created),
            "lastUpdatedTime": iso(created),
            "programs": programs,
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": market.id,
                "marketplaceName": market.domain,
            },
            "buyer": self._buyer(market, business),
            "recipient": {"deliveryAddress": self._address(market, business)},
            "proceeds": {
                "grandTotal": money(grand, currency),
                "breakdowns": [
                    {"type": kind, "subtotal": money(amount, currency)}
                    for kind, amount in totals.items()
                    if amount
                ],
            },
            "fulfillment": {
                "fulfillmentStatus": status,
                "fulfilledBy": fulfilled_by,
                "fulfillmentServiceLevel": "EXPEDITED" if prime else "STANDARD",
                "shipByWindow": {
                    "earliestDateTime": iso(created),
                    "latestDateTime": iso(created + timedelta(days=2)),
                },
                "deliverByWindow": {
                    "earliestDateTime": iso(created + timedelta(days=2)),
                    "latestDateTime": iso(created + timedelta(days=5)),
                },
            },
            "orderItems": order_items,
            "packages": [],
        }

    def _buyer(self, market: Marketplace, business: bool) -> dict[str, Any]:
        name = _ADDRESSES.get(market.country_code, _ADDRESSES["US"])[0]
        domain = market.domain.lower().removeprefix("amazon")
        buyer: dict[str, Any] = {
            "buyerName": name,
            "buyerEmail": f"{self.random.getrandbits(40):010x}@marketplace.amazon{domain}",
        }
        if business:
            buyer["buyerCompanyName"] = "Simulated Business Ltd"
            buyer["buyerPurchaseOrderNumber"] = f"PO-{self.random.randint(1000, 9999)}"
        return buyer

    def _address(self, market: Marketplace, business: bool) -> dict[str, Any]:
        name, line1, city, postal, country = _ADDRESSES.get(
            market.country_code, (*_ADDRESSES["US"][:4], market.country_code)
        )
        address: dict[str, Any] = {
            "name": name,
            "addressLine1": line1,
            "city": city,
            "postalCode": postal,
            "countryCode": "GB" if country == "UK" else country,
            "phone": "+00 000 0000000",
            "addressType": "COMMERCIAL" if business else "RESIDENTIAL",
        }
        if business:
            address["companyName"] = "Simulated Business Ltd"
        return address
