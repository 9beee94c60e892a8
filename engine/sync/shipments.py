"""Shipments and cancellations, shop → marketplace.

Shop events are read page by page since the shop cursor; each page's intents,
its rejected records (typed failures) and the new cursor are committed in one
transaction. A shipment with an absurd field (a 10 MB tracking number) is
rejected here even if the shop plugin let it through. Intents are then
executed: an earlier attempt is reconciled by asking the marketplace first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine.errors import FailureReason, LeaseLost
from engine.models import (
    Cancellation,
    CancelRequest,
    Order,
    OrderStatus,
    RejectedChange,
    Shipment,
)
from engine.state import IN_SHOP, Intent, IntentKind, IntentState, OrderState
from engine.sync.carriers import map_carrier
from engine.sync.context import FlowReport, SyncContext
from engine.sync.intents import (
    attempt_failed,
    fail_item,
    retry_later,
    run_concurrently,
)

FLOW = "shipments"
IN_SHOP_OR_UNCONFIRMED = IN_SHOP | {OrderState.IMPORT_INTENDED}
"""Orders whose shop changes are recorded: an import whose answer was lost may already
be in the shop, shipped or cancelled there."""
CANCEL_BATCH = 100
MAX_TEXT = 255
"""Longest shipment id, carrier, tracking number, method or line SKU sent to a marketplace."""
MAX_LINES = 1000
MAX_MESSAGE = 1000
"""A failure message or key from a shop plugin is clipped to this (never the whole field)."""


async def run_shipments(ctx: SyncContext) -> FlowReport:
    report = FlowReport(FLOW)
    confirmer: asyncio.Task[None] | None = None
    tried: set[int] = set()  # intents sent in this run: one that failed waits for the next

    async def confirm_until_caught_up() -> None:
        # Pages committed while a batch was being confirmed are the next batch: the
        # confirmer does not sit idle until the shop's next page arrives.
        while not ctx.stop.is_set() and await confirm_shipments(ctx, report, tried):
            pass

    def confirm_while_reading() -> None:
        # Confirm what a page recorded while the next page is read (the marketplace's
        # rate limit, not the shop's pages, should set the pace); one task at a time,
        # so no intent is ever sent by two.
        nonlocal confirmer
        if confirmer is not None and confirmer.done():
            confirmer.result()  # its error (e.g. LeaseLost) stops the run
        if confirmer is None or confirmer.done():
            confirmer = asyncio.ensure_future(confirm_until_caught_up())

    try:
        await read_shop_changes(ctx, report, after_page=confirm_while_reading)
    except BaseException:
        if confirmer is not None and not confirmer.done():
            confirmer.cancel()  # like a crash: every attempt is committed first
            await asyncio.gather(confirmer, return_exceptions=True)
        raise
    if confirmer is not None:
        await confirmer
    if not ctx.stop.is_set():
        await confirm_shipments(ctx, report, tried)
    if not ctx.stop.is_set():
        await cancel_on_marketplace(ctx, report)
    return report


async def read_shop_changes(
    ctx: SyncContext, report: FlowReport, after_page: Callable[[], None] | None = None
) -> None:
    """Read and record every page of shop changes since the cursor; ``after_page`` is
    called once each page is committed."""
    store, cid = ctx.store, ctx.cid
    cursor = store.get_cursor(cid, FLOW)
    while not ctx.stop.is_set():
        page = await ctx.shop.changes_since(cursor)
        with store.transaction():
            ctx.fence()
            for shipment in page.shipments:
                _record_shipment(ctx, shipment, report)
            for cancellation in page.cancellations:
                _record_cancellation(ctx, cancellation, report)
            for rejected in page.rejected:
                _record_rejected(ctx, rejected, report)
            store.set_cursor(cid, FLOW, page.cursor)
        if after_page is not None:
            after_page()
        cursor = page.cursor
        if not page.has_more:
            break


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text):,} characters)"


def absurd_field(shipment: Shipment) -> str | None:
    """What makes a shop shipment unfit to send to the marketplace, if anything."""
    for name in ("shipment_id", "shop_order_id", "carrier", "tracking_number", "shipping_method"):
        value = getattr(shipment, name)
        if value is not None and len(value) > MAX_TEXT:
            return f"{name} is {len(value):,} characters long (at most {MAX_TEXT})"
    if len(shipment.lines) > MAX_LINES:
        return f"{len(shipment.lines):,} lines (at most {MAX_LINES})"
    for line in shipment.lines:
        for name, value in (("SKU", line.sku), ("line id", line.line_id)):
            if value is not None and len(value) > MAX_TEXT:
                return f"a line's {name} is {len(value):,} characters long (at most {MAX_TEXT})"
    return None


def _reject(
    ctx: SyncContext,
    kind: str,
    key: str,
    order_id: str | None,
    message: str,
) -> bool:
    """Record an unusable shop record as a typed failure, once; ``False`` if it already was
    (a shop's change feed may return a record again)."""
    key, message = clip(key, MAX_TEXT), clip(message)
    exists = ctx.store.db.execute(
        "SELECT 1 FROM failures WHERE connection_id = ? AND kind = ? AND key = ?",
        [ctx.cid, kind, key],
    ).fetchone()
    if exists:
        return False
    reason = FailureReason.INVALID_SHOP_DATA
    fail_item(ctx, kind, key, reason, message, order_id=order_id)
    return True


def _record_rejected(ctx: SyncContext, rejected: RejectedChange, report: FlowReport) -> None:
    """A shipment or cancellation the shop plugin could not read: a typed failure.

    Like a readable record, it is ignored when it names an order ordersync never
    imported; one naming no order at all is recorded (it might be ours).
    """
    oid = rejected.marketplace_order_id
    if oid is not None and ctx.store.order_state(ctx.cid, oid) is None:
        ctx.log.debug("%s: ignored unreadable shop %s %s", ctx.cid, rejected.kind, rejected.key)
        return
    where = f"order {oid}: " if oid else ""
    message = f"{where}shop {rejected.kind} {clip(rejected.key, MAX_TEXT)}: {rejected.message}"
    if _reject(ctx, rejected.kind, rejected.key, oid, message):
        report.add("rejected shop records")


def in_marketplace_terms(ctx: SyncContext, shipment: Shipment, order: Order) -> Shipment:
    """Rewrite shipment lines to the marketplace's SKUs and line ids.

    Shops report their own SKU or product ids; the import intent remembers which
    shop product each marketplace SKU became, and shops may keep the line id.
    """
    by_line_id = {line.line_id: line for line in order.lines}
    by_shop_key: dict[str, str] = {line.sku: line.sku for line in order.lines}
    intent = ctx.store.intent(ctx.cid, IntentKind.IMPORT, order.marketplace_order_id)
    for sku, ref in ((intent.payload.get("products") or {}) if intent else {}).items():
        for key in (ref.get("shop_sku"), ref.get("variant_id"), ref.get("product_id")):
            if key:
                by_shop_key.setdefault(str(key), sku)
    lines = []
    for line in shipment.lines:
        match = by_line_id.get(line.line_id or "")
        sku = match.sku if match else by_shop_key.get(line.sku, line.sku)
        line_id = (
            match.line_id
            if match
            else next((ol.line_id for ol in order.lines if ol.sku == sku), line.line_id)
        )
        lines.append(line.model_copy(update={"sku": sku, "line_id": line_id}))
    return shipment.model_copy(update={"lines": tuple(lines)})


def _record_shipment(ctx: SyncContext, shipment: Shipment, report: FlowReport) -> None:
    store, cid, oid = ctx.store, ctx.cid, shipment.marketplace_order_id
    record = store.get_order(cid, oid)
    if record is None or record.state not in IN_SHOP_OR_UNCONFIRMED:
        return  # not an order ordersync imported
    problem = absurd_field(shipment)
    if problem is not None:
        message = f"order {oid}: shop shipment {clip(shipment.shipment_id, MAX_TEXT)}: {problem}"
        if _reject(ctx, "shipment", shipment.shipment_id, oid, message):
            report.add("rejected shop records")
        return
    shipment = in_marketplace_terms(ctx, shipment, record.order)
    if store.add_intent(
        cid,
        IntentKind.CONFIRM_SHIPMENT,
        shipment.shipment_id,
        oid,
        shipment.model_dump(mode="json"),
    ):
        store.clear_failure(cid, "shipment", shipment.shipment_id)  # an unreadable earlier copy
        carrier = shipment.carrier or "no carrier"
        store.log(
            cid,
            oid,
            "shop->amazon",
            "shipment seen",
            f"{carrier} {shipment.tracking_number or ''}".strip(),
        )
        report.add("shipments seen")


def _record_cancellation(ctx: SyncContext, cancellation: Cancellation, report: FlowReport) -> None:
    store, cid, oid = ctx.store, ctx.cid, cancellation.marketplace_order_id
    record = store.get_order(cid, oid)
    if record is None or record.state not in (
        OrderState.IMPORTED,
        OrderState.PARTIALLY_SHIPPED,
        OrderState.IMPORT_INTENDED,
    ):
        return  # unknown, already cancelled, or our own cancellation echoing back
    if record.order.status is OrderStatus.CANCELLED:
        return
    if record.shop_order_id is not None and cancellation.shop_order_id != record.shop_order_id:
        # Another shop order carries this Amazon id (a duplicate, cancelled as
        # `ordersync check` advises): the order ordersync tracks still stands.
        store.log(
            cid,
            oid,
            "local",
            "duplicate cancelled",
            f"shop order {cancellation.shop_order_id} was cancelled; "
            f"{record.shop_order_number or record.shop_order_id} stands, Amazon is left alone",
        )
        return
    if store.add_intent(
        cid,
        IntentKind.CANCEL_ON_MARKETPLACE,
        oid,
        oid,
        {"reason": ctx.connection.cancellation_reason},
    ):
        if record.state is not OrderState.IMPORT_INTENDED:  # else set once the import is
            store.set_order_state(cid, oid, OrderState.CANCEL_ON_MARKETPLACE_INTENDED)
        store.log(
            cid,
            oid,
            "shop->amazon",
            "cancel intended",
            f"cancelled in the shop ({ctx.connection.cancellation_reason})",
        )
        report.add("cancellations seen")


async def confirm_shipments(
    ctx: SyncContext, report: FlowReport, tried: set[int] | None = None
) -> int:
    """Confirm the pending shipment intents; ``tried`` holds (and gets) the ids of those
    already sent in this run, which are left for the next one. Returns how many were
    taken (0: none was pending)."""
    store, cid = ctx.store, ctx.cid
    pending = store.intents(cid, IntentKind.CONFIRM_SHIPMENT, IntentState.PENDING)
    if tried is not None:
        pending = [intent for intent in pending if intent.id not in tried]
        tried.update(intent.id for intent in pending)
    if not pending:
        return 0
    allowed = await ctx.marketplace.allowed_carriers()
    await run_concurrently(ctx, pending, lambda intent: _confirm_one(ctx, intent, allowed, report))
    return len(pending)


async def _confirm_one(
    ctx: SyncContext, intent: Intent, allowed: frozenset[str], report: FlowReport
) -> None:
    store, cid, oid = ctx.store, ctx.cid, intent.order_id
    record = store.get_order(cid, oid)
    shipment = Shipment.model_validate(intent.payload)
    if record is not None and record.state is OrderState.IMPORT_INTENDED:
        return  # shipped before its import was confirmed: confirmed once it is
    if record is None or record.state is OrderState.CANCELLED:
        store.finish_intent(
            intent,
            IntentState.FAILED,
            reason=FailureReason.NOT_IMPORTED.value,
            error="order cancelled",
        )
        return
    code = map_carrier(
        shipment.carrier,
        ctx.connection.carrier_map,
        allowed,
        ctx.connection.default_shipping_service,
    )
    reconcile = intent.attempts > 0
    store.begin_attempt(intent, ctx.lease)
    try:
        done = reconcile and await ctx.marketplace.shipment_confirmed(record.order, shipment)
        if not done:
            await ctx.marketplace.confirm_shipment(record.order, shipment, code)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001
        attempt_failed(
            ctx,
            intent,
            exc,
            report,
            kind="shipment",
            key=shipment.shipment_id,
            side="marketplace",
            context=f"order {oid}: ",
        )
        return
    with store.transaction():
        store.finish_intent(intent, IntentState.DONE)
        state = _shipped_state(ctx, record.order)
        if record.state in (OrderState.IMPORTED, OrderState.PARTIALLY_SHIPPED):
            store.set_order_state(cid, oid, state)
        fallback = (
            ""
            if code != ctx.connection.default_shipping_service or not shipment.carrier
            else (f" (shop carrier {shipment.carrier!r} unknown: default service)")
        )
        store.log(
            cid,
            oid,
            "shop->amazon",
            "shipment confirmed",
            f"{code}{fallback} {shipment.tracking_number or ''}".strip(),
        )
    report.add("shipments confirmed")
    ctx.hooks.shipment_confirmed(connection_id=cid, order_id=oid, shipment=shipment)


def _shipped_state(ctx: SyncContext, order: Order) -> OrderState:
    ordered = order.quantities_by_sku()
    shipped: dict[str, int] = {}
    done = ctx.store.intents(
        ctx.cid,
        IntentKind.CONFIRM_SHIPMENT,
        IntentState.DONE,
        order_id=order.marketplace_order_id,
    )
    for intent in done:
        for line in Shipment.model_validate(intent.payload).lines:
            shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
    complete = all(shipped.get(sku, 0) >= qty for sku, qty in ordered.items())
    return OrderState.SHIPPED if complete else OrderState.PARTIALLY_SHIPPED


async def cancel_on_marketplace(ctx: SyncContext, report: FlowReport) -> None:
    store, cid = ctx.store, ctx.cid
    pending = store.intents(cid, IntentKind.CANCEL_ON_MARKETPLACE, IntentState.PENDING)
    to_send: list[Intent] = []
    for intent in pending:
        record = store.get_order(cid, intent.order_id)
        if record is not None and record.state is OrderState.IMPORT_INTENDED:
            continue  # cancelled before its import was confirmed: sent once it is
        if intent.attempts > 0:
            try:
                current = await ctx.marketplace.get_order(intent.order_id)
            except Exception as exc:  # noqa: BLE001
                retry_later(ctx, intent, report, exc)
                continue
            if isinstance(current, Order) and current.status is OrderStatus.CANCELLED:
                _cancelled(ctx, intent, report, "found cancelled after an earlier attempt")
                continue
        to_send.append(intent)
    for start in range(0, len(to_send), CANCEL_BATCH):
        if ctx.stop.is_set():
            return
        batch = to_send[start : start + CANCEL_BATCH]
        requests = []
        for intent in batch:
            record = store.get_order(cid, intent.order_id)
            assert record is not None
            requests.append(
                CancelRequest(
                    marketplace_order_id=intent.order_id,
                    reason=intent.payload.get("reason") or ctx.connection.cancellation_reason,
                    lines=record.order.lines,
                )
            )
            store.begin_attempt(intent, ctx.lease)
        try:
            results = await ctx.marketplace.cancel_orders(requests)
        except LeaseLost:
            raise
        except Exception as exc:  # noqa: BLE001
            for intent in batch:
                attempt_failed(
                    ctx,
                    intent,
                    exc,
                    report,
                    kind="cancellation",
                    key=intent.order_id,
                    side="marketplace",
                )
            continue
        by_key = {r.key: r for r in results}
        for intent in batch:
            result = by_key.get(intent.order_id)
            if result is not None and result.ok:
                _cancelled(ctx, intent, report, f"reason {intent.payload.get('reason')}")
            elif result is None:
                retry_later(
                    ctx,
                    intent,
                    report,
                    RuntimeError(f"order {intent.order_id}: no result in the cancel report"),
                )
            else:
                fail_item(
                    ctx,
                    "cancellation",
                    intent.order_id,
                    FailureReason.MARKETPLACE_REJECTED,
                    f"order {intent.order_id}: {result.code or ''} {result.message or ''}".strip(),
                    order_id=intent.order_id,
                    intent=intent,
                )


def _cancelled(ctx: SyncContext, intent: Intent, report: FlowReport, detail: str) -> None:
    with ctx.store.transaction():
        ctx.store.finish_intent(intent, IntentState.DONE)
        ctx.store.set_order_state(ctx.cid, intent.order_id, OrderState.CANCELLED)
        ctx.store.log(ctx.cid, intent.order_id, "shop->amazon", "cancelled on marketplace", detail)
    report.add("cancelled on marketplace")
