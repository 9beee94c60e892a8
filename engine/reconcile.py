"""``ordersync check``: a reconciliation sweep across Amazon, the state DB and the shop.

It writes nothing. Each finding names the command (or the manual step) that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.models import FulfillmentChannel, Order, OrderStatus, RejectedOrder
from engine.state import IN_SHOP, NOT_IN_SHOP, OrderState
from engine.sync.context import SyncContext
from engine.sync.stock import read_stock, reserved_quantities


@dataclass(frozen=True)
class Finding:
    connection_id: str
    kind: str
    """``missing``, ``duplicated``, ``status_mismatch``, ``amount_mismatch``, ``stock_drift``,
    ``unreadable`` or ``not_tracked``."""
    key: str
    detail: str
    fix: str


async def check_connection(
    ctx: SyncContext, since: datetime, *, stock: bool = True
) -> list[Finding]:
    """Compare every marketplace order updated since ``since`` with the state DB and the shop."""
    findings: list[Finding] = []
    until = ctx.now() - ctx.marketplace.safety_margin
    async for order in ctx.marketplace.orders_updated(since, until):
        if isinstance(order, RejectedOrder):
            findings.append(
                _finding(ctx, "unreadable", order.marketplace_order_id, order.message, "retry")
            )
            continue
        findings.extend(await _check_order(ctx, order))
    if stock and "stock" in ctx.connection.flows():
        findings.extend(await _check_stock(ctx))
    return findings


def _command(ctx: SyncContext, action: str) -> str:
    cid = ctx.cid
    return {
        "orders": f"ordersync sync --connection {cid} --flow orders",
        "shipments": f"ordersync sync --connection {cid} --flow shipments",
        "stock": f"ordersync sync --connection {cid} --flow stock",
        "retry": f"ordersync retry --connection {cid} && ordersync sync --connection {cid} --flow orders",
    }.get(action, action)


def _finding(ctx: SyncContext, kind: str, key: str, detail: str, fix: str) -> Finding:
    return Finding(ctx.cid, kind, key, detail, _command(ctx, fix))


async def _check_order(ctx: SyncContext, order: Order) -> list[Finding]:
    oid = order.marketplace_order_id
    if (
        order.fulfillment_channel is FulfillmentChannel.MARKETPLACE
        and not ctx.connection.import_marketplace_fulfilled
    ):
        return []
    if order.status is OrderStatus.PENDING:
        return []
    record = ctx.store.get_order(ctx.cid, oid)
    refs = await ctx.shop.find_orders(oid)
    live = [r for r in refs if not r.cancelled]
    out: list[Finding] = []
    if order.status is OrderStatus.CANCELLED:
        if live:
            out.append(
                _finding(
                    ctx,
                    "status_mismatch",
                    oid,
                    f"cancelled on Amazon, open in the shop as {_names(live)}",
                    "orders",
                )
            )
        return out
    if not refs:
        if record is None:
            out.append(
                _finding(
                    ctx,
                    "missing",
                    oid,
                    "on Amazon, not known to ordersync, not in the shop",
                    "orders",
                )
            )
        elif record.state is OrderState.FAILED:
            out.append(
                _finding(
                    ctx,
                    "missing",
                    oid,
                    f"not in the shop: failed ({record.failure_reason}: {record.failure_message})",
                    "retry",
                )
            )
        elif record.state is OrderState.HELD:
            out.append(
                _finding(
                    ctx,
                    "missing",
                    oid,
                    f"held by the order quota ({record.quota_month})",
                    f"raise orders_per_month for {ctx.cid} or wait for next month",
                )
            )
        elif record.state in NOT_IN_SHOP or record.state is OrderState.IMPORT_INTENDED:
            out.append(
                _finding(
                    ctx,
                    "missing",
                    oid,
                    f"not in the shop yet (state {record.state.value})",
                    "orders",
                )
            )
        else:
            out.append(
                _finding(
                    ctx,
                    "missing",
                    oid,
                    f"ordersync recorded shop order {record.shop_order_number or record.shop_order_id}, "
                    "which the shop no longer has",
                    "recreate it in the shop by hand or restore it",
                )
            )
        return out
    if len(live) > 1:
        keep = record.shop_order_id if record and record.shop_order_id else live[0].id
        extra = [r for r in live if r.id != keep]
        out.append(
            _finding(
                ctx,
                "duplicated",
                oid,
                f"{len(live)} open shop orders: {_names(live)}",
                f"cancel shop order(s) {_names(extra)} in the shop; ordersync keeps {keep}",
            )
        )
    ref = next(
        (r for r in live if record and r.id == record.shop_order_id), live[0] if live else refs[0]
    )
    if ref.total is not None and ref.total.amount != order.total.amount:
        out.append(
            _finding(
                ctx,
                "amount_mismatch",
                oid,
                f"shop order {ref.number or ref.id} totals {ref.total.amount} {ref.total.currency}, "
                f"Amazon {order.total.amount} {order.currency}",
                f"correct shop order {ref.number or ref.id} by hand",
            )
        )
    if (
        not live
        and record is not None
        and record.state in IN_SHOP
        and record.state is not OrderState.CANCEL_ON_MARKETPLACE_INTENDED
    ):
        out.append(
            _finding(
                ctx,
                "status_mismatch",
                oid,
                "cancelled in the shop, still open on Amazon",
                "shipments",
            )
        )
    if record is None:
        out.append(
            _finding(
                ctx,
                "not_tracked",
                oid,
                f"in the shop as {_names(refs)} but unknown to ordersync",
                "orders",
            )
        )
    return out


async def _check_stock(ctx: SyncContext) -> list[Finding]:
    levels, _ = await read_stock(ctx, full=True)
    reserved = reserved_quantities(ctx)
    pushed = ctx.store.pushed_stock(ctx.cid)
    out = []
    for sku, qty in sorted(levels.items()):
        wanted = max(0, qty - reserved.get(sku, 0))
        if pushed.get(sku) != wanted:
            last = "never pushed" if sku not in pushed else f"last pushed {pushed[sku]}"
            out.append(
                _finding(
                    ctx, "stock_drift", sku, f"shop offers {wanted}, Amazon was {last}", "stock"
                )
            )
    return out


def _names(refs: list) -> str:  # type: ignore[type-arg]
    return ", ".join(r.number or r.id for r in refs)
