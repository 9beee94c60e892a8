"""HTTP access to ``wc/v3``: authentication, pagination headers, the server clock.

Authentication: HTTP Basic over HTTPS (``consumer_key``/``consumer_secret`` query
parameters with ``query_string_auth``); OAuth 1.0a signatures for a plain-HTTP store,
the only key authentication WooCommerce accepts there (:mod:`plugins.woocommerce.auth`).

Every call goes through :class:`engine.http.ApiClient` (retries, error classes,
redaction). WooCommerce publishes no rate limit; one client-side bucket shared
by all operations keeps us polite towards small hosts.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

import engine
from engine.errors import BadResponseError, FatalAPIError
from engine.http import ApiClient, RetryPolicy, json_body
from engine.interfaces import ConnectorContext
from engine.ratelimit import OperationLimiter, RateLimit
from engine.redact import Redactor
from plugins.woocommerce.auth import OAuth1QueryAuth
from plugins.woocommerce.settings import WooCommerceSettings

PLATFORM = "woocommerce"
MAX_PER_PAGE = 100
QUICK_RETRY = RetryPolicy(max_tries=2, max_time=10.0, initial=0.2, max_wait=2.0)


class SharedLimiter(OperationLimiter):
    """One token bucket for every operation of a connection."""

    def __init__(self, limit: RateLimit, time_scale: float = 1.0) -> None:
        super().__init__({PLATFORM: limit}, time_scale)

    async def acquire(self, operation: str) -> None:
        await super().acquire(PLATFORM)


@dataclass(frozen=True)
class Page:
    """One page of a collection with the WP pagination headers."""

    items: list[dict[str, Any]]
    page: int
    total_pages: int
    server_time: datetime | None

    @property
    def has_more(self) -> bool:
        return self.page < self.total_pages


def server_time(response: httpx.Response) -> datetime | None:
    """The server's clock from ``Date`` (the last parseable one if a proxy added more)."""
    for value in reversed(response.headers.get_list("date")):
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return None


def _encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


class WooClient:
    """The connector's HTTP client for one store."""

    def __init__(self, settings: WooCommerceSettings, context: ConnectorContext) -> None:
        self.settings = settings
        key = settings.consumer_key.get_secret_value()
        secret = settings.consumer_secret.get_secret_value()
        self._basic = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        self._query_auth = (
            {"consumer_key": key, "consumer_secret": secret}
            if settings.query_string_auth and not settings.signs_requests
            else {}
        )
        self._oauth = (
            OAuth1QueryAuth(key, secret, "HMAC-SHA256") if settings.signs_requests else None
        )
        self._redactor = Redactor([key, secret, self._basic])
        self._limiter = SharedLimiter(
            RateLimit(rate=settings.requests_per_second, burst=settings.burst),
            time_scale=context.time_scale,
        )
        self._transport = context.transport
        self._time_scale = context.time_scale
        self.api = self._api(RetryPolicy())
        """Retries transient failures (``retry=False`` per request for creates)."""
        self.api_quick = self._api(QUICK_RETRY)
        """Fails fast: for ``check()``."""

    def _api(self, retry: RetryPolicy) -> ApiClient:
        return ApiClient(
            platform=PLATFORM,
            base_url=self.settings.base_url + "/",
            transport=self._transport,
            time_scale=self._time_scale,
            limiter=self._limiter,
            retry=retry,
            timeout=self.settings.timeout_seconds,
            headers={"Accept": "application/json", "User-Agent": f"ordersync/{engine.__version__}"},
            auth_headers=self._auth_headers if self._basic_auth else None,
            auth=self._oauth,
            redactor=self._redactor,
        )

    @property
    def _basic_auth(self) -> bool:
        return not self._query_auth and self._oauth is None

    async def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._basic}

    async def aclose(self) -> None:
        for api in (self.api, self.api_quick):
            await api.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        api: ApiClient | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """Send with auth; ``retry=False`` for a write that must not be sent twice."""
        query = _encode_params(params or {})
        query.update(self._query_auth)
        kwargs: dict[str, Any] = {"params": query}
        if json is not None:
            kwargs["json"] = json
        client = api or self.api
        return await client.request(
            method, path.lstrip("/"), operation=operation, retry=retry, **kwargs
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        api: ApiClient | None = None,
        expect: type = dict,
        retry: bool = True,
    ) -> Any:
        """A request whose answer must be a JSON object (or ``expect``)."""
        _, data = await self._json(
            method,
            path,
            operation=operation,
            params=params,
            json=json,
            api=api,
            expect=expect,
            retry=retry,
        )
        return data

    async def _json(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        api: ApiClient | None = None,
        expect: type = dict,
        retry: bool = True,
    ) -> tuple[httpx.Response, Any]:
        """Send and decode. A body that is not the API's (HTML, cut off) is retried like a
        5xx (as ``ApiClient.request_json`` does), keeping the headers pagination needs."""
        client = api or self.api
        tries = client.retry.max_tries if retry else 1
        for attempt in range(1, tries + 1):
            response = await self.request(
                method, path, operation=operation, params=params, json=json, api=client, retry=retry
            )
            try:
                data = json_body(response, platform=PLATFORM, operation=operation)
                if not isinstance(data, expect) or (
                    isinstance(data, list) and not all(isinstance(i, dict) for i in data)
                ):
                    raise BadResponseError(
                        f"expected a JSON {expect.__name__}, got {type(data).__name__}",
                        platform=PLATFORM,
                        operation=operation,
                        status=response.status_code,
                    )
            except BadResponseError:
                if attempt >= tries:
                    raise
                client.stats["retries"] += 1
                await asyncio.sleep(
                    min(client.retry.initial * 2 ** (attempt - 1), client.retry.max_wait)
                )
                continue
            return response, data
        raise AssertionError("unreachable")  # pragma: no cover

    async def page(
        self, path: str, params: Mapping[str, Any], *, operation: str, page: int = 1
    ) -> Page:
        """One page of a collection (``page``/``per_page``, ``X-WP-TotalPages``)."""
        query = {**params, "page": page}
        query.setdefault("per_page", self.settings.page_size)
        try:
            response, data = await self._json(
                "GET", path, operation=operation, params=query, expect=list
            )
        except FatalAPIError as exc:
            if exc.code == "rest_post_invalid_page_number":  # the set shrank meanwhile
                return Page(items=[], page=page, total_pages=0, server_time=None)
            raise
        header = response.headers.get("x-wp-totalpages")
        if header is not None and header.strip().isdigit():
            total_pages = int(header)
        else:  # no header (a caching proxy dropped it): a full page suggests more
            total_pages = page + 1 if len(data) >= int(query["per_page"]) else page
        return Page(
            items=data, page=page, total_pages=total_pages, server_time=server_time(response)
        )

    async def pages(
        self, path: str, params: Mapping[str, Any], *, operation: str
    ) -> AsyncIterator[Page]:
        """All pages of a collection, with loop protection."""
        number = 1
        while True:
            page = await self.page(path, params, operation=operation, page=number)
            yield page
            if not page.has_more or not page.items or number >= 10_000:
                return
            number += 1

    async def all_items(
        self, path: str, params: Mapping[str, Any], *, operation: str
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        async for page in self.pages(path, params, operation=operation):
            items.extend(page.items)
        return items
