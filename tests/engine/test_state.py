"""StateStore details the flows rely on: raw payloads, the parse cache, batched
attempts, lease renewal and redaction of stored messages."""

from __future__ import annotations

import json
import threading
import time

import pytest

from engine.errors import LeaseLost
from engine.redact import GLOBAL_REDACTOR
from engine.state import IntentKind, OrderCache, OrderState, StateStore
from engine.testing.conformance import sample_order


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def test_raw_payload_is_kept_apart_and_read_on_demand(store):
    order = sample_order("R-1", {"SKU-1": 1}).model_copy(update={"raw": {"orderId": "R-1"}})
    store.save_order("c1", order, OrderState.QUEUED)
    record = store.get_order("c1", "R-1")
    assert record is not None and record.order.raw == {}
    assert record.order.model_dump(exclude={"raw"}) == order.model_dump(exclude={"raw"})
    assert store.order_raw("c1", "R-1") == {"orderId": "R-1"}
    [payload] = store.db.execute("SELECT payload FROM orders").fetchone()
    assert "raw" not in json.loads(payload)


def test_raw_payload_of_an_order_saved_before_the_raw_column(store):
    order = sample_order("R-2", {"SKU-1": 1}).model_copy(update={"raw": {"old": True}})
    store.save_order("c1", order, OrderState.QUEUED)
    store.db.execute(
        "UPDATE orders SET raw = NULL, payload = ? WHERE order_id = 'R-2'",
        [order.model_dump_json()],
    )
    assert store.order_raw("c1", "R-2") == {"old": True}
    assert store.order_raw("c1", "NO-SUCH") == {}


def test_an_order_read_again_is_not_parsed_again(store):
    store.save_order("c1", sample_order("P-1", {"SKU-1": 1}), OrderState.QUEUED)
    first = store.get_order("c1", "P-1")
    again = store.get_orders("c1", ["P-1", "NOPE"])
    assert set(again) == {"P-1"}
    assert first is not None and again["P-1"].order is first.order
    store.set_order_state("c1", "P-1", OrderState.IMPORTED)  # state changes, payload does not
    assert store.get_order("c1", "P-1").order is first.order  # type: ignore[union-attr]


def test_order_cache_is_bounded_least_recently_used_first():
    cache = OrderCache(size=2)
    payloads = [sample_order(f"C-{n}", {"S": 1}).model_dump_json() for n in range(3)]
    a = cache.parse(payloads[0])
    cache.parse(payloads[1])
    assert cache.parse(payloads[0]) is a  # touched: now the most recent
    cache.parse(payloads[2])  # evicts payloads[1]
    assert len(cache._orders) == 2 and payloads[1] not in cache._orders
    assert cache.parse(payloads[0]) is a


def test_order_ids_in_states_oldest_first_without_payloads(store):
    for n, state in enumerate([OrderState.QUEUED, OrderState.HELD, OrderState.IMPORTED]):
        store.save_order("c1", sample_order(f"S-{n}", {"S": 1}), state)
    ids = store.order_ids_in_states("c1", frozenset({OrderState.QUEUED, OrderState.HELD}))
    assert sorted(ids) == [("S-0", OrderState.QUEUED), ("S-1", OrderState.HELD)]


def test_begin_attempts_counts_every_intent_and_is_fenced(store):
    for key in ("A", "B"):
        store.add_intent("c1", IntentKind.IMPORT, key, key, {})
    intents = store.intents("c1", IntentKind.IMPORT)
    lease = store.acquire_lease("c1", ttl=60)
    store.begin_attempts(intents, lease)
    assert [i.attempts for i in store.intents("c1", IntentKind.IMPORT)] == [1, 1]

    other = StateStore(store.path, owner="someone-else")
    store.db.execute("UPDATE leases SET expires_at = 0")
    assert other.acquire_lease("c1") is not None
    with pytest.raises(LeaseLost):
        store.begin_attempts(intents, lease)
    assert [i.attempts for i in store.intents("c1", IntentKind.IMPORT)] == [1, 1]
    other.close()


def test_lease_renewal_uses_the_configured_ttl(store):
    lease = store.acquire_lease("c1", ttl=5)
    assert lease is not None
    store.check_lease(lease)
    [expires] = store.db.execute("SELECT expires_at FROM leases").fetchone()
    assert expires - time.time() <= 5.5


def test_stored_messages_are_redacted(store):
    GLOBAL_REDACTOR.add("s3cr3t-in-a-message")
    store.save_order("c1", sample_order("F-1", {"S": 1}), OrderState.QUEUED)
    store.record_failure("c1", "order", "F-1", "shop_rejected", "token s3cr3t-in-a-message bad")
    store.log("c1", "F-1", "local", "failed", "with s3cr3t-in-a-message")
    store.set_order_state("c1", "F-1", OrderState.FAILED, failure_message="got s3cr3t-in-a-message")
    store.add_intent("c1", IntentKind.IMPORT, "F-1", "F-1", {})
    [intent] = store.intents("c1", IntentKind.IMPORT)
    store.note_intent_error(intent, "s3cr3t-in-a-message")
    dump = "\n".join(store.db.iterdump())
    assert "s3cr3t-in-a-message" not in dump
    assert dump.count("***") >= 4


def test_after_commit_runs_on_commit_only(store):
    ran: list[str] = []
    store.after_commit(lambda: ran.append("now"))  # no transaction open
    with store.transaction():
        store.after_commit(lambda: ran.append("outer"))
        with store.transaction():
            store.after_commit(lambda: ran.append("nested"))
        assert ran == ["now"]  # nothing before the outermost commit
    assert ran == ["now", "outer", "nested"]

    def rolled_back() -> None:
        with store.transaction():
            store.after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        rolled_back()
    with store.transaction():
        pass
    assert ran == ["now", "outer", "nested"]


def test_notifier_hears_nothing_of_a_rolled_back_failure(store):
    from engine.sync.context import GuardedHooks

    heard: list[str] = []

    class Hooks:
        def item_failed(self, **kwargs):  # noqa: ANN003, ANN201
            heard.append(kwargs["key"])

    hooks = GuardedHooks(Hooks(), store)

    def rolled_back() -> None:
        with store.transaction():
            hooks.item_failed(key="lost")
            raise RuntimeError("the failure was never committed")

    with pytest.raises(RuntimeError):
        rolled_back()
    with store.transaction():
        hooks.item_failed(key="kept")
    assert heard == ["kept"]


def _open_together(path, count: int) -> tuple[list[StateStore], list[Exception]]:
    opened: list[StateStore] = []
    failed: list[Exception] = []
    start = threading.Barrier(count)

    def open_store() -> None:
        start.wait()
        try:
            opened.append(StateStore(path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            failed.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened, failed


def test_many_processes_opening_a_new_state_file_at_once_all_succeed(tmp_path):
    """Two daemons started together: switching a new file to WAL takes an exclusive
    lock that SQLite does not wait for, so the second open used to fail "locked"."""
    for round_ in range(20):
        opened, failed = _open_together(tmp_path / f"state-{round_}.db", 8)
        assert failed == [] and len(opened) == 8
        assert {s.db.execute("PRAGMA journal_mode").fetchone()[0] for s in opened} == {"wal"}
        for store in opened:
            store.close()
