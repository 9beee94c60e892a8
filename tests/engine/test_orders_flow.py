from __future__ import annotations

from datetime import timedelta

from engine.errors import RetriableAPIError
from engine.models import Address, Buyer, OrderStatus
from engine.state import IntentKind, IntentState, OrderState
from tests.conftest import connection_data


async def test_imports_each_order_once_with_its_shop_reference(make_engine, world):
    world.add_product("SKU-1")
    for i in range(7):
        world.add_order(f"A-{i}")
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report.counts["imported"] == 7
    assert len(world.shop_orders) == 7
    record = engine.store.get_order("c1", "A-3")
    assert record.state is OrderState.IMPORTED
    assert record.shop_order_id == world.shop_order_for("A-3")[0].id
    # A second run re-reads the lookback window and creates nothing new.
    world.now += timedelta(minutes=1)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_orders) == 7


async def test_find_before_create_adopts_an_existing_shop_order(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    # Pretend the state DB was lost: a fresh engine on a new DB must not duplicate.
    engine.store.db.execute("DELETE FROM orders")
    engine.store.db.execute("DELETE FROM outbox")
    engine.store.db.execute("DELETE FROM cursors")
    await engine.run_flow("c1", "orders")
    assert len(world.shop_orders) == 1
    assert engine.store.get_order("c1", "A-1").state is OrderState.IMPORTED


async def test_pending_orders_wait_until_released(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1", status=OrderStatus.PENDING)
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    assert world.shop_orders == []
    assert engine.store.get_order("c1", "A-1").state is OrderState.PENDING
    world.now += timedelta(minutes=10)
    world.update_order("A-1", status=OrderStatus.UNSHIPPED)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_order_for("A-1")) == 1


async def test_cursor_never_skips_a_late_updated_order(make_engine, world):
    """An order whose update time lies before the cursor (indexing lag) is read by the lookback."""
    world.add_product("SKU-1")
    engine = make_engine(connection_data(lookback_minutes=30))
    await engine.run_flow("c1", "orders")
    cursor = engine.store.get_cursor("c1", "orders")
    world.now += timedelta(minutes=5)
    # Appears only now, but Amazon stamps it 20 minutes before the cursor.
    from datetime import datetime

    late = datetime.fromisoformat(cursor) - timedelta(minutes=20)
    world.add_order("LATE-1", updated_at=late)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_order_for("LATE-1")) == 1


async def test_cursor_does_not_move_when_reading_fails(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.fail_next["mkt.page"] = RetriableAPIError("throttled", status=429)
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report.errors
    assert engine.store.get_cursor("c1", "orders") is None
    assert engine.store.runtime("c1")["status"] == "error"
    await engine.run_flow("c1", "orders")
    assert len(world.shop_order_for("A-1")) == 1


async def test_window_ends_before_the_safety_margin(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("RECENT", updated_at=world.now - timedelta(seconds=30))
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    assert world.shop_orders == []
    assert engine.store.get_cursor("c1", "orders") == (world.now - timedelta(minutes=2)).isoformat()
    world.now += timedelta(minutes=3)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_order_for("RECENT")) == 1


async def test_unknown_sku_fails_with_reason_and_retry_succeeds(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1", {"SKU-1": 1, "NOPE-9": 2})
    world.add_order("A-2")
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    record = engine.store.get_order("c1", "A-1")
    assert record.state is OrderState.FAILED
    assert record.failure_reason == "unknown_sku"
    assert "'NOPE-9'" in record.failure_message and "A-1" in record.failure_message
    assert report.counts["imported"] == 1  # the other order went through
    failures = engine.store.failures("c1")
    assert [(f["kind"], f["key"], f["reason"]) for f in failures] == [
        ("order", "A-1", "unknown_sku")
    ]
    world.add_product("NOPE-9")
    engine.store.retry_failed("c1")
    await engine.run_flow("c1", "orders")
    assert engine.store.get_order("c1", "A-1").state is OrderState.IMPORTED
    assert len(world.shop_order_for("A-1")) == 1
    assert engine.store.failures("c1") == []


async def test_invalid_address_fails_without_stopping_others(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("BAD", address=Address(name="X", country_code="DE"))
    world.add_order("GOOD")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    bad = engine.store.get_order("c1", "BAD")
    assert bad.state is OrderState.FAILED and bad.failure_reason == "invalid_address"
    assert "line1" in bad.failure_message and "city" in bad.failure_message
    assert len(world.shop_order_for("GOOD")) == 1


async def test_shop_rejection_is_recorded_and_retryable(make_engine, world):
    world.add_product("SKU-1")
    order = world.add_order("A-1")
    world.amazon["A-1"] = order.model_copy(update={"buyer": Buyer(name="REJECT")})
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    record = engine.store.get_order("c1", "A-1")
    assert record.state is OrderState.FAILED
    assert record.failure_reason == "shop_rejected"
    assert "customer name is invalid" in record.failure_message
    assert engine.store.intent("c1", IntentKind.IMPORT, "A-1").state is IntentState.FAILED


async def test_retriable_shop_error_keeps_the_intent_open(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.fail_next["shop.create.before"] = RetriableAPIError("503", status=503)
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    assert engine.store.get_order("c1", "A-1").state is OrderState.IMPORT_INTENDED
    await engine.run_flow("c1", "orders")
    assert engine.store.get_order("c1", "A-1").state is OrderState.IMPORTED
    assert len(world.shop_order_for("A-1")) == 1


async def test_amazon_cancellation_cancels_the_shop_order(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("A-2", status=OrderStatus.PENDING)
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=10)
    world.update_order("A-1", status=OrderStatus.CANCELLED)
    world.update_order("A-2", status=OrderStatus.CANCELLED)
    await engine.run_flow("c1", "orders")
    assert world.shop_order_for("A-1")[0].cancelled
    assert engine.store.get_order("c1", "A-1").state is OrderState.CANCELLED
    # Never imported: simply cancelled, nothing created.
    assert engine.store.get_order("c1", "A-2").state is OrderState.CANCELLED
    assert world.shop_order_for("A-2") == []
    actions = [row["action"] for row in engine.store.order_log("c1", "A-1")]
    assert actions == ["received", "imported", "cancel intended", "cancelled in shop"]


async def test_buyer_cancellation_request_is_logged(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=10)
    world.update_order("A-1", cancellation_requested=True)
    await engine.run_flow("c1", "orders")
    actions = [row["action"] for row in engine.store.order_log("c1", "A-1")]
    assert "buyer requested cancellation" in actions


async def test_quota_holds_orders_and_resumes_next_month(make_engine, world):
    world.add_product("SKU-1")
    for i in range(5):
        world.add_order(f"A-{i}")
    engine = make_engine(connection_data(orders_per_month=3))
    report = await engine.run_flow("c1", "orders")
    assert report.counts["imported"] == 3 and report.counts["held"] == 2
    held = engine.store.list_orders("c1", "held")
    assert len(held) == 2 and all(row["quota_month"] == "2026-11" for row in held)
    # Still November: nothing more.
    world.now += timedelta(minutes=5)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_orders) == 3
    # December: the held orders resume, oldest first, nothing dropped.
    world.now = world.now.replace(month=12, day=1)
    await engine.run_flow("c1", "orders")
    assert len(world.shop_orders) == 5
    assert engine.store.list_orders("c1", "held") == []


async def test_marketplace_fulfilled_orders_are_skipped_unless_configured(make_engine, world):
    from engine.models import FulfillmentChannel

    world.add_product("SKU-1")
    order = world.add_order("FBA-1")
    world.amazon["FBA-1"] = order.model_copy(
        update={"fulfillment_channel": FulfillmentChannel.MARKETPLACE}
    )
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    assert engine.store.get_order("c1", "FBA-1").state is OrderState.SKIPPED
    assert world.shop_orders == []


async def test_disabled_and_stock_only_connections(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine(
        connection_data(id="off", active=False),
        connection_data(id="stock", level="stock_only"),
    )
    assert await engine.run_flow("off", "orders") is None
    assert await engine.run_flow("off", "stock") is None
    assert await engine.run_flow("stock", "orders") is None
    assert await engine.run_flow("stock", "shipments") is None
    assert (await engine.run_flow("stock", "stock")).counts["pushed"] == 1
    assert world.shop_orders == []


async def test_unreadable_order_is_recorded_and_refetched_on_retry(make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("BROKEN")
    world.add_order("A-2")
    world.unreadable.add("BROKEN")
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report.counts["imported"] == 2 and report.counts["failed"] == 1
    failure = engine.store.failures("c1")[0]
    assert (failure["key"], failure["reason"]) == ("BROKEN", "invalid_order")
    assert "currency 'XXX'" in failure["message"]
    assert engine.store.get_cursor("c1", "orders") is not None  # the window moved on
    # Still broken: another run does not ask again until a retry is requested.
    world.now += timedelta(minutes=60)
    world.calls.clear()
    await engine.run_flow("c1", "orders")
    assert "mkt.get_order" not in world.calls
    world.unreadable.clear()
    engine.store.retry_failed("c1")
    await engine.run_flow("c1", "orders")
    assert len(world.shop_order_for("BROKEN")) == 1


async def test_imports_are_looked_up_in_batches_and_fail_one_by_one(
    make_engine, world, monkeypatch
):
    """One idempotency lookup per batch of intents; an order the shop rejects fails
    alone, the rest of its batch is imported."""
    from engine.sync import orders as orders_flow
    from tests.fakes import FakeShop

    lookups: list[list[str]] = []
    default = FakeShop.find_order_refs

    async def recording(self, ids):
        lookups.append(list(ids))
        return await default(self, ids)

    monkeypatch.setattr(FakeShop, "find_order_refs", recording)
    monkeypatch.setattr(orders_flow, "IMPORT_BATCH", 4)
    world.add_product("SKU-1")
    for i in range(10):
        world.add_order(f"A-{i}")
    rejected = world.amazon["A-5"]
    world.amazon["A-5"] = rejected.model_copy(update={"buyer": Buyer(name="REJECT")})
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert sorted(len(batch) for batch in lookups) == [2, 4, 4]
    assert sorted(i for batch in lookups for i in batch) == sorted(f"A-{i}" for i in range(10))
    assert report.counts["imported"] == 9
    assert engine.store.get_order("c1", "A-5").state is OrderState.FAILED
    assert {o.marketplace_order_id for o in world.shop_orders} == {
        f"A-{i}" for i in range(10) if i != 5
    }


async def test_queued_orders_are_imported_while_the_next_page_is_read(
    make_engine, world, monkeypatch
):
    """The shop's create waits until the marketplace has delivered the next page: an
    import that ran between pages, not beside them, would never finish."""
    import asyncio

    from engine.sync import orders as orders_flow
    from tests.fakes import FakeMarketplace, FakeShop

    monkeypatch.setattr(orders_flow, "IMPORT_EVERY", 2)
    world.page_size = 2
    world.add_product("SKU-1")
    for i in range(4):
        world.add_order(f"A-{i}")
    second_page = asyncio.Event()
    read = FakeMarketplace.orders_updated
    create = FakeShop.create_order

    async def reading(self, since, until):
        count = 0
        async for order in read(self, since, until):
            count += 1
            if count == 3:
                second_page.set()
            yield order

    async def creating(self, order, products):
        await asyncio.wait_for(second_page.wait(), timeout=5)
        return await create(self, order, products)

    monkeypatch.setattr(FakeMarketplace, "orders_updated", reading)
    monkeypatch.setattr(FakeShop, "create_order", creating)
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report.counts["imported"] == 4, report.errors
    assert len(world.shop_orders) == 4


async def test_an_order_changed_while_imports_run_is_not_imported(make_engine, world, monkeypatch):
    """Orders are read while earlier ones are imported: an order the import had queued
    but that changed meanwhile (here: cancelled) gets no import intent."""
    from tests.fakes import FakeShop

    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("A-2")
    engine = make_engine()
    resolve = FakeShop.resolve_products

    async def resolving(self, attribute, skus):
        engine.store.set_order_state("c1", "A-2", OrderState.CANCELLED)
        return await resolve(self, attribute, skus)

    monkeypatch.setattr(FakeShop, "resolve_products", resolving)
    await engine.run_flow("c1", "orders")
    assert [o.marketplace_order_id for o in world.shop_orders] == ["A-1"]
    assert engine.store.get_order("c1", "A-2").state is OrderState.CANCELLED
    assert engine.store.intent("c1", IntentKind.IMPORT, "A-2") is None


async def test_marketplace_cancellations_reach_the_shop_in_batches(make_engine, world, monkeypatch):
    """One lookup and one ``cancel_orders`` per batch; a cancellation the shop refuses
    fails alone and the others are done."""
    from engine.sync import orders as orders_flow
    from tests.fakes import FakeShop

    batches: list[list[str]] = []
    default = FakeShop.cancel_orders

    async def recording(self, items):
        batches.append([order.marketplace_order_id for _, order in items])
        results = await default(self, items)
        return [
            RetriableAPIError("shop busy") if order.marketplace_order_id == "A-3" else result
            for (_, order), result in zip(items, results, strict=True)
        ]

    monkeypatch.setattr(FakeShop, "cancel_orders", recording)
    monkeypatch.setattr(orders_flow, "CANCEL_BATCH", 4)
    world.add_product("SKU-1")
    for i in range(6):
        world.add_order(f"A-{i}")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=10)
    for i in range(6):
        world.update_order(f"A-{i}", status=OrderStatus.CANCELLED)
    report = await engine.run_flow("c1", "orders")
    assert sorted(len(b) for b in batches) == [2, 4]
    assert report.counts["cancelled in shop"] == 5
    states = {f"A-{i}": engine.store.get_order("c1", f"A-{i}").state for i in range(6)}
    assert states.pop("A-3") is OrderState.CANCEL_IN_SHOP_INTENDED  # retried next run
    assert set(states.values()) == {OrderState.CANCELLED}
    world.now += timedelta(minutes=10)
    monkeypatch.setattr(FakeShop, "cancel_orders", default)
    await engine.run_flow("c1", "orders")
    assert engine.store.get_order("c1", "A-3").state is OrderState.CANCELLED
    assert all(o.cancelled for o in world.shop_orders)


async def test_each_sku_is_resolved_once_per_run(make_engine, world, monkeypatch):
    from engine.sync import orders as orders_flow
    from tests.fakes import FakeShop

    asked: list[str] = []
    default = FakeShop.resolve_products

    async def recording(self, attribute, skus):
        asked.extend(skus)
        return await default(self, attribute, skus)

    monkeypatch.setattr(FakeShop, "resolve_products", recording)
    monkeypatch.setattr(orders_flow, "RESOLVE_BATCH", 2)
    world.add_product("SKU-1")
    for i in range(7):
        world.add_order(f"A-{i}")
    world.add_order("B-1", skus={"NO-SUCH": 1})
    world.add_order("B-2", skus={"NO-SUCH": 1})
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report.counts["imported"] == 7
    assert asked.count("SKU-1") == 1
    assert asked.count("NO-SUCH") == 2  # an unknown SKU is asked again: it may appear
