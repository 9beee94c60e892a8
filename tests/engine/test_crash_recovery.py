"""A crash at every intent step, then a restart from the state DB: nothing twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.models import OrderStatus
from engine.state import IntentState, OrderState, StateStore
from tests.fakes import Crash

STORE_POINTS = ["store.upsert_intent", "store.begin_attempts", "store.finish_intent"]


def crash_in_store(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make the named StateStore method raise Crash once (a process dying there)."""
    name = point.split(".", 1)[1]
    original = getattr(StateStore, name)
    armed = {"on": True}

    def crashing(self, *args, **kwargs):
        if armed["on"]:
            armed["on"] = False
            raise Crash(point)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StateStore, name, crashing)


def arm(monkeypatch, world, point: str) -> None:
    if point.startswith("store."):
        crash_in_store(monkeypatch, point)
    else:
        world.crash_at.add(point)


async def run_crashing(engine, flow: str) -> bool:
    try:
        await engine.run_flow("c1", flow)
    except Crash:
        return True
    return False


def assert_no_open_intents(store: StateStore) -> None:
    assert store.intents("c1", state=IntentState.PENDING) == []


@pytest.mark.parametrize(
    "point", ["shop.find", "shop.create.before", "shop.create.after", *STORE_POINTS]
)
async def test_import_crash(point, make_engine, world, monkeypatch):
    world.add_product("SKU-1")
    for i in range(3):
        world.add_order(f"A-{i}")
    engine = make_engine()
    arm(monkeypatch, world, point)
    assert await run_crashing(engine, "orders"), f"crash point {point} was never reached"
    # In the shop, but not recorded as imported: the crash lost the answer.
    unrecorded = [
        o.marketplace_order_id
        for o in world.shop_orders
        if engine.store.get_order("c1", o.marketplace_order_id).state is not OrderState.IMPORTED
    ]
    restarted = make_engine()
    await restarted.run_flow("c1", "orders")
    for i in range(3):
        assert len(world.shop_order_for(f"A-{i}")) == 1, f"A-{i} after crash at {point}"
        assert restarted.store.get_order("c1", f"A-{i}").state is OrderState.IMPORTED
    assert_no_open_intents(restarted.store)
    if point in ("shop.create.after", "store.finish_intent"):
        assert unrecorded  # the crash came after a create
    # Each order found instead of created is finished by the shop connector, once.
    assert world.calls.count("shop.complete") == len(unrecorded)


@pytest.mark.parametrize(
    "point",
    ["shop.cancel.before", "shop.cancel.after", "store.begin_attempts", "store.finish_intent"],
)
async def test_cancel_in_shop_crash(point, make_engine, world, monkeypatch):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=10)
    world.update_order("A-1", status=OrderStatus.CANCELLED)
    arm(monkeypatch, world, point)
    assert await run_crashing(engine, "orders")
    restarted = make_engine()
    await restarted.run_flow("c1", "orders")
    assert world.shop_order_for("A-1")[0].cancelled
    assert len(world.shop_orders) == 1
    assert restarted.store.get_order("c1", "A-1").state is OrderState.CANCELLED
    assert_no_open_intents(restarted.store)


@pytest.mark.parametrize(
    "point",
    ["mkt.confirm.before", "mkt.confirm.after", "store.begin_attempt", "store.finish_intent"],
)
async def test_confirm_shipment_crash(point, make_engine, world, monkeypatch):
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("A-2")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    await engine.run_flow("c1", "shipments")
    world.ship("A-1")
    world.ship("A-2")
    arm(monkeypatch, world, point)
    assert await run_crashing(engine, "shipments")
    restarted = make_engine()
    await restarted.run_flow("c1", "shipments")
    assert sorted(c[1] for c in world.confirmations) == ["F-1", "F-2"]
    assert_no_open_intents(restarted.store)


@pytest.mark.parametrize(
    "point", ["mkt.cancel.before", "mkt.cancel.after", "store.begin_attempt", "store.finish_intent"]
)
async def test_cancel_on_marketplace_crash(point, make_engine, world, monkeypatch):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    await engine.run_flow("c1", "shipments")
    world.cancel_in_shop("A-1")
    arm(monkeypatch, world, point)
    assert await run_crashing(engine, "shipments")
    restarted = make_engine()
    await restarted.run_flow("c1", "shipments")
    assert world.amazon_cancellations == [("A-1", "NoInventory")]
    assert restarted.store.get_order("c1", "A-1").state is OrderState.CANCELLED
    assert_no_open_intents(restarted.store)


async def test_crash_mid_window_leaves_cursor_and_loses_nothing(make_engine, world, monkeypatch):
    world.add_product("SKU-1")
    for i in range(9):  # three pages of three
        world.add_order(f"A-{i}")
    world.crash_at.add("mkt.page")
    engine = make_engine()
    world.calls.clear()
    # Let the first page through, crash on the second.
    original = world.point

    def second_page(name):
        if name == "mkt.page" and world.calls.count("mkt.page") == 1:
            world.calls.append(name)
            raise Crash(name)
        if name == "mkt.page":
            world.calls.append(name)
            return None
        return original(name)

    world.crash_at.clear()
    monkeypatch.setattr(world, "point", second_page)
    assert await run_crashing(engine, "orders")
    assert engine.store.get_cursor("c1", "orders") is None
    monkeypatch.setattr(world, "point", original)
    restarted = make_engine()
    await restarted.run_flow("c1", "orders")
    assert sorted(o.marketplace_order_id for o in world.shop_orders) == [f"A-{i}" for i in range(9)]


async def test_crash_while_recording_an_unreadable_shop_record(make_engine, world, monkeypatch):
    """A page's rejected records, intents and cursor commit together: a crash while the
    failure is written leaves the page unread, and the restart records it all once."""
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("A-2")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.ship("A-1")
    world.unreadable_in_shop("shipment", "F-BAD", "A-2", "fulfilment F-BAD: quantity -1")
    crash_in_store(monkeypatch, "store.record_failure")
    assert await run_crashing(engine, "shipments")
    assert world.confirmations == []
    assert engine.store.failures("c1") == []
    restarted = make_engine()
    await restarted.run_flow("c1", "shipments")
    await restarted.run_flow("c1", "shipments")
    assert [c[1] for c in world.confirmations] == ["F-1"]
    [failure] = restarted.store.failures("c1")
    assert (failure["key"], failure["reason"], failure["attempts"]) == (
        "F-BAD",
        "invalid_shop_data",
        1,
    )
    assert_no_open_intents(restarted.store)
