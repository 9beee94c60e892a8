"""Error classes, sorted by what the engine should do about them.

- ``RetriableAPIError``: 429, 5xx, timeouts, resets. Retried with backoff, then the
  item stays pending for the next run.
- ``FatalAPIError``: any other 4xx. The item fails with the platform's code.
- ``AuthError``: credentials rejected after one refresh. Stops that connection's run.
- ``BadResponseError``: the other side answered something that is not its API
  (HTML, truncated or schema-violating JSON). Treated as retriable.
- ``ItemError``: one order or SKU cannot be processed (unknown SKU, bad address).
"""

from __future__ import annotations

from enum import StrEnum


class FailureReason(StrEnum):
    """Typed reasons recorded with every failed item."""

    UNKNOWN_SKU = "unknown_sku"
    INVALID_ADDRESS = "invalid_address"
    INVALID_ORDER = "invalid_order"
    INVALID_SHOP_DATA = "invalid_shop_data"
    """A shipment or cancellation the shop reported cannot be read or is absurd."""
    SHOP_REJECTED = "shop_rejected"
    MARKETPLACE_REJECTED = "marketplace_rejected"
    BAD_RESPONSE = "bad_response"
    UNAVAILABLE = "unavailable"
    AUTH = "auth"
    NOT_IMPORTED = "not_imported"
    INTERNAL = "internal"


class OrdersyncError(Exception):
    """Base class for everything ordersync raises on purpose."""


class ConfigError(OrdersyncError):
    """The configuration is invalid; ``errors`` holds ``(dotted.path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in errors))


class PluginLoadError(OrdersyncError):
    """A plugin entry point could not be imported or registered."""


class LeaseLost(OrdersyncError):
    """Another process took over this connection; stop writing at once."""


class APIError(OrdersyncError):
    """An error answer from a platform API."""

    reason: FailureReason = FailureReason.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        operation: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.platform = platform
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        where = " ".join(p for p in (platform, operation) if p)
        prefix = f"{where}: " if where else ""
        status_text = f"HTTP {status} " if status else ""
        code_text = f"[{code}] " if code else ""
        super().__init__(f"{prefix}{status_text}{code_text}{message}")


class RetriableAPIError(APIError):
    """Transient: retry later (429, 5xx, timeout, connection reset)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimited(RetriableAPIError):
    """HTTP 429 or a platform's throttling error."""


class BadResponseError(RetriableAPIError):
    """The answer was not valid API output (HTML, truncated, schema-violating)."""

    reason = FailureReason.BAD_RESPONSE


class FatalAPIError(APIError):
    """The platform rejected the request; retrying the same request will not help."""

    reason = FailureReason.SHOP_REJECTED


class AuthError(APIError):
    """Credentials were rejected (after one refresh attempt)."""

    reason = FailureReason.AUTH


class ItemError(OrdersyncError):
    """One item (order, shipment, SKU) cannot be processed; the run goes on."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason.value}: {message}")
