from __future__ import annotations

import asyncio
from datetime import timedelta

from engine import hookimpl
from engine.errors import FatalAPIError, RetriableAPIError
from engine.models import OrderStatus
from engine.state import IntentKind, IntentState, OrderState
from engine.sync.carriers import map_carrier
from tests.conftest import connection_data
from tests.fakes import FakeMarketplace, FakeShop


async def imported(make_engine, world, *order_ids, skus=None, **conn):
    world.add_product("SKU-1")
    world.add_product("SKU-2")
    for oid in order_ids:
        world.add_order(oid, skus or {"SKU-1": 1})
    engine = make_engine(connection_data(**conn))
    await engine.run_flow("c1", "orders")
    # The shipments flow starts "from now": read once so the cursor exists.
    await engine.run_flow("c1", "shipments")
    return engine


async def test_shipment_confirmed_with_mapped_carrier(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.ship("A-1", carrier="DHL Paket", tracking="00340434")
    report = await engine.run_flow("c1", "shipments")
    assert report.counts["shipments confirmed"] == 1
    assert world.confirmations == [("A-1", "F-1", "DHL")]
    assert engine.store.get_order("c1", "A-1").state is OrderState.SHIPPED


async def test_unknown_carrier_uses_default_service(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.ship("A-1", carrier="Hermes Kurier")
    await engine.run_flow("c1", "shipments")
    assert world.confirmations == [("A-1", "F-1", "Other")]
    log = engine.store.order_log("c1", "A-1")[-1]
    assert "unknown" in log["detail"] and "Hermes Kurier" in log["detail"]


def test_map_carrier_rules():
    allowed = frozenset({"DHL", "UPS", "Other"})
    assert map_carrier("dhl", {}, allowed, "Other") == "DHL"
    assert map_carrier("DHL Paket", {"dhl paket": "DHL"}, allowed, "Other") == "DHL"
    assert map_carrier("GLS", {"GLS": "GLS"}, allowed, "Other") == "Other"  # mapped but not allowed
    assert map_carrier(None, {}, allowed, "UPS") == "UPS"


async def test_partial_shipments_confirm_each_package(make_engine, world):
    engine = await imported(make_engine, world, "A-1", skus={"SKU-1": 2, "SKU-2": 1})
    world.ship("A-1", {"SKU-1": 1}, tracking="T1")
    await engine.run_flow("c1", "shipments")
    assert engine.store.get_order("c1", "A-1").state is OrderState.PARTIALLY_SHIPPED
    world.ship("A-1", {"SKU-1": 1, "SKU-2": 1}, tracking="T2")
    await engine.run_flow("c1", "shipments")
    assert [c[1] for c in world.confirmations] == ["F-1", "F-2"]
    assert engine.store.get_order("c1", "A-1").state is OrderState.SHIPPED


async def test_each_shipment_confirmed_once_across_runs(make_engine, world):
    engine = await imported(make_engine, world, "A-1", "A-2", "A-3", "A-4")
    for oid in ("A-1", "A-2", "A-3", "A-4"):
        world.ship(oid)
    await engine.run_flow("c1", "shipments")
    await engine.run_flow("c1", "shipments")
    assert sorted(c[0] for c in world.confirmations) == ["A-1", "A-2", "A-3", "A-4"]


async def test_shop_cancellation_cancels_on_marketplace_in_one_batch(make_engine, world):
    engine = await imported(make_engine, world, "A-1", "A-2", "A-3")
    world.cancel_in_shop("A-1")
    world.cancel_in_shop("A-2")
    report = await engine.run_flow("c1", "shipments")
    assert report.counts["cancelled on marketplace"] == 2
    assert world.amazon_cancellations == [("A-1", "NoInventory"), ("A-2", "NoInventory")]
    assert world.calls.count("mkt.cancel.before") == 1
    assert engine.store.get_order("c1", "A-1").state is OrderState.CANCELLED
    # The marketplace now reports it cancelled: no echo back into the shop.
    world.now += timedelta(minutes=10)
    await engine.run_flow("c1", "orders")
    assert world.calls.count("shop.cancel.before") == 0


async def test_rejected_cancellation_is_a_typed_failure(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.cancel_in_shop("A-1")
    world.fail_next["mkt.cancel.before"] = FatalAPIError(
        "order already shipped", status=400, code="InvalidInput"
    )
    await engine.run_flow("c1", "shipments")
    intent = engine.store.intent("c1", IntentKind.CANCEL_ON_MARKETPLACE, "A-1")
    assert intent.state is IntentState.FAILED
    [failure] = engine.store.failures("c1")
    assert (failure["kind"], failure["key"], failure["reason"]) == (
        "cancellation",
        "A-1",
        "marketplace_rejected",
    )
    assert "order already shipped" in failure["message"]


async def test_rejected_confirmation_is_a_marketplace_failure(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.ship("A-1")
    world.fail_next["mkt.confirm.before"] = FatalAPIError(
        "invalid carrier", platform="fake", operation="confirm", status=400, code="InvalidInput"
    )
    await engine.run_flow("c1", "shipments")
    intent = engine.store.intent("c1", IntentKind.CONFIRM_SHIPMENT, "F-1")
    assert intent.state is IntentState.FAILED
    [failure] = engine.store.failures("c1")
    assert (failure["kind"], failure["key"], failure["reason"]) == (
        "shipment",
        "F-1",
        "marketplace_rejected",
    )
    engine.store.retry_failed("c1")
    await engine.run_flow("c1", "shipments")
    assert [c[1] for c in world.confirmations] == ["F-1"]


async def test_shipment_of_unknown_order_is_ignored(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.add_order("NOT-OURS")
    from engine.models import Shipment, ShipmentLine

    world.shop_events.append(
        (
            world.now,
            Shipment(
                shipment_id="X",
                marketplace_order_id="NOT-OURS",
                shop_order_id="Z",
                lines=(ShipmentLine(sku="SKU-1", quantity=1),),
                shipped_at=world.now,
            ),
        )
    )
    await engine.run_flow("c1", "shipments")
    assert world.confirmations == []


async def test_retriable_confirm_error_is_retried_after_reconcile(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.ship("A-1")
    world.fail_next["mkt.confirm.before"] = RetriableAPIError("timeout")
    await engine.run_flow("c1", "shipments")
    assert world.confirmations == []
    await engine.run_flow("c1", "shipments")
    assert len(world.confirmations) == 1


async def test_shipment_before_the_first_shipments_run_is_not_lost(make_engine, world):
    """Shop changes are read from before the first import: no history replayed, nothing lost."""
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.ship("A-1")  # happened before the shipments flow ever ran
    await engine.run_flow("c1", "shipments")
    assert [c[0] for c in world.confirmations] == ["A-1"]
    world.add_order("A-2")
    world.now += timedelta(minutes=5)
    await engine.run_flow("c1", "orders")
    world.ship("A-2")
    await engine.run_flow("c1", "shipments")
    assert [c[0] for c in world.confirmations] == ["A-1", "A-2"]


async def test_cancelled_order_status_in_marketplace_blocks_duplicate_cancel(make_engine, world):
    engine = await imported(make_engine, world, "A-1")
    world.update_order("A-1", status=OrderStatus.CANCELLED)
    world.now += timedelta(minutes=10)
    await engine.run_flow("c1", "orders")
    world.cancel_in_shop("A-1")  # our own cancellation echoing back
    await engine.run_flow("c1", "shipments")
    assert world.amazon_cancellations == []


async def test_shop_skus_are_translated_back_to_marketplace_skus(make_engine, world):
    """A shop that matches by EAN reports its own SKU; Amazon must get its SKU and line id."""
    from engine.models import Shipment, ShipmentLine

    engine = await imported(make_engine, world, "A-1", skus={"SKU-1": 1, "SKU-2": 1})
    shop_id = world.shop_order_for("A-1")[0].id
    world.shop_events.append(
        (
            world.now,
            Shipment(
                shipment_id="EAN-SHIP",
                marketplace_order_id="A-1",
                shop_order_id=shop_id,
                lines=(
                    ShipmentLine(sku="P-SKU-1", quantity=1),
                    ShipmentLine(sku="shop-own", quantity=1, line_id="A-1-1"),
                ),
                carrier="DHL",
                shipped_at=world.now,
            ),
        )
    )
    await engine.run_flow("c1", "shipments")
    intent = engine.store.intent("c1", IntentKind.CONFIRM_SHIPMENT, "EAN-SHIP")
    lines = [(line["sku"], line["line_id"]) for line in intent.payload["lines"]]
    assert lines == [("SKU-1", "A-1-0"), ("SKU-2", "A-1-1")]
    assert engine.store.get_order("c1", "A-1").state is OrderState.SHIPPED


class FailureRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    @hookimpl
    def item_failed(self, connection_id, kind, key, reason, message):  # noqa: ANN001, ANN201
        self.calls.append((kind, key, reason))


async def test_unreadable_shop_records_fail_alone_and_the_cursor_moves(
    make_engine, world, fake_plugins
):
    recorder = FailureRecorder()
    fake_plugins.pm.register(recorder)
    engine = await imported(make_engine, world, "A-1", "A-2", "A-3")
    world.unreadable_in_shop("shipment", "F-BAD", "A-1", "fulfilment F-BAD: quantity -2")
    world.ship("A-2")
    world.unreadable_in_shop("cancellation", "S9", None, "order S9: cancelled_at 'yesterday'")
    world.unreadable_in_shop("shipment", "F-ELSE", "WEB-7", "a web-shop order, not ours")
    world.ship("A-3")  # on the next page (three records a page)
    report = await engine.run_flow("c1", "shipments")
    assert sorted(c[0] for c in world.confirmations) == ["A-2", "A-3"]
    assert report.counts["rejected shop records"] == 2
    failures = {(f["kind"], f["key"]): f for f in engine.store.failures("c1")}
    assert sorted(failures) == [("cancellation", "S9"), ("shipment", "F-BAD")]
    bad = failures[("shipment", "F-BAD")]
    assert bad["reason"] == "invalid_shop_data"
    assert "order A-1" in bad["message"] and "quantity -2" in bad["message"]
    assert failures[("cancellation", "S9")]["reason"] == "invalid_shop_data"
    assert recorder.calls == [
        ("shipment", "F-BAD", "invalid_shop_data"),
        ("cancellation", "S9", "invalid_shop_data"),
    ]
    # `orders show A-1` lists it in the order's log.
    log = engine.store.order_log("c1", "A-1")[-1]
    assert log["action"] == "shipment failed" and "quantity -2" in log["detail"]
    assert engine.store.get_cursor("c1", "shipments") == str(len(world.shop_events))
    # Read again (a shop's look-back): recorded and announced once.
    engine.store.set_cursor("c1", "shipments", "0")
    await engine.run_flow("c1", "shipments")
    assert [f["attempts"] for f in engine.store.failures("c1")] == [1, 1]
    assert len(recorder.calls) == 2
    assert sorted(c[0] for c in world.confirmations) == ["A-2", "A-3"]


async def test_absurd_shipment_fields_never_reach_the_marketplace(make_engine, world):
    engine = await imported(make_engine, world, "A-1", "A-2")
    world.ship("A-1", tracking="T" * 10_000_000)
    world.ship("A-2", tracking="TRK-OK")
    report = await engine.run_flow("c1", "shipments")
    assert world.confirmations == [("A-2", "F-2", "DHL")]
    assert report.counts["rejected shop records"] == 1
    [failure] = engine.store.failures("c1")
    assert (failure["kind"], failure["key"], failure["reason"]) == (
        "shipment",
        "F-1",
        "invalid_shop_data",
    )
    assert "tracking_number is 10,000,000 characters long" in failure["message"]
    assert engine.store.intent("c1", IntentKind.CONFIRM_SHIPMENT, "F-1") is None
    stored = engine.store.db.execute(
        "SELECT (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox)"
        " + (SELECT SUM(LENGTH(detail)) FROM order_log)"
        " + (SELECT SUM(LENGTH(message)) FROM failures)"
    ).fetchone()[0]
    assert stored < 20_000
    # The merchant fixes the tracking number: a new fulfilment, confirmed.
    world.ship("A-1", tracking="00340434")
    await engine.run_flow("c1", "shipments")
    assert [c[1] for c in world.confirmations] == ["F-2", "F-3"]
    assert engine.store.get_order("c1", "A-1").state is OrderState.SHIPPED


async def test_shipments_read_while_confirming_are_confirmed_before_the_next_page(
    make_engine, world, monkeypatch
):
    """A page committed while the confirmer is busy is confirmed as soon as it is free,
    not only once the shop's next page arrives (shop pages can be slow)."""
    orders = [f"A-{n}" for n in range(9)]
    engine = await imported(make_engine, world, *orders)
    for oid in orders:
        world.ship(oid)  # three pages of three
    confirm, read = FakeMarketplace.confirm_shipment, FakeShop.changes_since
    page_two_confirmed_before_page_three: list[bool] = []

    async def slow_confirm(self, order, shipment, carrier_code):  # noqa: ANN001, ANN202
        await asyncio.sleep(0.02)
        await confirm(self, order, shipment, carrier_code)

    async def until(condition, seconds: float) -> bool:  # noqa: ANN001
        deadline = asyncio.get_running_loop().time() + seconds
        while not condition() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        return bool(condition())

    async def paced_pages(self, cursor):  # noqa: ANN001, ANN202
        page = (int(cursor or 0) - first) // world.page_size
        if page == 1:  # page two: once the confirmer is busy with page one
            await until(lambda: "mkt.confirm.before" in world.calls, 2.0)
        if page == 2:  # page three: is page two confirmed meanwhile?
            done = await until(lambda: len(world.confirmations) >= 6, 1.0)
            page_two_confirmed_before_page_three.append(done)
        return await read(self, cursor)

    first = int(engine.store.get_cursor("c1", "shipments") or 0)
    world.calls.clear()
    monkeypatch.setattr(FakeMarketplace, "confirm_shipment", slow_confirm)
    monkeypatch.setattr(FakeShop, "changes_since", paced_pages)
    report = await engine.run_flow("c1", "shipments")
    assert page_two_confirmed_before_page_three == [True]
    assert report.counts["shipments confirmed"] == 9
    assert sorted(c[0] for c in world.confirmations) == orders
