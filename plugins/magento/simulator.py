"""A stateful Magento 2.4 REST V1 simulator (starlette ASGI) for tests, demos and benchmarks.

Routes live under ``/rest/{store}/V1/...`` and ``/rest/V1/...``; field names follow the
2.4.9 admin schema. What it models, and where it simplifies:

- Auth: integration access token as ``Bearer`` (switchable, like
  ``oauth/consumer/enable_integration_as_bearer``) and OAuth 1.0a HMAC-SHA256 with nonce
  replay protection. Failures answer 401 with Magento's messages. ``denied_resources``
  models an integration without some ACL resources.
- searchCriteria: ``filterGroups``/``filter_groups``, ``conditionType``/``condition_type``,
  sort orders, paging. Like Magento, an out-of-range ``currentPage`` returns the last
  page again, except for products (fixed in 2.4).
- Orders: ``PUT /V1/orders/create`` and ``POST /V1/orders`` persist what they are given;
  ``POST /V1/orders`` with ``entity_id`` merges into the stored order. The guest-cart
  checkout prices from the catalogue with ``tax_rates``.
- Stock is MSI's: a quantity per source item plus a reservation list for stock 1
  (the default stock, fed by the ``default`` source). The salable quantity is their
  sum. Placing a cart appends a ``-qty`` reservation; shipping deducts the source and
  appends a ``+qty`` compensation (``SourceDeductionProcessor``); cancelling appends a
  ``+qty`` compensation for what was not shipped and leaves the source alone. Orders
  saved through the repository (``/V1/orders/create``) get no reservation, but their
  shipment and cancellation are compensated all the same (magento2#26575, #40313,
  inventory#3419), so Magento's salable quantity rises above the shelf for them.
- Rate limits: Magento publishes none for the admin REST API; the simulator limits
  every ``/rest`` request to ``rate`` per second with ``burst`` so clients can be tested.
- ``updated_at`` changes on every update of an order, product or shipment. Changing
  a source item through the API does not touch the product (as in Magento); the admin
  ``set_stock`` models a merchant saving the product form, which does.

Admin: Python methods and HTTP routes under ``/_admin``. Run it alone with
``python -m plugins.magento.simulator --port 8104``. Helpers live in ``sim_core``
(errors, JSON, searchCriteria) and ``sim_checkout`` (the guest-cart checkout).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.testing.clock import ScaledClock
from engine.testing.faults import FaultInjector, FaultMiddleware
from engine.testing.ratelimit import Limit, RateLimiter, RateLimitMiddleware, Scope
from plugins.magento.auth import (
    SIGNATURE_METHOD,
    base_string_uri,
    hmac_sha256_signature,
    parse_authorization_header,
    signature_base_string,
)
from plugins.magento.sim_checkout import Cart, GuestCheckout
from plugins.magento.sim_core import (
    JSON,
    NO_ENTITY,
    NO_ROUTE,
    NOT_AUTHORIZED,
    TIME_FORMAT,
    Credentials,
    MagentoError,
    SearchCriteria,
    dec,
    json_response,
    money,
    search,
)

__all__ = ["Credentials", "MagentoError", "MagentoSimulator", "SearchCriteria", "main"]

Handler = Callable[[Request, Any], Awaitable[Any]]
STOCK_ID = 1
"""The default stock; the simulator's only sales channel (website ``base``)."""


class MagentoSimulator(GuestCheckout):
    """In-memory Magento 2.4 admin REST API.

    :param time_scale: speed of the rate-limit clock (timestamps stay wall-clock).
    :param rate_limits: enforce ``rate``/``burst`` on ``/rest`` requests.
    :param seed: seeds fault injection and masked cart ids.
    :param start_time: pin the clock (cassette recording); default: now.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        *,
        credentials: Credentials | None = None,
        bearer_enabled: bool = True,
        store_code: str = "default",
        base_currency: str = "EUR",
        prices_include_tax: bool = True,
        tax_rates: Mapping[str, Decimal] | None = None,
        flatrate_per_order: Decimal = Decimal("5.00"),
        rate: float = 50.0,
        burst: int = 100,
        start_time: datetime | None = None,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.bearer_enabled = bearer_enabled
        self.denied_resources: set[str] = set()
        self.store_code = store_code
        self.base_currency = base_currency
        self.prices_include_tax = prices_include_tax
        self.tax_rates = dict(tax_rates or {"DE": Decimal("0.19"), "FR": Decimal("0.20")})
        self.flatrate_per_order = flatrate_per_order
        self.carriers = {
            ("flatrate", "flatrate"): "Flat Rate",
            ("freeshipping", "freeshipping"): "Free",
        }
        self.payment_methods = {"checkmo": "Check / Money order", "banktransfer": "Bank Transfer"}
        self.sources = {"default"}
        self.random = random.Random(seed)
        self.clock = ScaledClock(time_scale)
        self._start = start_time
        self._mono = time.monotonic()
        self._offset = timedelta(0)
        self.products: dict[str, JSON] = {}
        self.source_items: dict[tuple[str, str], JSON] = {}
        self.reservations: list[JSON] = []
        self.stock_sources = {STOCK_ID: {"default"}}
        self.orders: dict[int, JSON] = {}
        self.shipments: dict[int, JSON] = {}
        self.carts: dict[str, Cart] = {}
        self.requests: list[tuple[str, str]] = []
        self._nonces: set[tuple[str, str]] = set()
        self._ids: dict[str, int] = {}
        self.faults = FaultInjector(seed=seed)
        self.limiter = RateLimiter(
            {"rest": Limit(rate=rate, burst=burst)}, clock=self.clock, enabled=rate_limits
        )
        app = Starlette(
            routes=self._routes(),
            exception_handlers={404: self._not_found, 405: self._not_found},
        )
        limited = RateLimitMiddleware(app, self.limiter, self._classify, self._throttled)
        self.app = FaultMiddleware(limited, self.faults)

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    # --- clock and ids -------------------------------------------------------------------

    def now(self) -> datetime:
        if self._start is not None:
            elapsed = timedelta(seconds=time.monotonic() - self._mono)
            return (self._start + elapsed + self._offset).replace(microsecond=0)
        return (datetime.now(UTC) + self._offset).replace(microsecond=0)

    def timestamp(self) -> str:
        return self.now().strftime(TIME_FORMAT)

    def advance(self, seconds: float) -> None:
        """Move timestamps (and the rate-limit clock) forward."""
        self._offset += timedelta(seconds=seconds)
        self.clock.advance(seconds)

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # --- admin: Python API ---------------------------------------------------------------

    def create_product(
        self,
        sku: str,
        price: Decimal | float | str,
        qty: Decimal | float | int | str = 0,
        *,
        ean: str | None = None,
        name: str | None = None,
        source_code: str = "default",
        status: int = 1,
    ) -> JSON:
        """Add a simple product with a source item at ``source_code``."""
        if self._product(sku) is not None:
            raise ValueError(f"product {sku!r} exists")
        now = self.timestamp()
        product: JSON = {
            "id": self._next("product"),
            "sku": sku,
            "name": name or sku,
            "attribute_set_id": 4,
            "price": dec(price),
            "status": status,
            "visibility": 4,
            "type_id": "simple",
            "created_at": now,
            "updated_at": now,
            "weight": Decimal("1"),
            "extension_attributes": {"website_ids": [1]},
            "custom_attributes": [],
        }
        if ean is not None:
            product["custom_attributes"].append({"attribute_code": "ean", "value": ean})
        self.products[sku] = product
        self.sources.add(source_code)
        self.source_items[(source_code, sku)] = {
            "sku": sku,
            "source_code": source_code,
            "quantity": dec(qty),
            "status": 1 if dec(qty) > 0 else 0,
        }
        return product

    def set_stock(
        self,
        sku: str,
        qty: Decimal | float | int | str,
        source_code: str = "default",
        touch_product: bool = True,
    ) -> None:
        """Set a source quantity as a merchant would in the product form (bumps ``updated_at``)."""
        product = self._require_product(sku)
        item = self.source_items.setdefault(
            (source_code, product["sku"]), {"sku": product["sku"], "source_code": source_code}
        )
        item["quantity"] = dec(qty)
        item["status"] = 1 if item["quantity"] > 0 else 0
        if touch_product:
            product["updated_at"] = self.timestamp()

    def source_quantity(self, sku: str, source_code: str = "default") -> Decimal:
        return dec(self.source_items[(source_code, self._require_product(sku)["sku"])]["quantity"])

    def salable_quantity(self, sku: str, stock_id: int = STOCK_ID) -> Decimal:
        """MSI's ``GetProductSalableQty``: in-stock source quantity plus reservations."""
        sku = self._require_product(sku)["sku"]
        on_hand = sum(
            (
                dec(item["quantity"])
                for (source, item_sku), item in self.source_items.items()
                if item_sku == sku
                and source in self.stock_sources[stock_id]
                and int(item.get("status") or 0) == 1
            ),
            Decimal(0),
        )
        reserved = sum(
            (
                dec(r["quantity"])
                for r in self.reservations
                if r["sku"] == sku and r["stock_id"] == stock_id
            ),
            Decimal(0),
        )
        return on_hand + reserved

    def unshipped_quantity(self, sku: str) -> Decimal:
        """Units of ``sku`` in orders that are neither shipped nor cancelled (any origin)."""
        total = Decimal(0)
        for order in self.orders.values():
            if order["state"] in ("canceled", "complete", "closed"):
                continue
            for item in order["items"]:
                if not item.get("parent_item_id") and item["sku"].casefold() == sku.casefold():
                    total += self._to_ship(item)
        return total

    def available_quantity(self, sku: str) -> int:
        """What the merchant can still promise: the shelf minus units sold but not shipped."""
        left = self.source_quantity(sku) - self.unshipped_quantity(sku)
        item = self.source_items[("default", self._require_product(sku)["sku"])]
        return max(0, int(left)) if int(item.get("status") or 0) == 1 else 0

    def add_track(self, shipment_id: int, track: Mapping[str, str]) -> JSON:
        """Add a track to a shipment later, as the admin's "Add Tracking Number" does
        (it saves the shipment, so ``updated_at`` moves)."""
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise MagentoError(404, NO_ENTITY)
        now = self.timestamp()
        shipment["tracks"].append(self._track(shipment, track, now))
        shipment["updated_at"] = now
        return copy.deepcopy(shipment)

    def _track(self, shipment: JSON, track: Mapping[str, str], now: str) -> JSON:
        return {
            "entity_id": self._next("track"),
            "parent_id": shipment["entity_id"],
            "order_id": shipment["order_id"],
            "created_at": now,
            "updated_at": now,
            "weight": Decimal(0),
            "qty": Decimal(0),
            "description": "",
            "track_number": track["track_number"],
            "title": track.get("title") or track["carrier_code"],
            "carrier_code": track["carrier_code"],
        }

    def _reserve(self, sku: str, qty: Decimal, event: str, order: JSON) -> None:
        """``AppendReservationsInterface``: one row per SKU and event, never updated."""
        self.reservations.append(
            {
                "reservation_id": self._next("reservation"),
                "stock_id": STOCK_ID,
                "sku": sku,
                "quantity": qty,
                "metadata": {
                    "event_type": event,
                    "object_type": "order",
                    "object_id": str(order["entity_id"]),
                    "object_increment_id": order["increment_id"],
                },
            }
        )

    def list_orders(self) -> list[JSON]:
        return [copy.deepcopy(o) for o in self.orders.values()]

    def order_count(self, ext_order_id: str) -> int:
        """How many orders carry this Amazon order id."""
        return sum(1 for o in self.orders.values() if o.get("ext_order_id") == ext_order_id)

    def order_by_ext(self, ext_order_id: str) -> JSON | None:
        found = [o for o in self.orders.values() if o.get("ext_order_id") == ext_order_id]
        return copy.deepcopy(found[0]) if found else None

    def ship_order(
        self,
        order_id: int,
        items: Mapping[str, int] | None = None,
        tracks: Sequence[Mapping[str, str]] = (),
    ) -> JSON:
        """Ship ``{sku: qty}`` (default: everything left) with tracks; partial shipments allowed."""
        order = self._order(order_id)
        if order["state"] in ("canceled", "closed"):
            raise MagentoError(400, "The order does not allow a shipment to be created.")
        lines = [i for i in order["items"] if not i.get("parent_item_id")]
        wanted = dict(items) if items is not None else {i["sku"]: self._to_ship(i) for i in lines}
        shipment_id = self._next("shipment")
        now = self.timestamp()
        shipment_items = []
        for sku, qty in wanted.items():
            item = next((i for i in lines if i["sku"].casefold() == sku.casefold()), None)
            if item is None or qty <= 0 or qty > self._to_ship(item):
                raise MagentoError(400, f"Shipment document validation error(s): bad qty for {sku}")
            shipment_items.append(
                {
                    "entity_id": self._next("shipment_item"),
                    "parent_id": shipment_id,
                    "order_item_id": item["item_id"],
                    "sku": item["sku"],
                    "name": item.get("name") or item["sku"],
                    "product_id": item.get("product_id"),
                    "price": item.get("price", Decimal(0)),
                    "row_total": money(dec(item.get("price")) * qty),
                    "weight": Decimal("1"),
                    "qty": qty,
                }
            )
        for si in shipment_items:
            source = self.source_items.get(("default", si["sku"]))
            if source is None or dec(source["quantity"]) < dec(si["qty"]):
                raise MagentoError(
                    400, "Not all of your products are available in the requested quantity."
                )
        for si in shipment_items:
            item = next(i for i in lines if i["item_id"] == si["order_item_id"])
            item["qty_shipped"] = dec(item.get("qty_shipped")) + si["qty"]
            item["updated_at"] = now
            self._add_stock(si["sku"], -dec(si["qty"]))  # source deduction at shipment
            self._reserve(si["sku"], dec(si["qty"]), "shipment_created", order)
        shipment: JSON = {
            "entity_id": shipment_id,
            "increment_id": f"{shipment_id:09d}",
            "order_id": order_id,
            "store_id": order.get("store_id", 1),
            "created_at": now,
            "updated_at": now,
            "total_qty": sum(si["qty"] for si in shipment_items),
            "items": shipment_items,
            "tracks": [],
            "comments": [],
            "packages": [],
        }
        shipment["tracks"] = [self._track(shipment, t, now) for t in tracks]
        self.shipments[shipment_id] = shipment
        done = all(self._to_ship(i) == 0 for i in lines)
        order["state"] = order["status"] = "complete" if done else "processing"
        order["updated_at"] = now
        return copy.deepcopy(shipment)

    def cancel_order(self, order_id: int) -> bool:
        """Magento's ``OrderManagement::cancel``: false when nothing can be cancelled."""
        order = self._order(order_id)
        lines = [i for i in order["items"] if not i.get("parent_item_id")]
        if order["state"] in ("canceled", "complete", "closed", "holded"):
            return False
        if not any(self._to_ship(i) > 0 for i in lines):
            return False
        now = self.timestamp()
        for item in lines:
            rest = self._to_ship(item)
            item["qty_canceled"] = dec(item.get("qty_canceled")) + rest
            if rest > 0:
                self._reserve(item["sku"], rest, "order_canceled", order)
        order["state"] = order["status"] = "canceled"
        order["updated_at"] = now
        return True

    @staticmethod
    def _to_ship(item: JSON) -> Decimal:
        left = dec(item.get("qty_ordered")) - dec(item.get("qty_shipped"))
        return max(Decimal(0), left - dec(item.get("qty_canceled")))

    def _add_stock(self, sku: str, qty: Decimal) -> None:
        item = self.source_items.get(("default", sku))
        if item is not None:
            item["quantity"] = dec(item["quantity"]) + qty
            item["status"] = 1 if item["quantity"] > 0 else 0

    def _product(self, sku: str) -> JSON | None:
        if sku in self.products:
            return self.products[sku]
        folded = sku.casefold()
        return next((p for s, p in self.products.items() if s.casefold() == folded), None)

    def _require_product(self, sku: str) -> JSON:
        product = self._product(sku)
        if product is None:
            raise MagentoError(
                404,
                "The product that was requested doesn't exist. Verify the product and try again.",
            )
        return product

    def _order(self, order_id: int) -> JSON:
        if order_id not in self.orders:
            raise MagentoError(404, NO_ENTITY)
        return self.orders[order_id]

    # --- routing, auth and limits --------------------------------------------------------

    def _routes(self) -> list[Route]:
        table: list[tuple[str, str, Handler, str | None]] = [
            ("GET", "/V1/store/storeConfigs", self._store_configs, "Magento_Backend::store"),
            ("GET", "/V1/products", self._products_search, "Magento_Catalog::products"),
            ("GET", "/V1/orders", self._orders_search, "Magento_Sales::sales"),
            ("POST", "/V1/orders", self._orders_save, "Magento_Sales::create"),
            ("PUT", "/V1/orders/create", self._orders_create, "Magento_Sales::create"),
            ("GET", "/V1/orders/{id}", self._order_get, "Magento_Sales::sales"),
            ("POST", "/V1/orders/{id}/cancel", self._order_cancel, "Magento_Sales::cancel"),
            ("POST", "/V1/orders/{id}/comments", self._order_comment, "Magento_Sales::comment"),
            ("GET", "/V1/shipments", self._shipments_search, "Magento_Sales::shipment"),
            (
                "GET",
                "/V1/inventory/source-items",
                self._source_items_search,
                "Magento_InventoryApi::source",
            ),
            (
                "POST",
                "/V1/inventory/source-items",
                self._source_items_save,
                "Magento_InventoryApi::source",
            ),
            ("POST", "/V1/guest-carts", self._cart_create, None),
            ("GET", "/V1/guest-carts/{cartId}", self._cart_get, None),
            ("POST", "/V1/guest-carts/{cartId}/items", self._cart_add_item, None),
            ("POST", "/V1/guest-carts/{cartId}/shipping-information", self._cart_shipping, None),
            ("PUT", "/V1/guest-carts/{cartId}/order", self._cart_place, None),
        ]
        routes = []
        for method, path, handler, resource in table:
            endpoint = self._endpoint(handler, resource)
            routes.append(Route(f"/rest/{{store}}{path}", endpoint, methods=[method]))
            routes.append(Route(f"/rest{path}", endpoint, methods=[method]))
        routes += [
            Route("/_admin/products", self._admin_create_product, methods=["POST"]),
            Route("/_admin/stock/{sku}", self._admin_set_stock, methods=["PUT"]),
            Route("/_admin/orders", self._admin_orders, methods=["GET"]),
            Route("/_admin/orders/count", self._admin_order_count, methods=["GET"]),
            Route("/_admin/orders/{order_id}/ship", self._admin_ship, methods=["POST"]),
            Route("/_admin/orders/{order_id}/cancel", self._admin_cancel, methods=["POST"]),
            Route("/_admin/clock", self._admin_clock, methods=["POST"]),
        ]
        return routes

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return json_response({"message": NO_ROUTE}, 404)

    def _endpoint(
        self, handler: Handler, resource: str | None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            try:
                store = request.path_params.get("store", self.store_code)
                if store not in (self.store_code, "all"):
                    raise MagentoError(
                        400,
                        "The store that was requested wasn't found. Verify the store and try again.",
                    )
                self._authenticate(request, resource)
                raw = await request.body()
                try:
                    body = json.loads(raw, parse_float=Decimal) if raw else None
                except ValueError:
                    raise MagentoError(400, "Decoding error.") from None
                return json_response(await handler(request, body))
            except MagentoError as exc:
                return json_response({"message": exc.message}, exc.status)

        return endpoint

    def _authenticate(self, request: Request, resource: str | None) -> None:
        header = request.headers.get("authorization", "")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "oauth":
            self._verify_oauth(request, parse_authorization_header(header))
        elif resource is None:
            return  # guest-cart routes are anonymous
        elif scheme == "bearer":
            token = header[7:].strip()
            if not (
                self.bearer_enabled and hmac.compare_digest(token, self.credentials.access_token)
            ):
                raise MagentoError(401, NOT_AUTHORIZED.format(resource=resource))
        else:
            raise MagentoError(401, NOT_AUTHORIZED.format(resource=resource))
        if resource in self.denied_resources:
            raise MagentoError(401, NOT_AUTHORIZED.format(resource=resource))

    def _verify_oauth(self, request: Request, params: Mapping[str, str]) -> None:
        c = self.credentials
        method = params.get("oauth_signature_method", "")
        if method != SIGNATURE_METHOD:
            raise MagentoError(401, f"Signature method {method} is not supported")
        if params.get("oauth_consumer_key") != c.consumer_key:
            raise MagentoError(401, "A consumer having the specified key does not exist")
        if params.get("oauth_token") != c.access_token:
            raise MagentoError(401, "Specified token does not exist")
        nonce = (c.consumer_key, params.get("oauth_nonce", ""))
        if nonce in self._nonces:
            raise MagentoError(401, "The nonce is already being used by the consumer with ID 1.")
        host, _, port = request.headers.get("host", "").partition(":")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        uri = base_string_uri(
            request.url.scheme,
            host,
            int(port) if port else None,
            raw_path.decode("ascii").split("?")[0],
        )
        query = request.scope.get("query_string", b"").decode("ascii")
        base = signature_base_string(request.method, uri, query, params)
        expected = hmac_sha256_signature(base, c.consumer_secret, c.access_token_secret)
        if not hmac.compare_digest(expected, params.get("oauth_signature", "")):
            raise MagentoError(401, "The signature is invalid. Verify and try again.")
        self._nonces.add(nonce)

    def _classify(self, scope: Scope) -> tuple[str, str] | None:
        if not scope["path"].startswith("/rest/"):
            return None
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        oauth = parse_authorization_header(auth.decode("latin-1"))
        key = oauth.get("oauth_token") or hashlib.sha256(auth).hexdigest()[:12]
        return "rest", key

    def _throttled(self, operation: str, wait: float) -> tuple[int, dict[str, str], bytes]:
        seconds = max(1, math.ceil(wait / self.clock.time_scale))
        body = json.dumps({"message": "Too many requests. Try again later."}).encode()
        return 429, {"content-type": "application/json", "retry-after": str(seconds)}, body

    # --- store, products, stock ----------------------------------------------------------

    async def _store_configs(self, request: Request, body: Any) -> Any:
        base = "http://magento.test/"
        return [
            {
                "id": 1,
                "code": self.store_code,
                "website_id": 1,
                "locale": "en_US",
                "base_currency_code": self.base_currency,
                "default_display_currency_code": self.base_currency,
                "timezone": "UTC",
                "weight_unit": "kgs",
                "base_url": base,
                "base_link_url": base,
                "base_static_url": f"{base}static/",
                "base_media_url": f"{base}media/",
                "secure_base_url": base,
                "secure_base_link_url": base,
                "secure_base_static_url": f"{base}static/",
                "secure_base_media_url": f"{base}media/",
            }
        ]

    @staticmethod
    def _product_field(product: JSON, name: str) -> Any:
        if name == "entity_id":
            return product["id"]
        if name in product:
            return product[name]
        for attr in product.get("custom_attributes") or []:
            if attr["attribute_code"] == name:
                return attr["value"]
        return None

    def _criteria(self, request: Request) -> SearchCriteria:
        return SearchCriteria.parse(list(request.query_params.multi_items()))

    async def _products_search(self, request: Request, body: Any) -> Any:
        products = sorted(self.products.values(), key=lambda p: p["id"])
        return search(
            products, self._criteria(request), self._product_field, repeat_last_page=False
        )

    async def _source_items_search(self, request: Request, body: Any) -> Any:
        items = sorted(self.source_items.values(), key=lambda i: (i["source_code"], i["sku"]))
        return search(items, self._criteria(request), lambda r, f: r.get(f), repeat_last_page=True)

    async def _source_items_save(self, request: Request, body: Any) -> Any:
        items = (body or {}).get("sourceItems")
        if not isinstance(items, list):
            raise MagentoError(400, '"sourceItems" is required. Enter and try again.')
        for item in items:
            if item.get("source_code") not in self.sources or not item.get("sku"):
                raise MagentoError(400, "Validation Failed")
            product = self._require_product(item["sku"])
            key = (item["source_code"], product["sku"])
            stored = self.source_items.setdefault(
                key, {"sku": product["sku"], "source_code": key[0]}
            )
            stored["quantity"] = dec(item.get("quantity"))
            stored["status"] = int(item.get("status", 1 if stored["quantity"] > 0 else 0))
        return []

    # --- orders --------------------------------------------------------------------------

    @staticmethod
    def _path_id(request: Request, name: str = "id") -> int:
        raw = request.path_params[name]
        if not str(raw).isdigit():
            raise MagentoError(
                400, f'The "{raw}" value\'s type is invalid. The "int" type was expected.'
            )
        return int(raw)

    async def _orders_search(self, request: Request, body: Any) -> Any:
        orders = [self.orders[k] for k in sorted(self.orders)]
        return search(orders, self._criteria(request), lambda r, f: r.get(f), repeat_last_page=True)

    async def _order_get(self, request: Request, body: Any) -> Any:
        return self._order(self._path_id(request))

    async def _orders_create(self, request: Request, body: Any) -> Any:
        return self._persist(self._entity(body))

    async def _orders_save(self, request: Request, body: Any) -> Any:
        entity = self._entity(body)
        if entity.get("entity_id"):
            return self._merge(entity)
        return self._persist(entity)

    @staticmethod
    def _entity(body: Any) -> JSON:
        entity = (body or {}).get("entity")
        if not isinstance(entity, dict):
            raise MagentoError(400, '"entity" is required. Enter and try again.')
        return entity

    def _persist(self, entity: JSON) -> JSON:
        """``salesOrderRepositoryV1`` save of a new order: stored as given, no stock taken."""
        for name in ("customer_email", "grand_total", "base_grand_total", "items"):
            if entity.get(name) in (None, "", []):
                raise MagentoError(400, f'"{name}" is required. Enter and try again.')
        store_id = int(entity.get("store_id") or 1)
        increment = entity.get("increment_id")
        if increment and any(
            o.get("increment_id") == increment and o.get("store_id") == store_id
            for o in self.orders.values()
        ):
            raise MagentoError(400, "Unique constraint violation found")
        order = copy.deepcopy(entity)
        order_id = self._next("order")
        now = self.timestamp()
        order.update(
            entity_id=order_id,
            increment_id=increment or f"{order_id:09d}",
            store_id=store_id,
            created_at=now,
            updated_at=now,
            state=entity.get("state") or "new",
            status=entity.get("status") or "pending",
            status_histories=[],
        )
        for item in order["items"]:
            if not item.get("sku"):
                raise MagentoError(400, '"sku" is required. Enter and try again.')
            product = self._product(item["sku"])
            item.update(
                item_id=self._next("order_item"),
                order_id=order_id,
                created_at=now,
                updated_at=now,
                qty_shipped=Decimal(0),
                qty_canceled=Decimal(0),
                qty_invoiced=Decimal(0),
            )
            item.setdefault("product_id", product["id"] if product else None)
            item.setdefault("product_type", "simple")
            item.setdefault("store_id", store_id)
            if item["product_id"] is None:
                del item["product_id"]
        for address in self._addresses(order):
            self._check_address(address)
            address.update(entity_id=self._next("address"), parent_id=order_id)
        if isinstance(order.get("payment"), dict):
            order["payment"].update(entity_id=self._next("payment"), parent_id=order_id)
        self.orders[order_id] = order
        return order

    @staticmethod
    def _addresses(order: JSON) -> list[JSON]:
        found = [order["billing_address"]] if isinstance(order.get("billing_address"), dict) else []
        for assignment in (order.get("extension_attributes") or {}).get(
            "shipping_assignments"
        ) or []:
            address = (assignment.get("shipping") or {}).get("address")
            if isinstance(address, dict):
                found.append(address)
        return found

    @staticmethod
    def _check_address(address: JSON) -> None:
        for name in ("firstname", "lastname", "city", "postcode", "country_id", "telephone"):
            if not address.get(name):
                raise MagentoError(400, f'"{name}" is required. Enter and try again.')
        if not address.get("street"):
            raise MagentoError(400, '"street" is required. Enter and try again.')

    def _merge(self, entity: JSON) -> JSON:
        """Save of an existing order: given fields overwrite, items match by ``item_id``."""
        order = self._order(int(entity["entity_id"]))
        items = {i["item_id"]: i for i in order["items"]}
        for name, value in entity.items():
            if name == "entity_id":
                continue
            if name == "items":
                for patch in value:
                    target = items.get(patch.get("item_id"))
                    if target is None:
                        raise MagentoError(
                            400, f"Order item {patch.get('item_id')} does not exist."
                        )
                    target.update({k: v for k, v in patch.items() if k != "item_id"})
            elif isinstance(value, dict) and isinstance(order.get(name), dict):
                order[name].update(value)
            else:
                order[name] = copy.deepcopy(value)
        order["updated_at"] = self.timestamp()
        return order

    async def _order_cancel(self, request: Request, body: Any) -> Any:
        return self.cancel_order(self._path_id(request))

    async def _order_comment(self, request: Request, body: Any) -> Any:
        order = self._order(self._path_id(request))
        history = (body or {}).get("statusHistory")
        if not isinstance(history, dict) or not history.get("comment"):
            raise MagentoError(400, '"statusHistory" is required. Enter and try again.')
        now = self.timestamp()
        order["status_histories"].append(
            {
                "comment": history["comment"],
                "created_at": now,
                "entity_id": self._next("history"),
                "entity_name": "order",
                "is_customer_notified": int(history.get("is_customer_notified") or 0),
                "is_visible_on_front": int(history.get("is_visible_on_front") or 0),
                "parent_id": order["entity_id"],
                "status": history.get("status") or order["status"],
            }
        )
        order["updated_at"] = now
        return True

    async def _shipments_search(self, request: Request, body: Any) -> Any:
        shipments = [self.shipments[k] for k in sorted(self.shipments)]
        return search(
            shipments, self._criteria(request), lambda r, f: r.get(f), repeat_last_page=True
        )

    # --- admin: HTTP ---------------------------------------------------------------------

    async def _admin_call(self, request: Request, action: Callable[[JSON], Any]) -> Response:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else {}
            return json_response(action(data))
        except MagentoError as exc:
            return json_response({"message": exc.message}, exc.status)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"message": str(exc)}, 400)

    async def _admin_create_product(self, request: Request) -> Response:
        def action(d: JSON) -> Any:
            return self.create_product(
                d["sku"],
                str(d["price"]),
                str(d.get("qty", 0)),
                ean=d.get("ean"),
                name=d.get("name"),
                source_code=d.get("source_code", "default"),
            )

        return await self._admin_call(request, action)

    async def _admin_set_stock(self, request: Request) -> Response:
        sku = request.path_params["sku"]

        def action(d: JSON) -> Any:
            self.set_stock(
                sku,
                str(d["qty"]),
                d.get("source_code", "default"),
                bool(d.get("touch_product", True)),
            )
            return {
                "sku": sku,
                "quantity": self.source_quantity(sku, d.get("source_code", "default")),
            }

        return await self._admin_call(request, action)

    async def _admin_orders(self, request: Request) -> Response:
        ext = request.query_params.get("ext_order_id")
        orders = [o for o in self.list_orders() if ext is None or o.get("ext_order_id") == ext]
        return json_response(orders)

    async def _admin_order_count(self, request: Request) -> Response:
        ext = request.query_params.get("ext_order_id", "")
        return json_response({"ext_order_id": ext, "count": self.order_count(ext)})

    async def _admin_ship(self, request: Request) -> Response:
        order_id = int(request.path_params["order_id"])
        return await self._admin_call(
            request, lambda d: self.ship_order(order_id, d.get("items"), d.get("tracks") or ())
        )

    async def _admin_cancel(self, request: Request) -> Response:
        order_id = int(request.path_params["order_id"])
        return await self._admin_call(request, lambda d: {"cancelled": self.cancel_order(order_id)})

    async def _admin_clock(self, request: Request) -> Response:
        def action(d: JSON) -> Any:
            self.advance(float(d.get("advance", 0)))
            return {"now": self.timestamp()}

        return await self._admin_call(request, action)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Magento 2 REST V1 simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sim = MagentoSimulator(
        time_scale=args.time_scale, rate_limits=not args.no_rate_limits, seed=args.seed
    )
    c = sim.credentials
    print(f"Magento simulator on http://{args.host}:{args.port}/rest/{sim.store_code}/V1")
    print(f"  consumer_key={c.consumer_key} access_token={c.access_token} (test values)")
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
