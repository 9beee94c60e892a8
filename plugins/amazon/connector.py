"""The Amazon SP-API marketplace connector.

Orders: Orders API v2026-01-01 ``searchOrders``/``getOrder``. Shipments: v0
``confirmShipment``. Seller cancellations: ``POST_ORDER_ACKNOWLEDGEMENT_DATA``
feed. Stock: ``patchListingsItem`` for a few SKUs, ``JSON_LISTINGS_FEED`` for
many. Connection test: ``getMarketplaceParticipations``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from engine.concurrency import map_bounded
from engine.errors import (
    APIError,
    AuthError,
    BadResponseError,
    FailureReason,
    FatalAPIError,
    ItemError,
    RateLimited,
    RetriableAPIError,
)
from engine.interfaces import ConnectorContext, MarketplaceConnector
from engine.models import (
    CancelRequest,
    CheckResult,
    FulfillmentChannel,
    ItemResult,
    Order,
    RejectedOrder,
    Shipment,
    StockLevel,
)
from plugins.amazon import feeds
from plugins.amazon.auth import LwaAuth
from plugins.amazon.client import SpApiClient, csv
from plugins.amazon.mapping import INCLUDED_DATA, order_from_api, parse_time
from plugins.amazon.settings import CANCEL_REASONS, AmazonSettings, load_data

FINAL_FEED_STATUSES = frozenset({"DONE", "FATAL", "CANCELLED"})
CLOCK_MARGIN = timedelta(seconds=10)
"""Added to the 2-minute ``safety_margin``: a host clock a few seconds ahead of Amazon's
would otherwise make ``lastUpdatedBefore`` too recent (a 400 for the whole window)."""
CREATE_FEED_TRIES = 3
FEED_CLOCK_SKEW = timedelta(seconds=30)
"""How far before our ``createFeed`` a feed Amazon reports may have been created
(clock difference between this host and Amazon)."""
PATCH_CONCURRENCY = 4
"""``patchListingsItem`` calls in flight at once: enough to keep up with its 5/s
usage plan whatever the network latency, few enough to stay polite."""
CANCEL_REASON_ALIASES = {
    "outofstock": "NoInventory",
    "nostock": "NoInventory",
    "inventory": "NoInventory",
    "customer": "BuyerCanceled",
    "customerrequest": "BuyerCanceled",
    "buyerrequest": "BuyerCanceled",
    "buyercancelled": "BuyerCanceled",
    "address": "ShippingAddressUndeliverable",
    "undeliverable": "ShippingAddressUndeliverable",
    "pricing": "PricingError",
    "priceerror": "PricingError",
    "fraud": "RiskAssessmentInformationNotValid",
}


def iso(moment: datetime) -> str:
    """UTC with a ``Z`` suffix, whole seconds (SP-API rejects unencoded ``+`` offsets)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _ceil_second(moment: datetime) -> datetime:
    floor = moment.replace(microsecond=0)
    return floor if floor == moment else floor + timedelta(seconds=1)


def package_reference_id(shipment_id: str) -> str:
    """A stable ``packageReferenceId`` for a shop shipment.

    The model allows only positive numeric strings; a 9-digit number from a
    hash of the shipment id keeps it stable across retries and crashes.
    """
    digest = hashlib.sha256(shipment_id.encode("utf-8")).digest()
    return str(100_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000)


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@functools.lru_cache(maxsize=8)
def _carriers_by_key(codes: frozenset[str]) -> dict[str, str]:
    """Normalized carrier code → Amazon's spelling (built once per code list)."""
    return {_normalize(c): c for c in codes}


class _PageTokenRejected(Exception):
    """A 400 for a page request that carried ``paginationToken``."""

    def __init__(self, error: FatalAPIError) -> None:
        super().__init__(str(error))
        self.error = error

    @property
    def looks_expired(self) -> bool:
        """For the log only: Amazon's wording for an expired token is not documented."""
        text = f"{self.error.code} {self.error.message}".lower()
        return "expire" in text


class AmazonConnector(MarketplaceConnector):
    """One seller in one SP-API region, for one or more of its marketplaces."""

    settings_model = AmazonSettings

    # The shape of searchOrders, declared rather than buried in code.
    primary_key: ClassVar[str] = "orderId"
    cursor_field: ClassVar[str] = "lastUpdatedTime"
    start_param: ClassVar[str] = "lastUpdatedAfter"
    end_param: ClassVar[str] = "lastUpdatedBefore"
    next_token_field: ClassVar[str] = "pagination.nextToken"  # noqa: S105 - a field name
    token_param: ClassVar[str] = "paginationToken"  # noqa: S105 - a parameter name
    page_size_param: ClassVar[str] = "maxResultsPerPage"
    is_sorted: ClassVar[bool] = False
    safety_margin: ClassVar[timedelta] = timedelta(minutes=2)
    max_window_restarts: ClassVar[int] = 3
    carrier_codes: ClassVar[frozenset[str]] = frozenset(load_data("carriers.json")["codes"])
    cancellation_reasons: ClassVar[frozenset[str]] = frozenset(CANCEL_REASONS)

    settings: AmazonSettings

    def __init__(self, settings: AmazonSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.log = context.logger.getChild("amazon")
        self.auth = LwaAuth(
            token_url=settings.lwa_token_url,
            client_id=settings.lwa_client_id,
            client_secret=settings.lwa_client_secret,
            refresh_token=settings.lwa_refresh_token,
            transport=context.transport,
            timeout=settings.request_timeout,
        )
        self.client = SpApiClient(settings, context, self.auth)
        self._feed_ids: set[str] = set()
        """Feeds this connector created (never taken for a lost createFeed answer)."""
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The clock windows are clamped with; tests point it at the simulator's."""

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.auth.aclose()

    # -- connection test ------------------------------------------------------

    async def check(self) -> CheckResult:
        seller = self.settings.seller_id
        try:
            data = await self.client.get_marketplace_participations()
        except AuthError as exc:
            return CheckResult(
                ok=False,
                message=f"Amazon rejected the credentials of seller {seller}: {exc}",
                details={"code": exc.code, "status": exc.status},
            )
        except APIError as exc:
            return CheckResult(
                ok=False,
                message=f"SP-API at {self.settings.base_url} failed: {exc}",
                details={"code": exc.code, "status": exc.status},
            )
        rows = [p for p in data.get("payload") or () if isinstance(p, dict)]
        active = {
            str(p["marketplace"]["id"]): p["marketplace"]
            for p in rows
            if (p.get("participation") or {}).get("isParticipating") and p.get("marketplace")
        }
        details = {
            "region": self.settings.region,
            "endpoint": self.settings.base_url,
            "participating": sorted(active),
        }
        missing = [m for m in self.settings.marketplace_list if m.id not in active]
        if missing:
            names = ", ".join(f"{m.domain} ({m.id})" for m in missing)
            have = ", ".join(f"{v.get('name', k)} ({k})" for k, v in sorted(active.items()))
            return CheckResult(
                ok=False,
                message=f"seller {seller} does not participate in {names}; "
                f"participating marketplaces: {have or 'none'}",
                details=details,
            )
        names = ", ".join(m.domain for m in self.settings.marketplace_list)
        return CheckResult(
            ok=True,
            message=f"connected to SP-API {self.settings.region} as seller {seller} ({names})",
            details=details,
        )

    # -- orders ---------------------------------------------------------------

    async def orders_updated(
        self, since: datetime, until: datetime
    ) -> AsyncIterator[Order | RejectedOrder]:
        """Every order updated in ``[since, min(until, now - 2 min))``, all pages.

        A page request rejected with a 400 (an expired token after 24 h, whatever
        Amazon's wording) restarts the window, at most ``max_window_restarts`` times; orders already
        yielded with the same ``lastUpdatedTime`` are not yielded twice. An
        order that cannot be mapped comes as :class:`RejectedOrder`.
        """
        end = min(until, _floor_second(self.now() - self.safety_margin - CLOCK_MARGIN))
        if end <= since:
            return
        params = {
            self.start_param: iso(_floor_second(since)),
            self.end_param: iso(_ceil_second(end)),
            "marketplaceIds": csv(self.settings.marketplaces),
            "includedData": csv(INCLUDED_DATA),
            self.page_size_param: str(self.settings.page_size),
        }
        seen: set[tuple[str, str]] = set()
        restarts = 0
        while True:
            try:
                async for order in self._search(params, since, end, seen):
                    yield order
                return
            except _PageTokenRejected as rejected:
                if restarts >= self.max_window_restarts:
                    raise rejected.error from None
                restarts += 1
                what = "expired" if rejected.looks_expired else "rejected"
                self.log.warning(
                    "pagination token %s; reading the window again: %s", what, rejected.error
                )

    async def _search(
        self,
        params: dict[str, str],
        since: datetime,
        end: datetime,
        seen: set[tuple[str, str]],
    ) -> AsyncIterator[Order | RejectedOrder]:
        token: str | None = None
        while True:
            # v2026: a page request repeats every filter and adds the token.
            query = dict(params)
            if token:
                query[self.token_param] = token
            try:
                page = await self.client.search_orders(query)
            except FatalAPIError as exc:
                if token and exc.status == 400:
                    raise _PageTokenRejected(exc) from exc
                raise
            for raw in page.get("orders") or ():
                key = (str(raw.get("orderId")), str(raw.get("lastUpdatedTime")))
                if key in seen:
                    continue
                seen.add(key)
                if _in_window(raw, since, end):
                    yield self._map(raw)
            next_token = (page.get("pagination") or {}).get("nextToken")
            if not next_token:
                return
            if next_token == token:
                raise BadResponseError(
                    "Loop detected in pagination", platform="amazon", operation="searchOrders"
                )
            token = str(next_token)

    def _map(self, raw: dict[str, Any]) -> Order | RejectedOrder:
        try:
            return order_from_api(raw, self.settings.marketplaces[0])
        except (ItemError, KeyError, ValueError, TypeError, ArithmeticError) as exc:
            order_id = str(raw.get("orderId") or "?")
            self.log.warning("Amazon order %s cannot be read: %s", order_id, exc)
            detail = exc.message if isinstance(exc, ItemError) else f"{type(exc).__name__}: {exc}"
            return RejectedOrder(marketplace_order_id=order_id, message=detail[:500])

    async def get_order(self, marketplace_order_id: str) -> Order | RejectedOrder | None:
        raw = await self._get_raw_order(marketplace_order_id, INCLUDED_DATA)
        return None if raw is None else self._map(raw)

    async def _get_raw_order(self, order_id: str, included: Sequence[str]) -> dict[str, Any] | None:
        try:
            data = await self.client.get_order(order_id, list(included))
        except FatalAPIError as exc:
            if exc.status == 404:
                return None
            raise
        order = data.get("order")
        if not isinstance(order, dict):
            raise BadResponseError("getOrder answer has no order", platform="amazon")
        return order

    # -- shipments ------------------------------------------------------------

    def _carrier(self, carrier_code: str, shipment: Shipment) -> dict[str, str]:
        """A known code in Amazon's spelling, else ``Other`` with the name."""
        code = (
            _carriers_by_key(self.carrier_codes).get(_normalize(carrier_code))
            if carrier_code
            else None
        )
        if code and code != "Other":
            return {"carrierCode": code}
        name = (carrier_code if carrier_code and code is None else shipment.carrier) or "Other"
        return {"carrierCode": "Other", "carrierName": name}

    def _package_items(self, order: Order, shipment: Shipment) -> list[dict[str, Any]]:
        remaining = {line.line_id: line.quantity - line.quantity_shipped for line in order.lines}
        quantities: dict[str, int] = {}
        for ship_line in shipment.lines:
            if ship_line.line_id and ship_line.line_id in remaining:
                quantities[ship_line.line_id] = (
                    quantities.get(ship_line.line_id, 0) + ship_line.quantity
                )
                remaining[ship_line.line_id] -= ship_line.quantity
                continue
            candidates = [line for line in order.lines if line.sku == ship_line.sku]
            if not candidates:
                raise ItemError(
                    FailureReason.UNKNOWN_SKU,
                    f"SKU {ship_line.sku} is not in Amazon order {order.marketplace_order_id}",
                )
            left = ship_line.quantity
            for line in candidates:
                take = min(left, max(remaining[line.line_id], 0))
                if take:
                    quantities[line.line_id] = quantities.get(line.line_id, 0) + take
                    remaining[line.line_id] -= take
                    left -= take
            if left:
                raise ItemError(
                    FailureReason.INVALID_ORDER,
                    f"shipment {shipment.shipment_id} ships {ship_line.quantity} x {ship_line.sku} "
                    f"but only {ship_line.quantity - left} are unshipped in Amazon order "
                    f"{order.marketplace_order_id}",
                )
        return [{"orderItemId": item_id, "quantity": qty} for item_id, qty in quantities.items()]

    def shipment_request(
        self, order: Order, shipment: Shipment, carrier_code: str
    ) -> dict[str, Any]:
        """The ``ConfirmShipmentRequest`` body for one package."""
        if order.fulfillment_channel is FulfillmentChannel.MARKETPLACE:
            raise ItemError(
                FailureReason.INVALID_ORDER,
                f"order {order.marketplace_order_id} is fulfilled by Amazon",
            )
        if not shipment.tracking_number:
            raise ItemError(
                FailureReason.INVALID_ORDER,
                f"shipment {shipment.shipment_id} has no tracking number (required by Amazon)",
            )
        package: dict[str, Any] = {
            "packageReferenceId": package_reference_id(shipment.shipment_id),
            **self._carrier(carrier_code, shipment),
            "trackingNumber": shipment.tracking_number,
            "shipDate": iso(shipment.shipped_at),
            "orderItems": self._package_items(order, shipment),
        }
        if shipment.shipping_method:
            package["shippingMethod"] = shipment.shipping_method
        return {"marketplaceId": order.marketplace_id, "packageDetail": package}

    async def confirm_shipment(self, order: Order, shipment: Shipment, carrier_code: str) -> None:
        body = self.shipment_request(order, shipment, carrier_code)
        await self.client.confirm_shipment(order.marketplace_order_id, body)

    async def shipment_confirmed(self, order: Order, shipment: Shipment) -> bool:
        raw = await self._get_raw_order(order.marketplace_order_id, ("PACKAGES", "FULFILLMENT"))
        if raw is None:
            return False
        reference = package_reference_id(shipment.shipment_id)
        for package in raw.get("packages") or ():
            if package.get("packageReferenceId") == reference:
                return True
            tracking = package.get("trackingNumber")
            if shipment.tracking_number and tracking == shipment.tracking_number:
                return True
        return False

    # -- cancellations --------------------------------------------------------

    def cancel_reason(self, reason: str) -> str:
        """Amazon's ``CancelReason`` for an engine reason (exact, alias or the default)."""
        key = _normalize(reason or "")
        for code in CANCEL_REASONS:
            if _normalize(code) == key:
                return code
        return CANCEL_REASON_ALIASES.get(key, self.settings.default_cancel_reason)

    async def cancel_orders(self, requests: Sequence[CancelRequest]) -> list[ItemResult]:
        results: dict[str, ItemResult] = {}
        items: list[feeds.CancelItem] = []
        for request in requests:
            order_id = request.marketplace_order_id
            if order_id in results or any(i.order_id == order_id for i in items):
                continue
            item_ids = tuple(line.line_id for line in request.lines)
            if not item_ids:
                try:
                    raw = await self._get_raw_order(order_id, ("CANCELLATION",))
                except (FatalAPIError, RetriableAPIError) as exc:
                    results[order_id] = _failed(order_id, exc)
                    continue
                if raw is None:
                    results[order_id] = ItemResult(
                        key=order_id, ok=False, code="NotFound", message="no such Amazon order"
                    )
                    continue
                item_ids = tuple(str(i["orderItemId"]) for i in raw.get("orderItems") or ())
            items.append(feeds.CancelItem(order_id, item_ids, self.cancel_reason(request.reason)))
        if items:
            document = feeds.cancel_feed_xml(self.settings.seller_id, items)
            feed, report, adopted = await self._submit_feed(
                feeds.CANCEL_FEED_TYPE, document, feeds.XML_CONTENT_TYPE
            )
            outcome = self._cancel_results(items, feed, report, adopted=adopted)
            for order_id, result in outcome.items():
                results[order_id] = result if result.ok else await self._if_cancelled(result)
            if adopted:
                await self._confirm_adopted(feed, [r for r in outcome.values() if r.ok])
        order_ids = dict.fromkeys(r.marketplace_order_id for r in requests)
        return [results[order_id] for order_id in order_ids]

    async def _confirm_adopted(self, feed: dict[str, Any], done: list[ItemResult]) -> None:
        """A feed adopted after a lost answer reported these orders cancelled: make sure
        (it may be a killed process's feed with as many messages); if one is not, the
        batch is retried (the engine looks each order up before sending again)."""
        for result in done:
            raw = await self._get_raw_order(result.key, ("FULFILLMENT",))
            status = ((raw or {}).get("fulfillment") or {}).get("fulfillmentStatus")
            if status != "CANCELLED":
                raise RetriableAPIError(
                    f"feed {feed.get('feedId')}, found after a lost createFeed answer, is not "
                    f"the one of order {result.key} (still {status})",
                    platform="amazon",
                    operation="createFeed",
                )

    async def _if_cancelled(self, failure: ItemResult) -> ItemResult:
        """Success if the order is cancelled after all, else ``failure``.

        Amazon's error for an order a duplicate feed (or Amazon, or the buyer) already
        cancelled is not documented; what is asked for is the order being cancelled,
        so look it up rather than read error codes.
        """
        try:
            raw = await self._get_raw_order(failure.key, ("FULFILLMENT",))
        except APIError as exc:
            self.log.warning("cannot look up Amazon order %s: %s", failure.key, exc)
            return failure
        status = ((raw or {}).get("fulfillment") or {}).get("fulfillmentStatus")
        if status == "CANCELLED":
            self.log.info(
                "order %s is cancelled although the feed said %s", failure.key, failure.code
            )
            return ItemResult(key=failure.key, ok=True)
        return failure

    def _cancel_results(
        self,
        items: list[feeds.CancelItem],
        feed: dict[str, Any],
        report: bytes | None,
        *,
        adopted: bool = False,
    ) -> dict[str, ItemResult]:
        status = str(feed.get("processingStatus"))
        if report is None:
            return {
                i.order_id: ItemResult(
                    key=i.order_id,
                    ok=False,
                    code=status,
                    message=f"feed {feed.get('feedId')} {status}",
                )
                for i in items
            }
        try:
            parsed = feeds.parse_xml_processing_report(report)
        except (ValueError, SyntaxError) as exc:  # a cut or garbled download: read it again
            raise _unreadable_report(feed, exc) from None
        errors = parsed.errors_by_message()
        if adopted and parsed.processed != len(items):
            # Not the feed of these orders: nothing is known of them (the engine looks
            # each one up before sending again).
            raise RetriableAPIError(
                f"feed {feed.get('feedId')}, found after a lost createFeed answer, processed "
                f"{parsed.processed} messages, not the {len(items)} sent",
                platform="amazon",
                operation="createFeed",
            )
        whole = _feed_level_failure(feed, parsed, errors.get(0), len(items))
        out: dict[str, ItemResult] = {}
        for number, item in enumerate(items, start=1):
            error = errors.get(number)
            if error is not None:
                code, message = error.message_code, error.description
            elif whole is not None:
                code, message = whole
            elif status != "DONE":
                code, message = status, f"feed {status}"
            else:
                out[item.order_id] = ItemResult(key=item.order_id, ok=True)
                continue
            out[item.order_id] = ItemResult(key=item.order_id, ok=False, code=code, message=message)
        return out

    # -- stock ----------------------------------------------------------------

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemResult]:
        latest: dict[str, int] = {}
        for level in levels:
            latest[level.sku] = max(0, level.quantity)  # Amazon has no negative stock
        if not latest:
            return []
        if len(latest) <= self.settings.stock_batch_threshold:
            return await self._patch_quantities(latest)
        pairs = list(latest.items())
        results: list[ItemResult] = []
        for start in range(0, len(pairs), feeds.MAX_LISTINGS_MESSAGES):
            results.extend(
                await self._stock_feed(pairs[start : start + feeds.MAX_LISTINGS_MESSAGES])
            )
        return results

    async def _patch_quantities(self, quantities: dict[str, int]) -> list[ItemResult]:
        """One ``patchListingsItem`` per SKU, a few in flight (the limiter paces them)."""

        async def one(pair: tuple[str, int]) -> ItemResult:
            return await self._patch_quantity(*pair)

        outcomes = await map_bounded(one, quantities.items(), limit=PATCH_CONCURRENCY)
        results = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                # Still failing after the client's retries (429, 5xx, timeouts): the
                # engine pushes the batch again at its next run, not as a rejection.
                raise outcome
            results.append(outcome)
        return results

    async def _patch_quantity(self, sku: str, quantity: int) -> ItemResult:
        body = {
            "productType": self.settings.product_type,
            "patches": [feeds.quantity_patch(quantity, self.settings.fulfillment_channel_code)],
        }
        try:
            data = await self.client.patch_listings_item(sku, body)
        except FatalAPIError as exc:  # rejected; a RetriableAPIError propagates
            return _failed(sku, exc)
        if data.get("status") in ("ACCEPTED", "VALID"):
            return ItemResult(key=sku, ok=True)
        issues = [i for i in data.get("issues") or () if i.get("severity") == "ERROR"]
        first = issues[0] if issues else {}
        return ItemResult(
            key=sku,
            ok=False,
            code=first.get("code") or str(data.get("status")),
            message="; ".join(str(i.get("message")) for i in issues) or "listing update rejected",
        )

    async def _stock_feed(self, pairs: list[tuple[str, int]]) -> list[ItemResult]:
        document = feeds.listings_feed(
            self.settings.seller_id,
            pairs,
            product_type=self.settings.product_type,
            channel_code=self.settings.fulfillment_channel_code,
        )
        content = json.dumps(document, separators=(",", ":")).encode("utf-8")
        # A feed adopted after a lost answer cannot be tied to these SKUs for sure;
        # quantities are absolute, so pushing them again at the next run is harmless.
        feed, report, _ = await self._submit_feed(
            feeds.LISTINGS_FEED_TYPE, content, feeds.JSON_CONTENT_TYPE, adopt=False
        )
        status = str(feed.get("processingStatus"))
        if report is None:
            message = f"feed {feed.get('feedId')} ended {status} without a processing report"
            return [ItemResult(key=sku, ok=False, code=status, message=message) for sku, _ in pairs]
        try:
            errors = feeds.parse_listings_report(report)
        except ValueError as exc:  # a cut or garbled download: push again
            raise _unreadable_report(feed, exc) from None
        feed_level = errors.get(0)
        results = []
        for number, (sku, _) in enumerate(pairs, start=1):
            issues = errors.get(number) or feed_level
            if not issues and status == "DONE":
                results.append(ItemResult(key=sku, ok=True))
                continue
            results.append(
                ItemResult(
                    key=sku,
                    ok=False,
                    code=(issues[0].get("code") if issues else status),
                    message="; ".join(str(i.get("message")) for i in issues or ()) or status,
                )
            )
        return results

    async def listed_quantities(self, skus: Sequence[str]) -> dict[str, int]:
        """What Amazon offers now: ``getListingsItem`` with ``fulfillmentAvailability``.

        The quantity is the one of ``fulfillment_channel_code`` (the merchant-fulfilled
        channel by default). A SKU Amazon does not list (404), or lists without an entry
        for that channel (e.g. only fulfilled by Amazon), is left out; an entry without
        a quantity counts 0. Other errors raise, naming the SKU.
        """
        channel = self.settings.fulfillment_channel_code

        async def one(sku: str) -> int | None:
            try:
                item = await self.client.get_listings_item(sku, ["fulfillmentAvailability"])
            except FatalAPIError as exc:
                if exc.status == 404:
                    return None
                raise FatalAPIError(
                    f"reading the listing of SKU {sku} failed: {exc.message}",
                    platform="amazon",
                    operation="getListingsItem",
                    status=exc.status,
                    code=exc.code,
                ) from None
            for entry in item.get("fulfillmentAvailability") or ():
                if isinstance(entry, dict) and entry.get("fulfillmentChannelCode") == channel:
                    return int(entry.get("quantity") or 0)
            return None

        unique = list(dict.fromkeys(skus))
        outcomes = await map_bounded(one, unique, limit=PATCH_CONCURRENCY)
        found: dict[str, int] = {}
        for sku, outcome in zip(unique, outcomes, strict=True):
            if isinstance(outcome, Exception):
                raise outcome  # after every other read has ended, none left running
            if outcome is not None:
                found[sku] = outcome
        return found

    # -- feeds ----------------------------------------------------------------

    async def _submit_feed(
        self, feed_type: str, content: bytes, content_type: str, *, adopt: bool = True
    ) -> tuple[dict[str, Any], bytes | None, bool]:
        """Upload, create, wait; return the final feed, its processing report, and
        whether the feed was adopted after a lost ``createFeed`` answer (see
        :meth:`_create_feed`: it is probably, not certainly, ours). With
        ``adopt=False`` such a feed is not waited for: the call is retriable."""
        document = await self.client.create_feed_document(content_type)
        await self.client.upload_document(str(document["url"]), content, content_type)
        feed_id, adopted = await self._create_feed(feed_type, str(document["feedDocumentId"]))
        if adopted and not adopt:
            raise RetriableAPIError(
                f"createFeed answer lost; feed {feed_id} may not be this one's: sent again at "
                "the next run",
                platform="amazon",
                operation="createFeed",
            )
        feed = await self._wait_for_feed(feed_id)
        result_id = feed.get("resultFeedDocumentId")
        if not result_id:
            return feed, None, adopted
        result = await self.client.get_feed_document(str(result_id))
        return feed, await self.client.download_document(result), adopted

    async def _create_feed(self, feed_type: str, document_id: str) -> tuple[str, bool]:
        """``createFeed`` sent once per try; after a lost answer (timeout, 5xx, garbage)
        ``getFeeds`` looks for the feed Amazon may have accepted before sending again,
        so one document never becomes two feeds. ``(feed id, adopted)``: a feed found
        that way may also be one a killed process of this connection sent moments ago
        (the Feeds API does not say which document a feed was made from), so callers
        check its report fits what they sent."""
        markets = self.settings.marketplaces
        for attempt in range(1, CREATE_FEED_TRIES + 1):
            sent_at = self.now()
            try:
                feed_id = await self.client.create_feed(feed_type, markets, document_id)
            except RateLimited:
                raise  # throttled on every try: Amazon created nothing
            except RetriableAPIError as exc:
                found = await self._feed_created_since(feed_type, sent_at)
                if found is None and attempt < CREATE_FEED_TRIES:
                    self.log.warning("createFeed failed (%s) and made no feed; sending again", exc)
                    continue
                if found is None:
                    raise
                self.log.warning("createFeed answer lost (%s); Amazon has feed %s", exc, found)
                self._feed_ids.add(found)
                return found, True
            self._feed_ids.add(feed_id)
            return feed_id, False
        raise AssertionError("unreachable")  # pragma: no cover

    async def _feed_created_since(self, feed_type: str, sent_at: datetime) -> str | None:
        """The newest feed of ``feed_type`` created since just before ``sent_at`` that this
        connector did not create knowingly (one process per connection: it is ours)."""
        since = sent_at - FEED_CLOCK_SKEW
        markets = set(self.settings.marketplaces)
        for feed in await self.client.get_feeds(feed_type, self.settings.marketplaces, iso(since)):
            feed_id = str(feed.get("feedId") or "")
            try:
                created = parse_time(str(feed.get("createdTime")))
            except ValueError:
                continue
            if (
                feed_id
                and feed_id not in self._feed_ids
                and created >= _floor_second(since)
                and set(feed.get("marketplaceIds") or markets) == markets
            ):
                return feed_id
        return None

    async def _wait_for_feed(self, feed_id: str) -> dict[str, Any]:
        scale = self.context.time_scale
        interval = self.settings.feed_poll_interval / scale
        deadline = time.monotonic() + self.settings.feed_timeout / scale
        while True:
            feed = await self.client.get_feed(feed_id)
            status = feed.get("processingStatus")
            if status in FINAL_FEED_STATUSES:
                return feed
            if time.monotonic() + interval > deadline:
                raise RetriableAPIError(
                    f"feed {feed_id} still {status} after "
                    f"{math.ceil(self.settings.feed_timeout)} s",
                    platform="amazon",
                    operation="getFeed",
                )
            await asyncio.sleep(interval)


def _in_window(raw: dict[str, Any], since: datetime, end: datetime) -> bool:
    """``[since, end)`` by ``lastUpdatedTime``; unreadable times stay in (Amazon chose them)."""
    try:
        updated = parse_time(str(raw["lastUpdatedTime"]))
    except (KeyError, ValueError):
        return True
    return since <= updated < end


def _feed_level_failure(
    feed: dict[str, Any],
    report: feeds.XmlProcessingReport,
    error: feeds.XmlResult | None,
    sent: int,
) -> tuple[str | None, str] | None:
    """Why a report does not vouch for its messages, if it does not.

    A ``Result`` with ``MessageID`` 0 is about the whole document (unparsable, wrong
    merchant); fewer ``MessagesProcessed`` than messages sent leaves the others
    unaccounted for. Either way an order without its own error is not known to be
    cancelled.
    """
    if error is not None:
        return error.message_code, f"feed {feed.get('feedId')} rejected: {error.description}"
    if report.processed < sent:
        return "MessagesNotProcessed", (
            f"feed {feed.get('feedId')} processed {report.processed} of {sent} messages"
        )
    return None


def _unreadable_report(feed: dict[str, Any], exc: Exception) -> BadResponseError:
    """The feed was processed but its report could not be read: retriable (the engine
    reconciles before sending again)."""
    return BadResponseError(
        f"processing report of feed {feed.get('feedId')} is unreadable: {exc}",
        platform="amazon",
        operation="getFeedDocument",
    )


def _failed(key: str, exc: FatalAPIError | RetriableAPIError) -> ItemResult:
    return ItemResult(key=key, ok=False, code=exc.code or str(exc.status or ""), message=str(exc))
