"""State of the Amazon simulator and its Python admin API, plus shared HTTP helpers."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from engine.testing.clock import ScaledClock
from engine.testing.faults import FaultInjector
from engine.testing.ratelimit import Limit, RateLimiter
from plugins.amazon import marketplaces
from plugins.amazon.client import OPERATIONS
from plugins.amazon.sim_listings import DEFAULT_CHANNEL, Listing
from plugins.amazon.sim_orders import FULFILLMENT_STATUSES, OrderFactory, SimOrder, iso


class SimError(Exception):
    """An error answer in Amazon's ``{"errors": [...]}`` shape."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> JSONResponse:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return JSONResponse({"errors": [error]}, status_code=self.status)


def bad_input(message: str) -> SimError:
    return SimError(400, "InvalidInput", message)


def parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_input(f"Invalid date/time field [{name}]") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class PageState:
    filters: dict[str, str]
    ids: list[str]
    offset: int
    issued: datetime
    before_key: str
    before: datetime


@dataclass
class Document:
    id: str
    content_type: str
    created: datetime
    content: bytes | None = None
    compressed: bool = False


@dataclass
class Feed:
    id: str
    feed_type: str
    marketplace_ids: list[str]
    input_document_id: str
    created: datetime
    ready_at: float
    """Scaled-clock second at which processing finishes."""
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    result_document_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "feedId": self.id,
            "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": iso(self.created),
            "processingStatus": self.status,
        }
        if self.started:
            data["processingStartTime"] = iso(self.started)
        if self.ended:
            data["processingEndTime"] = iso(self.ended)
        if self.result_document_id:
            data["resultFeedDocumentId"] = self.result_document_id
        return data


@dataclass
class Credentials:
    client_id: str = "test-client-id"
    client_secret: str = "test-client-secret"  # noqa: S105 - a test placeholder
    refresh_token: str = "test-refresh-token"  # noqa: S105 - a test placeholder


class SimState:
    """The simulated seller account and its Python admin API (no HTTP here)."""

    def __init__(
        self,
        time_scale: float = 1.0,
        rate_limits: bool = True,
        seed: int = 0,
        *,
        seller_id: str = "A1SIMULATEDSELLER",
        credentials: Credentials | None = None,
        participations: Iterable[str] | None = None,
        token_ttl: float = 3600.0,
        page_token_ttl: float = 86_400.0,
        feed_processing_seconds: float = 0.0,
        gzip_reports: bool = False,
        usage_plans: Mapping[str, tuple[float, int]] | None = None,
    ) -> None:
        self.seller_id = seller_id
        self.credentials = credentials or Credentials()
        self.time_scale = time_scale
        self.clock = ScaledClock(time_scale)
        self.offset = timedelta(0)
        self.token_ttl = token_ttl
        self.page_token_ttl = page_token_ttl
        self.feed_processing_seconds = feed_processing_seconds
        self.gzip_reports = gzip_reports
        self.factory = OrderFactory(random.Random(seed))
        self._ids = random.Random(seed + 1)
        limits = {op.name: Limit(op.rate, op.burst) for op in OPERATIONS}
        for name, (rate, burst) in (usage_plans or {}).items():
            if name not in limits:
                raise ValueError(f"unknown operation {name!r} in usage_plans")
            limits[name] = Limit(rate, burst)  # this seller's plan, announced in the header
        self.limiter = RateLimiter(limits, clock=self.clock, enabled=rate_limits)
        self.faults = FaultInjector(seed=seed)
        names = participations if participations is not None else marketplaces.MARKETPLACES
        self.participations: dict[str, bool] = {marketplaces.resolve(m).id: True for m in names}

        self.orders: dict[str, SimOrder] = {}
        self.access_tokens: dict[str, datetime] = {}
        self.page_tokens: dict[str, PageState] = {}
        self.documents: dict[str, Document] = {}
        self.feeds: dict[str, Feed] = {}
        self.unfinished_feeds: set[str] = set()
        self.feed_pages: dict[str, tuple[list[str], int, int]] = {}
        self.confirmations: list[dict[str, Any]] = []
        self.cancellations: list[dict[str, Any]] = []
        self.listings: dict[str, Listing] = {}
        self.failing_skus: set[str] = set()
        self.listing_updates: list[dict[str, Any]] = []
        self.token_grants = 0
        self.rejected_requests = 0
        self.calls: dict[str, int] = {}

    # -- clock ----------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move simulated wall time and the rate-limit clock forward."""
        self.offset += timedelta(seconds=seconds)
        self.clock.advance(seconds)

    # -- admin (Python) -------------------------------------------------------

    def create_order(
        self,
        items: Mapping[str, int],
        *,
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
        created_at: datetime | None = None,
        index_lag: float = 0.0,
    ) -> dict[str, Any]:
        """Build and store a realistic order from ``{sku: quantity}``.

        Unset prices are drawn from the seed; ``discounts`` are per-line promotion
        amounts; ``created_at`` backdates the order; ``index_lag`` hides it from
        searches for that many seconds after its update.
        """
        data = self.factory.build(
            items,
            now=created_at or self.now(),
            marketplace=marketplace,
            prime=prime,
            business=business,
            status=status,
            fulfilled_by=fulfilled_by,
            prices=prices,
            discounts=discounts,
            shipping=shipping,
            tax_rate=tax_rate,
            order_id=order_id,
        )
        return self.add_order(data, index_lag=index_lag)

    def add_order(self, data: Mapping[str, Any], *, index_lag: float = 0.0) -> dict[str, Any]:
        """Store any v2026 ``Order`` JSON as it is (e.g. an example from the model)."""
        order = SimOrder(
            data=json.loads(json.dumps(data)), visible_at=datetime.min.replace(tzinfo=UTC)
        )
        order.visible_at = order.updated + timedelta(seconds=index_lag)
        self.orders[order.id] = order
        return order.data

    def order(self, order_id: str) -> dict[str, Any]:
        self.process_due_feeds()
        return self._order(order_id).data

    def process_due_feeds(self) -> None:
        """Finish every feed whose processing time has come (the feed API implements it)."""

    def set_status(self, order_id: str, status: str, *, index_lag: float = 0.0) -> dict[str, Any]:
        """Move an order to a fulfillment status (PENDING → UNSHIPPED, ...)."""
        if status not in FULFILLMENT_STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {FULFILLMENT_STATUSES}")
        order = self._order(order_id)
        order.data.setdefault("fulfillment", {})["fulfillmentStatus"] = status
        order.touch(self.now(), index_lag)
        return order.data

    def request_cancellation(
        self, order_id: str, reason: str = "Ordered by mistake", *, index_lag: float = 0.0
    ) -> dict[str, Any]:
        """The buyer asks to cancel; the seller must act."""
        order = self._order(order_id)
        for item in order.data.get("orderItems") or ():
            item.setdefault("cancellation", {})["cancellationRequest"] = {
                "requester": "BUYER",
                "cancelReason": reason,
            }
        order.touch(self.now(), index_lag)
        return order.data

    def cancel_order(
        self, order_id: str, *, by: str = "AMAZON", reason: str = "", index_lag: float = 0.0
    ) -> dict[str, Any]:
        """Cancel as Amazon (admin) or as the merchant (acknowledgement feed)."""
        order = self._order(order_id)
        order.data.setdefault("fulfillment", {})["fulfillmentStatus"] = "CANCELLED"
        for item in order.data.get("orderItems") or ():
            execution: dict[str, str] = {"cancelledBy": by}
            if reason:
                execution["cancelReason"] = reason
            item.setdefault("cancellation", {})["cancellationExecution"] = execution
        order.touch(self.now(), index_lag)
        self.cancellations.append(
            {"orderId": order_id, "by": by, "reason": reason, "time": iso(self.now())}
        )
        return order.data

    @property
    def quantities(self) -> dict[str, int]:
        """SKU → quantity of the seller-fulfilled (``DEFAULT``) channel, listed SKUs only."""
        found = {sku: listing.quantity() for sku, listing in self.listings.items()}
        return {sku: quantity for sku, quantity in found.items() if quantity is not None}

    def listing(self, sku: str, product_type: str = "PRODUCT") -> Listing:
        """The listing of ``sku``, created on first use (a patch creates it too)."""
        listing = self.listings.get(sku)
        if listing is None:
            listing = self.listings[sku] = Listing(sku, self.now(), self.now(), product_type)
        return listing

    def set_quantity(self, sku: str, quantity: int, *, via: str = "admin", **fields: Any) -> None:
        """Set the ``DEFAULT`` quantity; ``fields`` (e.g. ``lead_time_to_ship_max_days``)
        are merged into the same ``fulfillment_availability`` entry."""
        listing = self.listing(sku)
        entry = listing.availability.setdefault(
            DEFAULT_CHANNEL, {"fulfillment_channel_code": DEFAULT_CHANNEL}
        )
        entry.update(fields, quantity=quantity)
        listing.updated = self.now()
        self.listing_updates.append({"sku": sku, "quantity": quantity, "via": via, "ok": True})

    def store_listing(self, listing: Listing, product_type: str, *, via: str) -> None:
        """Keep a listing changed by a patch or a feed message."""
        listing.product_type = product_type
        listing.updated = self.now()
        self.listings[listing.sku] = listing
        self.listing_updates.append(
            {"sku": listing.sku, "quantity": listing.quantity(), "via": via, "ok": True}
        )

    def availability(self, sku: str) -> dict[str, Any] | None:
        """The ``DEFAULT`` ``fulfillment_availability`` entry of ``sku`` as Amazon keeps it."""
        listing = self.listings.get(sku)
        entry = listing.availability.get(DEFAULT_CHANNEL) if listing else None
        return dict(entry) if entry is not None else None

    def set_participation(self, marketplace: str, participating: bool = True) -> None:
        self.participations[marketplaces.resolve(marketplace).id] = participating

    def expire_access_tokens(self) -> None:
        """Every issued access token has expired: the next call answers 403."""
        now = self.now()
        self.access_tokens = {token: now for token in self.access_tokens}

    def revoke_access_tokens(self) -> None:
        """Forget every issued token: 401 where the model declares it, else 403."""
        self.access_tokens.clear()

    def state(self) -> dict[str, Any]:
        self.process_due_feeds()
        return {
            "sellerId": self.seller_id,
            "orders": {o.id: o.status for o in self.orders.values()},
            "confirmations": self.confirmations,
            "cancellations": self.cancellations,
            "quantities": self.quantities,
            "failingSkus": sorted(self.failing_skus),
            "listingUpdates": self.listing_updates,
            "tokenGrants": self.token_grants,
            "rejectedRequests": self.rejected_requests,
            "calls": self.calls,
            "throttled": self.limiter.throttled,
            "faults": self.faults.describe(),
        }

    def _order(self, order_id: str) -> SimOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(f"no order {order_id!r}")
        return order

    def _request_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128)))

    def _new_id(self, prefix: str = "") -> str:
        return prefix + uuid.UUID(int=self._ids.getrandbits(128)).hex


async def read_json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise bad_input("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_input("The request body must be a JSON object")
    return data
