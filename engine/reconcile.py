"""``ordersync check``: a reconciliation sweep across Amazon, the state DB and the shop.

It writes nothing. Each finding names the command (or the exact manual step)
that fixes it. ``since`` limits the marketplace orders compared; work left open
in the state DB (a shipment or cancellation not yet on Amazon) and shop changes
not yet read by ordersync are reported whatever their age.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from engine.models import (
    FulfillmentChannel,
    Order,
    OrderStatus,
    RejectedOrder,
    Shipment,
    ShopOrderRef,
)
from engine.state import (
    IN_SHOP,
    NOT_IN_SHOP,
    Intent,
    IntentKind,
    IntentState,
    OrderRecord,
    OrderState,
)
from engine.sync.context import SyncContext
from engine.sync.shipments import FLOW as SHIPMENTS_CURSOR
from engine.sync.stock import read_stock, reserved_quantities

MAX_CHANGE_PAGES = 100
"""Pages of unread shop changes looked at, at most (the next sync reads the rest)."""
SHIPPED_IN_SHOP = frozenset({OrderState.SHIPPED, OrderState.PARTIALLY_SHIPPED})
OPEN_IN_SHOP = frozenset({OrderState.IMPORTED, OrderState.PARTIALLY_SHIPPED})
UNREAD_TRACKED = IN_SHOP | {OrderState.IMPORT_INTENDED}


@dataclass(frozen=True)
class Finding:
    connection_id: str
    kind: str
    """``missing``, ``duplicated``, ``status_mismatch``, ``amount_mismatch``, ``stock_drift``,
    ``unreadable`` or ``not_tracked``."""
    key: str
    detail: str
    fix: str


@dataclass
class _Sweep:
    ctx: SyncContext
    findings: list[Finding] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)
    """Orders with a status finding from the state DB or the unread shop changes."""

    def add(self, kind: str, key: str, detail: str, fix: str) -> None:
        self.findings.append(Finding(self.ctx.cid, kind, key, detail, _command(self.ctx, fix)))


async def check_connection(
    ctx: SyncContext, since: datetime, *, stock: bool = True
) -> list[Finding]:
    """Compare every marketplace order updated since ``since`` with the state DB and the shop,
    then the shop's stock with what the marketplace offers."""
    sweep = _Sweep(ctx)
    flows = ctx.connection.flows()
    if "orders" in flows:
        _open_intents(sweep)
        await _unread_shop_changes(sweep)
        until = ctx.now() - ctx.marketplace.safety_margin
        async for order in ctx.marketplace.orders_updated(since, until):
            if isinstance(order, RejectedOrder):
                sweep.add("unreadable", order.marketplace_order_id, order.message, "retry")
                continue
            await _check_order(sweep, order)
    if stock and "stock" in flows:
        await _check_stock(sweep)
    return sweep.findings


def _command(ctx: SyncContext, action: str) -> str:
    cid = ctx.cid
    return {
        "orders": f"ordersync sync --connection {cid} --flow orders",
        "shipments": f"ordersync sync --connection {cid} --flow shipments",
        "stock": f"ordersync sync --connection {cid} --flow stock",
        "retry": f"ordersync retry --connection {cid} && ordersync sync --connection {cid} --flow orders",
        "retry shipments": f"ordersync retry --connection {cid} && "
        f"ordersync sync --connection {cid} --flow shipments",
        "orders then shipments": f"ordersync sync --connection {cid} --flow orders && "
        f"ordersync sync --connection {cid} --flow shipments",
    }.get(action, action)


# -- work ordersync has not finished: the outbox and the shop's unread changes ---------


def _open_intents(sweep: _Sweep) -> None:
    """Shipments and cancellations made in the shop that have not reached Amazon."""
    ctx = sweep.ctx
    for state in (IntentState.PENDING, IntentState.FAILED):
        for kind in (IntentKind.CONFIRM_SHIPMENT, IntentKind.CANCEL_ON_MARKETPLACE):
            for intent in ctx.store.intents(ctx.cid, kind, state):
                _open_intent(sweep, intent)


def _open_intent(sweep: _Sweep, intent: Intent) -> None:
    record = sweep.ctx.store.get_order(sweep.ctx.cid, intent.order_id)
    if record is None or record.state is OrderState.CANCELLED:
        return  # nothing left to confirm: the failure stays visible in `ordersync orders show`
    oid = intent.order_id
    if intent.kind is IntentKind.CONFIRM_SHIPMENT:
        what = f"shipped in the shop ({_describe(Shipment.model_validate(intent.payload))})"
    else:
        what = "cancelled in the shop"
    sweep.settled.add(oid)
    if intent.state is IntentState.FAILED:
        sweep.add(
            "status_mismatch",
            oid,
            f"{what}; Amazon rejected it ({intent.failure_reason}: {intent.last_error})",
            "retry shipments",
        )
    elif record.state is OrderState.IMPORT_INTENDED:
        sweep.add(
            "status_mismatch",
            oid,
            f"{what} before ordersync confirmed the import; not on Amazon yet",
            "orders then shipments",
        )
    else:
        tried = f" ({intent.attempts} attempt(s); last error: {intent.last_error})"
        sweep.add(
            "status_mismatch",
            oid,
            f"{what}; not on Amazon yet" + (tried if intent.attempts else ""),
            "shipments",
        )


async def _unread_shop_changes(sweep: _Sweep) -> None:
    """Read the shop's changes since the shipments cursor (without moving it)."""
    ctx = sweep.ctx
    store, cid = ctx.store, ctx.cid
    cursor = store.get_cursor(cid, SHIPMENTS_CURSOR)
    if cursor is None:
        return  # the shipments flow never ran: there is nothing it has missed yet
    for _ in range(MAX_CHANGE_PAGES):
        page = await ctx.shop.changes_since(cursor)
        for shipment in page.shipments:
            oid = shipment.marketplace_order_id
            record = store.get_order(cid, oid)
            if record is None or record.state not in UNREAD_TRACKED:
                continue
            if store.intent(cid, IntentKind.CONFIRM_SHIPMENT, shipment.shipment_id) is not None:
                continue  # re-read by the shop's lookback; already recorded
            sweep.settled.add(oid)
            sweep.add(
                "status_mismatch",
                oid,
                f"shipped in the shop ({_describe(shipment)}); not on Amazon yet",
                "shipments",
            )
        for cancellation in page.cancellations:
            oid = cancellation.marketplace_order_id
            record = store.get_order(cid, oid)
            if (
                record is None
                or record.state not in UNREAD_TRACKED
                or record.state is OrderState.CANCEL_ON_MARKETPLACE_INTENDED
                or store.intent(cid, IntentKind.CANCEL_ON_MARKETPLACE, oid) is not None
            ):
                continue
            sweep.settled.add(oid)
            sweep.add(
                "status_mismatch",
                oid,
                f"cancelled in the shop (shop order {cancellation.shop_order_id}); "
                "still open on Amazon",
                "shipments",
            )
        for rejected in page.rejected:
            sweep.add(
                "unreadable",
                rejected.marketplace_order_id or rejected.key,
                f"shop {rejected.kind} {rejected.key} cannot be read: {rejected.message}",
                f"correct shop {rejected.kind} {rejected.key} in the shop, then "
                f"{_command(ctx, 'shipments')}",
            )
        cursor = page.cursor
        if not page.has_more:
            return


# -- one marketplace order against the state DB and the shop ---------------------------


async def _check_order(sweep: _Sweep, order: Order) -> None:
    ctx, oid = sweep.ctx, order.marketplace_order_id
    if (
        order.fulfillment_channel is FulfillmentChannel.MARKETPLACE
        and not ctx.connection.import_marketplace_fulfilled
    ):
        return
    if order.status is OrderStatus.PENDING:
        return
    record = ctx.store.get_order(ctx.cid, oid)
    refs = await ctx.shop.find_orders(oid)
    live = [r for r in refs if not r.cancelled]
    if order.status is OrderStatus.CANCELLED:
        if live:
            sweep.add(
                "status_mismatch",
                oid,
                f"cancelled on Amazon, open in the shop as {_names(live)}",
                "orders",
            )
        return
    if not refs:
        _missing(sweep, order, record)
        return
    if len(live) > 1:
        keep = record.shop_order_id if record and record.shop_order_id else live[0].id
        extra = [r for r in live if r.id != keep]
        sweep.add(
            "duplicated",
            oid,
            f"{len(live)} open shop orders: {_names(live)}",
            f"in the shop, cancel duplicate order(s) {_names(extra)} of Amazon order {oid} "
            f"without restocking twice; keep {_name(next(r for r in live if r.id == keep))} "
            "(the one ordersync tracks)",
        )
    ref = next(
        (r for r in live if record and r.id == record.shop_order_id), live[0] if live else refs[0]
    )
    _compare_amounts(sweep, order, ref)
    if record is None:
        sweep.add(
            "not_tracked",
            oid,
            f"in the shop as {_names(refs)} but unknown to ordersync",
            "orders",
        )
        return
    if oid in sweep.settled:
        return
    if not live and record.state in IN_SHOP:
        sweep.add(
            "status_mismatch",
            oid,
            "cancelled in the shop, still open on Amazon",
            "shipments",
        )
        return
    await _compare_shipping(sweep, order, record.state, ref)


def _missing(sweep: _Sweep, order: Order, record: OrderRecord | None) -> None:
    ctx, oid = sweep.ctx, order.marketplace_order_id
    if record is None:
        sweep.add("missing", oid, "on Amazon, not known to ordersync, not in the shop", "orders")
    elif record.state is OrderState.FAILED:
        sweep.add(
            "missing",
            oid,
            f"not in the shop: failed ({record.failure_reason}: {record.failure_message})",
            "retry",
        )
    elif record.state is OrderState.HELD:
        sweep.add(
            "missing",
            oid,
            f"held by the order quota ({record.quota_month})",
            f"raise orders_per_month for {ctx.cid} or wait for next month",
        )
    elif record.state in NOT_IN_SHOP or record.state is OrderState.IMPORT_INTENDED:
        sweep.add("missing", oid, f"not in the shop yet (state {record.state.value})", "orders")
    else:
        sweep.add(
            "missing",
            oid,
            f"ordersync recorded shop order {record.shop_order_number or record.shop_order_id}, "
            "which the shop no longer has",
            "recreate it in the shop by hand or restore it",
        )


def _compare_amounts(sweep: _Sweep, order: Order, ref: ShopOrderRef) -> None:
    if ref.total is None:
        return
    shop, amazon = ref.total, order.total
    if shop.amount == amazon.amount and shop.currency == amazon.currency:
        return
    what = "is in another currency" if shop.currency != amazon.currency else "differs"
    sweep.add(
        "amount_mismatch",
        order.marketplace_order_id,
        f"shop order {_name(ref)} totals {shop.amount} {shop.currency}, "
        f"Amazon {amazon.amount} {amazon.currency}: the shop's total {what}",
        f"in the shop, edit order {_name(ref)} so that it totals {amazon.amount} "
        f"{amazon.currency}, Amazon's total for {order.marketplace_order_id} "
        f"({_lines(order)})",
    )


async def _compare_shipping(
    sweep: _Sweep, order: Order, state: OrderState, ref: ShopOrderRef
) -> None:
    """Shipment status: the shop (as ordersync recorded it) against Amazon."""
    ctx, oid = sweep.ctx, order.marketplace_order_id
    amazon_behind = (state is OrderState.SHIPPED and order.status is not OrderStatus.SHIPPED) or (
        state is OrderState.PARTIALLY_SHIPPED and order.status is OrderStatus.UNSHIPPED
    )
    if amazon_behind:
        done = ctx.store.intents(
            ctx.cid, IntentKind.CONFIRM_SHIPMENT, IntentState.DONE, order_id=oid
        )
        for intent in done:
            shipment = Shipment.model_validate(intent.payload)
            if await ctx.marketplace.shipment_confirmed(order, shipment):
                continue
            sweep.add(
                "status_mismatch",
                oid,
                f"shipped in the shop ({_describe(shipment)}) and confirmed by ordersync, "
                f"but Amazon shows the order {order.status.value} without that package",
                f"confirm the shipment of {oid} on Amazon by hand (Seller Central, Manage "
                f"Orders, Confirm shipment): {_describe(shipment)}",
            )
        return
    shop_behind = state in OPEN_IN_SHOP and (
        order.status is OrderStatus.SHIPPED
        or (order.status is OrderStatus.PARTIALLY_SHIPPED and state is OrderState.IMPORTED)
    )
    if shop_behind:
        partly = "" if state is OrderState.IMPORTED else " (partly shipped there)"
        sweep.add(
            "status_mismatch",
            oid,
            f"{order.status.value.replace('_', ' ')} on Amazon, open in the shop as "
            f"{_name(ref)}{partly}: shipped outside ordersync",
            f"in the shop, fulfil order {_name(ref)} with the package(s) Amazon shows for {oid} "
            "(do not ship it again)",
        )


# -- stock -----------------------------------------------------------------------------


async def _check_stock(sweep: _Sweep) -> None:
    """The shop's stock minus reservations against Amazon's quantities (or the last push)."""
    ctx = sweep.ctx
    levels, _ = await read_stock(ctx, full=True)
    reserved = reserved_quantities(ctx)
    wanted = {sku: max(0, qty - reserved.get(sku, 0)) for sku, qty in sorted(levels.items())}
    pushed = ctx.store.pushed_stock(ctx.cid)
    listed = await ctx.marketplace.listed_quantities(list(wanted))
    basis = "Amazon's listed quantities" if listed is not None else "the last push"
    ctx.log.info("%s check: stock compared with %s", ctx.cid, basis)
    for sku, qty in wanted.items():
        offers = _offer(qty, levels[sku], reserved.get(sku, 0))
        if listed is None:
            if pushed.get(sku) != qty:
                last = "never pushed" if sku not in pushed else f"last pushed {pushed[sku]}"
                sweep.add(
                    "stock_drift",
                    sku,
                    f"{offers}, Amazon was {last} (compared with what ordersync last pushed: "
                    f"{ctx.connection.marketplace.type} cannot report its quantities)",
                    "stock",
                )
            continue
        _compare_listed(sweep, sku, qty, offers, listed, pushed)


def _compare_listed(
    sweep: _Sweep,
    sku: str,
    qty: int,
    offers: str,
    listed: Mapping[str, int],
    pushed: Mapping[str, int],
) -> None:
    on_amazon = listed.get(sku)
    if on_amazon == qty:
        return
    if on_amazon is None:
        if sku in pushed:  # listed once (a push was accepted), gone now
            sweep.add(
                "stock_drift",
                sku,
                f"{offers}; Amazon no longer lists the SKU (ordersync last pushed {pushed[sku]})",
                f"create or reactivate the listing of {sku} on Amazon; ordersync then pushes "
                f"{qty} at its next full stock read",
            )
        return  # a shop product that is not sold on Amazon
    if pushed.get(sku) != qty:
        fix = "stock"  # ordersync knows it is behind: the stock flow pushes it
    else:
        fix = (
            f"set the quantity of {sku} to {qty} on Amazon by hand (Seller Central, Manage "
            "Inventory); ordersync pushes again only when the shop's quantity changes"
        )
    sweep.add(
        "stock_drift",
        sku,
        f"{offers}, Amazon lists {on_amazon} (compared with Amazon's listed quantities)",
        fix,
    )


def _offer(qty: int, stock: int, reserved: int) -> str:
    held = f", {reserved} reserved by Amazon orders not yet in the shop" if reserved else ""
    return f"shop offers {qty} (stock {stock}{held})"


# -- wording ---------------------------------------------------------------------------


def _describe(shipment: Shipment) -> str:
    lines = ", ".join(f"{line.quantity}× {line.sku}" for line in shipment.lines)
    carrier = shipment.carrier or "no carrier"
    tracking = f" {shipment.tracking_number}" if shipment.tracking_number else ""
    return f"shipment {shipment.shipment_id}: {carrier}{tracking}, {lines}"


def _lines(order: Order) -> str:
    lines = ", ".join(
        f"{line.quantity}× {line.sku} at {line.unit_price.amount}" for line in order.lines
    )
    return f"{lines}, shipping {order.shipping_price.amount}"


def _name(ref: ShopOrderRef) -> str:
    return ref.number or ref.id


def _names(refs: Iterable[ShopOrderRef]) -> str:
    return ", ".join(_name(r) for r in refs)
