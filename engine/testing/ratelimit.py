"""Token-bucket rate limiting for simulators, as ASGI middleware.

Each request is classified into an operation name; every operation has its own
bucket of ``burst`` tokens refilled at ``rate`` tokens per (simulated) second.
An empty bucket answers with the platform's own 429 response.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from engine.testing.clock import ScaledClock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_time(self, cost: float = 1.0) -> float:
        return max(0.0, (cost - self.tokens) / self.rate) if self.rate > 0 else float("inf")


@dataclass(frozen=True)
class Limit:
    """Published rate (requests per second) and burst of one operation."""

    rate: float
    burst: int


def default_throttled_response(
    operation: str, retry_after: float
) -> tuple[int, dict[str, str], bytes]:
    """A JSON 429 with ``Retry-After`` in whole simulated seconds (clients divide
    it by the time scale, see :class:`engine.http.ApiClient`)."""
    body = json.dumps({"errors": [{"code": "QuotaExceeded", "message": "Rate limit exceeded"}]})
    headers = {
        "content-type": "application/json",
        "retry-after": str(max(1, math.ceil(retry_after))),
    }
    return 429, headers, body.encode()


@dataclass
class RateLimiter:
    """Buckets per key; ``enabled=False`` lets benchmarks switch limits off."""

    limits: dict[str, Limit]
    clock: ScaledClock = field(default_factory=ScaledClock)
    enabled: bool = True
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    allowed: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, operation: str, key: str = "", cost: float = 1.0) -> float | None:
        """Take a token; ``None`` on success, else seconds (simulated) until one is free."""
        limit = self.limits.get(operation)
        if not self.enabled or limit is None:
            self.allowed[operation] = self.allowed.get(operation, 0) + 1
            return None
        bucket_key = f"{key}:{operation}"
        bucket = self.buckets.get(bucket_key)
        if bucket is None:
            bucket = self.buckets[bucket_key] = TokenBucket(rate=limit.rate, burst=limit.burst)
        if bucket.take(self.clock.now(), cost):
            self.allowed[operation] = self.allowed.get(operation, 0) + 1
            return None
        self.throttled[operation] = self.throttled.get(operation, 0) + 1
        return bucket.wait_time(cost)


class RateLimitMiddleware:
    """ASGI middleware enforcing a :class:`RateLimiter`.

    :param classify: maps an ASGI scope to ``(operation, bucket_key)``, or ``None``
        for requests that are not limited (admin endpoints).
    :param throttled_response: builds the platform's 429 answer.
    :param extra_headers: headers added to every limited response, e.g. Amazon's
        ``x-amzn-RateLimit-Limit``.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        classify: Callable[[Scope], tuple[str, str] | None],
        throttled_response: Callable[
            [str, float], tuple[int, dict[str, str], bytes]
        ] = default_throttled_response,
        extra_headers: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.classify = classify
        self.throttled_response = throttled_response
        self.extra_headers = extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self.classify(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        operation, key = found
        extra = self.extra_headers(operation) if self.extra_headers else {}
        wait = self.limiter.try_acquire(operation, key)
        if wait is not None:
            status, headers, body = self.throttled_response(operation, wait)
            await send_response(send, status, {**headers, **extra}, body)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in extra.items()
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def send_response(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
