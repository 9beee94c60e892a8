"""GraphQL Admin API client: auth, cost-based throttling, error classification.

HTTP goes through :class:`engine.http.ApiClient` (retries on 429/5xx/timeouts,
one auth refresh on 401/403, redaction). This module adds what is specific to
Shopify's GraphQL API: errors inside a 200 body, ``THROTTLED`` answers, and a
client-side mirror of the cost bucket fed by ``extensions.cost.throttleStatus``
so a query waits instead of being throttled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx
from graphql import DocumentNode, OperationDefinitionNode, OperationType, parse

from engine.errors import AuthError, FatalAPIError, RateLimited, RetriableAPIError
from engine.http import ApiClient, RetryPolicy, json_body
from engine.interfaces import ConnectorContext
from engine.redact import Redactor
from plugins.shopify.cost import requested_cost
from plugins.shopify.settings import ShopifySettings

log = logging.getLogger("ordersync.shopify")

PLATFORM = "shopify"
OAUTH_PATH = "/admin/oauth/access_token"
TOKEN_REFRESH_MARGIN = 300.0
"""Refresh a client-credentials token this many seconds before it expires."""
DEFAULT_TOKEN_LIFETIME = 86_399.0


def shopify_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    """Read ``(code, message)`` from Shopify's error bodies (string, list or OAuth style)."""
    try:
        data = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, str):
            return None, errors
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = (first.get("extensions") or {}).get("code") or first.get("code")
            return code, str(first.get("message", ""))
        if isinstance(errors, dict):
            return None, "; ".join(f"{k}: {v}" for k, v in errors.items())
        if "error" in data:
            return str(data["error"]), str(data.get("error_description") or data["error"])
    return None, str(data)[:200]


@lru_cache(maxsize=256)
def _parse(document: str) -> DocumentNode:
    return parse(document)


def is_mutation(document: str) -> bool:
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
        for d in _parse(document).definitions
    )


def operation_name(document: str) -> str:
    for definition in _parse(document).definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.name.value if definition.name else "anonymous"
    return "anonymous"


@dataclass
class CostBucket:
    """What the client knows of Shopify's leaky bucket for this app and shop.

    Unknown until the first response; afterwards every response resets it to the
    server's ``throttleStatus`` and it restores locally in between.
    ``time_scale`` converts the server's (simulated) seconds to real seconds.
    """

    time_scale: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    maximum: float | None = None
    available: float = 0.0
    restore_rate: float = 0.0
    updated: float = 0.0
    waited: float = 0.0
    waits: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def current(self) -> float | None:
        if self.maximum is None:
            return None
        elapsed = (self.clock() - self.updated) * self.time_scale
        return min(self.maximum, self.available + elapsed * self.restore_rate)

    def wait_time(self, cost: float) -> float:
        """Real seconds until ``cost`` points are available (0 when unknown)."""
        current = self.current()
        if current is None or self.maximum is None or self.restore_rate <= 0:
            return 0.0
        needed = min(cost, self.maximum) - current
        return max(0.0, needed / self.restore_rate / self.time_scale)

    async def acquire(self, cost: float) -> None:
        """Wait until ``cost`` points are free, then reserve them."""
        async with self._lock:
            delay = self.wait_time(cost)
            if delay > 0:
                self.waits += 1
                self.waited += delay
                log.debug("shopify: waiting %.2fs for %s query cost points", delay, cost)
                await self.sleep(delay)
            current = self.current()
            if current is not None:
                self.available = current - min(cost, self.maximum or cost)
                self.updated = self.clock()

    def update(self, status: dict[str, Any]) -> None:
        """Adopt the server's ``throttleStatus``."""
        try:
            self.maximum = float(status["maximumAvailable"])
            self.available = float(status["currentlyAvailable"])
            self.restore_rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        self.updated = self.clock()


class TokenProvider:
    """The access token: static, or fetched with the client credentials grant."""

    def __init__(
        self,
        settings: ShopifySettings,
        http: ApiClient,
        clock: Callable[[], float],
        time_scale: float = 1.0,
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.time_scale = time_scale
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0

    async def token(self) -> str:
        if self.settings.access_token is not None:
            return self.settings.access_token.get_secret_value()
        async with self._lock:
            if self._token is None or self.clock() >= self._expires_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None

    async def _fetch(self) -> None:
        assert self.settings.client_id is not None and self.settings.client_secret is not None
        data = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id.get_secret_value(),
            "client_secret": self.settings.client_secret.get_secret_value(),
        }
        try:
            response = await self.http.request(
                "POST", OAUTH_PATH, operation="access_token", data=data
            )
        except (FatalAPIError, AuthError) as exc:
            raise AuthError(
                f"client credentials were rejected ({exc.message})",
                platform=PLATFORM,
                operation="access_token",
                status=exc.status,
                code=exc.code,
            ) from None
        body = json_body(response, platform=PLATFORM, operation="access_token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("token endpoint returned no access_token", platform=PLATFORM)
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        margin = min(TOKEN_REFRESH_MARGIN, lifetime / 10)
        self._token = token
        self._expires_at = self.clock() + (lifetime - margin) / self.time_scale
        self.http.redactor.add(token)
        self.fetched += 1


@dataclass
class GraphQLResult:
    data: dict[str, Any]
    cost: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Field errors that came with ``data`` (only with ``execute_full(partial=True)``)."""


_TRANSIENT = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}


def field_errors(errors: list[Any]) -> list[dict[str, Any]] | None:
    """``errors`` when each belongs to one field (a ``path``) and none is about the
    request as a whole (access, an outage); ``None`` otherwise."""
    found: list[dict[str, Any]] = []
    for error in errors:
        if not isinstance(error, dict) or not isinstance(error.get("path"), list):
            return None
        code = (error.get("extensions") or {}).get("code")
        if code in _TRANSIENT or code in ("ACCESS_DENIED", "THROTTLED"):
            return None
        found.append(error)
    return found


class ShopifyClient:
    """Sends GraphQL operations; returns ``data`` or raises an engine error."""

    def __init__(
        self,
        settings: ShopifySettings,
        context: ConnectorContext,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.context = context
        self.sleep = sleep
        self.clock = clock
        secrets = [settings.access_token, settings.client_secret, settings.client_id]
        self.redactor = Redactor()
        self.redactor.add(*secrets)
        common: dict[str, Any] = {
            "platform": PLATFORM,
            "base_url": settings.base_url,
            "transport": context.transport,
            "time_scale": context.time_scale,
            "timeout": settings.timeout,
            "error_parser": shopify_error_parser,
            "redactor": self.redactor,
            "retry": RetryPolicy(max_tries=5, max_time=120.0),
        }
        self.oauth = ApiClient(**common)
        self.tokens = TokenProvider(settings, self.oauth, clock, context.time_scale)
        graphql: dict[str, Any] = {
            **common,
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            "auth_headers": self._auth_headers,
            "on_auth_failure": self.tokens.invalidate,
        }
        self.api = ApiClient(**graphql)
        # Mutations are never resent: a reset or 5xx may come after Shopify committed and
        # orderCreate is not idempotent; the engine's next attempt runs find_order first.
        self.api_once = ApiClient(**{**graphql, "retry": RetryPolicy(max_tries=1)})
        self.files = ApiClient(**{**common, "base_url": ""})
        self.bucket = CostBucket(time_scale=context.time_scale, clock=clock, sleep=sleep)
        self.costs: dict[tuple[str, float], float] = {}
        self.stats: dict[str, int] = {"queries": 0, "throttled": 0}
        self.served_version: str | None = None
        """``X-Shopify-API-Version`` of the last answer (Shopify falls back to the oldest
        supported version when the requested one is no longer supported)."""

    async def aclose(self) -> None:
        for client in (self.api, self.api_once, self.oauth, self.files):
            await client.aclose()

    async def _auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": await self.tokens.token()}

    def _estimate(self, name: str, document: str, variables: dict[str, Any]) -> float:
        """Shopify's last ``requestedQueryCost`` for this operation and size, else ours."""
        own = float(requested_cost(_parse(document), variables))
        return self.costs.get((name, own), own)

    async def execute(
        self, document: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run one operation; wait for cost points, retry ``THROTTLED``, classify errors."""
        return (await self.execute_full(document, variables)).data

    async def execute_full(
        self, document: str, variables: dict[str, Any] | None = None, *, partial: bool = False
    ) -> GraphQLResult:
        """Like :meth:`execute`, with the cost. ``partial``: an answer with ``data`` and
        errors that each belong to one field is returned with them, not raised."""
        variables = variables or {}
        name = operation_name(document)
        payload = {"query": document, "variables": variables, "operationName": name}
        throttled = 0
        while True:
            estimate = self._estimate(name, document, variables)
            await self.bucket.acquire(estimate)
            self.stats["queries"] += 1
            http = self.api_once if is_mutation(document) else self.api
            response = await http.request(
                "POST", self.settings.graphql_path, operation=name, json=payload
            )
            self.served_version = response.headers.get("x-shopify-api-version")
            body = json_body(response, platform=PLATFORM, operation=name)
            if not isinstance(body, dict):
                raise RetriableAPIError(
                    "GraphQL answer is not a JSON object", platform=PLATFORM, operation=name
                )
            cost = (body.get("extensions") or {}).get("cost") or {}
            if isinstance(cost.get("throttleStatus"), dict):
                self.bucket.update(cost["throttleStatus"])
            if isinstance(cost.get("requestedQueryCost"), int | float):
                own = float(requested_cost(_parse(document), variables))
                self.costs[(name, own)] = float(cost["requestedQueryCost"])
            errors = body.get("errors") or []
            if errors and _is_throttled(errors):
                throttled += 1
                self.stats["throttled"] += 1
                if throttled > self.settings.max_throttle_retries:
                    raise RateLimited(
                        f"still throttled after {throttled} tries",
                        platform=PLATFORM,
                        operation=name,
                        code="THROTTLED",
                        retry_after=self.bucket.wait_time(estimate),
                    )
                continue
            data = body.get("data")
            fields = field_errors(errors) if errors and partial else None
            if errors and not (fields and isinstance(data, dict)):
                raise self.classify(errors, name)
            if not isinstance(data, dict):
                raise RetriableAPIError(
                    "GraphQL answer has no data", platform=PLATFORM, operation=name
                )
            return GraphQLResult(data=data, cost=cost, errors=fields or [])

    def classify(self, errors: list[Any], operation: str) -> Exception:
        """The engine error for a GraphQL ``errors`` list."""
        first: dict[str, Any] = (
            errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        )
        code = (first.get("extensions") or {}).get("code")
        messages = "; ".join(
            self.redactor(str(e.get("message", e)) if isinstance(e, dict) else str(e))
            for e in errors[:5]
        )
        kw: dict[str, Any] = {"platform": PLATFORM, "operation": operation, "code": code}
        if code == "ACCESS_DENIED":
            return AuthError(f"access denied (missing API scope?): {messages}", **kw)
        if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"):
            return RetriableAPIError(messages, **kw)
        return FatalAPIError(messages, **kw)

    async def download(self, url: str) -> bytes:
        """Fetch a bulk operation result (a signed URL: no Shopify token is sent)."""
        response = await self.files.request("GET", url, operation="bulk_download")
        return response.content


def _is_throttled(errors: list[Any]) -> bool:
    return any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


def user_errors_message(errors: list[dict[str, Any]]) -> str:
    """``field.path: message`` for each user error."""
    parts = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("field") or [])
        code = f" [{error['code']}]" if error.get("code") else ""
        parts.append(f"{path or '(order)'}: {error.get('message', '')}{code}")
    return "; ".join(parts)
