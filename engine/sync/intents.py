"""Executing intents: reconcile first when an earlier attempt may have landed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, TypeVar

from engine.errors import APIError, FailureReason, ItemError, RetriableAPIError
from engine.state import Intent, IntentState, OrderState
from engine.sync.context import FlowReport, SyncContext

T = TypeVar("T")
Side = Literal["marketplace", "shop"]
REJECTED_BY: dict[Side, FailureReason] = {
    "marketplace": FailureReason.MARKETPLACE_REJECTED,
    "shop": FailureReason.SHOP_REJECTED,
}
"""The reason a platform's refusal is recorded with, by the side that refused."""

CONCURRENCY = 4
"""External writes of one flow run in flight at once. Each item is still one
intent committed before its call; overlapping the calls hides network latency
(the rate limiters still pace them)."""


async def run_concurrently(
    ctx: SyncContext,
    items: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    limit: int = CONCURRENCY,
) -> None:
    """``await work(item)`` for every item, at most ``limit`` at a time, taken in order.

    No new item starts once ``ctx.stop`` is set. The first exception (e.g.
    :class:`engine.errors.LeaseLost`) cancels the items in flight and is raised.
    """
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            if ctx.stop.is_set():
                return
            await work(item)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, limit))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


def fail_item(
    ctx: SyncContext,
    kind: str,
    key: str,
    reason: FailureReason | str,
    message: str,
    *,
    order_id: str | None = None,
    intent: Intent | None = None,
) -> None:
    """Record a typed, retryable failure and tell notifier plugins (once it is committed)."""
    reason_value = reason.value if isinstance(reason, FailureReason) else reason
    with ctx.store.transaction():
        ctx.store.record_failure(ctx.cid, kind, key, reason_value, message)
        if intent is not None:
            ctx.store.finish_intent(intent, IntentState.FAILED, reason=reason_value, error=message)
        if order_id is not None and kind == "order":
            ctx.store.set_order_state(
                ctx.cid,
                order_id,
                OrderState.FAILED,
                failure_reason=reason_value,
                failure_message=message,
            )
        if order_id is not None:
            ctx.store.log(
                ctx.cid, order_id, "local", f"{kind} failed", f"{reason_value}: {message}"
            )
    ctx.log.warning("%s %s %s failed: %s: %s", ctx.cid, kind, key, reason_value, message)
    ctx.hooks.item_failed(
        connection_id=ctx.cid, kind=kind, key=key, reason=reason_value, message=message
    )


def classify(exc: Exception, side: Side | None = None) -> tuple[bool, FailureReason, str]:
    """``(retriable, reason, message)`` for an exception raised by a connector.

    With ``side`` (the platform that was called), a refusal is recorded as that
    side's: ``marketplace_rejected`` for a marketplace write, ``shop_rejected``
    for a shop write (:class:`FatalAPIError` alone cannot tell them apart).
    """
    if isinstance(exc, ItemError):
        return False, exc.reason, exc.message
    if isinstance(exc, RetriableAPIError):
        return True, exc.reason, str(exc)
    if isinstance(exc, APIError):  # FatalAPIError, AuthError, a plain APIError
        reason = exc.reason
        if side is not None and reason in (FailureReason.SHOP_REJECTED, FailureReason.UNAVAILABLE):
            reason = REJECTED_BY[side]
        return False, reason, str(exc)
    return False, FailureReason.INTERNAL, f"{type(exc).__name__}: {exc}"


def attempt_failed(
    ctx: SyncContext,
    intent: Intent,
    exc: Exception,
    report: FlowReport,
    *,
    kind: str,
    key: str,
    side: Side,
    context: str = "",
) -> bool:
    """An intent's call raised: retried later when transient, else a typed failure of
    ``kind``/``key`` (``context`` prefixes its message). ``True`` if it failed for good."""
    retriable, reason, message = classify(exc, side)
    if retriable:
        retry_later(ctx, intent, report, exc)
        return False
    fail_item(ctx, kind, key, reason, context + message, order_id=intent.order_id, intent=intent)
    return True


def retry_later(ctx: SyncContext, intent: Intent, report: FlowReport, exc: Exception) -> None:
    message = str(exc)
    ctx.store.note_intent_error(intent, message)
    report.errors.append(message)
    report.add("retry later")
    ctx.log.info("%s %s %s will be retried: %s", ctx.cid, intent.kind.value, intent.key, message)
