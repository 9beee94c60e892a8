"""Bad input from either side: a typed failure with a clear message, never a crash,
never a half-written order, and nothing lost once the other side heals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.state import IntentKind, IntentState, OrderState

ONE_SHOP = pytest.mark.parametrize("world", ["shopify"], indirect=True)


def corrupt(world, order_id: str, change) -> None:
    data = world.amazon.sim.order(order_id)
    change(data)


@ONE_SHOP
@pytest.mark.parametrize(
    ("label", "change", "words"),
    [
        (
            "negative quantity",
            lambda d: d["orderItems"][0].__setitem__("quantityOrdered", -3),
            "quantity",
        ),
        (
            "unknown currency",
            lambda d: d["proceeds"]["grandTotal"].__setitem__("currencyCode", "XXX"),
            "XXX",
        ),
        ("10 MB field", lambda d: d["buyer"].__setitem__("buyerName", "x" * 10_000_000), "1000"),
        (
            "schema-violating payload",
            lambda d: d["proceeds"]["grandTotal"].__setitem__("amount", "twelve euros"),
            "twelve euros",
        ),
    ],
)
async def test_absurd_amazon_orders_fail_typed_while_others_import(world, label, change, words):
    world.shop.add_product("BAD-A", 10)
    world.amazon.add_order("302-7000001-0000001", {"BAD-A": 1})
    world.amazon.add_order("302-7000002-0000002", {"BAD-A": 1})
    corrupt(world, "302-7000001-0000001", change)
    report = await world.run("orders")
    assert world.shop.count_orders("302-7000001-0000001") == 0, label
    assert world.shop.count_orders("302-7000002-0000002") == 1, label
    failures = {f["key"]: f for f in world.engine.store.failures("eu")}
    failure = failures["302-7000001-0000001"]
    assert failure["reason"] == "invalid_order", label
    assert words in failure["message"], (label, failure["message"][:300])
    assert len(failure["message"]) < 2000  # the 10 MB value is not copied into the record
    assert report.counts["failed"] == 1
    # Retryable: once Amazon serves a sane order again, `retry` imports it.
    world.amazon.sim.orders.pop("302-7000001-0000001")
    world.amazon.add_order("302-7000001-0000001", {"BAD-A": 1})
    world.engine.store.retry_failed("eu")
    await world.run("orders")
    assert world.shop.count_orders("302-7000001-0000001") == 1


@ONE_SHOP
@pytest.mark.parametrize("kind", ["html_200", "malformed_json", "truncated"])
async def test_broken_amazon_answers_are_retried_and_lose_nothing(world, kind):
    world.shop.add_product("BAD-A", 10)
    world.amazon.add_order("302-7100001-0000001", {"BAD-A": 1})
    world.amazon.faults.add(kind, match="GET /orders/2026-01-01/orders", count=10)
    report = await world.run("orders")
    assert (
        report.errors and "expected JSON" in report.errors[0] or "BadResponse" in report.errors[0]
    )
    assert world.engine.store.get_cursor("eu", "orders") is None  # the window was not skipped
    assert world.engine.store.runtime("eu")["status"] == "error"
    world.amazon.faults.clear()
    await world.run("orders")
    assert world.shop.count_orders("302-7100001-0000001") == 1


@pytest.mark.parametrize(
    "kind", ["html_200", "malformed_json", "truncated", "reset_after", "timeout_after"]
)
async def test_broken_shop_answers_never_half_write_an_order(world, kind):
    world.shop.add_product("BAD-A", 10)
    world.amazon.add_order("302-7200001-0000001", {"BAD-A": 1})
    world.shop.faults.add(kind, match="POST|PUT", count=50)
    await world.run("orders")
    record = world.engine.store.get_order("eu", "302-7200001-0000001")
    assert record.state in (
        OrderState.QUEUED,
        OrderState.IMPORT_INTENDED,
        OrderState.IMPORTED,
        OrderState.FAILED,
    ), kind
    assert world.shop.count_orders("302-7200001-0000001") <= 1
    world.shop.faults.clear()
    world.engine.store.retry_failed("eu")
    await world.run("orders")
    assert world.shop.count_orders("302-7200001-0000001") == 1, kind
    assert world.engine.store.get_order("eu", "302-7200001-0000001").state is OrderState.IMPORTED
    assert world.engine.store.intents("eu", IntentKind.IMPORT, IntentState.PENDING) == []


@pytest.mark.parametrize("world", ["woocommerce"], indirect=True)
async def test_an_interrupted_total_adjustment_is_finished_on_the_next_run(world):
    """WooCommerce rounds 3 × 9.99 incl. tax differently; the fee that fixes it may be lost."""
    world.shop.add_product("ROUND-1", 10)
    world.amazon.sim.create_order(
        {"ROUND-1": 3},
        order_id="302-7300001-0000001",
        prices={"ROUND-1": "9.99"},
        created_at=world.amazon.sim.now() - timedelta(minutes=10),
    )
    world.shop.faults.add("reset_before", match=r"PUT .*/orders/\d+", count=2)
    await world.run("orders")
    record = world.engine.store.get_order("eu", "302-7300001-0000001")
    assert record.state is OrderState.IMPORT_INTENDED  # created, total not yet settled
    totals = {o["marketplace_order_id"]: o["total"] for o in world.shop.orders()}
    assert totals["302-7300001-0000001"] != world.amazon.order_total("302-7300001-0000001")
    await world.run("orders")
    totals = {o["marketplace_order_id"]: o["total"] for o in world.shop.orders()}
    assert totals["302-7300001-0000001"] == world.amazon.order_total("302-7300001-0000001")
    assert world.shop.count_orders("302-7300001-0000001") == 1
    assert world.engine.store.get_order("eu", "302-7300001-0000001").state is OrderState.IMPORTED
