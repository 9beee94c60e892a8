"""Stock, shop → marketplace: absolute quantities, only what changed.

The quantity offered is the shop's stock minus what marketplace orders not yet
in the shop will take (pending, queued, held, failed, in flight), so a slow or
held import cannot oversell. Every ``full_stock_every``-th run reads all stock
to repair drift; the others read only what changed since the shop cursor.

The shop's last known quantity of every SKU is kept (table ``stock_shop``), so
a run also re-evaluates SKUs the shop did not report: those whose reservation
changed (a new, released or cancelled order) and those whose last push did not
land (rejected, or left out of the marketplace's answer). A SKU the marketplace
rejects is pushed again at the next runs, up to :data:`RETRIES` times in a row;
after that it waits for ``ordersync retry`` (which removes the failure record).
Stock pushes have no intent: they are absolute, so sending one again is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.errors import FailureReason, LeaseLost
from engine.models import StockLevel
from engine.state import OrderState, StateStore
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
RETRIES = 3
"""Runs in a row a rejected SKU is pushed again before it waits for ``ordersync retry``."""
SHOP_TABLE = "stock_shop"
_CHUNK = 500

_DIRTY = f"""
SELECT s.sku, s.quantity FROM {SHOP_TABLE} s
LEFT JOIN stock_pushed p ON p.connection_id = s.connection_id AND p.sku = s.sku
WHERE s.connection_id = ? AND (p.quantity IS NULL OR p.quantity != MAX(0, s.quantity))
"""
"""SKUs whose last push is not the shop's stock as it would be offered unreserved."""


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


# -- the shop's last known stock (table stock_shop, migration m003) ----------------------


def knows_shop_stock(store: StateStore, cid: str) -> bool:
    query = f"SELECT 1 FROM {SHOP_TABLE} WHERE connection_id = ? LIMIT 1"
    return store.db.execute(query, [cid]).fetchone() is not None


def remember_shop_stock(store: StateStore, cid: str, levels: Mapping[str, int]) -> None:
    with store.transaction() as db:
        db.conn.executemany(
            f"INSERT INTO {SHOP_TABLE} (connection_id, sku, quantity) VALUES (?, ?, ?) "
            "ON CONFLICT (connection_id, sku) DO UPDATE SET quantity = excluded.quantity",
            [(cid, sku, qty) for sku, qty in levels.items()],
        )


def known_shop_stock(store: StateStore, cid: str, skus: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(skus))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" for _ in chunk)
        query = (
            f"SELECT sku, quantity FROM {SHOP_TABLE} WHERE connection_id = ? AND sku IN ({marks})"
        )
        found.update(store.db.execute(query, [cid, *chunk]).fetchall())
    return found


def given_up(store: StateStore, cid: str) -> set[str]:
    """SKUs rejected :data:`RETRIES` times in a row (they wait for ``ordersync retry``)."""
    rows = store.db.execute(
        "SELECT key FROM failures WHERE connection_id = ? AND kind = 'stock' AND attempts >= ?",
        [cid, RETRIES],
    ).fetchall()
    return {key for (key,) in rows}


def to_evaluate(
    store: StateStore, cid: str, levels: Mapping[str, int], reserved: Mapping[str, int]
) -> dict[str, int]:
    """Shop stock of every SKU whose offer may have to change: read now, reserved by an
    order, or not pushed at its unreserved quantity (a rejected or missing push, a
    reservation that ended)."""
    quantities = dict(levels)
    for sku, qty in store.db.execute(_DIRTY, [cid]).fetchall():
        quantities.setdefault(sku, qty)
    quantities.update(
        (sku, qty)
        for sku, qty in known_shop_stock(store, cid, set(reserved) - set(quantities)).items()
    )
    return quantities


# -- the flow ------------------------------------------------------------------------------


async def run_stock(ctx: SyncContext) -> FlowReport:
    report = FlowReport(FLOW)
    store, cid = ctx.store, ctx.cid
    runs = int(store.get_cursor(cid, RUNS) or 0)
    full = (
        store.get_cursor(cid, FLOW) is None
        or runs % ctx.connection.schedule.full_stock_every == 0
        or not knows_shop_stock(store, cid)  # a state database from before the table
    )
    levels, cursor = await read_stock(ctx, full)
    if ctx.stop.is_set():
        return report
    report.add("full read" if full else "changes read")
    report.add("skus read", len(levels))
    remember_shop_stock(store, cid, levels)
    reserved = reserved_quantities(ctx)
    pushed = store.pushed_stock(cid)
    waiting = given_up(store, cid)
    wanted = {
        sku: max(0, qty - reserved.get(sku, 0))
        for sku, qty in to_evaluate(store, cid, levels, reserved).items()
    }
    changed = [
        StockLevel(sku=sku, quantity=qty)
        for sku, qty in sorted(wanted.items())
        if pushed.get(sku) != qty and sku not in waiting
    ]
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
        retriable, reason, message = classify(exc, "marketplace")
        report.errors.append(message)
        if not retriable:
            for level in levels:
                fail_item(ctx, "stock", level.sku, reason, f"SKU {level.sku}: {message}")
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
