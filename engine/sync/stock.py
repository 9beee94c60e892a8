"""Stock, shop → marketplace: absolute quantities, only what changed.

The quantity offered is the shop's stock minus what marketplace orders not yet
in the shop will take (pending, queued, held, failed, in flight), so a slow or
held import cannot oversell. Every ``full_stock_every``-th run reads all stock
to repair drift; the others read only what changed since the shop cursor.
"""

from __future__ import annotations

from engine.errors import FailureReason, LeaseLost
from engine.models import StockLevel
from engine.state import OrderState
from engine.sync.context import FlowReport, SyncContext
from engine.sync.intents import classify, fail_item

FLOW = "stock"
RUNS = "stock_runs"
RESERVING = frozenset(
    {
        OrderState.PENDING,
        OrderState.QUEUED,
        OrderState.HELD,
        OrderState.FAILED,
        OrderState.IMPORT_INTENDED,
    }
)


def reserved_quantities(ctx: SyncContext) -> dict[str, int]:
    reserved: dict[str, int] = {}
    for record in ctx.store.orders_in_states(ctx.cid, RESERVING):
        for sku, qty in record.order.quantities_by_sku().items():
            reserved[sku] = reserved.get(sku, 0) + qty
    return reserved


async def read_stock(ctx: SyncContext, full: bool) -> tuple[dict[str, int], str | None]:
    """All pages of shop stock (everything, or changes since the cursor)."""
    attribute = ctx.connection.product_identification_attribute
    cursor = None if full else ctx.store.get_cursor(ctx.cid, FLOW)
    levels: dict[str, int] = {}
    while True:
        page = await ctx.shop.stock_levels(attribute, cursor)
        for level in page.levels:
            levels[level.sku] = level.quantity
        cursor = page.cursor
        if not page.has_more or ctx.stop.is_set():
            return levels, cursor


async def run_stock(ctx: SyncContext) -> FlowReport:
    report = FlowReport(FLOW)
    store, cid = ctx.store, ctx.cid
    runs = int(store.get_cursor(cid, RUNS) or 0)
    full = (
        store.get_cursor(cid, FLOW) is None or runs % ctx.connection.schedule.full_stock_every == 0
    )
    levels, cursor = await read_stock(ctx, full)
    if ctx.stop.is_set():
        return report
    report.add("full read" if full else "changes read")
    reserved = reserved_quantities(ctx)
    pushed = store.pushed_stock(cid)
    wanted = {sku: max(0, qty - reserved.get(sku, 0)) for sku, qty in levels.items()}
    changed = [
        StockLevel(sku=sku, quantity=qty)
        for sku, qty in sorted(wanted.items())
        if pushed.get(sku) != qty
    ]
    report.add("skus read", len(levels))
    ok = await push(ctx, changed, report)
    if ok:
        with store.transaction():
            ctx.fence()
            store.set_cursor(cid, FLOW, cursor)
            store.set_cursor(cid, RUNS, str(runs + 1))
    return report


async def push(ctx: SyncContext, levels: list[StockLevel], report: FlowReport) -> bool:
    """Push ``levels``; record successes and per-SKU failures. ``False`` on a retriable error."""
    if not levels:
        return True
    store, cid = ctx.store, ctx.cid
    ctx.fence()
    try:
        results = await ctx.marketplace.push_stock(levels)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001
        retriable, reason, message = classify(exc)
        report.errors.append(message)
        if not retriable:
            for level in levels:
                fail_item(ctx, "stock", level.sku, reason, message)
        return False
    wanted = {level.sku: level.quantity for level in levels}
    applied = {r.key: wanted[r.key] for r in results if r.ok and r.key in wanted}
    with store.transaction():
        store.record_pushed(cid, applied)
        for sku in applied:
            store.clear_failure(cid, "stock", sku)
    report.add("pushed", len(applied))
    for result in results:
        if not result.ok:
            fail_item(
                ctx,
                "stock",
                result.key,
                FailureReason.MARKETPLACE_REJECTED,
                f"SKU {result.key}: {result.code or ''} {result.message or ''}".strip(),
            )
            report.add("failed")
    missing = set(wanted) - {r.key for r in results}
    if missing:
        report.errors.append(f"no result for {len(missing)} SKU(s), e.g. {sorted(missing)[0]}")
    return True
