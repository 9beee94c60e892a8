"""The state database: orders, intents (outbox), cursors, stock, quota, leases.

Every external write is preceded by a committed intent in ``outbox``; after a
crash an intent with ``attempts > 0`` is reconciled by looking the effect up on
the other side before anything is sent again. A per-connection lease with a
fencing epoch keeps two processes from syncing one connection at once.
"""

from __future__ import annotations

import functools
import os
import socket
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydantic_core
import sqlite_utils
from sqlite_utils.db import NotFoundError

from engine import migrations
from engine.errors import LeaseLost
from engine.models import Order
from engine.redact import GLOBAL_REDACTOR


def utcnow() -> datetime:
    return datetime.now(UTC)


def _now() -> str:
    return utcnow().isoformat()


_RAW = {"raw"}
_RECORD_COLUMNS = (
    "connection_id, order_id, state, payload, shop_order_id, shop_order_number, "
    "failure_reason, failure_message, quota_month"
)
"""What :class:`OrderRecord` needs (not ``raw``)."""


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """``items`` in lists of at most ``size`` (SQLite's limit on ``?`` parameters)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _dumps(value: Any) -> str:
    """JSON text (pydantic-core's encoder; anything it does not know becomes ``str``)."""
    return pydantic_core.to_json(value, fallback=str).decode()


def _value(value: Any) -> Any:
    """A column value as sqlite-utils would store it (dicts and lists as JSON)."""
    if isinstance(value, dict | list | tuple):
        return _dumps(value)
    return value


LEASE_WAIT_SECONDS = 5.0
"""How long a process turned away from a busy connection keeps its claim to the next turn."""


class OrderState(StrEnum):
    """Where an Amazon order stands in ordersync."""

    PENDING = "pending"
    """Not yet paid on the marketplace: stored, not imported (stock reserved)."""
    QUEUED = "queued"
    """Importable; created in the shop at the next import step."""
    HELD = "held"
    """Over the month's order quota; imported once the quota allows."""
    FAILED = "failed"
    """Could not be imported (typed reason); ``ordersync retry`` tries again."""
    SKIPPED = "skipped"
    """Fulfilled by the marketplace and not imported by configuration."""
    IMPORT_INTENDED = "import_intended"
    IMPORTED = "imported"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCEL_IN_SHOP_INTENDED = "cancel_in_shop_intended"
    CANCEL_ON_MARKETPLACE_INTENDED = "cancel_on_marketplace_intended"
    CANCELLED = "cancelled"


NOT_IN_SHOP = frozenset(
    {OrderState.PENDING, OrderState.QUEUED, OrderState.HELD, OrderState.FAILED, OrderState.SKIPPED}
)
IN_SHOP = frozenset(
    {
        OrderState.IMPORTED,
        OrderState.PARTIALLY_SHIPPED,
        OrderState.SHIPPED,
        OrderState.CANCEL_IN_SHOP_INTENDED,
        OrderState.CANCEL_ON_MARKETPLACE_INTENDED,
    }
)


class IntentKind(StrEnum):
    IMPORT = "import"
    CANCEL_IN_SHOP = "cancel_in_shop"
    CONFIRM_SHIPMENT = "confirm_shipment"
    CANCEL_ON_MARKETPLACE = "cancel_on_marketplace"
    REFETCH = "refetch"
    """Read an order again that could not be read before (after ``ordersync retry``)."""


class IntentState(StrEnum):
    PENDING = "pending"
    """Committed, maybe attempted before (``attempts``), not known to be done."""
    DONE = "done"
    FAILED = "failed"
    """Rejected for good; waits for ``ordersync retry``."""


@dataclass
class Intent:
    id: int
    connection_id: str
    kind: IntentKind
    key: str
    order_id: str
    payload: dict[str, Any]
    state: IntentState
    attempts: int
    failure_reason: str | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Intent:
        return cls(
            id=row["id"],
            connection_id=row["connection_id"],
            kind=IntentKind(row["kind"]),
            key=row["key"],
            order_id=row["order_id"],
            payload=pydantic_core.from_json(row["payload"] or "{}"),
            state=IntentState(row["state"]),
            attempts=row["attempts"],
            failure_reason=row["failure_reason"],
            last_error=row["last_error"],
        )


@dataclass
class Lease:
    connection_id: str
    owner: str
    epoch: int
    ttl: float = 600.0
    """Seconds each renewal extends the lease by (``lease_seconds``)."""


@dataclass
class OrderRecord:
    connection_id: str
    order_id: str
    state: OrderState
    order: Order
    shop_order_id: str | None
    shop_order_number: str | None
    failure_reason: str | None
    failure_message: str | None
    quota_month: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any], orders: OrderCache | None = None) -> OrderRecord:
        payload = row["payload"]
        return cls(
            connection_id=row["connection_id"],
            order_id=row["order_id"],
            state=OrderState(row["state"]),
            order=orders.parse(payload)
            if orders is not None
            else Order.model_validate_json(payload),
            shop_order_id=row["shop_order_id"],
            shop_order_number=row["shop_order_number"],
            failure_reason=row["failure_reason"],
            failure_message=row["failure_message"],
            quota_month=row["quota_month"],
        )


class OrderCache:
    """Parsed orders by their stored JSON: an order read again is not parsed again.

    Orders are frozen models, so one instance can stand for equal payloads. Bounded
    (least recently used first out) so a large backlog cannot grow memory.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._orders: OrderedDict[str, Order] = OrderedDict()

    def parse(self, payload: str) -> Order:
        order = self._orders.get(payload)
        if order is None:
            order = Order.model_validate_json(payload)
            self.put(payload, order)
        else:
            self._orders.move_to_end(payload)
        return order

    def put(self, payload: str, order: Order) -> None:
        self._orders[payload] = order
        self._orders.move_to_end(payload)
        if len(self._orders) > self.size:
            self._orders.popitem(last=False)


# SQL text of the hot-path writes, built once per table and column set.


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], or_ignore: bool) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    return f'{verb} INTO "{table}" ({names}) VALUES ({marks})'


@functools.cache
def _upsert_sql(
    table: str, columns: tuple[str, ...], pk: tuple[str, ...], insert_only: tuple[str, ...]
) -> str:
    kept = set(pk) | set(insert_only)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in kept)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    keys = ", ".join(f'"{c}"' for c in pk)
    return f"{_insert_sql(table, columns, False)} ON CONFLICT ({keys}) {action}"


@functools.cache
def _update_sql(table: str, where: tuple[str, ...], columns: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    conditions = " AND ".join(f'"{c}" = ?' for c in where)
    return f'UPDATE "{table}" SET {sets} WHERE {conditions}'


class _Transaction:
    """:meth:`StateStore.transaction`: a plain class, as a generator-based context
    manager costs several times more and the flows open one per store call."""

    __slots__ = ("store", "outer")

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.outer = False

    def __enter__(self) -> sqlite_utils.Database:
        store = self.store
        if store._depth == 0:
            store.db.conn.execute("BEGIN IMMEDIATE")
            self.outer = True
        store._depth += 1
        return store.db

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        store = self.store
        store._depth -= 1
        if not self.outer:
            return
        store._stamp = None
        if kind is not None:
            store._after_commit.clear()
            store.db.conn.execute("ROLLBACK")
            return
        store.db.conn.execute("COMMIT")
        callbacks, store._after_commit = store._after_commit, []
        for callback in callbacks:
            callback()


BUSY_SECONDS = 30.0
"""How long a statement waits for another process's lock on the state file."""


def use_wal(conn: sqlite3.Connection, path: Path, timeout: float = BUSY_SECONDS) -> None:
    """Put the file in WAL mode, waiting for another process that is doing the same.

    WAL is a property of the file, so once set there is nothing to do. Switching takes
    an exclusive lock that SQLite does not wait for (the busy timeout does not apply):
    two daemons started together on a new file would have one of them fail "locked".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(f"{path}: locked by another process for {timeout:.0f} s")
        time.sleep(0.02)


def default_state_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("ordersync")) / "state.db"


class StateStore:
    """All durable state, in one SQLite file (WAL mode, autocommit + explicit transactions)."""

    def __init__(self, path: str | Path, *, owner: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=BUSY_SECONDS, check_same_thread=False
        )
        use_wal(conn, self.path)
        conn.execute("PRAGMA synchronous=NORMAL")
        self.db = sqlite_utils.Database(conn)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = owner or f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        self._stamp: str | None = None
        self.orders = OrderCache()
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def transaction(self) -> _Transaction:
        """One write transaction (nested calls join the outer one); use ``with``."""
        return _Transaction(self)

    def _now(self) -> str:
        """The time written to ``*_at`` columns: one per transaction (its writes happen
        together), read afresh outside one."""
        if not self._depth:
            return _now()
        if self._stamp is None:
            self._stamp = _now()
        return self._stamp

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the open transaction commits (now, if none is open);
        it is dropped if the transaction rolls back."""
        if self._depth:
            self._after_commit.append(callback)
        else:
            callback()

    # -- plain SQL for the hot paths (sqlite-utils re-reads the schema on every call) ----

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.conn.execute(sql, tuple(args))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _insert(self, table: str, row: dict[str, Any], *, or_ignore: bool = False) -> int:
        """Insert one row; the number of rows inserted (0 when ignored)."""
        sql = _insert_sql(table, tuple(row), or_ignore)
        return self.db.conn.execute(sql, [_value(v) for v in row.values()]).rowcount

    def _upsert(
        self,
        table: str,
        row: dict[str, Any],
        pk: Sequence[str],
        insert_only: Sequence[str] = (),
    ) -> None:
        """Insert or update one row by its primary key; ``insert_only`` columns keep
        the value of the first insert."""
        sql = _upsert_sql(table, tuple(row), tuple(pk), tuple(insert_only))
        self.db.conn.execute(sql, [_value(v) for v in row.values()])

    def _update(self, table: str, where: dict[str, Any], values: dict[str, Any]) -> None:
        """Update one row; :class:`sqlite_utils.db.NotFoundError` if there is none."""
        sql = _update_sql(table, tuple(where), tuple(values))
        args = [_value(v) for v in values.values()] + list(where.values())
        if self.db.conn.execute(sql, args).rowcount == 0:
            raise NotFoundError(f"no row in {table} where {where}")

    # -- leases ---------------------------------------------------------------

    def acquire_lease(self, connection_id: str, ttl: float = 600.0) -> Lease | None:
        """Take the connection's lease, or ``None`` while another live process holds it.

        A holder on this host whose process is gone is taken over at once. Turns are
        fair: a process turned away is remembered as waiting, and for
        :data:`LEASE_WAIT_SECONDS` a free lease goes to it, not back to a process whose
        flows queue one after another (two daemons on one state would otherwise let one
        of them starve).
        """
        with self.transaction():
            rows = self._rows("SELECT * FROM leases WHERE connection_id = ?", [connection_id])
            now = time.time()
            epoch = 1
            if rows:
                row = rows[0]
                epoch = row["epoch"] + 1
                held = row["owner"] != self.owner and row["expires_at"] > now
                if held and not self._holder_dead(row):
                    self.db.conn.execute(
                        "UPDATE leases SET waiting_owner = ?, waiting_since = ? "
                        "WHERE connection_id = ? AND (waiting_owner IS NULL OR "
                        "waiting_owner = ? OR waiting_since < ?)",
                        [self.owner, now, connection_id, self.owner, now - LEASE_WAIT_SECONDS],
                    )
                    return None
                waiter = row.get("waiting_owner")
                if (
                    waiter
                    and waiter != self.owner
                    and row["expires_at"] <= now  # free (a dead holder's is taken over)
                    and now - (row.get("waiting_since") or 0) < LEASE_WAIT_SECONDS
                ):
                    return None  # another process asked first: its turn
            self._upsert(
                "leases",
                {
                    "connection_id": connection_id,
                    "owner": self.owner,
                    "host": self.host,
                    "pid": self.pid,
                    "epoch": epoch,
                    "expires_at": now + ttl,
                    "waiting_owner": None,
                    "waiting_since": None,
                },
                pk=("connection_id",),
            )
        return Lease(connection_id=connection_id, owner=self.owner, epoch=epoch, ttl=ttl)

    def _holder_dead(self, row: dict[str, Any]) -> bool:
        if row["host"] != self.host or row["pid"] == self.pid:
            return False
        try:
            os.kill(row["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def check_lease(self, lease: Lease) -> None:
        """Fence: raise :class:`LeaseLost` unless ``lease`` is still current; extend it
        by its ``ttl``."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE leases SET expires_at = ? WHERE connection_id = ? AND owner = ? AND epoch = ?",
                [time.time() + lease.ttl, lease.connection_id, lease.owner, lease.epoch],
            )
            if cursor.rowcount != 1:
                raise LeaseLost(
                    f"connection {lease.connection_id}: lease taken over by another process"
                )

    def release_lease(self, lease: Lease) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE leases SET expires_at = 0 WHERE connection_id = ? AND owner = ? AND epoch = ?",
                [lease.connection_id, lease.owner, lease.epoch],
            )

    # -- connection runtime ----------------------------------------------------

    def set_status(self, connection_id: str, status: str, message: str, *, success: bool) -> None:
        now = self._now()
        row: dict[str, Any] = {
            "connection_id": connection_id,
            "status": status,
            "last_message": message,
            "last_run_at": now,
        }
        if success:
            row["last_success_at"] = now
        with self.transaction():
            self._upsert("connection_runtime", row, pk=("connection_id",))

    def runtime(self, connection_id: str) -> dict[str, Any]:
        rows = list(
            self.db.table("connection_runtime").rows_where("connection_id = ?", [connection_id])
        )
        return rows[0] if rows else {}

    # -- cursors ---------------------------------------------------------------

    def get_cursor(self, connection_id: str, flow: str) -> str | None:
        rows = self._rows(
            "SELECT value FROM cursors WHERE connection_id = ? AND flow = ?", [connection_id, flow]
        )
        return rows[0]["value"] if rows else None

    def set_cursor(self, connection_id: str, flow: str, value: str | None) -> None:
        with self.transaction():
            self._upsert(
                "cursors",
                {
                    "connection_id": connection_id,
                    "flow": flow,
                    "value": value,
                    "updated_at": self._now(),
                },
                pk=("connection_id", "flow"),
            )

    # -- orders ----------------------------------------------------------------

    def order_state(self, connection_id: str, order_id: str) -> OrderState | None:
        """Only the state of an order (no payload parsed)."""
        rows = self._rows(
            "SELECT state FROM orders WHERE connection_id = ? AND order_id = ?",
            [connection_id, order_id],
        )
        return OrderState(rows[0]["state"]) if rows else None

    def order_raw(self, connection_id: str, order_id: str) -> dict[str, Any]:
        """The marketplace's raw payload of an order as last read (``{}`` if none).

        Orders read back from the store carry ``raw={}``: flows never need it.
        """
        rows = self._rows(
            "SELECT raw, payload FROM orders WHERE connection_id = ? AND order_id = ?",
            [connection_id, order_id],
        )
        if not rows:
            return {}
        if rows[0]["raw"]:
            raw: dict[str, Any] = pydantic_core.from_json(rows[0]["raw"])
            return raw
        return dict(pydantic_core.from_json(rows[0]["payload"]).get("raw") or {})  # before m002

    def order_states(self, connection_id: str, order_ids: Sequence[str]) -> dict[str, OrderState]:
        """Only the states of several orders (missing ids are left out)."""
        found: dict[str, OrderState] = {}
        for chunk in _chunks(order_ids):
            marks = ",".join("?" for _ in chunk)
            rows = self.db.conn.execute(
                f"SELECT order_id, state FROM orders WHERE connection_id = ? "
                f"AND order_id IN ({marks})",
                [connection_id, *chunk],
            ).fetchall()
            found.update((oid, OrderState(state)) for oid, state in rows)
        return found

    def get_order(self, connection_id: str, order_id: str) -> OrderRecord | None:
        rows = self._rows(
            f"SELECT {_RECORD_COLUMNS} FROM orders WHERE connection_id = ? AND order_id = ?",
            [connection_id, order_id],
        )
        return OrderRecord.from_row(rows[0], self.orders) if rows else None

    def save_order(
        self, connection_id: str, order: Order, state: OrderState, **fields: Any
    ) -> None:
        """Insert or update an order's payload and state (plus any column in ``fields``)."""
        now = self._now()
        payload = order.model_dump_json(exclude=_RAW)
        self.orders.put(payload, order.model_copy(update={"raw": {}}) if order.raw else order)
        row: dict[str, Any] = {
            "connection_id": connection_id,
            "order_id": order.marketplace_order_id,
            "marketplace_id": order.marketplace_id,
            "state": state.value,
            "marketplace_status": order.status.value,
            "purchased_at": order.purchased_at.isoformat(),
            "marketplace_updated_at": order.updated_at.isoformat(),
            "total": str(order.total.amount),
            "currency": order.currency,
            "payload": payload,
            "raw": _dumps(order.raw),
            "updated_at": now,
            **fields,
        }
        with self.transaction():
            self._upsert(
                "orders",
                {**row, "created_at": now},
                pk=("connection_id", "order_id"),
                insert_only=("created_at",),
            )

    def set_order_state(
        self, connection_id: str, order_id: str, state: OrderState, **fields: Any
    ) -> None:
        if fields.get("failure_message"):
            fields["failure_message"] = GLOBAL_REDACTOR(fields["failure_message"])
        with self.transaction():
            self._update(
                "orders",
                {"connection_id": connection_id, "order_id": order_id},
                {"state": state.value, "updated_at": self._now(), **fields},
            )

    def list_orders(
        self,
        connection_id: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if connection_id:
            where.append("connection_id = ?")
            args.append(connection_id)
        if state:
            where.append("state = ?")
            args.append(state)
        rows = self.db.table("orders").rows_where(
            " AND ".join(where) or None,
            args,
            order_by="purchased_at",
            limit=limit,
            select="connection_id, order_id, marketplace_id, state, marketplace_status, purchased_at, "
            "total, currency, shop_order_id, shop_order_number, failure_reason, failure_message, quota_month",
        )
        return list(rows)

    def order_ids_in_states(
        self, connection_id: str, states: frozenset[OrderState]
    ) -> list[tuple[str, OrderState]]:
        """``(order id, state)`` of the orders in ``states``, oldest purchase first
        (no payload parsed)."""
        marks = ",".join("?" for _ in states)
        rows = self.db.conn.execute(
            f"SELECT order_id, state FROM orders WHERE connection_id = ? AND state IN ({marks}) "
            "ORDER BY purchased_at",
            [connection_id, *sorted(s.value for s in states)],
        ).fetchall()
        return [(oid, OrderState(state)) for oid, state in rows]

    def get_orders(self, connection_id: str, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """Several orders by id (one query per 500); missing ids are left out."""
        found: dict[str, OrderRecord] = {}
        for chunk in _chunks(order_ids):
            marks = ",".join("?" for _ in chunk)
            rows = self._rows(
                f"SELECT {_RECORD_COLUMNS} FROM orders WHERE connection_id = ? AND order_id IN ({marks})",
                [connection_id, *chunk],
            )
            found.update((r["order_id"], OrderRecord.from_row(r, self.orders)) for r in rows)
        return found

    def orders_in_states(
        self, connection_id: str, states: frozenset[OrderState]
    ) -> list[OrderRecord]:
        marks = ",".join("?" for _ in states)
        rows = self._rows(
            f"SELECT {_RECORD_COLUMNS} FROM orders WHERE connection_id = ? AND state IN ({marks}) "
            "ORDER BY purchased_at",
            [connection_id, *sorted(s.value for s in states)],
        )
        return [OrderRecord.from_row(r, self.orders) for r in rows]

    def log(
        self, connection_id: str, order_id: str, direction: str, action: str, detail: str = ""
    ) -> None:
        """Append to an order's log. ``direction`` is ``amazon->shop``, ``shop->amazon`` or ``local``."""
        with self.transaction():
            self._insert(
                "order_log",
                {
                    "connection_id": connection_id,
                    "order_id": order_id,
                    "at": self._now(),
                    "direction": direction,
                    "action": action,
                    "detail": GLOBAL_REDACTOR(detail) if detail else detail,
                },
            )

    def order_log(self, connection_id: str, order_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.table("order_log").rows_where(
                "connection_id = ? AND order_id = ?", [connection_id, order_id], order_by="id"
            )
        )

    # -- intents (outbox) ----------------------------------------------------------

    def add_intent(
        self, connection_id: str, kind: IntentKind, key: str, order_id: str, payload: dict[str, Any]
    ) -> bool:
        """Record an intent once per ``(connection, kind, key)``; ``False`` if it already exists."""
        now = self._now()
        with self.transaction():
            inserted = self._insert(
                "outbox",
                {
                    "connection_id": connection_id,
                    "kind": kind.value,
                    "key": key,
                    "order_id": order_id,
                    "payload": _dumps(payload),
                    "state": IntentState.PENDING.value,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                },
                or_ignore=True,  # (connection_id, kind, key) is unique
            )
        return inserted == 1

    def upsert_intent(
        self, connection_id: str, kind: IntentKind, key: str, order_id: str, payload: dict[str, Any]
    ) -> IntentState:
        """Record an intent, or re-open a failed one with a new payload; return its state.

        A done intent is left alone (its effect exists); ``attempts`` is kept so a
        re-opened intent is still reconciled before it is sent again.
        """
        with self.transaction():
            if self.add_intent(connection_id, kind, key, order_id, payload):
                return IntentState.PENDING
            existing = self.intent(connection_id, kind, key)
            assert existing is not None  # add_intent found it
            if existing.state is IntentState.DONE:
                return IntentState.DONE
            self._update(
                "outbox",
                {"id": existing.id},
                {
                    "payload": _dumps(payload),
                    "state": IntentState.PENDING.value,
                    "failure_reason": None,
                    "updated_at": self._now(),
                },
            )
            return IntentState.PENDING

    def intents(
        self,
        connection_id: str,
        kind: IntentKind | None = None,
        state: IntentState | None = IntentState.PENDING,
        *,
        order_id: str | None = None,
    ) -> list[Intent]:
        where, args = ["connection_id = ?"], [connection_id]
        if order_id is not None:
            where.append("order_id = ?")
            args.append(order_id)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind.value)
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        rows = self._rows(f"SELECT * FROM outbox WHERE {' AND '.join(where)} ORDER BY id", args)
        return [Intent.from_row(r) for r in rows]

    def pending_intent_kinds(
        self, connection_id: str, order_ids: Sequence[str]
    ) -> dict[str, set[IntentKind]]:
        """The kinds of each order's pending intents (no payloads; orders with none are
        left out)."""
        found: dict[str, set[IntentKind]] = {}
        for chunk in _chunks(order_ids):
            marks = ",".join("?" for _ in chunk)
            rows = self.db.conn.execute(
                f"SELECT order_id, kind FROM outbox WHERE connection_id = ? "
                f"AND order_id IN ({marks}) AND state = ?",
                [connection_id, *chunk, IntentState.PENDING.value],
            ).fetchall()
            for order_id, kind in rows:
                found.setdefault(order_id, set()).add(IntentKind(kind))
        return found

    def intent(self, connection_id: str, kind: IntentKind, key: str) -> Intent | None:
        rows = self._rows(
            "SELECT * FROM outbox WHERE connection_id = ? AND kind = ? AND key = ?",
            [connection_id, kind.value, key],
        )
        return Intent.from_row(rows[0]) if rows else None

    def begin_attempt(self, intent: Intent, lease: Lease | None) -> None:
        """Commit ``attempts += 1`` before the external call (fenced by the lease)."""
        self.begin_attempts([intent], lease)

    def begin_attempts(self, intents: Sequence[Intent], lease: Lease | None) -> None:
        """:meth:`begin_attempt` for several intents in one transaction."""
        now = self._now()
        with self.transaction() as db:
            if lease is not None:
                self.check_lease(lease)
            db.conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, updated_at = ? WHERE id = ?",
                [(now, intent.id) for intent in intents],
            )
        for intent in intents:
            intent.attempts += 1

    def finish_intent(
        self,
        intent: Intent,
        state: IntentState,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction():
            self._update(
                "outbox",
                {"id": intent.id},
                {
                    "state": state.value,
                    "failure_reason": reason,
                    "last_error": GLOBAL_REDACTOR(error) if error else error,
                    "updated_at": self._now(),
                },
            )
        intent.state = state

    def note_intent_error(self, intent: Intent, error: str) -> None:
        with self.transaction():
            self._update(
                "outbox",
                {"id": intent.id},
                {"last_error": GLOBAL_REDACTOR(error), "updated_at": self._now()},
            )

    def retry_failed(self, connection_id: str | None = None) -> dict[str, int]:
        """Move failed intents and orders back to pending; return counts."""
        counts = {"intents": 0, "orders": 0, "failures": 0}
        where = "state = ?" + (" AND connection_id = ?" if connection_id else "")
        args: list[Any] = [IntentState.FAILED.value] + ([connection_id] if connection_id else [])
        with self.transaction() as db:
            counts["intents"] = db.execute(
                f"UPDATE outbox SET state = 'pending', failure_reason = NULL WHERE {where}", args
            ).rowcount
            ow = "state = ?" + (" AND connection_id = ?" if connection_id else "")
            oargs: list[Any] = [OrderState.FAILED.value] + (
                [connection_id] if connection_id else []
            )
            counts["orders"] = db.execute(
                f"UPDATE orders SET state = 'queued', failure_reason = NULL, failure_message = NULL "
                f"WHERE {ow}",
                oargs,
            ).rowcount
            fw = "1 = 1" + (" AND connection_id = ?" if connection_id else "")
            counts["failures"] = db.execute(
                f"DELETE FROM failures WHERE {fw}", [connection_id] if connection_id else []
            ).rowcount
        return counts

    # -- failures --------------------------------------------------------------

    def record_failure(
        self, connection_id: str, kind: str, key: str, reason: str, message: str
    ) -> None:
        now = self._now()
        message = GLOBAL_REDACTOR(message)
        with self.transaction() as db:
            existing = list(
                db.table("failures").rows_where(
                    "connection_id = ? AND kind = ? AND key = ?", [connection_id, kind, key]
                )
            )
            attempts = existing[0]["attempts"] + 1 if existing else 1
            first = existing[0]["first_at"] if existing else now
            db.table("failures").upsert(
                {
                    "connection_id": connection_id,
                    "kind": kind,
                    "key": key,
                    "reason": reason,
                    "message": message,
                    "attempts": attempts,
                    "first_at": first,
                    "last_at": now,
                },
                pk=("connection_id", "kind", "key"),
            )

    def clear_failures(self, connection_id: str, kind: str, keys: Sequence[str]) -> None:
        """:meth:`clear_failure` for several keys."""
        with self.transaction():
            for chunk in _chunks(keys):
                marks = ",".join("?" for _ in chunk)
                self.db.conn.execute(
                    f"DELETE FROM failures WHERE connection_id = ? AND kind = ? AND key IN ({marks})",
                    [connection_id, kind, *chunk],
                )

    def clear_failure(self, connection_id: str, kind: str, key: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM failures WHERE connection_id = ? AND kind = ? AND key = ?",
                [connection_id, kind, key],
            )

    def failures(self, connection_id: str | None = None) -> list[dict[str, Any]]:
        if connection_id:
            return list(self.db.table("failures").rows_where("connection_id = ?", [connection_id]))
        return list(self.db.table("failures").rows)

    # -- stock -----------------------------------------------------------------

    def pushed_stock(self, connection_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT sku, quantity FROM stock_pushed WHERE connection_id = ?", [connection_id]
        ).fetchall()
        return {sku: qty for sku, qty in rows}

    def record_pushed(self, connection_id: str, quantities: dict[str, int]) -> None:
        now = self._now()
        with self.transaction() as db:
            db.table("stock_pushed").upsert_all(
                [
                    {"connection_id": connection_id, "sku": sku, "quantity": qty, "pushed_at": now}
                    for sku, qty in quantities.items()
                ],
                pk=("connection_id", "sku"),
            )

    # -- quota -----------------------------------------------------------------

    def quota_used(self, connection_id: str, month: str) -> int:
        rows = list(
            self.db.table("quota_usage").rows_where(
                "connection_id = ? AND month = ?", [connection_id, month]
            )
        )
        return int(rows[0]["used"]) if rows else 0

    def consume_quota(self, connection_id: str, month: str, orders: int = 1) -> None:
        with self.transaction():
            self.db.conn.execute(
                "INSERT INTO quota_usage (connection_id, month, used) VALUES (?, ?, ?) "
                "ON CONFLICT(connection_id, month) DO UPDATE SET used = used + excluded.used",
                [connection_id, month, orders],
            )

    def counts_by_state(self, connection_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM orders WHERE connection_id = ? GROUP BY state",
            [connection_id],
        ).fetchall()
        return {state: n for state, n in rows}
