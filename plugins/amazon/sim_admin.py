"""Admin HTTP API of the simulator (``/_admin/...``): seed orders, move them, inspect."""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plugins.amazon.sim_orders import iso
from plugins.amazon.sim_state import SimState, parse_time

CANCELLED_BY = ("BUYER", "MERCHANT", "AMAZON")
"""``cancellationExecution.cancelledBy`` values of the v2026 model."""


class AdminHandlers(SimState):
    """JSON twins of the Python admin methods, for a simulator in another process."""

    async def _admin_state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _admin_confirmations(self, request: Request) -> Response:
        return JSONResponse({"confirmations": self.confirmations})

    async def _admin_cancellations(self, request: Request) -> Response:
        return JSONResponse({"cancellations": self.cancellations})

    async def _admin_orders(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"orders": [o.data for o in self.orders.values()]})
        body = await request.json()
        lag = float(body.pop("indexLag", 0))
        if "order" in body:
            return JSONResponse(self.add_order(body["order"], index_lag=lag), status_code=201)
        options = {
            "marketplace": body.get("marketplace", "Amazon.de"),
            "prime": bool(body.get("prime", False)),
            "business": bool(body.get("business", False)),
            "status": body.get("status", "UNSHIPPED"),
            "fulfilled_by": body.get("fulfilledBy", "MERCHANT"),
            "prices": {k: Decimal(str(v)) for k, v in (body.get("prices") or {}).items()},
            "discounts": {k: Decimal(str(v)) for k, v in (body.get("discounts") or {}).items()},
        }
        if body.get("shipping") is not None:
            options["shipping"] = Decimal(str(body["shipping"]))
        if body.get("createdAt"):
            options["created_at"] = parse_time(body["createdAt"], "createdAt")
        order = self.create_order(body["items"], index_lag=lag, **options)
        return JSONResponse(order, status_code=201)

    async def _admin_order(self, request: Request) -> Response:
        return JSONResponse(self.order(request.path_params["orderId"]))

    async def _admin_action(self, request: Request) -> Response:
        order_id, action = request.path_params["orderId"], request.path_params["action"]
        body = await request.json() if await request.body() else {}
        lag = float(body.get("indexLag", 0))
        if action == "status":
            return JSONResponse(self.set_status(order_id, body["status"], index_lag=lag))
        if action == "buyer-cancellation":
            reason = body.get("reason", "Ordered by mistake")
            return JSONResponse(self.request_cancellation(order_id, reason, index_lag=lag))
        if action in ("amazon-cancellation", "cancellation"):
            by = "AMAZON" if action == "amazon-cancellation" else str(body.get("by", "AMAZON"))
            if by not in CANCELLED_BY:
                raise ValueError(f"by must be one of {', '.join(CANCELLED_BY)}, got {by!r}")
            reason = body.get("reason", "")
            return JSONResponse(self.cancel_order(order_id, by=by, reason=reason, index_lag=lag))
        return JSONResponse({"error": f"unknown action {action!r}"}, status_code=404)

    async def _admin_stock(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await request.json()
            if "failingSkus" in body:
                self.failing_skus = set(body["failingSkus"])
            for sku, quantity in (body.get("quantities") or {}).items():
                self.set_quantity(sku, int(quantity))
            for sku, entry in (body.get("availability") or {}).items():
                fields = dict(entry)
                self.set_quantity(sku, int(fields.pop("quantity")), **fields)
        return JSONResponse(
            {
                "quantities": self.quantities,
                "availability": {sku: self.availability(sku) for sku in self.quantities},
                "failingSkus": sorted(self.failing_skus),
                "updates": self.listing_updates,
            }
        )

    async def _admin_participations(self, request: Request) -> Response:
        body = await request.json()
        for marketplace, participating in body.items():
            self.set_participation(marketplace, bool(participating))
        return JSONResponse(self.participations)

    async def _admin_expire(self, request: Request) -> Response:
        if request.query_params.get("revoke"):
            self.revoke_access_tokens()
        else:
            self.expire_access_tokens()
        return JSONResponse({"expired": True})

    async def _admin_advance(self, request: Request) -> Response:
        body = await request.json()
        self.advance(float(body["seconds"]))
        return JSONResponse({"now": iso(self.now())})
