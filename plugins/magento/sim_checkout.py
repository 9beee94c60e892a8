"""The simulator's guest-cart checkout: cart, items, shipping information, place order.

Prices come from the catalogue and tax from ``tax_rates`` by destination country,
net or gross per ``prices_include_tax``, as Magento's quote totals do; the flat-rate
carrier charges ``flatrate_per_order``. Items are checked against the salable quantity,
and placing the order appends a ``-qty`` reservation per SKU (MSI's
``AppendReservationsAfterOrderPlacementPlugin``); the source quantity stays.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from plugins.magento.sim_core import JSON, MagentoError, dec, money

ORDER_ADDRESS_FIELDS = frozenset(
    {
        "city",
        "company",
        "country_id",
        "email",
        "firstname",
        "lastname",
        "postcode",
        "region",
        "region_code",
        "street",
        "telephone",
        "vat_id",
    }
)


@dataclass
class Cart:
    mask: str
    quote_id: int
    created_at: str
    items: list[JSON] = field(default_factory=list)
    shipping_address: JSON | None = None
    billing_address: JSON | None = None
    carrier: str | None = None
    method: str | None = None
    active: bool = True
    reserved_order_id: str | None = None


@dataclass
class Totals:
    rows: list[JSON]
    subtotal: Decimal
    subtotal_incl_tax: Decimal
    shipping_amount: Decimal
    shipping_incl_tax: Decimal
    shipping_tax_amount: Decimal
    tax_amount: Decimal

    @property
    def grand_total(self) -> Decimal:
        return self.subtotal_incl_tax + self.shipping_incl_tax


class GuestCheckout:
    """Guest-cart route handlers; mixed into :class:`MagentoSimulator`."""

    products: dict[str, JSON]
    source_items: dict[tuple[str, str], JSON]
    carts: dict[str, Cart]
    random: random.Random
    carriers: dict[tuple[str, str], str]
    payment_methods: dict[str, str]
    tax_rates: dict[str, Decimal]
    prices_include_tax: bool
    base_currency: str
    flatrate_per_order: Decimal
    _next: Callable[[str], int]
    timestamp: Callable[[], str]
    _require_product: Callable[[str], JSON]
    _check_address: Callable[[JSON], None]
    _persist: Callable[[JSON], JSON]
    salable_quantity: Callable[[str], Decimal]
    _reserve: Callable[[str, Decimal, str, JSON], None]

    def _cart(self, request: Request, active: bool = True) -> Cart:
        mask = request.path_params["cartId"]
        cart = self.carts.get(mask)
        if cart is None or (active and not cart.active):
            raise MagentoError(404, f"No such entity with cartId = {mask}")
        return cart

    async def _cart_create(self, request: Request, body: Any) -> Any:
        mask = "".join(self.random.choices(string.ascii_letters + string.digits, k=32))
        self.carts[mask] = Cart(mask, quote_id=self._next("quote"), created_at=self.timestamp())
        return mask

    async def _cart_get(self, request: Request, body: Any) -> Any:
        cart = self._cart(request, active=False)
        email = (cart.billing_address or {}).get("email") or ""
        data: JSON = {
            "id": cart.quote_id,
            "created_at": cart.created_at,
            "is_active": cart.active,
            "is_virtual": False,
            "items": [self._cart_item_out(cart, i) for i in cart.items],
            "items_count": len(cart.items),
            "items_qty": sum(i["qty"] for i in cart.items),
            "customer": {"email": email, "firstname": "", "lastname": ""},
            "customer_is_guest": True,
            "store_id": 1,
        }
        if cart.reserved_order_id:
            data["reserved_order_id"] = cart.reserved_order_id
        return data

    def _cart_item_out(self, cart: Cart, item: JSON) -> JSON:
        product = self.products[item["sku"]]
        return {
            "item_id": item["item_id"],
            "sku": item["sku"],
            "qty": item["qty"],
            "name": product["name"],
            "price": product["price"],
            "product_type": "simple",
            "quote_id": cart.mask,
        }

    async def _cart_add_item(self, request: Request, body: Any) -> Any:
        cart = self._cart(request)
        data = (body or {}).get("cartItem") or {}
        product = self._require_product(str(data.get("sku") or ""))
        qty = dec(data.get("qty"))
        if qty <= 0:
            raise MagentoError(400, "The qty value is required to update quantity.")
        item = next((i for i in cart.items if i["sku"] == product["sku"]), None)
        total = qty + (item["qty"] if item else 0)
        if total > self.salable_quantity(product["sku"]):
            raise MagentoError(400, "The requested qty is not available")
        if item is None:
            item = {"item_id": self._next("quote_item"), "sku": product["sku"], "qty": qty}
            cart.items.append(item)
        else:
            item["qty"] = total
        return self._cart_item_out(cart, item)

    async def _cart_shipping(self, request: Request, body: Any) -> Any:
        cart = self._cart(request)
        info = (body or {}).get("addressInformation") or {}
        carrier = (info.get("shipping_carrier_code"), info.get("shipping_method_code"))
        if carrier not in self.carriers:
            raise MagentoError(
                400, f"Carrier with such method not found: {carrier[0]}, {carrier[1]}"
            )
        shipping = info.get("shipping_address")
        if not isinstance(shipping, dict):
            raise MagentoError(
                400, "The shipping address is missing. Set the address and try again."
            )
        self._check_address(shipping)
        cart.shipping_address = shipping
        cart.billing_address = info.get("billing_address") or shipping
        cart.carrier, cart.method = carrier
        t = self._totals(cart)
        return {
            "payment_methods": [{"code": k, "title": v} for k, v in self.payment_methods.items()],
            "totals": {
                "grand_total": t.grand_total,
                "base_grand_total": t.grand_total,
                "subtotal": t.subtotal,
                "base_subtotal": t.subtotal,
                "subtotal_incl_tax": t.subtotal_incl_tax,
                "shipping_amount": t.shipping_amount,
                "shipping_incl_tax": t.shipping_incl_tax,
                "shipping_tax_amount": t.shipping_tax_amount,
                "tax_amount": t.tax_amount,
                "discount_amount": Decimal(0),
                "weee_tax_applied_amount": Decimal(0),
                "base_currency_code": self.base_currency,
                "quote_currency_code": self.base_currency,
                "items_qty": int(sum(i["qty"] for i in cart.items)),
                "total_segments": [
                    {"code": "subtotal", "title": "Subtotal", "value": t.subtotal},
                    {"code": "grand_total", "title": "Grand Total", "value": t.grand_total},
                ],
            },
        }

    def _split(self, amount: Decimal, rate: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """Catalogue amount → (net, tax, gross) under the store's tax display setting."""
        if self.prices_include_tax:
            tax = money(amount * rate / (1 + rate))
            return amount - tax, tax, amount
        tax = money(amount * rate)
        return amount, tax, amount + tax

    def _totals(self, cart: Cart) -> Totals:
        rate = self.tax_rates.get((cart.shipping_address or {}).get("country_id", ""), Decimal(0))
        rows: list[JSON] = []
        for item in cart.items:
            price = dec(self.products[item["sku"]]["price"])
            net, tax, gross = self._split(money(price * item["qty"]), rate)
            rows.append({"item": item, "net": net, "tax": tax, "gross": gross, "rate": rate})
        ship = self.flatrate_per_order if cart.carrier == "flatrate" else Decimal(0)
        ship_net, ship_tax, ship_gross = self._split(ship, rate)
        return Totals(
            rows=rows,
            subtotal=sum((r["net"] for r in rows), Decimal(0)),
            subtotal_incl_tax=sum((r["gross"] for r in rows), Decimal(0)),
            shipping_amount=ship_net,
            shipping_incl_tax=ship_gross,
            shipping_tax_amount=ship_tax,
            tax_amount=sum((r["tax"] for r in rows), Decimal(0)) + ship_tax,
        )

    async def _cart_place(self, request: Request, body: Any) -> Any:
        cart = self._cart(request)
        method = ((body or {}).get("paymentMethod") or {}).get("method")
        if method not in self.payment_methods:
            raise MagentoError(400, "The requested Payment Method is not available.")
        if not cart.items:
            raise MagentoError(400, "Unable to place order: cart is empty")
        if cart.shipping_address is None or cart.carrier is None:
            raise MagentoError(
                400, "The shipping method is missing. Select the shipping method and try again."
            )
        for item in cart.items:
            if item["qty"] > self.salable_quantity(item["sku"]):
                raise MagentoError(400, "The requested qty is not available")
        order = self._persist(self._order_from_cart(cart, str(method)))
        for item in cart.items:
            self._reserve(item["sku"], -dec(item["qty"]), "order_placed", order)
        cart.active = False
        cart.reserved_order_id = order["increment_id"]
        return order["entity_id"]

    def _order_from_cart(self, cart: Cart, method: str) -> JSON:
        t = self._totals(cart)
        shipping = _order_address(cart.shipping_address or {}, "shipping")
        billing = _order_address(cart.billing_address or {}, "billing")
        amounts = {
            "subtotal": t.subtotal,
            "subtotal_incl_tax": t.subtotal_incl_tax,
            "shipping_amount": t.shipping_amount,
            "shipping_incl_tax": t.shipping_incl_tax,
            "shipping_tax_amount": t.shipping_tax_amount,
            "tax_amount": t.tax_amount,
            "discount_amount": Decimal(0),
            "grand_total": t.grand_total,
        }
        return {
            "quote_id": cart.quote_id,
            "customer_email": billing.get("email") or "guest@example.invalid",
            "customer_firstname": billing.get("firstname") or "-",
            "customer_lastname": billing.get("lastname") or "-",
            "customer_is_guest": 1,
            "customer_group_id": 0,
            "state": "new",
            "status": "pending",
            "order_currency_code": self.base_currency,
            "base_currency_code": self.base_currency,
            **amounts,
            **{f"base_{k}": v for k, v in amounts.items()},
            "total_due": t.grand_total,
            "total_qty_ordered": sum(i["qty"] for i in cart.items),
            "shipping_description": self.carriers[(cart.carrier or "", cart.method or "")],
            "items": [self._order_item(row) for row in t.rows],
            "billing_address": billing,
            "payment": {
                "method": method,
                "account_status": "",
                "additional_information": [],
                "cc_last4": "",
            },
            "extension_attributes": {
                "shipping_assignments": [
                    {
                        "shipping": {
                            "address": shipping,
                            "method": f"{cart.carrier}_{cart.method}",
                        },
                        "items": [],
                    }
                ]
            },
        }

    def _order_item(self, row: JSON) -> JSON:
        item = row["item"]
        qty = item["qty"]
        return {
            "sku": item["sku"],
            "name": self.products[item["sku"]]["name"],
            "qty_ordered": qty,
            "quote_item_id": item["item_id"],
            "price": money(row["net"] / qty),
            "price_incl_tax": money(row["gross"] / qty),
            "row_total": row["net"],
            "row_total_incl_tax": row["gross"],
            "tax_amount": row["tax"],
            "tax_percent": row["rate"] * 100,
            "discount_amount": Decimal(0),
        }


def _order_address(address: JSON, kind: str) -> JSON:
    kept = {k: v for k, v in address.items() if k in ORDER_ADDRESS_FIELDS and v is not None}
    return {**kept, "address_type": kind}
