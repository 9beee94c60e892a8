"""Ordered, named migrations of the state database (the llm pattern)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("connection_runtime").create(
        {
            "connection_id": str,
            "status": str,
            "last_message": str,
            "last_run_at": str,
            "last_success_at": str,
        },
        pk="connection_id",
    )
    db.table("cursors").create(
        {"connection_id": str, "flow": str, "value": str, "updated_at": str},
        pk=("connection_id", "flow"),
    )
    db.table("orders").create(
        {
            "connection_id": str,
            "order_id": str,
            "marketplace_id": str,
            "state": str,
            "marketplace_status": str,
            "purchased_at": str,
            "marketplace_updated_at": str,
            "total": str,
            "currency": str,
            "shop_order_id": str,
            "shop_order_number": str,
            "failure_reason": str,
            "failure_message": str,
            "quota_month": str,
            "payload": str,
            "created_at": str,
            "updated_at": str,
        },
        pk=("connection_id", "order_id"),
    )
    db.table("orders").create_index(["connection_id", "state"])
    db.table("order_log").create(
        {
            "id": int,
            "connection_id": str,
            "order_id": str,
            "at": str,
            "direction": str,
            "action": str,
            "detail": str,
        },
        pk="id",
    )
    db.table("order_log").create_index(["connection_id", "order_id"])
    db.table("outbox").create(
        {
            "id": int,
            "connection_id": str,
            "kind": str,
            "key": str,
            "order_id": str,
            "payload": str,
            "state": str,
            "attempts": int,
            "failure_reason": str,
            "last_error": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.table("outbox").create_index(["connection_id", "kind", "key"], unique=True)
    db.table("outbox").create_index(["connection_id", "state"])
    db.table("stock_pushed").create(
        {"connection_id": str, "sku": str, "quantity": int, "pushed_at": str},
        pk=("connection_id", "sku"),
    )
    db.table("failures").create(
        {
            "connection_id": str,
            "kind": str,
            "key": str,
            "reason": str,
            "message": str,
            "attempts": int,
            "first_at": str,
            "last_at": str,
        },
        pk=("connection_id", "kind", "key"),
    )
    db.table("quota_usage").create(
        {"connection_id": str, "month": str, "used": int}, pk=("connection_id", "month")
    )
    db.table("leases").create(
        {
            "connection_id": str,
            "owner": str,
            "host": str,
            "pid": int,
            "epoch": int,
            "expires_at": float,
        },
        pk="connection_id",
    )


@migration
def m002_order_raw(db: sqlite_utils.Database) -> None:
    """The marketplace's raw payload in a column of its own: flows read an order many
    times and never need it (parsing it was most of the cost of reading an order)."""
    db.table("orders").add_column("raw", str)


@migration
def m003_stock_shop(db: sqlite_utils.Database) -> None:
    """The shop's last known stock per SKU, so a stock run can re-offer SKUs the shop
    did not report (a reservation changed, a push did not land)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS stock_shop (connection_id TEXT NOT NULL, "
        "sku TEXT NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (connection_id, sku))"
    )


@migration
def m004_outbox_by_order(db: sqlite_utils.Database) -> None:
    """An order's intents are looked up by order id on every import and shipment."""
    db.table("outbox").create_index(["connection_id", "order_id", "state"], if_not_exists=True)


@migration
def m005_lease_waiting(db: sqlite_utils.Database) -> None:
    """Who was turned away from a busy connection, and since when: the next turn is
    theirs (fair leases between two daemons)."""
    db.table("leases").add_column("waiting_owner", str)
    db.table("leases").add_column("waiting_since", float)


def apply(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order, each in its own transaction.

    ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if "_migrations" not in db.table_names():
            db.table("_migrations").create({"name": str, "applied_at": str}, pk="name")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    applied = []
    for name, fn in MIGRATIONS:
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.table("_migrations").count_where("name = ?", [name]):
                db.execute("COMMIT")
                continue
            fn(db)
            db.table("_migrations").insert(
                {"name": name, "applied_at": datetime.now(UTC).isoformat()}
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
