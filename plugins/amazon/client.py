"""The SP-API operations this plugin calls, with their published usage plans.

Every call goes through :class:`engine.http.ApiClient` (retries, error classes,
one auth refresh on 401/403, redaction) and a per-connection
:class:`engine.ratelimit.OperationLimiter`. Rates and bursts are the defaults
printed in each operation's ``description`` in Amazon's models (see
``tests/contracts/amazon``); a test checks this table against them.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from engine.errors import BadResponseError
from engine.http import ApiClient, RetryPolicy, json_body
from engine.interfaces import ConnectorContext
from engine.ratelimit import OperationLimiter, RateLimit
from plugins.amazon.auth import LwaAuth
from plugins.amazon.settings import AmazonSettings

USER_AGENT = "ordersync/0.1 (Language=Python)"
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    rate: float
    """Requests per second (default usage plan)."""
    burst: int

    @property
    def pattern(self) -> re.Pattern[str]:
        # A SKU may contain "/" once percent-decoded; other ids never do.
        regex = self.path.replace("{sku}", "(?P<sku>.+)")
        return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", regex) + "$")


OPERATIONS: tuple[Operation, ...] = (
    Operation("searchOrders", "GET", "/orders/2026-01-01/orders", 0.0056, 20),
    Operation("getOrder", "GET", "/orders/2026-01-01/orders/{orderId}", 0.5, 30),
    Operation(
        "confirmShipment", "POST", "/orders/v0/orders/{orderId}/shipmentConfirmation", 2.0, 10
    ),
    Operation("createFeedDocument", "POST", "/feeds/2021-06-30/documents", 0.5, 15),
    Operation("createFeed", "POST", "/feeds/2021-06-30/feeds", 0.0083, 15),
    Operation("getFeed", "GET", "/feeds/2021-06-30/feeds/{feedId}", 2.0, 15),
    Operation("getFeeds", "GET", "/feeds/2021-06-30/feeds", 0.0222, 10),
    Operation("getFeedDocument", "GET", "/feeds/2021-06-30/documents/{feedDocumentId}", 0.0222, 10),
    Operation("getListingsItem", "GET", "/listings/2021-08-01/items/{sellerId}/{sku}", 5.0, 10),
    Operation("patchListingsItem", "PATCH", "/listings/2021-08-01/items/{sellerId}/{sku}", 5.0, 5),
    Operation(
        "getMarketplaceParticipations", "GET", "/sellers/v1/marketplaceParticipations", 0.016, 15
    ),
)
OPERATIONS_BY_NAME = {op.name: op for op in OPERATIONS}
RATE_LIMITS: dict[str, RateLimit] = {op.name: RateLimit(op.rate, op.burst) for op in OPERATIONS}
JITTER_SECONDS = 0.1
"""The client leaves unused what its bucket refills in this time: a request sent on
time may reach Amazon's bucket a little early (network delays vary, and a busy event
loop can hold a request between taking its token and sending it). A whole token would
be minutes for a slow operation (``searchOrders``: 1 / 0.0056 s)."""
HEADROOM_TOKENS = 3.0
"""The most the client leaves unused. Requests reach Amazon early only by bunching up,
and the connector and the engine keep at most four calls of an operation in flight
(``PATCH_CONCURRENCY``, ``engine.sync.intents.CONCURRENCY``): three tokens cover four
arriving at once. A pause on Amazon's side can still cost an occasional 429, which
waits one token and is sent again."""


RETRY_JITTER = 0.1
"""A 429 wait is stretched by up to this fraction (several clients of one seller, or
the patch calls in flight, do not all come back at the same instant)."""


def retry_policies() -> dict[str, RetryPolicy]:
    """Per operation: room for a 429 wait of one token (``1 / rate``, jittered).

    ``searchOrders`` refills one token in 178 s; a 30 s cap on waits would give up
    before Amazon could ever answer again. ``max_time`` leaves room for two such
    waits (the first retry may meet a bucket another client emptied again).
    """
    policies = {}
    for op in OPERATIONS:
        wait = (1.0 / op.rate) * (1.0 + RETRY_JITTER)
        default = RetryPolicy(jitter=RETRY_JITTER)
        policies[op.name] = RetryPolicy(
            max_tries=default.max_tries,
            max_time=max(default.max_time, 2 * wait + default.max_wait),
            max_wait=max(default.max_wait, wait),
            jitter=RETRY_JITTER,
        )
    return policies


class AmazonLimiter(OperationLimiter):
    """The connector's buckets, which a 429 empties."""

    def drain(self, operation: str) -> None:
        """Amazon's bucket is empty: so is ours, and the next call waits one token."""
        bucket = self._bucket(operation)
        if bucket is not None:
            bucket._leak()  # noqa: SLF001 - aiolimiter has no public way to empty a bucket
            bucket._level = bucket.max_rate  # noqa: SLF001


def client_limits(time_scale: float = 1.0) -> dict[str, RateLimit]:
    """The usage plans as the client enforces them: published rate, burst minus headroom.

    The headroom is ``JITTER_SECONDS`` of refill, at most :data:`HEADROOM_TOKENS`
    (at least one token is always usable). Only a high time scale reaches that cap:
    at 100x, 0.1 s refills 50 ``patchListingsItem`` tokens, and a bucket cut down to
    one token loses every late wake-up of a busy event loop (nothing can be sent
    early to catch up).
    """
    limits = {}
    for name, limit in RATE_LIMITS.items():
        headroom = min(HEADROOM_TOKENS, limit.rate * time_scale * JITTER_SECONDS)
        limits[name] = RateLimit(limit.rate, max(1.0, limit.burst - headroom))
    return limits


def match_operation(method: str, path: str) -> Operation | None:
    """The operation a ``METHOD /path`` belongs to, if any."""
    for op in OPERATIONS:
        if op.method == method.upper() and op.pattern.match(path):
            return op
    return None


def sp_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    """Read Amazon's ``{"errors": [{"code", "message", "details"}]}``."""
    try:
        data = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        message = str(first.get("message", ""))
        details = str(first.get("details") or "")
        if details and details != message:
            message = f"{message} ({details})"
        code = first.get("code")
        return (str(code) if code is not None else None), message
    return None, str(data)[:200]


def csv(values: list[str] | tuple[str, ...]) -> str:
    """Swagger 2.0 arrays in query strings default to ``collectionFormat: csv``."""
    return ",".join(values)


class SpApiClient:
    """Thin typed wrappers around the SP-API operations the connector needs."""

    def __init__(self, settings: AmazonSettings, context: ConnectorContext, auth: LwaAuth) -> None:
        self.settings = settings
        self.time_scale = context.time_scale
        self.limiter = AmazonLimiter(
            client_limits(context.time_scale), time_scale=context.time_scale
        )
        self.api = ApiClient(
            platform="amazon",
            base_url=settings.base_url,
            transport=context.transport,
            time_scale=context.time_scale,
            limiter=self.limiter,
            retry=RetryPolicy(jitter=RETRY_JITTER),
            operation_retry=retry_policies(),
            timeout=settings.request_timeout,
            headers={"user-agent": USER_AGENT},
            auth_headers=auth.headers,
            on_auth_failure=auth.invalidate,
            error_parser=sp_error_parser,
            backoff_time=self.backoff_time,
            on_response=self.on_response,
            redactor=auth.redactor,
        )
        # Presigned document URLs take no SP-API auth header and no limiter.
        self.documents = ApiClient(
            platform="amazon",
            base_url="",
            transport=context.transport,
            time_scale=context.time_scale,
            timeout=settings.request_timeout,
            redactor=auth.redactor,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.documents.aclose()

    # -- limits ---------------------------------------------------------------

    def on_response(self, operation: str, response: httpx.Response) -> None:
        """Adopt the rate Amazon announces for this seller and operation; a 429 empties
        the local bucket (it was fuller than Amazon's, e.g. after a restart or with
        another client of the same seller)."""
        rate = _header_rate(response)
        if rate is not None:
            self.limiter.update_rate(operation, rate)
        if response.status_code == 429:
            self.limiter.drain(operation)

    def backoff_time(self, response: httpx.Response) -> float | None:
        """On 429 wait one token's refill time: ``1 / rate`` (Amazon's advice)."""
        if response.status_code != 429 or "retry-after" in response.headers:
            return None
        rate = _header_rate(response)
        if rate is None:
            op = match_operation(response.request.method, response.request.url.path)
            if op is None:
                return None
            limit = self.limiter.limits.get(op.name, RateLimit(op.rate, op.burst))
            rate = limit.rate * self.time_scale
        return 1.0 / rate

    # -- orders ---------------------------------------------------------------

    async def search_orders(self, params: dict[str, str]) -> dict[str, Any]:
        r = await self.api.request(
            "GET", "/orders/2026-01-01/orders", operation="searchOrders", params=params
        )
        return _json_object(r, "searchOrders")

    async def get_order(self, order_id: str, included: list[str]) -> dict[str, Any]:
        r = await self.api.request(
            "GET",
            f"/orders/2026-01-01/orders/{quote(order_id, safe='')}",
            operation="getOrder",
            params={"includedData": csv(included)},
        )
        return _json_object(r, "getOrder")

    async def confirm_shipment(self, order_id: str, body: dict[str, Any]) -> None:
        r = await self.api.request(
            "POST",
            f"/orders/v0/orders/{quote(order_id, safe='')}/shipmentConfirmation",
            operation="confirmShipment",
            json=body,
        )
        _expect_no_body(r, "confirmShipment")  # 204

    # -- feeds ----------------------------------------------------------------

    async def create_feed_document(self, content_type: str) -> dict[str, Any]:
        r = await self.api.request(
            "POST",
            "/feeds/2021-06-30/documents",
            operation="createFeedDocument",
            json={"contentType": content_type},
        )
        return _json_object(r, "createFeedDocument")

    async def upload_document(self, url: str, content: bytes, content_type: str) -> None:
        r = await self.documents.request(
            "PUT",
            url,
            operation="uploadFeedDocument",
            content=content,
            headers={"content-type": content_type},
        )
        _expect_no_body(r, "uploadFeedDocument")  # S3: 200, no body

    async def create_feed(
        self, feed_type: str, marketplace_ids: tuple[str, ...], document_id: str
    ) -> str:
        # Sent once (a 429 aside): a lost answer may hide a feed Amazon accepted; the
        # connector looks it up with getFeeds before sending again.
        r = await self.api.request(
            "POST",
            "/feeds/2021-06-30/feeds",
            operation="createFeed",
            retry=False,
            retry_throttled=True,
            json={
                "feedType": feed_type,
                "marketplaceIds": list(marketplace_ids),
                "inputFeedDocumentId": document_id,
            },
        )
        return str(_json_object(r, "createFeed")["feedId"])

    async def get_feeds(
        self, feed_type: str, marketplace_ids: tuple[str, ...], created_since: str
    ) -> list[dict[str, Any]]:
        """Feeds of one type created since a moment, newest first (one page of 100)."""
        r = await self.api.request(
            "GET",
            "/feeds/2021-06-30/feeds",
            operation="getFeeds",
            params={
                "feedTypes": feed_type,
                "marketplaceIds": csv(marketplace_ids[:10]),
                "pageSize": "100",
                "createdSince": created_since,
            },
        )
        feeds = _json_object(r, "getFeeds").get("feeds") or []
        return [f for f in feeds if isinstance(f, dict)]

    async def get_feed(self, feed_id: str) -> dict[str, Any]:
        r = await self.api.request(
            "GET", f"/feeds/2021-06-30/feeds/{quote(feed_id, safe='')}", operation="getFeed"
        )
        return _json_object(r, "getFeed")

    async def get_feed_document(self, document_id: str) -> dict[str, Any]:
        r = await self.api.request(
            "GET",
            f"/feeds/2021-06-30/documents/{quote(document_id, safe='')}",
            operation="getFeedDocument",
        )
        return _json_object(r, "getFeedDocument")

    async def download_document(self, document: dict[str, Any]) -> bytes:
        r = await self.documents.request("GET", document["url"], operation="downloadFeedDocument")
        content = r.content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        return content

    # -- listings and sellers -------------------------------------------------

    def _listing_path(self, sku: str) -> str:
        seller = quote(self.settings.seller_id, safe="")
        return f"/listings/2021-08-01/items/{seller}/{quote(sku, safe='')}"

    async def get_listings_item(self, sku: str, included: list[str]) -> dict[str, Any]:
        r = await self.api.request(
            "GET",
            self._listing_path(sku),
            operation="getListingsItem",
            params={
                "marketplaceIds": csv(self.settings.marketplaces),
                "includedData": csv(included),
            },
        )
        return _json_object(r, "getListingsItem")

    async def patch_listings_item(
        self, sku: str, body: dict[str, Any], *, extra: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """:param extra: more query parameters (``mode=VALIDATION_PREVIEW``, ``includedData``)."""
        r = await self.api.request(
            "PATCH",
            self._listing_path(sku),
            operation="patchListingsItem",
            params={"marketplaceIds": csv(self.settings.marketplaces), **(extra or {})},
            json=body,
        )
        return _json_object(r, "patchListingsItem")

    async def get_marketplace_participations(self) -> dict[str, Any]:
        r = await self.api.request(
            "GET", "/sellers/v1/marketplaceParticipations", operation="getMarketplaceParticipations"
        )
        return _json_object(r, "getMarketplaceParticipations")


def _header_rate(response: httpx.Response) -> float | None:
    value = response.headers.get(RATE_LIMIT_HEADER)
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    return rate if rate > 0 else None


def _expect_no_body(response: httpx.Response, operation: str) -> None:
    """A write that succeeds without a body: a 2xx with a page or garbage in it was not
    answered by Amazon (a proxy, a captive portal), so nothing may have happened."""
    if response.content.strip():
        raise BadResponseError(
            f"expected no body, got {len(response.content)} bytes "
            f"({response.headers.get('content-type') or 'no content type'})",
            platform="amazon",
            operation=operation,
            status=response.status_code,
        )


def _json_object(response: httpx.Response, operation: str) -> dict[str, Any]:
    data = json_body(response, platform="amazon", operation=operation)
    if not isinstance(data, dict):
        raise BadResponseError(
            f"expected a JSON object, got {type(data).__name__}",
            platform="amazon",
            operation=operation,
            status=response.status_code,
        )
    return data
