"""The HTTP client every plugin uses: limits, retries, error classes, redaction.

Retries use :mod:`tenacity` (exponential backoff with jitter, bounded by tries
*and* time, honouring ``Retry-After``); proactive limits use
:class:`engine.ratelimit.OperationLimiter`. Plugins provide a small
:class:`ErrorParser` to read their platform's error body.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic_core
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from engine.errors import (
    APIError,
    AuthError,
    BadResponseError,
    FatalAPIError,
    RateLimited,
    RetriableAPIError,
)
from engine.ratelimit import OperationLimiter
from engine.redact import Redactor

log = logging.getLogger("ordersync.http")

ErrorParser = Callable[[httpx.Response], tuple[str | None, str]]
"""Reads ``(code, message)`` from a platform's error response."""

MAX_BODY_BYTES = 20 * 1024 * 1024


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of the process.

    httpx builds a context per client by loading the CA bundle (about 0.8 MB and
    tens of milliseconds each); a daemon holds several clients per connection.
    """
    return httpx.create_ssl_context()


def default_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    try:
        data = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return first.get("code"), str(first.get("message", ""))
        if "message" in data:
            return data.get("code"), str(data["message"])
    return None, str(data)[:200]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that neither keeps nor sends cookies.

    Every platform API authenticates each request with a token or a signature; a
    cookie a server sets is never wanted, and reading responses for them was about
    a fifth of a request's CPU time (measured at 500 requests/s).
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None


_NO_COOKIES = _NoCookies()


@dataclass
class RetryPolicy:
    """How often and how long one request is retried.

    :param max_tries: tries in all, the first one included.
    :param max_time: no retry starts once this many seconds were spent (or slept).
    :param initial: first exponential wait; it doubles up to ``max_wait``.
    :param max_wait: the longest single wait, server-advised ones included.
    :param jitter: a server-advised wait (``Retry-After``, ``backoff_time``) is
        stretched by a random fraction up to this, so clients throttled together
        do not all come back at the same instant.
    """

    max_tries: int = 5
    max_time: float = 120.0
    initial: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.0


def json_body(response: httpx.Response, *, platform: str = "", operation: str = "") -> Any:
    """Decode a JSON body or raise :class:`BadResponseError` naming what came back."""
    ctype = response.headers.get("content-type", "")
    if len(response.content) > MAX_BODY_BYTES:
        raise BadResponseError(
            f"response body of {len(response.content)} bytes exceeds the limit",
            platform=platform,
            operation=operation,
            status=response.status_code,
        )
    try:
        return pydantic_core.from_json(response.content)
    except ValueError as exc:
        kind = (
            "an HTML page"
            if "html" in ctype or response.content.lstrip()[:1] == b"<"
            else "invalid JSON"
        )
        raise BadResponseError(
            f"expected JSON, got {kind} ({exc.__class__.__name__}: {str(exc)[:80]})",
            platform=platform,
            operation=operation,
            status=response.status_code,
        ) from None


class _stop_after_sleeping(stop_base):  # noqa: N801 - named like tenacity's stops
    """Stop once the waits slept add up to ``max_time`` (holds with a fake ``sleep``)."""

    def __init__(self, max_time: float) -> None:
        self.max_time = max_time

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for >= self.max_time


class ApiClient:
    """An ``httpx.AsyncClient`` wrapper with the engine's error semantics.

    :param auth_headers: async callable returning auth headers for each try.
    :param on_auth_failure: called once on 401/403 before a single retry
        (e.g. drop a cached access token).
    :param backoff_time: per-platform wait override for a retriable response.
    :param on_response: sees every response (e.g. to adopt announced rate limits).
    :param time_scale: divides backoff waits and ``Retry-After`` (simulators running
        faster than real time); ``backoff_time`` answers are taken as they are.
    :param operation_retry: a :class:`RetryPolicy` per operation name, where one
        differs from ``retry`` (e.g. an operation whose rate is one call a minute
        needs a longer ``max_wait``).
    :param sleep: how retry waits are slept (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: OperationLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        auth_headers: Callable[[], Awaitable[dict[str, str]]] | None = None,
        on_auth_failure: Callable[[], None] | None = None,
        error_parser: ErrorParser = default_error_parser,
        backoff_time: Callable[[httpx.Response], float | None] | None = None,
        on_response: Callable[[str, httpx.Response], None] | None = None,
        redactor: Redactor | None = None,
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
        operation_retry: Mapping[str, RetryPolicy] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.platform = platform
        self.client = _CookielessClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers=headers,
            auth=auth,
            verify=shared_ssl_context() if transport is None else True,
        )
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.operation_retry = dict(operation_retry or {})
        self.sleep = sleep or asyncio.sleep
        self.auth_headers = auth_headers
        self.on_auth_failure = on_auth_failure
        self.error_parser = error_parser
        self.backoff_time = backoff_time
        self.on_response = on_response
        self.redactor = redactor or Redactor()
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}
        self.time_scale = time_scale

    async def aclose(self) -> None:
        await self.client.aclose()

    def retry_for(self, operation: str) -> RetryPolicy:
        """The retry policy of ``operation``."""
        return self.operation_retry.get(operation, self.retry)

    async def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        retry: bool = True,
        retry_throttled: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with limits and retries; return a 2xx response or raise an :class:`APIError`.

        :param retry: ``False`` for a write that is not idempotent: it is sent once,
            and the caller reconciles (looks the effect up) before sending again.
        :param retry_throttled: with ``retry=False``, still retry 429 answers (the
            server refused the request before doing anything).
        """
        policy = self.retry_for(operation)
        if "json" in kwargs:  # pydantic-core's encoder: several times faster than json's
            kwargs["content"] = pydantic_core.to_json(kwargs.pop("json"))
            headers = httpx.Headers(kwargs.get("headers"))
            headers.setdefault("Content-Type", "application/json")
            kwargs["headers"] = headers

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            base = wait_exponential_jitter(
                multiplier=policy.initial, max=policy.max_wait, jitter=policy.initial
            )(state)
            if isinstance(exc, RetriableAPIError) and exc.retry_after is not None:
                advised = min(max(exc.retry_after, 0.0), policy.max_wait)
                return advised * (1.0 + random.uniform(0.0, policy.jitter))  # noqa: S311
            return float(base) / self.time_scale

        def before_sleep(state: RetryCallState) -> None:
            self.stats["retries"] += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying %s %s after %s", self.platform, operation, self.redactor(str(exc)))

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetriableAPIError if retry else RateLimited),
            stop=stop_any(
                stop_after_attempt(policy.max_tries if retry or retry_throttled else 1),
                stop_after_delay(policy.max_time),
                _stop_after_sleeping(policy.max_time),
            ),
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, url, operation=operation, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(
        self, method: str, url: str, *, operation: str, **kwargs: Any
    ) -> httpx.Response:
        refreshed = False
        extra_headers = dict(kwargs.pop("headers", None) or {})
        while True:
            headers = dict(extra_headers)
            if self.auth_headers is not None:
                headers.update(await self.auth_headers())  # a token exchange waits first
            if self.limiter is not None:
                await self.limiter.acquire(operation)
            self.stats["requests"] += 1
            try:
                response = await self.client.request(method, url, headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                raise RetriableAPIError(
                    f"timed out ({type(exc).__name__})", platform=self.platform, operation=operation
                ) from None
            except httpx.TransportError as exc:
                raise RetriableAPIError(
                    self.redactor(f"connection failed ({type(exc).__name__}: {exc})"),
                    platform=self.platform,
                    operation=operation,
                ) from None
            if self.on_response is not None:
                self.on_response(operation, response)
            if response.status_code in (401, 403) and self.on_auth_failure and not refreshed:
                self.on_auth_failure()
                refreshed = True
                continue
            self._raise_for_status(response, operation)
            return response

    async def request_json(
        self, method: str, url: str, *, operation: str, retry: bool = True, **kwargs: Any
    ) -> Any:
        """Like :meth:`request`, decoding JSON inside the retry loop.

        An HTML page or a cut body is a :class:`BadResponseError`, retried like a 5xx
        (only when ``retry`` is true).
        """
        tries = self.retry_for(operation).max_tries if retry else 1
        for attempt in range(1, tries + 1):
            response = await self.request(method, url, operation=operation, retry=retry, **kwargs)
            try:
                return json_body(response, platform=self.platform, operation=operation)
            except BadResponseError:
                if attempt == tries:
                    raise
                self.stats["retries"] += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_status(self, response: httpx.Response, operation: str) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message = self.error_parser(response)
        message = self.redactor(message)
        kw: dict[str, Any] = {
            "platform": self.platform,
            "operation": operation,
            "status": status,
            "code": code,
        }
        override = self.backoff_time(response) if self.backoff_time else None
        if status == 429:
            self.stats["throttled"] += 1
            header = parse_retry_after(response.headers.get("retry-after"))
            # A header counts in the server's time; the override is already in ours.
            header = header / self.time_scale if header is not None else None
            raise RateLimited(
                message, retry_after=override if override is not None else header, **kw
            )
        if status >= 500 or status == 408:
            raise RetriableAPIError(message, retry_after=override, **kw)
        if status in (401, 403):
            raise AuthError(message, **kw)
        raise FatalAPIError(message, **kw)


__all__ = [
    "APIError",
    "ApiClient",
    "ErrorParser",
    "RetryPolicy",
    "default_error_parser",
    "json_body",
    "parse_retry_after",
]
