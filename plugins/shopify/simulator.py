"""A stateful Shopify Admin API simulator (GraphQL, schema-backed), as an ASGI app.

``ShopifySimulator(time_scale=1.0, rate_limits=True, seed=0)`` serves:

- ``POST /admin/api/{version}/graphql.json``: the official 2025-01 schema with
  resolvers for orders, variants, inventory, fulfillments and bulk operations;
  the answer's ``X-Shopify-API-Version`` is the version asked for when it is in
  ``api_versions`` and the oldest of them otherwise, as Shopify answers a request
  for an unsupported version;
  ``X-Shopify-Access-Token`` is required (401 otherwise); invalid documents are
  answered 200 with ``errors``; every answer carries ``extensions.cost``; a cost
  bucket (2000 points, 100 points/s, scaled by ``time_scale``) answers
  ``THROTTLED`` when empty; one query may not cost more than 1000;
  ``search_lag`` seconds pass before a new order shows in ``orders(query:)``
  searches (listings without a query and ``order(id:)`` see it at once).
- ``POST /admin/oauth/access_token``: the client credentials grant.
- ``GET /bulk-results/{id}.jsonl``: finished bulk operation results.
- ``/_admin/...``: test and demo controls (see :meth:`ShopifySimulator.routes`).

Run it with ``python -m plugins.shopify.simulator --port 8102``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.testing.clock import ScaledClock
from engine.testing.faults import FaultInjector, FaultMiddleware
from plugins.shopify.simulator_api import CostLimiter, GraphQLAPI
from plugins.shopify.simulator_records import gid, iso, parse_gid
from plugins.shopify.simulator_state import ShopState

PLACEHOLDER_TOKEN = "test-access-token"  # noqa: S105 - the simulator's test credential
TOKEN_ENV = "SHOPIFY_SIM_ACCESS_TOKEN"  # noqa: S105 - a variable name
SUPPORTED_API_VERSIONS = ("2026-01", "2026-04", "2026-07", "2026-10", "unstable")
"""The versions the simulator answers as asked (each served with the 2025-01 schema)."""
SCOPES = "read_orders,write_orders,read_products,read_inventory,read_locations,read_fulfillments"
INVALID_CREDENTIALS = "[API] Invalid API key or access token (unrecognized login or wrong password)"


class ShopifySimulator:
    """One simulated shop. Admin methods are thread-safe (the app may run under uvicorn)."""

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        *,
        access_token: str = PLACEHOLDER_TOKEN,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",  # noqa: S107 - simulator placeholder
        token_ttl: float = 86_399.0,
        shop_domain: str = "ordersync-sim.myshopify.com",
        currency: str = "EUR",
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        bulk_seconds: float = 2.0,
        job_seconds: float = 0.0,
        search_lag: float = 0.0,
        api_versions: tuple[str, ...] = SUPPORTED_API_VERSIONS,
        location: str | None = "Warehouse",
    ) -> None:
        self.clock = ScaledClock(time_scale)
        self.random = random.Random(seed)
        self.state = ShopState(self.clock, currency=currency, domain=shop_domain)
        self.limiter = CostLimiter(self.clock, bucket_size, restore_rate, enabled=rate_limits)
        self.api = GraphQLAPI(
            self.state,
            self.limiter,
            bulk_seconds=bulk_seconds,
            job_seconds=job_seconds,
            search_lag=search_lag,
        )
        self.access_token = access_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.api_versions = api_versions
        self.issued: dict[str, float] = {}
        self.requests: list[dict[str, Any]] = []
        if location:
            self.state.add_location(location)
        self.faults = FaultInjector(seed=seed)
        self.app = FaultMiddleware(Starlette(routes=self.routes()), self.faults)

    def transport(self) -> httpx.ASGITransport:
        """An httpx transport that calls this simulator in-process."""
        return httpx.ASGITransport(app=self.app)

    # --- Python admin API ----------------------------------------------------------------------

    def add_location(self, name: str) -> str:
        return gid("Location", self.state.add_location(name).id)

    def add_product(
        self,
        sku: str | None,
        *,
        barcode: str | None = None,
        price: Decimal | str = "10.00",
        quantity: int = 0,
        title: str | None = None,
        metafields: Mapping[str, str] | None = None,
        location: str | None = None,
        tracked: bool = True,
        inventory_policy: str = "DENY",
    ) -> dict[str, str]:
        """Create a product with one variant; ``metafields`` maps ``"namespace.key"`` to a value."""
        variant = self.state.add_product(
            sku,
            barcode=barcode,
            price=price,
            quantity=quantity,
            title=title,
            metafields=metafields,
            location_id=self._location_id(location),
            tracked=tracked,
            inventory_policy=inventory_policy,
        )
        return {
            "product_id": gid("Product", variant.product_id),
            "variant_id": gid("ProductVariant", variant.id),
            "inventory_item_id": gid("InventoryItem", variant.inventory_item_id),
        }

    def set_stock(self, sku_or_variant: str, quantity: int, location: str | None = None) -> int:
        """Set the ``available`` quantity; returns it."""
        return self.state.set_stock(sku_or_variant, quantity, self._location_id(location)).available

    def stock(self, sku_or_variant: str, location: str | None = None) -> dict[str, int]:
        with self.state.lock:
            level = self.state.level_for(
                self.state.find_variant(sku_or_variant), self._location_id(location)
            )
            return {
                "available": level.available,
                "committed": level.committed,
                "on_hand": level.on_hand,
            }

    def fulfil(
        self,
        order_id: str,
        lines: Mapping[str, int] | Iterable[tuple[str, int]] | None = None,
        *,
        tracking_company: str | None = None,
        tracking_number: str | None = None,
        tracking_url: str | None = None,
    ) -> str:
        """Ship an order (all remaining units, or ``{sku or line item id: quantity}``)."""
        items = (
            list(lines.items()) if isinstance(lines, Mapping) else (list(lines) if lines else None)
        )
        fulfillment = self.state.fulfil(
            order_id,
            items,
            tracking_company=tracking_company,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
        )
        return gid("Fulfillment", fulfillment.id)

    def cancel_fulfillment(self, fulfillment_id: str) -> dict[str, Any]:
        """Cancel a fulfilment (its units become unfulfilled again); returns the order."""
        fulfillment = self.state.cancel_fulfillment(fulfillment_id)
        return self.get_order(gid("Order", fulfillment.order_id))

    def cancel(
        self, order_id: str, *, reason: str = "OTHER", restock: bool = False
    ) -> dict[str, Any]:
        """Cancel an order as the merchant would in the admin."""
        order = self.state.cancel_order(order_id, reason=reason, restock=restock)
        return self.state.summary(order)

    def add_order(
        self,
        lines: Mapping[str, int],
        *,
        source_name: str = "web",
        source_identifier: str | None = None,
        tags: Iterable[str] = (),
    ) -> str:
        """An order placed in the shop itself (for "not ours" checks)."""
        order = self.state.add_order(
            lines.items(), source_name=source_name, source_identifier=source_identifier, tags=tags
        )
        return gid("Order", order.id)

    def list_orders(self) -> list[dict[str, Any]]:
        """Every order with lines, totals, sourceIdentifier, fulfillments (JSON-ready)."""
        with self.state.lock:
            return [self.state.summary(o) for o in self.state.orders.values()]

    def get_order(self, order_id: str) -> dict[str, Any]:
        with self.state.lock:
            return self.state.summary(self.state.order(order_id))

    def count_orders(self, source_identifier: str | None = None) -> int:
        """Orders carrying ``source_identifier`` (all orders when ``None``)."""
        with self.state.lock:
            if source_identifier is None:
                return len(self.state.orders)
            return self.state.count_by_source().get(source_identifier, 0)

    def order_counts(self) -> dict[str, int]:
        """sourceIdentifier → number of orders (more than 1 means a duplicate)."""
        with self.state.lock:
            return self.state.count_by_source()

    def notifications(self) -> list[dict[str, Any]]:
        """Customer e-mails the shop would have sent: ``{kind, order, to, at}``.

        ``kind`` is ``order_confirmation`` (``orderCreate`` with ``sendReceipt``),
        ``shipping_confirmation`` (``sendFulfillmentReceipt``) or ``order_cancelled``
        (``orderCancel`` with ``notifyCustomer``).
        """
        with self.state.lock:
            return [dict(n) for n in self.state.notifications]

    def set_available_points(self, points: float) -> None:
        """Set the cost bucket's level (e.g. 0 to force ``THROTTLED``)."""
        self.limiter.set_available(points)

    def configure_bucket(
        self, maximum: float | None = None, restore_rate: float | None = None
    ) -> dict[str, float]:
        """Change the cost bucket (e.g. another plan); returns the throttle status."""
        self.limiter.configure(maximum, restore_rate)
        return self.limiter.status()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        self.state.advance(seconds)

    def stats(self) -> dict[str, Any]:
        return {
            "graphql_requests": self.api.requests,
            "throttled": self.limiter.throttled,
            "throttle_status": self.limiter.status(),
            "orders": len(self.state.orders),
            "variants": len(self.state.variants),
            "tokens_issued": len(self.issued),
            "notifications": len(self.state.notifications),
            "faults": self.faults.describe(),
        }

    def _location_id(self, location: str | None) -> int | None:
        if location is None:
            return None
        number = parse_gid(location, "Location")
        if number is not None:
            return number
        for loc in self.state.locations.values():
            if loc.name == location:
                return loc.id
        return self.state.add_location(location).id

    # --- HTTP ----------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """GraphQL, OAuth, bulk files and the ``/_admin`` routes (never faulted).

        - ``GET /_admin/state``: requests served, throttling, counts.
        - ``POST /_admin/locations`` ``{name}`` → ``{id}``.
        - ``POST /_admin/products`` ``{sku, barcode, price, quantity, title,
          metafields: {"ns.key": value}, location, tracked}`` →
          ``{product_id, variant_id, inventory_item_id}``.
        - ``POST /_admin/stock`` ``{sku | variant_id, quantity, location}`` → ``{available}``.
        - ``GET /_admin/orders``: every order with lines, totals, fulfillments, sourceIdentifier.
        - ``POST /_admin/orders`` ``{lines: {sku: qty}, source_name, source_identifier, tags}``:
          an order placed in the shop itself → ``{id}``.
        - ``GET /_admin/orders/count[?source_identifier=X]`` → ``{count}``, or
          ``{counts: {sourceIdentifier: n}, total}``.
        - ``POST /_admin/orders/{id}/fulfillments`` ``{lines: [{sku | line_item_id, quantity}],
          tracking_company, tracking_number, tracking_url}`` → ``{fulfillment_id}``;
          without ``lines`` everything left ships; partial fulfilments allowed.
        - ``POST /_admin/orders/{id}/cancel`` ``{reason, restock}`` → the order.
        - ``POST /_admin/fulfillments/{id}/cancel`` → the order (the fulfilment ``CANCELLED``).
        - ``POST /_admin/throttle`` ``{available, maximum, restore_rate}`` → throttle status.
        - ``POST /_admin/clock`` ``{advance: seconds}`` → ``{now}``.

        ``{id}`` is an order's numeric id or its (URL-encoded) GID.
        """
        return [
            Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
            Route("/admin/oauth/access_token", self._token, methods=["POST"]),
            Route("/bulk-results/{number:int}.jsonl", self._bulk_file, methods=["GET"]),
            Route("/_admin/state", self._admin_state, methods=["GET"]),
            Route("/_admin/locations", self._admin_location, methods=["POST"]),
            Route("/_admin/products", self._admin_product, methods=["POST"]),
            Route("/_admin/stock", self._admin_stock, methods=["POST"]),
            Route("/_admin/orders", self._admin_orders, methods=["GET", "POST"]),
            Route("/_admin/orders/count", self._admin_count, methods=["GET"]),
            Route("/_admin/orders/{order_id}/fulfillments", self._admin_fulfil, methods=["POST"]),
            Route("/_admin/orders/{order_id}/cancel", self._admin_cancel, methods=["POST"]),
            Route(
                "/_admin/fulfillments/{fulfillment_id}/cancel",
                self._admin_cancel_fulfillment,
                methods=["POST"],
            ),
            Route("/_admin/throttle", self._admin_throttle, methods=["POST"]),
            Route("/_admin/clock", self._admin_clock, methods=["POST"]),
        ]

    def _authorized(self, token: str | None) -> bool:
        if not token:
            return False
        if token == self.access_token:
            return True
        expires = self.issued.get(token)
        return expires is not None and self.clock.now() < expires

    @staticmethod
    def _base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def _graphql(self, request: Request) -> Response:
        if not self._authorized(request.headers.get("x-shopify-access-token")):
            return JSONResponse({"errors": INVALID_CREDENTIALS}, status_code=401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"errors": "Invalid JSON in request body"}, status_code=400)
        answer = self.api.handle(body, self._base_url(request))
        headers = {"X-Shopify-API-Version": self.served_version(request.path_params["version"])}
        return JSONResponse(answer, headers=headers)

    def served_version(self, requested: str) -> str:
        """The version Shopify answers a request for ``requested`` with."""
        if requested in self.api_versions:
            return requested
        stable = sorted(v for v in self.api_versions if v != "unstable")
        return stable[0] if stable else requested

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            form: dict[str, Any] = json.loads(raw or b"{}")
        else:
            form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
                status_code=400,
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                status_code=401,
            )
        token = f"sim-cc-{self.random.getrandbits(48):012x}"
        self.issued[token] = self.clock.now() + self.token_ttl
        return JSONResponse(
            {"access_token": token, "scope": SCOPES, "expires_in": int(self.token_ttl)}
        )

    async def _bulk_file(self, request: Request) -> Response:
        body = self.api.bulk_file(request.path_params["number"])
        if body is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(body, media_type="application/jsonl")

    async def _admin_state(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _admin_location(self, request: Request) -> Response:
        data = await request.json()
        return JSONResponse({"id": self.add_location(data["name"])})

    async def _admin_product(self, request: Request) -> Response:
        data = await request.json()
        try:
            ids = self.add_product(
                data.get("sku"),
                barcode=data.get("barcode"),
                price=str(data.get("price", "10.00")),
                quantity=int(data.get("quantity", 0)),
                title=data.get("title"),
                metafields=data.get("metafields"),
                location=data.get("location"),
                tracked=bool(data.get("tracked", True)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(ids)

    async def _admin_stock(self, request: Request) -> Response:
        data = await request.json()
        try:
            available = self.set_stock(
                data.get("sku") or data["variant_id"], int(data["quantity"]), data.get("location")
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"available": available})

    async def _admin_orders(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(self.list_orders())
        data = await request.json()
        try:
            order_id = self.add_order(
                data["lines"],
                source_name=data.get("source_name", "web"),
                source_identifier=data.get("source_identifier"),
                tags=data.get("tags") or (),
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": order_id})

    async def _admin_count(self, request: Request) -> Response:
        wanted = request.query_params.get("source_identifier")
        if wanted is None:
            return JSONResponse({"counts": self.order_counts(), "total": self.count_orders()})
        return JSONResponse({"source_identifier": wanted, "count": self.count_orders(wanted)})

    async def _admin_fulfil(self, request: Request) -> Response:
        data = await request.json()
        lines = data.get("lines")
        items = (
            [(line.get("sku") or line["line_item_id"], int(line["quantity"])) for line in lines]
            if lines
            else None
        )
        try:
            fulfillment = self.fulfil(
                request.path_params["order_id"],
                items,
                tracking_company=data.get("tracking_company"),
                tracking_number=data.get("tracking_number"),
                tracking_url=data.get("tracking_url"),
            )
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"fulfillment_id": fulfillment})

    async def _admin_cancel(self, request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        try:
            order = self.cancel(
                request.path_params["order_id"],
                reason=data.get("reason", "OTHER"),
                restock=bool(data.get("restock", False)),
            )
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except Exception as exc:  # noqa: BLE001 - UserError and friends become a 400
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(order)

    async def _admin_cancel_fulfillment(self, request: Request) -> Response:
        try:
            order = self.cancel_fulfillment(request.path_params["fulfillment_id"])
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(order)

    async def _admin_throttle(self, request: Request) -> Response:
        data = await request.json()
        self.configure_bucket(data.get("maximum"), data.get("restore_rate"))
        if "available" in data:
            self.set_available_points(float(data["available"]))
        return JSONResponse(self.limiter.status())

    async def _admin_clock(self, request: Request) -> Response:
        data = await request.json()
        self.advance(float(data.get("advance", 0)))
        return JSONResponse({"now": iso(self.state.now())})


def seed_demo_catalog(sim: ShopifySimulator, count: int) -> None:
    """``count`` products SKU-0001… with barcodes and stock, for demos."""
    for n in range(1, count + 1):
        sim.add_product(
            f"SKU-{n:04d}",
            barcode=f"{4000000000000 + n}",
            price=f"{9 + n % 40}.99",
            quantity=10 + n % 25,
            metafields={"custom.asin": f"B0SIM{n:05d}"},
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.shopify.simulator",
        description="Serve the Shopify Admin API simulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--products", type=int, default=0, help="seed a demo catalog of N products")
    parser.add_argument("--search-lag", type=float, default=0.0, help="seconds (see the module)")
    parser.add_argument(
        "--token-env",
        default=TOKEN_ENV,
        help="environment variable holding the access token to accept "
        "(unset: the built-in test token)",
    )
    args = parser.parse_args(argv)
    token = os.environ.get(args.token_env) or PLACEHOLDER_TOKEN
    sim = ShopifySimulator(
        time_scale=args.time_scale,
        rate_limits=not args.no_rate_limits,
        seed=args.seed,
        access_token=token,
        search_lag=args.search_lag,
    )
    seed_demo_catalog(sim, args.products)
    import uvicorn

    source = f"${args.token_env}" if os.environ.get(args.token_env) else "the built-in test token"
    print(  # noqa: T201
        f"Shopify simulator on http://{args.host}:{args.port} (X-Shopify-Access-Token: {source})"
    )
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
