"""A stateful WooCommerce REST API (``wc/v3``) for tests, the demo and benchmarks.

What it models, from the documented API and WooCommerce's own behaviour:

- HTTP Basic (or ``consumer_key``/``consumer_secret`` query) auth over HTTPS only, and
  OAuth 1.0a one-legged signatures (HMAC-SHA1/256, query or header, a 15-minute timestamp
  window, single-use nonces) over either; read/write permissions and WooCommerce's 401
  codes; a WP-style JSON 404 for unknown routes.
- Products and variations (``GET /products?sku=a,b`` also matches variations, as
  core does), ``page``/``per_page``/``X-WP-Total``/``X-WP-TotalPages``, ``modified_after``
  with ``dates_are_gmt``, a site timezone distinct from GMT.
- Orders: create computes taxes from per-country rates (per line, half up) and the
  totals the way WooCommerce does; ``set_paid``/paid statuses reduce managed stock once;
  cancelling restores it; every write moves ``date_modified_gmt``, a variation's also its
  parent's (the deferred product sync saves the parent).
  ``search`` covers billing/shipping fields and order item names (as core does), plus
  any ``searchable_meta_keys`` (what a search-fields filter adds).
- Batch endpoints (100 objects at most), optional order fulfillments.

WooCommerce publishes no rate limit; ``rate_limit`` is a per-key token bucket
standing in for a host's or WAF's limit. Faults come from :class:`FaultInjector`.

Run it: ``python -m plugins.woocommerce.simulator --port 8103``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.testing.clock import ScaledClock
from engine.testing.faults import FaultInjector, FaultMiddleware
from engine.testing.ratelimit import Limit, RateLimiter, RateLimitMiddleware, Scope

NS = "/wp-json/wc/v3"
OAUTH_REQUIRED = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)
OAUTH_WINDOW_SECONDS = 15 * 60
"""How old an OAuth timestamp may be (WooCommerce's replay window)."""
CENT = Decimal("0.01")
MAX_BATCH = 100
DEFAULT_KEY = "ck_test"
DEFAULT_SECRET = "cs_test"  # noqa: S105 - the simulator's placeholder key
EU_VAT = {"DE": "19", "AT": "20", "FR": "20", "IT": "22", "ES": "21", "NL": "21", "GB": "20"}
ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
)
PAID_STATUSES = ("processing", "completed", "on-hold")
KNOWN_PROVIDERS = (
    "dhl",
    "dhl-paket",
    "deutsche-post",
    "dpd",
    "gls",
    "hermes",
    "ups",
    "usps",
    "fedex",
)
ADDRESS_FIELDS = (
    *("first_name", "last_name", "company", "address_1", "address_2"),
    *("city", "state", "postcode", "country"),
)


class ApiError(Exception):
    """A WordPress REST error answer: ``{"code", "message", "data": {"status"}}``."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"status": self.status, **self.data},
        }


def _d(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise ApiError(400, "rest_invalid_param", f"Invalid amount {value!r}.") from None


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _fmt(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%S") if when else None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes")


@dataclass
class ApiKey:
    key: str
    secret: str
    permissions: str = "read_write"
    """``read``, ``write`` or ``read_write``, as in WooCommerce > Settings > REST API."""


class WooCommerceSimulator:
    """The simulated store. Python admin methods and ``/_admin/...`` routes drive it.

    :param time_scale: simulated seconds per real second (rate-limit buckets).
    :param rate_limits: whether the per-key limit is enforced.
    :param seed: seeds order keys and fault draws.
    :param rate_limit: the per-key limit (WooCommerce publishes none).
    :param tax_rates: percent per shipping country; default EU VAT rates, no US tax.
    :param fulfillments: serve ``/orders/<id>/fulfillments`` (WooCommerce 10.2+ feature).
    :param searchable_meta_keys: order meta keys that ``search=`` also covers.
    :param key_auth_over_http: accept Basic and query keys on plain-HTTP requests, which
        no real store does (it wants OAuth 1.0a there); only for a loopback demo client
        that cannot sign.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        *,
        rate_limit: Limit | None = None,
        currency: str = "EUR",
        tax_rates: Mapping[str, Any] | None = None,
        site_utc_offset_hours: float = 1.0,
        fulfillments: bool = False,
        searchable_meta_keys: Iterable[str] = (),
        base_url: str = "https://shop.example.com",
        key_auth_over_http: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self.currency = currency
        self.base_url = base_url
        self.tax_rates = {
            k.upper(): Decimal(str(v))
            for k, v in (EU_VAT if tax_rates is None else tax_rates).items()
        }
        self.site_offset = timedelta(hours=site_utc_offset_hours)
        self.fulfillments_enabled = fulfillments
        self.searchable_meta_keys = tuple(searchable_meta_keys)
        self.key_auth_over_http = key_auth_over_http
        self.keys: dict[str, ApiKey] = {}
        self._nonces: dict[str, dict[str, int]] = {}
        self.add_key(DEFAULT_KEY, DEFAULT_SECRET)
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.fulfillments: dict[int, list[dict[str, Any]]] = {}
        self.locked_orders: dict[int, str] = {}
        self._stock_reduced: set[int] = set()
        self._next_post = 100
        self._next_item = 1
        self._next_meta = 1
        self._offset = timedelta(0)
        self.requests: list[tuple[str, str]] = []
        """``(method, path)`` of every REST call served (admin routes excluded)."""
        self.clock = ScaledClock(time_scale)
        self.limiter = RateLimiter(
            limits={"rest": rate_limit or Limit(rate=10.0, burst=20)},
            clock=self.clock,
            enabled=rate_limits,
        )
        self.faults = FaultInjector(seed=seed)
        self.rest_app = self._build_app()
        """The routes alone (no rate limit, no faults): what tests enumerate."""
        self.app = FaultMiddleware(
            RateLimitMiddleware(
                self.rest_app,
                self.limiter,
                classify=self._classify,
                throttled_response=self._throttled,
            ),
            self.faults,
        )

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for ``ConnectorContext.transport``."""
        return httpx.ASGITransport(app=self.app)

    # --- clock ------------------------------------------------------------------------

    def now(self) -> datetime:
        """Simulated GMT wall time, to the second (as WordPress stores it)."""
        return (datetime.now(UTC) + self._offset).replace(microsecond=0, tzinfo=None)

    def http_date(self) -> str:
        """The simulated clock as an HTTP ``Date`` header (WordPress sends one)."""
        return email.utils.format_datetime(self.now().replace(tzinfo=UTC), usegmt=True)

    def advance(self, seconds: float) -> None:
        """Move the store's wall clock forward (dates written from now on)."""
        with self.lock:
            self._offset += timedelta(seconds=seconds)

    def _saved(self, product: dict[str, Any]) -> None:
        """A product or variation saved through WooCommerce's CRUD: its ``date_modified``
        moves (the data store records every save), and a variation's parent is synced and
        saved at the end of the request (``wc_deferred_product_sync``), so it moves too."""
        self._stamp(product)
        parent = self.products.get(product.get("_parent") or 0)
        if parent is not None:
            self._stamp(parent)

    def _stamp(self, obj: dict[str, Any], prefix: str = "date_modified") -> None:
        now = self.now()
        obj[f"{prefix}_gmt"] = _fmt(now)
        obj[prefix] = _fmt(now + self.site_offset)

    # --- admin: keys, products, stock ----------------------------------------------------

    def add_key(self, key: str, secret: str, permissions: str = "read_write") -> None:
        self.keys[key] = ApiKey(key, secret, permissions)

    def _meta(self, key: str, value: Any) -> dict[str, Any]:
        entry = {"id": self._next_meta, "key": key, "value": value}
        self._next_meta += 1
        return entry

    def _post_id(self) -> int:
        self._next_post += 1
        return self._next_post

    def create_product(
        self,
        sku: str,
        price: Any = "10.00",
        stock: int | None = None,
        *,
        ean: str | None = None,
        ean_meta_key: str = "_alg_ean",
        name: str | None = None,
        type: str = "simple",  # noqa: A002 - the API's field name
        status: str = "publish",
        manage_stock: bool | None = None,
    ) -> dict[str, Any]:
        """A simple (or ``variable``) product; ``stock`` given means managed stock."""
        with self.lock:
            pid = self._post_id()
            product = _product_shape(self.base_url, pid)
            managed = stock is not None if manage_stock is None else manage_stock
            product.update(
                name=name or f"Product {sku}",
                slug=f"product-{pid}",
                sku=sku,
                type=type,
                status=status,
                price=_money(_d(price)) if type != "variable" else "",
                regular_price=_money(_d(price)) if type != "variable" else "",
                manage_stock=managed,
                stock_quantity=stock if managed else None,
            )
            product["permalink"] = f"{self.base_url}/product/product-{pid}/"
            if ean:
                product["meta_data"].append(self._meta(ean_meta_key, ean))
            self._stamp(product, "date_created")
            self._stamp(product)
            _stock_status(product)
            self.products[pid] = product
            return _copy(product)

    def create_variation(
        self,
        parent_id: int,
        sku: str,
        price: Any = "10.00",
        stock: int | None = None,
        *,
        ean: str | None = None,
        ean_meta_key: str = "_alg_ean",
        option: str | None = None,
    ) -> dict[str, Any]:
        """A variation of a ``variable`` product."""
        with self.lock:
            parent = self.products[parent_id]
            if parent["type"] != "variable":
                raise ValueError(f"product {parent_id} is not variable")
            vid = self._post_id()
            variation = _variation_shape(self.base_url, parent_id, vid)
            variation.update(
                sku=sku,
                price=_money(_d(price)),
                regular_price=_money(_d(price)),
                manage_stock=stock is not None,
                stock_quantity=stock,
                attributes=[{"id": 0, "name": "Option", "option": option or sku}],
            )
            if ean:
                variation["meta_data"].append(self._meta(ean_meta_key, ean))
            self._stamp(variation, "date_created")
            _stock_status(variation)
            variation["_parent"] = parent_id
            self.variations[vid] = variation
            parent["variations"].append(vid)
            self._saved(variation)
            return _public(variation)

    def _stock_holder(self, product_id: int) -> dict[str, Any]:
        holder = self.products.get(product_id) or self.variations.get(product_id)
        if holder is None:
            raise KeyError(f"no product or variation {product_id}")
        return holder

    def set_stock(self, product_id: int, quantity: int) -> None:
        """Set the stock of a product or variation (enables stock management)."""
        with self.lock:
            holder = self._stock_holder(product_id)
            holder["manage_stock"] = True
            holder["stock_quantity"] = int(quantity)
            _stock_status(holder)
            self._saved(holder)

    def stock_of(self, product_id: int) -> int | None:
        with self.lock:
            return self._stock_holder(product_id).get("stock_quantity")

    # --- admin: orders ------------------------------------------------------------------

    def get_order(self, order_id: int) -> dict[str, Any]:
        with self.lock:
            return _copy(self.orders[order_id])

    def list_orders(self) -> list[dict[str, Any]]:
        with self.lock:
            return [_copy(o) for o in self.orders.values()]

    def count_orders(self, amazon_order_id: str, meta_key: str = "_amazon_order_id") -> int:
        """How many shop orders carry this Amazon order id (duplicates show here)."""
        with self.lock:
            return sum(
                1
                for o in self.orders.values()
                if any(
                    m["key"] == meta_key and str(m["value"]) == amazon_order_id
                    for m in o["meta_data"]
                )
            )

    def cancel_order(self, order_id: int) -> dict[str, Any]:
        """Cancel as a shop manager would (restores reduced stock)."""
        with self.lock:
            order = self.orders[order_id]
            self._set_status(order, "cancelled")
            self._stamp(order)
            return _copy(order)

    def lock_order(self, order_id: int, message: str = "Order is locked for editing.") -> None:
        """Refuse REST edits of an order, as a plugin filtering
        ``woocommerce_rest_pre_insert_shop_order_object`` with a ``WP_Error`` does."""
        with self.lock:
            if order_id not in self.orders:
                raise KeyError(f"no order {order_id}")
            self.locked_orders[order_id] = message

    def set_order_meta(self, order_id: int, key: str, value: Any) -> dict[str, Any]:
        """Write an order meta value as a plugin would (any JSON value; moves the order's
        ``date_modified``)."""
        with self.lock:
            order = self.orders[order_id]
            self._update_meta(order, [{"key": key, "value": value}])
            self._stamp(order)
            return _copy(order)

    def set_order_status(self, order_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            order = self.orders[order_id]
            self._set_status(order, status)
            self._stamp(order)
            return _copy(order)

    def ship_order(
        self,
        order_id: int,
        tracking: Iterable[Mapping[str, Any]] = (),
        *,
        complete: bool = True,
        via: str = "meta",
        meta_key: str = "_wc_shipment_tracking_items",
    ) -> dict[str, Any]:
        """Add tracking and (by default) complete the order.

        Each tracking entry: ``{"provider", "number", "items"?}``; ``items`` (a list of
        ``{"sku" | "item_id" | "product_id", "qty"}``) makes the package partial. ``via``
        ``meta`` writes Shipment Tracking items (``products_list`` as AST does),
        ``fulfillments`` writes order fulfillments.
        """
        with self.lock:
            order = self.orders[order_id]
            for entry in tracking:
                items = [self._resolve_item(order, i) for i in entry.get("items") or []]
                if via == "fulfillments":
                    self._add_fulfillment(order, entry, items)
                else:
                    self._add_tracking_item(order, entry, items, meta_key)
            if complete:
                self._set_status(order, "completed")
            self._stamp(order)
            return _copy(order)

    def _resolve_item(
        self, order: dict[str, Any], ref: Mapping[str, Any]
    ) -> tuple[dict[str, Any], int]:
        qty = int(ref.get("qty", 1))
        for item in order["line_items"]:
            skus = {item.get("sku")} | {
                m["value"] for m in item["meta_data"] if m["key"] == "_amazon_sku"
            }
            if (
                ("item_id" in ref and item["id"] == int(ref["item_id"]))
                or ("sku" in ref and ref["sku"] in skus)
                or (
                    "product_id" in ref
                    and int(ref["product_id"]) in (item["product_id"], item["variation_id"])
                )
            ):
                return item, qty
        raise KeyError(f"order {order['id']} has no line item matching {dict(ref)}")

    def _add_tracking_item(
        self,
        order: dict[str, Any],
        entry: Mapping[str, Any],
        items: list[tuple[dict[str, Any], int]],
        meta_key: str,
    ) -> None:
        provider = str(entry.get("provider") or "")
        number = str(entry.get("number") or "")
        stamp = int(self.now().replace(tzinfo=UTC).timestamp())
        tracking_id = hashlib.md5(f"{provider}-{number}-{stamp}".encode()).hexdigest()  # noqa: S324
        record: dict[str, Any] = {
            "tracking_provider": provider if provider in KNOWN_PROVIDERS else "",
            "custom_tracking_provider": "" if provider in KNOWN_PROVIDERS else provider,
            "custom_tracking_link": "",
            "tracking_number": number,
            "date_shipped": str(stamp),
            "tracking_id": tracking_id,
        }
        if items:
            record["products_list"] = [
                {
                    "product": str(i["variation_id"] or i["product_id"]),
                    "item_id": str(i["id"]),
                    "qty": str(q),
                }
                for i, q in items
            ]
        existing = next((m for m in order["meta_data"] if m["key"] == meta_key), None)
        if existing is None:
            order["meta_data"].append(self._meta(meta_key, [record]))
        else:
            existing["value"] = [*existing["value"], record]

    def _add_fulfillment(
        self,
        order: dict[str, Any],
        entry: Mapping[str, Any],
        items: list[tuple[dict[str, Any], int]],
    ) -> None:
        if not items:
            items = [(i, int(i["quantity"])) for i in order["line_items"]]
        records = self.fulfillments.setdefault(order["id"], [])
        meta = [self._meta("_items", [{"item_id": i["id"], "qty": q} for i, q in items])]
        if entry.get("number"):
            meta.append(self._meta("_tracking_number", str(entry["number"])))
        if entry.get("provider"):
            meta.append(self._meta("_shipment_provider", str(entry["provider"])))
        records.append(
            {
                "id": len(records) + 1,
                "entity_type": "WC_Order",
                "entity_id": str(order["id"]),
                "status": "fulfilled",
                "is_fulfilled": True,
                "date_updated": _fmt(self.now()),
                "date_deleted": None,
                "meta_data": meta,
            }
        )

    # --- store behaviour ----------------------------------------------------------------

    def _rate_for(self, order: dict[str, Any]) -> tuple[Decimal, str]:
        country = (
            order["shipping"].get("country") or order["billing"].get("country") or ""
        ).upper()
        return self.tax_rates.get(country, Decimal(0)), country

    def _recalculate(self, order: dict[str, Any]) -> None:
        """WooCommerce's ``calculate_totals``: taxes per item from the rate, rounded half up."""
        rate, country = self._rate_for(order)
        rate_id = sorted(self.tax_rates).index(country) + 1 if rate else 0

        def tax(amount: Decimal) -> Decimal:
            return (amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)

        cart_tax = discount = discount_tax = items_total = fees_total = fee_tax = Decimal(0)
        for item in order["line_items"]:
            subtotal, total = _d(item["subtotal"]), _d(item["total"])
            sub_tax, line_tax = tax(subtotal), tax(total)
            item.update(
                subtotal=_money(subtotal),
                total=_money(total),
                subtotal_tax=_money(sub_tax),
                total_tax=_money(line_tax),
                taxes=[{"id": rate_id, "total": _money(line_tax), "subtotal": _money(sub_tax)}]
                if rate
                else [],
                price=float(subtotal / item["quantity"]) if item["quantity"] else 0.0,
            )
            cart_tax += line_tax
            discount += subtotal - total
            discount_tax += sub_tax - line_tax
            items_total += total
        shipping_total = shipping_tax = Decimal(0)
        for line in order["shipping_lines"]:
            total = _d(line["total"])
            line_tax = tax(total)
            line.update(
                total=_money(total),
                total_tax=_money(line_tax),
                taxes=[{"id": rate_id, "total": _money(line_tax), "subtotal": ""}] if rate else [],
            )
            shipping_total += total
            shipping_tax += line_tax
        for fee in order["fee_lines"]:
            total = _d(fee["total"])
            fee_line_tax = (
                tax(total) if fee.get("tax_status", "taxable") == "taxable" else Decimal(0)
            )
            fee.update(
                total=_money(total),
                total_tax=_money(fee_line_tax),
                taxes=[{"id": rate_id, "total": _money(fee_line_tax), "subtotal": ""}]
                if fee_line_tax
                else [],
            )
            fees_total += total
            fee_tax += fee_line_tax
        cart_tax += fee_tax
        total_tax = cart_tax + shipping_tax
        order.update(
            discount_total=_money(discount),
            discount_tax=_money(discount_tax),
            shipping_total=_money(shipping_total),
            shipping_tax=_money(shipping_tax),
            cart_tax=_money(cart_tax),
            total_tax=_money(total_tax),
            total=_money(items_total + fees_total + shipping_total + total_tax),
        )
        order["tax_lines"] = []
        if rate:
            order["tax_lines"].append(
                {
                    "id": order["id"] * 1000 + rate_id,
                    "rate_code": f"{country}-VAT-1",
                    "rate_id": rate_id,
                    "label": "VAT",
                    "compound": False,
                    "tax_total": _money(cart_tax),
                    "shipping_tax_total": _money(shipping_tax),
                    "meta_data": [],
                }
            )

    def _change_stock(self, order: dict[str, Any], sign: int) -> None:
        for item in order["line_items"]:
            holder = self.variations.get(item["variation_id"]) or self.products.get(
                item["product_id"]
            )
            if holder is None or holder.get("manage_stock") is not True:
                continue
            holder["stock_quantity"] = int(holder.get("stock_quantity") or 0) + sign * int(
                item["quantity"]
            )
            _stock_status(holder)
            self._saved(holder)  # wc_update_product_stock() saves the product

    def _set_status(self, order: dict[str, Any], status: str) -> None:
        if status not in ORDER_STATUSES:
            raise ApiError(
                400, "rest_invalid_param", "Invalid parameter(s): status", params={"status": status}
            )
        order["status"] = status
        now = self.now()
        if status in PAID_STATUSES and order["id"] not in self._stock_reduced:
            self._change_stock(order, -1)
            self._stock_reduced.add(order["id"])
        if status in ("processing", "completed") and not order["date_paid_gmt"]:
            order["date_paid_gmt"], order["date_paid"] = _fmt(now), _fmt(now + self.site_offset)
        if status == "completed":
            order["date_completed_gmt"], order["date_completed"] = (
                _fmt(now),
                _fmt(now + self.site_offset),
            )
        if status in ("cancelled", "pending") and order["id"] in self._stock_reduced:
            self._change_stock(order, +1)
            self._stock_reduced.discard(order["id"])

    def _line_item(self, data: Mapping[str, Any]) -> dict[str, Any]:
        product_id = int(data.get("product_id") or 0)
        variation_id = int(data.get("variation_id") or 0)
        if not product_id and data.get("sku"):  # core resolves sku on create
            found = self._by_sku(str(data["sku"]))
            if found is not None:
                product_id, variation_id = (
                    (found["_parent"], found["id"]) if "_parent" in found else (found["id"], 0)
                )
        product = self.products.get(product_id)
        variation = self.variations.get(variation_id) if variation_id else None
        if product is None or (
            variation_id and (variation is None or variation["_parent"] != product_id)
        ):
            raise ApiError(
                400, "woocommerce_rest_invalid_product_id", "Product ID provided is invalid."
            )
        quantity = int(data.get("quantity") or 1)
        if quantity <= 0:
            raise ApiError(
                400, "woocommerce_rest_invalid_item_quantity", "Product quantity must be positive."
            )
        source = variation or product
        price = _d(source.get("price"))
        subtotal = (
            _d(data["subtotal"]) if data.get("subtotal") not in (None, "") else price * quantity
        )
        total = _d(data["total"]) if data.get("total") not in (None, "") else subtotal
        item = {
            "id": self._item_id(),
            "name": str(
                data.get("name") or product["name"] + (f" - {source['sku']}" if variation else "")
            ),
            "product_id": product_id,
            "variation_id": variation_id,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": _money(subtotal),
            "subtotal_tax": "0.00",
            "total": _money(total),
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [
                self._meta(m["key"], m.get("value")) for m in data.get("meta_data") or []
            ],
            "sku": source.get("sku") or "",
            "price": 0.0,
        }
        return item

    def _item_id(self) -> int:
        self._next_item += 1
        return self._next_item

    def _shipping_line(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": self._item_id(),
            "method_title": str(data.get("method_title") or ""),
            "method_id": str(data.get("method_id") or ""),
            "total": _money(_d(data.get("total"))),
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [
                self._meta(m["key"], m.get("value")) for m in data.get("meta_data") or []
            ],
        }

    def _fee_line(self, data: Mapping[str, Any]) -> dict[str, Any]:
        status = data.get("tax_status", "taxable")
        if status not in ("taxable", "none"):
            raise ApiError(400, "rest_invalid_param", "Invalid parameter(s): fee_lines")
        return {
            "id": self._item_id(),
            "name": str(data.get("name") or ""),
            "tax_class": str(data.get("tax_class") or ""),
            "tax_status": status,
            "total": _money(_d(data.get("total"))),
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [
                self._meta(m["key"], m.get("value")) for m in data.get("meta_data") or []
            ],
        }

    def _update_meta(self, obj: dict[str, Any], entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            by_id = next(
                (m for m in obj["meta_data"] if entry.get("id") and m["id"] == entry["id"]), None
            )
            by_key = next((m for m in obj["meta_data"] if m["key"] == entry.get("key")), None)
            target = by_id or by_key
            if target is not None:
                target["value"] = entry.get("value")
            else:
                obj["meta_data"].append(self._meta(str(entry.get("key")), entry.get("value")))

    def _create_order(self, data: Mapping[str, Any]) -> dict[str, Any]:
        currency = str(data.get("currency") or self.currency)
        if currency not in _CURRENCIES:
            raise ApiError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): currency",
                params={"currency": currency},
            )
        oid = self._post_id()
        order = _order_shape(self.base_url, oid)
        order.update(
            number=str(oid),
            order_key="wc_order_"
            + "".join(self.random.choice("0123456789abcdef") for _ in range(13)),
            currency=currency,
            customer_note=str(data.get("customer_note") or ""),
            payment_method=str(data.get("payment_method") or ""),
            payment_method_title=str(data.get("payment_method_title") or ""),
            transaction_id=str(data.get("transaction_id") or ""),
        )
        for kind in ("billing", "shipping"):
            order[kind].update(
                {k: str(v) for k, v in (data.get(kind) or {}).items() if k in order[kind]}
            )
        order["line_items"] = [self._line_item(i) for i in data.get("line_items") or []]
        order["shipping_lines"] = [self._shipping_line(i) for i in data.get("shipping_lines") or []]
        order["fee_lines"] = [self._fee_line(i) for i in data.get("fee_lines") or []]
        self._update_meta(order, data.get("meta_data") or [])
        self._stamp(order, "date_created")
        self._recalculate(order)
        self.orders[oid] = order
        if data.get("set_paid"):
            self._set_status(order, "processing")
        status = data.get("status")
        if status and status != order["status"]:
            self._set_status(order, str(status))
        self._stamp(order)
        return order

    def _update_order(self, order: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
        if order["id"] in self.locked_orders:
            raise ApiError(400, "order_locked", self.locked_orders[order["id"]])
        for kind in ("billing", "shipping"):
            if kind in data:
                order[kind].update(
                    {k: str(v) for k, v in (data[kind] or {}).items() if k in order[kind]}
                )
        for field in ("customer_note", "payment_method", "payment_method_title", "transaction_id"):
            if field in data:
                order[field] = str(data[field])
        builders: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "line_items": self._line_item,
            "shipping_lines": self._shipping_line,
            "fee_lines": self._fee_line,
        }
        for kind, build in builders.items():
            for entry in data.get(kind) or []:
                existing = next(
                    (x for x in order[kind] if entry.get("id") and x["id"] == entry["id"]), None
                )
                if existing is None:
                    order[kind].append(build(entry))
                else:
                    existing.update({k: v for k, v in entry.items() if k in existing and k != "id"})
        self._update_meta(order, data.get("meta_data") or [])
        if any(k in data for k in ("billing", "shipping", *builders)):
            self._recalculate(order)
        if data.get("set_paid") and order["status"] in (
            "pending",
            "failed",
            "on-hold",
            "cancelled",
        ):
            self._set_status(order, "processing")
        if data.get("status") and data["status"] != order["status"]:
            self._set_status(order, str(data["status"]))
        self._stamp(order)
        return order

    def _by_sku(self, sku: str) -> dict[str, Any] | None:
        for obj in (*self.products.values(), *self.variations.values()):
            if obj.get("sku") == sku:
                return obj
        return None

    def _variation_as_product(self, variation: dict[str, Any]) -> dict[str, Any]:
        """How ``/products`` shows a variation (type ``variation``, ``parent_id`` set)."""
        parent = self.products[variation["_parent"]]
        product = _product_shape(self.base_url, variation["id"])
        for key in product:
            if key in variation and key not in ("_links",):
                product[key] = variation[key]
        product.update(
            name=f"{parent['name']} - {variation['attributes'][0]['option'] if variation['attributes'] else ''}",
            type="variation",
            parent_id=parent["id"],
            status="publish",
            slug=f"{parent['slug']}-{variation['id']}",
            images=[],
            attributes=[],
        )
        return product

    # --- search ------------------------------------------------------------------------

    def _order_matches(self, order: dict[str, Any], term: str) -> bool:
        needle = term.lower().strip()
        if needle.isdigit() and int(needle) == order["id"]:
            return True
        haystack = [str(v) for kind in ("billing", "shipping") for v in order[kind].values()]
        haystack += [i["name"] for i in order["line_items"]]
        haystack += [s["method_title"] for s in order["shipping_lines"]]
        haystack += [f["name"] for f in order["fee_lines"]]
        haystack += [
            str(m["value"]) for m in order["meta_data"] if m["key"] in self.searchable_meta_keys
        ]
        return any(needle in h.lower() for h in haystack)

    # --- HTTP: plumbing ----------------------------------------------------------------

    def _classify(self, scope: Scope) -> tuple[str, str] | None:
        path = scope.get("path", "")
        if not path.startswith("/wp-json/"):
            return None
        query = parse_qs(scope.get("query_string", b"").decode())
        key = _credentials(scope)[0] or query.get("oauth_consumer_key", ["anonymous"])[0]
        return "rest", key

    def _throttled(self, operation: str, wait: float) -> tuple[int, dict[str, str], bytes]:
        seconds = max(1, math.ceil(wait / max(self.clock.time_scale, 1e-9)))
        body = ApiError(429, "rest_too_many_requests", "Too many requests; slow down.").body()
        return (
            429,
            {"content-type": "application/json", "retry-after": str(seconds)},
            json.dumps(body).encode(),
        )

    def _authenticate(self, request: Request, write: bool, listing: bool) -> None:
        api_key = self._user(request)
        if api_key is None:
            verb, noun = (
                ("create", "resources") if request.method == "POST" else ("edit", "this resource")
            )
            if not write:
                verb, noun = ("list", "resources") if listing else ("view", "this resource")
            code = {"list": "cannot_view", "view": "cannot_view", "create": "cannot_create"}.get(
                verb, "cannot_edit"
            )
            raise ApiError(401, f"woocommerce_rest_{code}", f"Sorry, you cannot {verb} {noun}.")
        if write and "write" not in api_key.permissions:
            raise _auth_error("The API key provided does not have write permissions.")
        if not write and "read" not in api_key.permissions:
            raise _auth_error("The API key provided does not have read permissions.")

    def _user(self, request: Request) -> ApiKey | None:
        """The key a request authenticates with, as ``WC_REST_Authentication`` decides:
        the keys themselves (Basic, else the query) only over HTTPS, else an OAuth 1.0a
        signature; ``None`` when it carries neither (WordPress then refuses by permission).
        """
        if request.url.scheme == "https" or self.key_auth_over_http:
            key, secret = _credentials(request.scope)
            if key is not None:
                api_key = self.keys.get(key)
                if api_key is None:
                    raise _auth_error("Consumer key is invalid.")
                if not hmac.compare_digest((secret or "").encode(), api_key.secret.encode()):
                    raise _auth_error("Consumer secret is invalid.")
                return api_key
        params = _oauth_parameters(request)
        return self._check_oauth(request, params) if params else None

    def _check_oauth(self, request: Request, params: dict[str, str]) -> ApiKey:
        """``perform_oauth_authentication``: key, signature, then timestamp and nonce."""
        api_key = self.keys.get(params["oauth_consumer_key"])
        if api_key is None:
            raise _auth_error("Consumer key is invalid.")
        method = params["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise _auth_error("Invalid signature - signature method is invalid.")
        given = unquote(params["oauth_signature"].replace(" ", "+"))
        signed = {k: v for k, v in params.items() if k != "oauth_signature"}
        pairs = [f"{_rawurlencode(k)}={_rawurlencode(signed[k])}" for k in sorted(signed)]
        # The home URL with the request path: here the Host the request was sent to.
        uri = f"{request.url.scheme}://{request.headers.get('host', '')}{request.url.path}"
        base = "&".join(
            (request.method.upper(), _rawurlencode(uri), "%26".join(map(_rawurlencode, pairs)))
        )
        digest = hashlib.sha1 if method == "HMAC-SHA1" else hashlib.sha256
        mac = hmac.new(f"{api_key.secret}&".encode(), base.encode(), digest).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode().encode(), given.encode()):
            raise _auth_error("Invalid signature - provided signature does not match.")
        stamp = params["oauth_timestamp"]
        if not stamp.isdigit() or int(stamp) < time.time() - OAUTH_WINDOW_SECONDS:
            raise _auth_error("Invalid timestamp.")
        used = self._nonces.setdefault(api_key.key, {})
        if params["oauth_nonce"] in used:
            raise _auth_error("Invalid nonce - nonce has already been used.")
        used[params["oauth_nonce"]] = int(stamp)
        if len(used) > 10_000:  # WooCommerce drops nonces older than the window
            cutoff = time.time() - OAUTH_WINDOW_SECONDS
            for nonce in [n for n, t in used.items() if t < cutoff]:
                del used[nonce]
        return api_key

    def _build_app(self) -> Starlette:
        def rest(
            handler: Callable[..., Any], write: bool = False, listing: bool = False
        ) -> Callable[..., Any]:
            async def endpoint(request: Request) -> Response:
                try:
                    body = await _json_body(request)
                    with self.lock:
                        self.requests.append((request.method, request.url.path))
                        self._authenticate(request, write, listing)
                        result = handler(request, body)
                    response = result if isinstance(result, Response) else JSONResponse(result)
                except ApiError as exc:
                    response = _error(exc)
                response.headers["Date"] = self.http_date()
                return response

            return endpoint

        def admin(handler: Callable[..., Any]) -> Callable[..., Any]:
            async def endpoint(request: Request) -> Response:
                raw = await request.body()
                body = json.loads(raw) if raw else {}
                try:
                    return JSONResponse(handler(request, body))
                except (KeyError, ValueError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)

            return endpoint

        routes = [
            Route(f"{NS}/system_status", rest(self._h_system_status), methods=["GET"]),
            Route(f"{NS}/products", rest(self._h_products, listing=True), methods=["GET"]),
            Route(f"{NS}/products", rest(self._h_product_create, write=True), methods=["POST"]),
            Route(
                f"{NS}/products/batch",
                rest(self._h_products_batch, write=True),
                methods=["POST", "PUT", "PATCH"],
            ),
            Route(f"{NS}/products/{{pid:int}}", rest(self._h_product), methods=["GET"]),
            Route(
                f"{NS}/products/{{pid:int}}",
                rest(self._h_product_update, write=True),
                methods=["POST", "PUT", "PATCH"],
            ),
            Route(
                f"{NS}/products/{{pid:int}}/variations",
                rest(self._h_variations, listing=True),
                methods=["GET"],
            ),
            Route(
                f"{NS}/products/{{pid:int}}/variations/{{vid:int}}",
                rest(self._h_variation),
                methods=["GET"],
            ),
            Route(
                f"{NS}/products/{{pid:int}}/variations/{{vid:int}}",
                rest(self._h_variation_update, write=True),
                methods=["POST", "PUT", "PATCH"],
            ),
            Route(f"{NS}/orders", rest(self._h_orders, listing=True), methods=["GET"]),
            Route(f"{NS}/orders", rest(self._h_order_create, write=True), methods=["POST"]),
            Route(
                f"{NS}/orders/batch",
                rest(self._h_orders_batch, write=True),
                methods=["POST", "PUT", "PATCH"],
            ),
            Route(f"{NS}/orders/{{oid:int}}", rest(self._h_order), methods=["GET"]),
            Route(
                f"{NS}/orders/{{oid:int}}",
                rest(self._h_order_update, write=True),
                methods=["POST", "PUT", "PATCH"],
            ),
            Route("/_admin/products", admin(self._a_product), methods=["POST"]),
            Route(
                "/_admin/products/{pid:int}/variations", admin(self._a_variation), methods=["POST"]
            ),
            Route("/_admin/stock/{pid:int}", admin(self._a_stock), methods=["PUT", "POST"]),
            Route("/_admin/orders", admin(lambda r, b: self.list_orders()), methods=["GET"]),
            Route("/_admin/orders/count", admin(self._a_count), methods=["GET"]),
            Route("/_admin/orders/{oid:int}/ship", admin(self._a_ship), methods=["POST"]),
            Route("/_admin/orders/{oid:int}/cancel", admin(self._a_cancel), methods=["POST"]),
            Route("/_admin/clock", admin(self._a_clock), methods=["POST"]),
        ]
        if self.fulfillments_enabled:
            routes.append(
                Route(
                    f"{NS}/orders/{{oid:int}}/fulfillments",
                    rest(self._h_fulfillments),
                    methods=["GET"],
                )
            )

        async def not_found(request: Request, exc: Exception) -> Response:
            return _error(
                ApiError(
                    404, "rest_no_route", "No route was found matching the URL and request method"
                )
            )

        return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})

    # --- HTTP: REST handlers --------------------------------------------------------------

    def _h_system_status(self, request: Request, body: Any) -> dict[str, Any]:
        return {
            "environment": {
                "home_url": self.base_url,
                "site_url": self.base_url,
                "version": "8.9.0",
                "wp_version": "6.6",
                "language": "en_US",
            },
            "database": {"wc_database_version": "8.9.0"},
            "active_plugins": [],
            "theme": {"name": "Storefront"},
            "settings": {
                "api_enabled": True,
                "force_ssl": False,
                "currency": self.currency,
                "number_of_decimals": 2,
                "taxonomies": {},
            },
            "security": {
                "secure_connection": self.base_url.startswith("https"),
                "hide_errors": True,
            },
            "pages": [],
        }

    def _h_products(self, request: Request, body: Any) -> Response:
        q = request.query_params
        skus = q.get("sku")
        items: list[dict[str, Any]] = [_copy(p) for p in self.products.values()]
        if skus:
            wanted = {s.lower() for s in skus.split(",")} | {skus.lower()}
            items += [self._variation_as_product(v) for v in self.variations.values()]
            items = [p for p in items if str(p.get("sku") or "").lower() in wanted]
        if q.get("search"):
            term = q["search"].lower()
            items = [
                p for p in items if term in p["name"].lower() or term in str(p.get("sku")).lower()
            ]
        if q.get("type"):
            _enum(q["type"], ("simple", "grouped", "external", "variable"), "type")
            items = [p for p in items if p["type"] == q["type"]]
        if q.get("status") and q["status"] != "any":
            items = [p for p in items if p["status"] == q["status"]]
        items = self._filter_common(items, q)
        orderby = ("date", "id", "include", "title", "slug", "price", "popularity", "rating")
        return self._paginate(request, items, orderby)

    def _filter_common(
        self, items: list[dict[str, Any]], q: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        if q.get("include"):
            ids = [int(i) for i in q["include"].replace(" ", ",").split(",") if i.strip().isdigit()]
            items = [i for i in items if i["id"] in ids]
        if q.get("exclude"):
            ids = [int(i) for i in q["exclude"].split(",") if i.strip().isdigit()]
            items = [i for i in items if i["id"] not in ids]
        gmt = bool(_bool(q.get("dates_are_gmt")))
        suffix = "_gmt" if gmt else ""
        for param, field, newer in (
            ("modified_after", "date_modified", True),
            ("modified_before", "date_modified", False),
            ("after", "date_created", True),
            ("before", "date_created", False),
        ):
            if q.get(param):
                bound = self._parse_query_date(q[param], gmt, param)
                items = [i for i in items if (_parse(i[field + suffix]) > bound) == newer]
        return items

    def _parse_query_date(self, value: str, gmt: bool, param: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                400, "rest_invalid_param", f"Invalid parameter(s): {param}", params={param: value}
            ) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            if not gmt:
                parsed += self.site_offset
        return parsed

    def _paginate(
        self, request: Request, items: list[dict[str, Any]], orderby_enum: tuple[str, ...]
    ) -> Response:
        q = request.query_params
        per_page = _int_param(q.get("per_page"), 10, "per_page")
        if not 1 <= per_page <= 100:
            raise ApiError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): per_page",
                params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
            )
        page = _int_param(q.get("page"), 1, "page")
        if page < 1:
            raise ApiError(400, "rest_invalid_param", "Invalid parameter(s): page")
        orderby = q.get("orderby", "date")
        _enum(orderby, orderby_enum, "orderby")
        order = q.get("order", "desc")
        _enum(order, ("asc", "desc"), "order")
        sort_key: Callable[[dict[str, Any]], Any] = {
            "id": lambda i: i["id"],
            "title": lambda i: (str(i.get("name") or ""), i["id"]),
            "slug": lambda i: (str(i.get("slug") or ""), i["id"]),
        }.get(orderby, lambda i: (i["date_created_gmt"], i["id"]))
        items = sorted(items, key=sort_key, reverse=order == "desc")
        offset = (
            _int_param(q.get("offset"), 0, "offset") if q.get("offset") else (page - 1) * per_page
        )
        total = len(items)
        pages = math.ceil(total / per_page) if total else 0
        if page > 1 and page > pages:
            raise ApiError(
                400,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{self.base_url}{request.url.path}"
        if page < pages:
            links.append(f'<{base}?page={page + 1}>; rel="next"')
        if page > 1:
            links.append(f'<{base}?page={page - 1}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(items[offset : offset + per_page], headers=headers)

    def _product_or_404(self, pid: int) -> dict[str, Any]:
        if pid in self.products:
            return _copy(self.products[pid])
        if pid in self.variations:
            return self._variation_as_product(self.variations[pid])
        raise ApiError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")

    def _h_product(self, request: Request, body: Any) -> dict[str, Any]:
        return self._product_or_404(request.path_params["pid"])

    def _apply_product(self, obj: dict[str, Any], data: Mapping[str, Any]) -> None:
        for field in ("name", "sku", "status", "manage_stock"):
            if field in data:
                obj[field] = data[field]
        if "regular_price" in data:
            obj["regular_price"] = obj["price"] = _money(_d(data["regular_price"]))
        if "stock_quantity" in data:
            obj["stock_quantity"] = (
                None if data["stock_quantity"] is None else int(data["stock_quantity"])
            )
        self._update_meta(obj, data.get("meta_data") or [])
        _stock_status(obj)
        self._saved(obj)

    def _h_product_update(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        pid = request.path_params["pid"]
        if pid not in self.products:  # WC's update_item answers 400 (get_item 404)
            raise ApiError(400, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        self._apply_product(self.products[pid], body)
        return _copy(self.products[pid])

    def _h_product_create(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._create_product_from(body)

    def _create_product_from(self, data: Mapping[str, Any]) -> dict[str, Any]:
        sku = str(data.get("sku") or "")
        if sku and self._by_sku(sku) is not None:
            raise ApiError(400, "product_invalid_sku", "Invalid or duplicated SKU.")
        created = self.create_product(
            sku,
            data.get("regular_price") or "0",
            data.get("stock_quantity") if data.get("manage_stock") else None,
            name=data.get("name"),
            type=str(data.get("type") or "simple"),
        )
        self._update_meta(self.products[created["id"]], data.get("meta_data") or [])
        return _copy(self.products[created["id"]])

    def _h_products_batch(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        def update(data: Mapping[str, Any]) -> dict[str, Any]:
            pid = int(data.get("id") or 0)
            if pid not in self.products:
                raise ApiError(400, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            self._apply_product(self.products[pid], data)
            return _copy(self.products[pid])

        def delete(pid: Any) -> dict[str, Any]:
            product = self.products.pop(int(pid), None)
            if product is None:
                raise ApiError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            return product

        return _batch(body, self._create_product_from, update, delete)

    def _variations_of(self, pid: int) -> list[dict[str, Any]]:
        parent = self.products.get(pid)
        if parent is None:
            raise ApiError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return [_public(self.variations[v]) for v in parent["variations"] if v in self.variations]

    def _h_variations(self, request: Request, body: Any) -> Response:
        items = self._variations_of(request.path_params["pid"])
        q = request.query_params
        if q.get("sku"):
            wanted = {s.lower() for s in q["sku"].split(",")}
            items = [v for v in items if str(v.get("sku")).lower() in wanted]
        items = self._filter_common(
            items, {k: v for k, v in q.items() if k not in ("modified_after", "modified_before")}
        )
        return self._paginate(request, items, ("date", "id", "include", "title", "slug"))

    def _variation_or_404(self, pid: int, vid: int) -> dict[str, Any]:
        variation = self.variations.get(vid)
        if variation is None or variation["_parent"] != pid:
            raise ApiError(
                404, "woocommerce_rest_product_variation_invalid_id", "Invalid resource ID."
            )
        return variation

    def _h_variation(self, request: Request, body: Any) -> dict[str, Any]:
        return _public(
            self._variation_or_404(request.path_params["pid"], request.path_params["vid"])
        )

    def _h_variation_update(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        variation = self._variation_or_404(request.path_params["pid"], request.path_params["vid"])
        self._apply_product(variation, body)
        return _public(variation)

    def _h_orders(self, request: Request, body: Any) -> Response:
        q = request.query_params
        items = list(self.orders.values())
        status = q.get("status")
        if status and status != "any":
            wanted = status.split(",")
            for s in wanted:
                _enum(s, (*ORDER_STATUSES, "trash"), "status")
            items = [o for o in items if o["status"] in wanted]
        if q.get("search"):
            items = [o for o in items if self._order_matches(o, q["search"])]
        items = self._filter_common([_copy(o) for o in items], q)
        return self._paginate(request, items, ("date", "id", "include", "title", "slug"))

    def _order_or_404(self, oid: int, status: int = 404) -> dict[str, Any]:
        order = self.orders.get(oid)
        if order is None:  # 404 to a read, 400 to an update (WC's get_item / update_item)
            raise ApiError(status, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _h_order(self, request: Request, body: Any) -> dict[str, Any]:
        return _copy(self._order_or_404(request.path_params["oid"]))

    def _h_order_create(self, request: Request, body: Mapping[str, Any]) -> Response:
        return JSONResponse(_copy(self._create_order(body)), status_code=201)

    def _h_order_update(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        order = self._order_or_404(request.path_params["oid"], status=400)  # as update_item
        return _copy(self._update_order(order, body))

    def _h_orders_batch(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        def update(data: Mapping[str, Any]) -> dict[str, Any]:
            order = self._order_or_404(int(data.get("id") or 0), status=400)
            return _copy(self._update_order(order, data))

        def delete(oid: Any) -> dict[str, Any]:
            order = self._order_or_404(int(oid))
            order["status"] = "trash"
            return _copy(order)

        return _batch(body, lambda d: _copy(self._create_order(d)), update, delete)

    def _h_fulfillments(self, request: Request, body: Any) -> Response:
        oid = request.path_params["oid"]
        if oid not in self.orders:
            raise ApiError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
        return JSONResponse(json.loads(json.dumps(self.fulfillments.get(oid, []))))

    # --- HTTP: admin handlers ------------------------------------------------------------

    def _a_product(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.create_product(
            str(body["sku"]),
            body.get("price", "10.00"),
            body.get("stock"),
            ean=body.get("ean"),
            ean_meta_key=body.get("ean_meta_key", "_alg_ean"),
            name=body.get("name"),
            type=body.get("type", "simple"),
        )

    def _a_variation(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.create_variation(
            request.path_params["pid"],
            str(body["sku"]),
            body.get("price", "10.00"),
            body.get("stock"),
            ean=body.get("ean"),
            ean_meta_key=body.get("ean_meta_key", "_alg_ean"),
        )

    def _a_stock(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        self.set_stock(request.path_params["pid"], int(body["quantity"]))
        return {"id": request.path_params["pid"], "stock_quantity": int(body["quantity"])}

    def _a_count(self, request: Request, body: Any) -> dict[str, Any]:
        q = request.query_params
        key = q.get("meta_key", "_amazon_order_id")
        return {"count": self.count_orders(q["amazon_order_id"], key)}

    def _a_ship(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.ship_order(
            request.path_params["oid"],
            body.get("tracking") or [],
            complete=bool(body.get("complete", True)),
            via=str(body.get("via", "meta")),
        )

    def _a_cancel(self, request: Request, body: Any) -> dict[str, Any]:
        return self.cancel_order(request.path_params["oid"])

    def _a_clock(self, request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
        self.advance(float(body.get("advance_seconds", 0)))
        return {"now_gmt": _fmt(self.now())}


# --- module helpers ---------------------------------------------------------------------


def _auth_error(message: str) -> ApiError:
    return ApiError(401, "woocommerce_rest_authentication_error", message)


def _rawurlencode(value: str) -> str:
    """PHP's ``rawurlencode`` (RFC 3986)."""
    return quote(value, safe="-_.~")


def _oauth_parameters(request: Request) -> dict[str, str]:
    """``get_oauth_parameters``: the query merged with an ``Authorization: OAuth`` header;
    empty when no OAuth parameter is there, a 401 when only some are."""
    params = dict(request.query_params)
    header = request.headers.get("authorization", "").strip()
    if header[:6].lower() == "oauth ":
        for part in header[6:].split(","):
            key, sep, value = part.strip().partition("=")
            if sep:
                params[unquote(key)] = unquote(value.strip().strip('"'))
    missing = [p for p in OAUTH_REQUIRED if not params.get(p)]
    if len(missing) == len(OAUTH_REQUIRED):
        return {}
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ApiError(
            401,
            "woocommerce_rest_authentication_missing_parameter",
            f"Missing OAuth parameter{plural} {', '.join(missing)}",
        )
    return params


def _credentials(scope: Scope) -> tuple[str | None, str | None]:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:6].lower() == b"basic ":
            try:
                key, _, secret = base64.b64decode(value[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, None
            return key, secret
    query = parse_qs(scope.get("query_string", b"").decode())
    if "consumer_key" in query:
        return query["consumer_key"][0], query.get("consumer_secret", [""])[0]
    return None, None


async def _json_body(request: Request) -> Any:
    """The JSON object of a write (``None`` for reads); WordPress's 400 otherwise."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "rest_invalid_json", "Invalid JSON body passed.")
    return body


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _enum(value: str, allowed: Iterable[str], param: str) -> None:
    if value not in allowed:
        raise ApiError(
            400,
            "rest_invalid_param",
            f"Invalid parameter(s): {param}",
            params={param: f"{param} is not one of {', '.join(allowed)}."},
        )


def _int_param(value: str | None, default: int, param: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "rest_invalid_param", f"Invalid parameter(s): {param}") from None


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _public(json.loads(json.dumps(obj)))


def _public(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy without the simulator's private ``_keys`` (``_links`` is the API's)."""
    out: dict[str, Any] = json.loads(
        json.dumps({k: v for k, v in obj.items() if not k.startswith("_") or k == "_links"})
    )
    return out


def _stock_status(obj: dict[str, Any]) -> None:
    if obj.get("manage_stock") is True and obj.get("stock_quantity") is not None:
        obj["stock_status"] = "instock" if obj["stock_quantity"] > 0 else "outofstock"


def _batch(
    body: Mapping[str, Any],
    create: Callable[[Mapping[str, Any]], dict[str, Any]],
    update: Callable[[Mapping[str, Any]], dict[str, Any]],
    delete: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    count = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
    if count > MAX_BATCH:
        raise ApiError(
            413,
            "woocommerce_rest_request_entity_too_large",
            f"Unable to accept more than {MAX_BATCH} items for this request.",
        )
    out: dict[str, Any] = {}
    for kind, handler in (("create", create), ("update", update), ("delete", delete)):
        if kind not in body:
            continue
        results = []
        for entry in body.get(kind) or []:
            try:
                results.append(handler(entry))
            except ApiError as exc:  # WC echoes the id of an update or delete, 0 for a create
                echo = entry if kind == "delete" else entry.get("id", 0) if kind == "update" else 0
                results.append({"id": echo, "error": exc.body()})
        out[kind] = results
    return out


def _links(base_url: str, path: str, collection: str, up: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {
        "self": [{"href": f"{base_url}{NS}/{path}"}],
        "collection": [{"href": f"{base_url}{NS}/{collection}"}],
    }
    if up:
        links["up"] = [{"href": f"{base_url}{NS}/{up}"}]
    return links


def _product_shape(base_url: str, pid: int) -> dict[str, Any]:
    return {
        "id": pid,
        "name": "",
        "slug": "",
        "permalink": "",
        "date_created": None,
        "date_created_gmt": None,
        "date_modified": None,
        "date_modified_gmt": None,
        "type": "simple",
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": "",
        "short_description": "",
        "sku": "",
        "price": "",
        "regular_price": "",
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "price_html": "",
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "sold_individually": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "related_ids": [],
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": [],
        "tags": [],
        "images": [],
        "attributes": [],
        "default_attributes": [],
        "variations": [],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": _links(base_url, f"products/{pid}", "products"),
    }


def _variation_shape(base_url: str, parent_id: int, vid: int) -> dict[str, Any]:
    return {
        "id": vid,
        "date_created": None,
        "date_created_gmt": None,
        "date_modified": None,
        "date_modified_gmt": None,
        "description": "",
        "permalink": f"{base_url}/product/p-{parent_id}/?variation={vid}",
        "sku": "",
        "price": "",
        "regular_price": "",
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "on_sale": False,
        "status": "publish",
        "purchasable": True,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_class": "",
        "shipping_class_id": 0,
        "image": None,
        "attributes": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": _links(
            base_url,
            f"products/{parent_id}/variations/{vid}",
            f"products/{parent_id}/variations",
            f"products/{parent_id}",
        ),
    }


def _address_shape(billing: bool) -> dict[str, str]:
    out = dict.fromkeys(ADDRESS_FIELDS, "")
    if billing:
        out.update(email="", phone="")
    return out


def _order_shape(base_url: str, oid: int) -> dict[str, Any]:
    return {
        "id": oid,
        "parent_id": 0,
        "number": str(oid),
        "order_key": "",
        "created_via": "rest-api",
        "version": "8.9.0",
        "status": "pending",
        "currency": "USD",
        "date_created": None,
        "date_created_gmt": None,
        "date_modified": None,
        "date_modified_gmt": None,
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "0.00",
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": "0.00",
        "total_tax": "0.00",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": "",
        "billing": _address_shape(True),
        "shipping": _address_shape(False),
        "payment_method": "",
        "payment_method_title": "",
        "transaction_id": "",
        "date_paid": None,
        "date_paid_gmt": None,
        "date_completed": None,
        "date_completed_gmt": None,
        "cart_hash": "",
        "meta_data": [],
        "line_items": [],
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "_links": _links(base_url, f"orders/{oid}", "orders"),
    }


_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTC
    BTN BWP BYR BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GGP GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR IQD IRR IRT
    ISK JEP JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
    MKD MMK MNT MOP MRO MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PRB PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STD SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VEF VND VUV WST XAF XCD XOF XPF YER ZAR
    ZMW""".split()
)


ENV_KEY = "WOOCOMMERCE_SIM_CONSUMER_KEY"
ENV_SECRET = "WOOCOMMERCE_SIM_CONSUMER_SECRET"  # noqa: S105 - a variable name


class WooCommerceSimHarness:
    """The engine's shop harness (``engine.testing.harness.ShopSim``) over one
    :class:`WooCommerceSimulator` (full admin API on ``.sim``).

    :param tracking_source: ``meta`` ships with Shipment Tracking meta; ``fulfillments``
        serves the Order Fulfillments API, ships through it and configures the connector
        to read it.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        tracking_source: str = "meta",
    ) -> None:
        if tracking_source not in ("meta", "fulfillments"):
            raise ValueError(
                f"tracking_source must be meta or fulfillments, not {tracking_source!r}"
            )
        self.tracking_source = tracking_source
        self.sim = WooCommerceSimulator(
            time_scale=time_scale,
            rate_limits=rate_limits,
            seed=seed,
            fulfillments=tracking_source == "fulfillments",
        )
        self.app = self.sim.app
        self.faults = self.sim.faults

    def transport(self) -> httpx.ASGITransport:
        return self.sim.transport()

    def settings(self, base_url: str) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "store_url": base_url,
            "consumer_key": {"$env": ENV_KEY},
            "consumer_secret": {"$env": ENV_SECRET},
        }
        if self.tracking_source != "meta":
            settings["tracking_source"] = self.tracking_source
        return settings

    def env(self) -> dict[str, str]:
        return {ENV_KEY: DEFAULT_KEY, ENV_SECRET: DEFAULT_SECRET}

    def counters(self) -> dict[str, int]:
        throttled = sum(self.sim.limiter.throttled.values())
        return {"requests": len(self.sim.requests) + throttled, "throttled": throttled}

    def add_product(self, sku: str, quantity: int, price: Decimal = Decimal("19.99")) -> None:
        self.sim.create_product(sku, price, quantity, name=f"Product {sku}")

    def _product_id(self, sku: str) -> int:
        with self.sim.lock:
            found = self.sim._by_sku(sku)
        if found is None:
            raise KeyError(f"no product with SKU {sku!r}")
        return int(found["id"])

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sim.set_stock(self._product_id(sku), quantity)

    def stock(self, sku: str) -> int:
        return self.sim.stock_of(self._product_id(sku)) or 0

    def _order_id(self, marketplace_order_id: str) -> int:
        for order in self.sim.list_orders():
            if any(
                m["key"] == "_amazon_order_id" and m["value"] == marketplace_order_id
                for m in order["meta_data"]
            ):
                return int(order["id"])
        raise KeyError(f"no shop order for {marketplace_order_id}")

    def ship(
        self,
        marketplace_order_id: str,
        lines: Mapping[str, int] | None,
        carrier: str,
        tracking: str,
    ) -> None:
        """Track a package; ``lines=None`` ships everything and completes the order."""
        items = [{"sku": sku, "qty": qty} for sku, qty in (lines or {}).items()]
        entry = {"provider": carrier, "number": tracking, "items": items}
        self.sim.ship_order(
            self._order_id(marketplace_order_id),
            [entry],
            complete=lines is None,
            via=self.tracking_source,
        )

    def cancel(self, marketplace_order_id: str) -> None:
        self.sim.cancel_order(self._order_id(marketplace_order_id))

    def count_orders(self, marketplace_order_id: str) -> int:
        return self.sim.count_orders(marketplace_order_id)

    def orders(self) -> list[dict[str, Any]]:
        out = []
        for order in self.sim.list_orders():
            ids = [m["value"] for m in order["meta_data"] if m["key"] == "_amazon_order_id"]
            if ids:
                out.append(
                    {
                        "marketplace_order_id": ids[0],
                        "total": Decimal(order["total"]),
                        "currency": order["currency"],
                        "cancelled": order["status"] == "cancelled",
                    }
                )
        return out


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator with uvicorn (``python -m plugins.woocommerce.simulator``)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fulfillments", action="store_true", help="serve /orders/<id>/fulfillments"
    )
    parser.add_argument(
        "--key-auth-over-http",
        action="store_true",
        help="accept Basic/query keys over plain HTTP (real stores want OAuth 1.0a there)",
    )
    args = parser.parse_args(argv)
    sim = WooCommerceSimulator(
        time_scale=args.time_scale,
        rate_limits=not args.no_rate_limits,
        seed=args.seed,
        fulfillments=args.fulfillments,
        base_url=f"http://{args.host}:{args.port}",
        key_auth_over_http=args.key_auth_over_http,
    )
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
