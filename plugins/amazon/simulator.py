"""A stateful Amazon SP-API simulator (ASGI, starlette).

It serves the operations the plugin uses (LWA token, Orders v2026-01-01
``searchOrders``/``getOrder``, v0 ``confirmShipment``, the Feeds API with
presigned document URLs on itself, ``getListingsItem``/``patchListingsItem``,
``getMarketplaceParticipations``) with the published rate limits per seller
and operation, fault injection, and an admin API under ``/_admin``.

Time: order timestamps, token lifetimes and pagination-token expiry follow the
wall clock plus :meth:`AmazonSimulator.advance`; rate-limit buckets and feed
processing delays run on a :class:`ScaledClock` (``time_scale`` x real time).
A feed takes effect once its processing time has come, whether it is polled or
not: due feeds are processed before every request and admin read.

Run: ``python -m plugins.amazon.simulator --port 8101 --time-scale 1``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.testing.faults import FaultMiddleware
from engine.testing.ratelimit import RateLimitMiddleware, Scope
from plugins.amazon.client import match_operation
from plugins.amazon.sim_admin import AdminHandlers
from plugins.amazon.sim_api import ApiHandlers
from plugins.amazon.sim_feed_api import FeedHandlers
from plugins.amazon.sim_listing_api import ListingHandlers
from plugins.amazon.sim_state import Credentials, SimError

Handler = Callable[[Request], Awaitable[Response]]

__all__ = ["AmazonSimulator", "Credentials", "main"]


class AmazonSimulator(AdminHandlers, FeedHandlers, ListingHandlers, ApiHandlers):
    """In-memory Amazon for one seller; ``.app`` is the ASGI application.

    :param time_scale: speed of rate-limit buckets and feed delays.
    :param rate_limits: enforce the published usage plans (429 beyond burst).
    :param seed: makes generated ids, prices and tokens reproducible.
    :param usage_plans: ``{operation: (rate, burst)}`` for a seller whose plan differs
        from the published default; the rate is announced in ``x-amzn-RateLimit-Limit``.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(time_scale, rate_limits, seed, **options)
        router = Starlette(routes=self._routes())
        limited = RateLimitMiddleware(
            router,
            self.limiter,
            classify=self._classify,
            throttled_response=self._throttled,
            extra_headers=self._rate_header,
        )
        self.app = FaultMiddleware(limited, self.faults)

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for ``ConnectorContext.transport``."""
        return httpx.ASGITransport(app=self.app)

    # -- middleware hooks -----------------------------------------------------

    def _classify(self, scope: Scope) -> tuple[str, str] | None:
        op = match_operation(scope["method"], scope["path"])
        if op is None:
            return None
        token = dict(scope.get("headers") or []).get(b"x-amz-access-token", b"").decode()
        return op.name, self.seller_id if token in self.access_tokens else "anonymous"

    def _throttled(self, operation: str, wait: float) -> tuple[int, dict[str, str], bytes]:
        body = {
            "errors": [
                {
                    "code": "QuotaExceeded",
                    "message": "You exceeded your quota for the requested resource.",
                }
            ]
        }
        headers = {"content-type": "application/json", "x-amzn-RequestId": self._request_id()}
        return 429, headers, json.dumps(body).encode()

    def _rate_header(self, operation: str) -> dict[str, str]:
        rate = self.limiter.limits[operation].rate * self.time_scale
        return {"x-amzn-RateLimit-Limit": format(round(rate, 6), "g")}

    # -- routing --------------------------------------------------------------

    def _routes(self) -> list[Route]:
        api = self._api
        admin = self._admin
        return [
            Route("/auth/o2/token", self._lwa_token, methods=["POST"]),
            Route("/orders/2026-01-01/orders", api(self._search_orders), methods=["GET"]),
            Route("/orders/2026-01-01/orders/{orderId}", api(self._get_order), methods=["GET"]),
            Route(
                "/orders/v0/orders/{orderId}/shipmentConfirmation",
                api(self._confirm_shipment),
                methods=["POST"],
            ),
            Route("/feeds/2021-06-30/documents", api(self._create_document), methods=["POST"]),
            Route(
                "/feeds/2021-06-30/documents/{documentId}",
                api(self._get_document),
                methods=["GET"],
            ),
            Route("/feeds/2021-06-30/feeds", api(self._create_feed), methods=["POST"]),
            Route("/feeds/2021-06-30/feeds", api(self._get_feeds), methods=["GET"]),
            Route("/feeds/2021-06-30/feeds/{feedId}", api(self._get_feed), methods=["GET"]),
            Route("/feed-documents/{documentId}", self._document_content, methods=["GET", "PUT"]),
            Route(
                "/listings/2021-08-01/items/{sellerId}/{sku:path}",
                api(self._get_listing),
                methods=["GET"],
            ),
            Route(
                "/listings/2021-08-01/items/{sellerId}/{sku:path}",
                api(self._patch_listing),
                methods=["PATCH"],
            ),
            Route(
                "/sellers/v1/marketplaceParticipations",
                api(self._participations),
                methods=["GET"],
            ),
            Route("/_admin/state", admin(self._admin_state), methods=["GET"]),
            Route("/_admin/orders", admin(self._admin_orders), methods=["GET", "POST"]),
            Route("/_admin/orders/{orderId}", admin(self._admin_order), methods=["GET"]),
            Route("/_admin/orders/{orderId}/{action}", admin(self._admin_action), methods=["POST"]),
            Route("/_admin/confirmations", admin(self._admin_confirmations), methods=["GET"]),
            Route("/_admin/cancellations", admin(self._admin_cancellations), methods=["GET"]),
            Route("/_admin/stock", admin(self._admin_stock), methods=["GET", "PUT"]),
            Route("/_admin/participations", admin(self._admin_participations), methods=["PUT"]),
            Route("/_admin/tokens/expire", admin(self._admin_expire), methods=["POST"]),
            Route("/_admin/clock/advance", admin(self._admin_advance), methods=["POST"]),
        ]

    def _api(self, handler: Handler) -> Handler:
        """Authorize with ``x-amz-access-token``, map errors, add ``x-amzn-RequestId``."""

        async def endpoint(request: Request) -> Response:
            op = match_operation(request.method, request.url.path)
            if op is not None:
                self.calls[op.name] = self.calls.get(op.name, 0) + 1
            self.process_due_feeds()
            try:
                self._authorize(request, op.name if op else None)
                response = await handler(request)
            except SimError as exc:
                response = exc.response()
            response.headers["x-amzn-RequestId"] = self._request_id()
            return response

        return endpoint

    def _admin(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.process_due_feeds()
            try:
                return await handler(request)
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return endpoint


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # noqa: PLC0415 - only the command line needs it

    parser = argparse.ArgumentParser(description="Amazon SP-API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feed-delay", type=float, default=0.0, help="simulated seconds per feed")
    args = parser.parse_args(argv)
    sim = AmazonSimulator(
        time_scale=args.time_scale,
        rate_limits=not args.no_rate_limits,
        seed=args.seed,
        feed_processing_seconds=args.feed_delay,
    )
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
