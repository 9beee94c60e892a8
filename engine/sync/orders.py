"""Orders, marketplace → shop.

1. Read every order updated in ``[cursor − lookback, now − safety margin)`` and
   store it (deduplicated by order id). The cursor moves to the window's end
   only after the whole window is committed to the state database.
2. Marketplace cancellations cancel the shop order (an intent).
3. Queued orders are imported: products resolved, quota checked, an intent
   committed, the shop searched for the order, and only then created.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from engine.errors import FailureReason, LeaseLost
from engine.models import (
    FulfillmentChannel,
    Order,
    OrderStatus,
    ProductRef,
    RejectedOrder,
    ShopOrderRef,
)
from engine.state import IN_SHOP, Intent, IntentKind, IntentState, OrderRecord, OrderState
from engine.sync.context import FlowReport, SyncContext
from engine.sync.intents import attempt_failed, fail_item, retry_later, run_concurrently
from engine.sync.shipments import FLOW as SHIPMENTS_FLOW
from engine.sync.shipments import read_shop_changes

FLOW = "orders"
RESOLVE_BATCH = 50
IMPORT_BATCH = 50
"""Import intents looked up in the shop together (one search where the shop can)."""
IMPORT_BATCHES = 2
"""Batches in flight at once: one is looked up while another is being created."""
IMPORT_EVERY = 100
"""While a long window is read, import what is queued after this many orders: the
time spent importing lets the marketplace's rate-limit bucket refill for the next
page. (Not with a monthly quota, which takes the window's oldest orders first.)"""
INGEST_BATCH = 100
"""Orders read are committed together, this many per transaction. Until then they
are only in memory; a crash loses nothing, as the cursor has not moved."""
CANCEL_BATCH = 50
"""Marketplace cancellations looked up and cancelled in the shop together."""


def order_window(ctx: SyncContext) -> tuple[datetime, datetime]:
    """The ``[since, until)`` window to read now."""
    now = ctx.now()
    until = now - ctx.marketplace.safety_margin
    cursor = ctx.store.get_cursor(ctx.cid, FLOW)
    if cursor is None:
        start = ctx.connection.start_date
        since = datetime.combine(start, time(), tzinfo=UTC) if start else now - timedelta(days=1)
    else:
        minutes = ctx.connection.lookback_minutes
        lookback = (
            timedelta(minutes=minutes) if minutes is not None else ctx.marketplace.default_lookback
        )
        since = datetime.fromisoformat(cursor) - lookback
    return since, until


async def run_orders(ctx: SyncContext) -> FlowReport:
    report = FlowReport(FLOW)
    products: dict[str, ProductRef] = {}  # resolved during this run
    since, until = order_window(ctx)
    await refetch_rejected(ctx, report)
    if until > since:
        complete = True
        interleave = ctx.connection.orders_per_month is None
        read = 0
        importer: asyncio.Task[None] | None = None
        unsaved: list[Order | RejectedOrder] = []
        try:
            async for order in ctx.marketplace.orders_updated(since, until):
                unsaved.append(order)
                if ctx.stop.is_set():
                    complete = False
                    break
                read += 1
                if len(unsaved) >= INGEST_BATCH:
                    ingest_all(ctx, unsaved, report)
                if interleave and read % IMPORT_EVERY == 0:
                    ingest_all(ctx, unsaved, report)
                    # Import what is queued while the next page is awaited (a
                    # rate-limited read leaves the shop side idle otherwise).
                    if importer is not None and importer.done():
                        importer.result()  # its error (e.g. LeaseLost) stops the run
                    if importer is None or importer.done():
                        importer = asyncio.ensure_future(import_queued(ctx, report, products))
        except BaseException:
            if importer is not None and not importer.done():
                importer.cancel()  # like a crash: every attempt is committed first
                await asyncio.gather(importer, return_exceptions=True)
            raise
        ingest_all(ctx, unsaved, report)
        if importer is not None:
            await importer
        if complete:
            ctx.fence()
            ctx.store.set_cursor(ctx.cid, FLOW, until.isoformat())
    if not ctx.stop.is_set():
        await import_queued(ctx, report, products)
    if not ctx.stop.is_set():
        await run_shop_cancellations(ctx, report)
    return report


def ingest_all(ctx: SyncContext, items: list[Order | RejectedOrder], report: FlowReport) -> None:
    """Store orders read from the marketplace in one transaction, then forget them."""
    if not items:
        return
    with ctx.store.transaction():
        for item in items:
            if isinstance(item, RejectedOrder):
                reject(ctx, item, report)
            else:
                ingest(ctx, item, report)
    items.clear()


def reject(ctx: SyncContext, rejected: RejectedOrder, report: FlowReport) -> None:
    """Record an unreadable order; ``ordersync retry`` reads it again."""
    oid = rejected.marketplace_order_id
    with ctx.store.transaction():
        ctx.store.add_intent(ctx.cid, IntentKind.REFETCH, oid, oid, {})
        intent = ctx.store.intent(ctx.cid, IntentKind.REFETCH, oid)
        assert intent is not None
        fail_item(ctx, "order", oid, FailureReason.INVALID_ORDER, rejected.message, intent=intent)
    report.add("failed")


async def refetch_rejected(ctx: SyncContext, report: FlowReport) -> None:
    """Read again the unreadable orders a user asked to retry."""
    for intent in ctx.store.intents(ctx.cid, IntentKind.REFETCH, IntentState.PENDING):
        try:
            order = await ctx.marketplace.get_order(intent.order_id)
        except LeaseLost:
            raise
        except Exception as exc:  # noqa: BLE001
            retry_later(ctx, intent, report, exc)
            continue
        if isinstance(order, RejectedOrder):
            reject(ctx, order, report)
            continue
        ctx.store.finish_intent(intent, IntentState.DONE)
        if order is not None:
            ingest(ctx, order, report)


def _state_for_new(ctx: SyncContext, order: Order) -> tuple[OrderState, str]:
    if order.fulfillment_channel is FulfillmentChannel.MARKETPLACE and not (
        ctx.connection.import_marketplace_fulfilled
    ):
        return (
            OrderState.SKIPPED,
            "fulfilled by the marketplace; not imported (import_marketplace_fulfilled)",
        )
    if order.status is OrderStatus.PENDING:
        return OrderState.PENDING, "pending payment; imported once the marketplace releases it"
    if order.status is OrderStatus.CANCELLED:
        return OrderState.CANCELLED, "cancelled on the marketplace before import"
    if order.status is OrderStatus.UNFULFILLABLE:
        return OrderState.SKIPPED, "unfulfillable"
    return OrderState.QUEUED, "queued for import"


def ingest(ctx: SyncContext, order: Order, report: FlowReport) -> None:
    """Store one order read from the marketplace and decide what it needs."""
    store, cid, oid = ctx.store, ctx.cid, order.marketplace_order_id
    record = store.get_order(cid, oid)
    with store.transaction():
        if record is None:
            state, why = _state_for_new(ctx, order)
            store.save_order(cid, order, state)
            store.log(cid, oid, "amazon->shop", "received", f"{order.status.value}; {why}")
            report.add("received")
            _note_buyer_cancel_request(ctx, None, order)
            return
        if order.updated_at < record.order.updated_at:
            return  # an older copy from the lookback window
        _note_buyer_cancel_request(ctx, record, order)
        state = record.state
        if order.status is OrderStatus.CANCELLED:
            state = _on_marketplace_cancel(ctx, record, order, report)
        elif state is OrderState.PENDING and order.importable:
            state = OrderState.QUEUED
            store.log(
                cid, oid, "amazon->shop", "released", f"now {order.status.value}; queued for import"
            )
            report.add("released")
        store.save_order(cid, order, state)


def _note_buyer_cancel_request(ctx: SyncContext, record: OrderRecord | None, order: Order) -> None:
    if order.cancellation_requested and not (record and record.order.cancellation_requested):
        ctx.store.log(
            ctx.cid,
            order.marketplace_order_id,
            "amazon->shop",
            "buyer requested cancellation",
            "cancel it in the shop to confirm, or ship it to decline",
        )


def _on_marketplace_cancel(
    ctx: SyncContext, record: OrderRecord, order: Order, report: FlowReport
) -> OrderState:
    store, cid, oid = ctx.store, ctx.cid, order.marketplace_order_id
    state = record.state
    if state is OrderState.CANCELLED or state is OrderState.CANCEL_IN_SHOP_INTENDED:
        return state
    if state is OrderState.CANCEL_ON_MARKETPLACE_INTENDED:
        intent = store.intent(cid, IntentKind.CANCEL_ON_MARKETPLACE, oid)
        if intent is not None and intent.state is not IntentState.DONE:
            store.finish_intent(intent, IntentState.DONE)
        store.log(
            cid, oid, "amazon->shop", "cancellation confirmed", "the marketplace shows it cancelled"
        )
        return OrderState.CANCELLED
    if state in IN_SHOP or state is OrderState.IMPORT_INTENDED:
        store.add_intent(cid, IntentKind.CANCEL_IN_SHOP, oid, oid, {})
        store.log(cid, oid, "amazon->shop", "cancel intended", "cancelled on the marketplace")
        report.add("cancellations received")
        return (
            OrderState.CANCEL_IN_SHOP_INTENDED if state is not OrderState.IMPORT_INTENDED else state
        )
    store.log(cid, oid, "amazon->shop", "cancelled", "cancelled on the marketplace before import")
    report.add("cancelled before import")
    return OrderState.CANCELLED


def _month(ctx: SyncContext) -> str:
    return ctx.now().strftime("%Y-%m")


def _validate(order: Order) -> tuple[FailureReason, str] | None:
    if order.shipping_address is None:
        return (
            FailureReason.INVALID_ADDRESS,
            f"order {order.marketplace_order_id} has no shipping address",
        )
    missing = order.shipping_address.missing_for_shipping()
    if missing:
        return (
            FailureReason.INVALID_ADDRESS,
            f"order {order.marketplace_order_id}: shipping address lacks {', '.join(missing)}",
        )
    if not order.lines:
        return FailureReason.INVALID_ORDER, f"order {order.marketplace_order_id} has no lines"
    return None


async def _resolve(
    ctx: SyncContext, skus: set[str], known: dict[str, ProductRef]
) -> dict[str, ProductRef]:
    """The shop products for ``skus``; ``known`` holds those resolved earlier in this
    run (only found products are kept: an unknown SKU is asked again)."""
    attribute = ctx.connection.product_identification_attribute
    ordered = sorted(skus - known.keys())
    for start in range(0, len(ordered), RESOLVE_BATCH):
        chunk = ordered[start : start + RESOLVE_BATCH]
        known.update(await ctx.shop.resolve_products(attribute, chunk))
    return {sku: known[sku] for sku in skus if sku in known}


async def import_queued(
    ctx: SyncContext, report: FlowReport, products: dict[str, ProductRef] | None = None
) -> None:
    """Turn queued (and quota-held) orders into import intents, then execute them.

    Orders are taken oldest first. Only orders that pass validation and product
    resolution count against the monthly quota; the rest of the line is held.
    ``products`` caches the SKUs resolved earlier in the same run.
    """
    known = {} if products is None else products
    store, cid = ctx.store, ctx.cid
    waiting = store.order_ids_in_states(cid, frozenset({OrderState.QUEUED, OrderState.HELD}))
    limit = ctx.connection.orders_per_month
    month = _month(ctx)
    remaining = None
    if limit is not None:
        in_flight = len(store.intents(cid, IntentKind.IMPORT, IntentState.PENDING))
        remaining = max(0, limit - store.quota_used(cid, month) - in_flight)
    position = 0
    while position < len(waiting) and (remaining is None or remaining > 0):
        size = RESOLVE_BATCH if remaining is None else min(RESOLVE_BATCH, remaining)
        ids = [oid for oid, _ in waiting[position : position + size]]
        position += len(ids)
        records = store.get_orders(cid, ids)  # parsed a chunk at a time, not all at once
        chunk = [records[oid] for oid in ids if oid in records]
        valid = []
        for record in chunk:
            invalid = _validate(record.order)
            if invalid:
                fail_item(
                    ctx, "order", record.order_id, invalid[0], invalid[1], order_id=record.order_id
                )
                report.add("failed")
            else:
                valid.append(record)
        if valid:
            found = await _resolve(ctx, {line.sku for r in valid for line in r.order.lines}, known)
            with store.transaction():
                ctx.fence()
                # Read again after the await: an order may have changed meanwhile (e.g.
                # cancelled, read while imports ran).
                states = store.order_states(cid, [r.order_id for r in valid])
                intended = []
                for record in valid:
                    if states.get(record.order_id) not in (OrderState.QUEUED, OrderState.HELD):
                        continue
                    if _intend_import(ctx, record, found, month, report):
                        intended.append(record.order_id)
                store.clear_failures(cid, "order", intended)
                if remaining is not None:
                    remaining -= len(intended)
    for oid, state in waiting[position:]:
        if state is not OrderState.HELD:
            store.set_order_state(cid, oid, OrderState.HELD, quota_month=month)
            store.log(cid, oid, "local", "held", f"order quota {limit}/month reached for {month}")
            report.add("held")
    intents = store.intents(cid, IntentKind.IMPORT, IntentState.PENDING)
    if intents:
        await start_shop_changes(ctx, report)
    batches = [intents[i : i + IMPORT_BATCH] for i in range(0, len(intents), IMPORT_BATCH)]
    await run_concurrently(
        ctx, batches, lambda batch: execute_imports(ctx, batch, report), limit=IMPORT_BATCHES
    )


async def start_shop_changes(ctx: SyncContext, report: FlowReport) -> None:
    """Start the shop-changes cursor before the first order is created in the shop.

    A first read of shop changes starts from "now" (history is not replayed), so a
    shipment or cancellation made to an imported order before the shipments flow
    first succeeded would never reach the marketplace.
    """
    if ctx.store.get_cursor(ctx.cid, SHIPMENTS_FLOW) is None:
        await read_shop_changes(ctx, report)


def _intend_import(
    ctx: SyncContext,
    record: OrderRecord,
    products: dict[str, ProductRef],
    month: str,
    report: FlowReport,
) -> bool:
    """Commit the import intent for one queued order; ``False`` if it failed instead.

    Called inside the caller's fenced transaction (which clears old failures)."""
    store, cid = ctx.store, ctx.cid
    unknown = sorted({line.sku for line in record.order.lines} - set(products))
    if unknown:
        attr = ctx.connection.product_identification_attribute
        fail_item(
            ctx,
            "order",
            record.order_id,
            FailureReason.UNKNOWN_SKU,
            f"order {record.order_id}: no shop product has {attr} = "
            + ", ".join(repr(s) for s in unknown),
            order_id=record.order_id,
        )
        report.add("failed")
        return False
    payload = {
        "products": {
            line.sku: products[line.sku].model_dump(mode="json") for line in record.order.lines
        }
    }
    with store.transaction():
        status = store.upsert_intent(
            cid, IntentKind.IMPORT, record.order_id, record.order_id, payload
        )
        if status is IntentState.DONE:  # already in the shop (a retried, stale failure)
            store.set_order_state(cid, record.order_id, OrderState.IMPORTED)
            return False
        store.set_order_state(cid, record.order_id, OrderState.IMPORT_INTENDED, quota_month=month)
    return True


async def execute_imports(ctx: SyncContext, intents: list[Intent], report: FlowReport) -> None:
    """Create the orders of a batch of import intents in the shop, exactly once.

    Every attempt is committed first; then one idempotency lookup for the whole
    batch (an order an earlier attempt created is completed, not created again),
    then the missing orders are created, several per request where the shop can.
    """
    store, cid = ctx.store, ctx.cid
    work: list[tuple[Intent, OrderRecord, dict[str, ProductRef]]] = []
    records = store.get_orders(cid, [intent.order_id for intent in intents])
    for intent in intents:
        record = records.get(intent.order_id)
        if record is None:  # pragma: no cover - intents are only written for stored orders
            store.finish_intent(
                intent, IntentState.FAILED, reason="internal", error="order missing"
            )
            continue
        products = {
            sku: ProductRef.model_validate(p) for sku, p in intent.payload["products"].items()
        }
        work.append((intent, record, products))
    if not work:
        return
    tried = {intent.order_id for intent, _, _ in work if intent.attempts > 0}
    store.begin_attempts([intent for intent, _, _ in work], ctx.lease)
    try:
        found = await _look_up(ctx, [record.order_id for _, record, _ in work], tried)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - sorted by classify()
        with store.transaction():
            for intent, record, _ in work:
                _import_failed(ctx, intent, record, exc, report)
        return
    missing = [item for item in work if item[1].order_id not in found]
    try:
        created = await ctx.shop.create_orders([(r.order, p) for _, r, p in missing])
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - a connector that raised for the whole batch
        created = [exc] * len(missing)
    if len(created) != len(missing):  # pragma: no cover - a connector bug
        raise RuntimeError(f"create_orders returned {len(created)} results for {len(missing)}")
    outcomes: dict[str, ShopOrderRef | Exception] = dict(
        zip((r.order_id for _, r, _ in missing), created, strict=True)
    )
    for _, record, _ in work:
        if record.order_id in found:
            try:
                outcomes[record.order_id] = await ctx.shop.complete_order(
                    record.order, found[record.order_id]
                )
            except Exception as exc:  # noqa: BLE001
                outcomes[record.order_id] = exc
    lost = next((o for o in outcomes.values() if isinstance(o, LeaseLost)), None)
    if lost is not None:
        raise lost
    imported: list[tuple[OrderRecord, ShopOrderRef]] = []
    with store.transaction():
        pending = store.pending_intent_kinds(cid, [record.order_id for _, record, _ in work])
        for intent, record, _ in work:
            outcome = outcomes[record.order_id]
            if isinstance(outcome, Exception):
                _import_failed(ctx, intent, record, outcome, report)
            else:
                kinds = pending.get(record.order_id, set())
                _imported(ctx, intent, record, outcome, kinds, record.order_id in found, report)
                imported.append((record, outcome))
        if imported:
            store.consume_quota(cid, _month(ctx), len(imported))
    for record, ref in imported:
        ctx.hooks.order_imported(connection_id=cid, order=record.order, shop_ref=ref)


async def _look_up(ctx: SyncContext, ids: list[str], tried: set[str]) -> dict[str, ShopOrderRef]:
    """The idempotency lookup; orders an earlier attempt may have created just now are
    asked for apart, so the shop can look harder for them (``attempted``)."""
    fresh = [oid for oid in ids if oid not in tried]
    found = await ctx.shop.find_order_refs(fresh) if fresh else {}
    again = [oid for oid in ids if oid in tried]
    if again:
        found.update(await ctx.shop.find_order_refs(again, attempted=True))
    return found


def _import_failed(
    ctx: SyncContext, intent: Intent, record: OrderRecord, exc: Exception, report: FlowReport
) -> None:
    if attempt_failed(ctx, intent, exc, report, kind="order", key=record.order_id, side="shop"):
        report.add("failed")


def _imported(
    ctx: SyncContext,
    intent: Intent,
    record: OrderRecord,
    ref: ShopOrderRef,
    pending: set[IntentKind],
    found: bool,
    report: FlowReport,
) -> None:
    """Record one order as in the shop (the caller counts it against the quota);
    ``pending`` holds the kinds of the order's other pending intents."""
    store, cid, oid = ctx.store, ctx.cid, record.order_id
    next_state = OrderState.IMPORTED
    if IntentKind.CANCEL_IN_SHOP in pending:  # wins
        next_state = OrderState.CANCEL_IN_SHOP_INTENDED
    elif IntentKind.CANCEL_ON_MARKETPLACE in pending:
        next_state = OrderState.CANCEL_ON_MARKETPLACE_INTENDED
    with store.transaction():
        store.finish_intent(intent, IntentState.DONE)
        store.set_order_state(
            cid, oid, next_state, shop_order_id=ref.id, shop_order_number=ref.number
        )
        detail = f"shop order {ref.number or ref.id}" + (
            " (found after an earlier attempt)" if found else ""
        )
        store.log(cid, oid, "amazon->shop", "imported", detail)
    report.add("imported")


async def run_shop_cancellations(ctx: SyncContext, report: FlowReport) -> None:
    """Cancel in the shop the orders the marketplace cancelled, a batch at a time:
    attempts committed, then the cancellations (``cancel_orders``)."""
    store, cid = ctx.store, ctx.cid
    todo: list[tuple[Intent, OrderRecord]] = []
    for intent in store.intents(cid, IntentKind.CANCEL_IN_SHOP, IntentState.PENDING):
        record = store.get_order(cid, intent.order_id)
        if record is None:  # pragma: no cover
            continue
        if record.state is OrderState.IMPORT_INTENDED:
            continue  # wait until the import intent resolves
        todo.append((intent, record))
    for start in range(0, len(todo), CANCEL_BATCH):
        if ctx.stop.is_set():
            return
        await _cancel_in_shop(ctx, todo[start : start + CANCEL_BATCH], report)


async def _cancel_in_shop(
    ctx: SyncContext, batch: list[tuple[Intent, OrderRecord]], report: FlowReport
) -> None:
    store, cid = ctx.store, ctx.cid
    store.begin_attempts([intent for intent, _ in batch], ctx.lease)
    outcomes: dict[str, Exception | None] = {}
    # The shop order ordersync created is cancelled by its id (cancel_order is
    # idempotent); the shop is asked only for orders whose import left no id.
    found = {
        intent.order_id: ShopOrderRef(id=record.shop_order_id, number=record.shop_order_number)
        for intent, record in batch
        if record.shop_order_id
    }
    unknown = [intent.order_id for intent, _ in batch if intent.order_id not in found]
    try:
        if unknown:
            found.update(await ctx.shop.find_order_refs(unknown, attempted=True))
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - sorted by classify()
        found, outcomes = {}, {intent.order_id: exc for intent, _ in batch}
    live = [
        (intent.order_id, found[intent.order_id], record.order)
        for intent, record in batch
        if intent.order_id in found and not found[intent.order_id].cancelled
    ]
    if live and not outcomes:
        try:
            results = await ctx.shop.cancel_orders([(ref, order) for _, ref, order in live])
        except LeaseLost:
            raise
        except Exception as exc:  # noqa: BLE001 - a connector that raised for the whole batch
            results = [exc] * len(live)
        if len(results) != len(live):  # pragma: no cover - a connector bug
            raise RuntimeError(f"cancel_orders returned {len(results)} results for {len(live)}")
        outcomes.update(zip((oid for oid, _, _ in live), results, strict=True))
    lost = next((o for o in outcomes.values() if isinstance(o, LeaseLost)), None)
    if lost is not None:
        raise lost
    with store.transaction():
        for intent, _ in batch:
            error = outcomes.get(intent.order_id)
            if error is not None:
                _cancel_failed(ctx, intent, error, report)
                continue
            ref = found.get(intent.order_id)
            store.finish_intent(intent, IntentState.DONE)
            store.set_order_state(cid, intent.order_id, OrderState.CANCELLED)
            store.log(
                cid,
                intent.order_id,
                "amazon->shop",
                "cancelled in shop" if ref is not None else "cancelled",
                f"shop order {ref.number or ref.id}"
                if ref is not None
                else "never reached the shop",
            )
            report.add("cancelled in shop")


def _cancel_failed(ctx: SyncContext, intent: Intent, exc: Exception, report: FlowReport) -> None:
    attempt_failed(ctx, intent, exc, report, kind="cancellation", key=intent.order_id, side="shop")
