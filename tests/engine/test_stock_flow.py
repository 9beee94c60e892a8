from __future__ import annotations

from datetime import timedelta

from engine.errors import FatalAPIError
from engine.models import OrderStatus
from engine.sync.stock import RETRIES
from tests.conftest import connection_data

CHANGES_ONLY = connection_data(schedule={"full_stock_every": 1000})


def pushed_skus(world, since: int) -> list[str]:
    return [level.sku for call in world.stock_push_calls[since:] for level in call]


async def test_pushes_only_changed_quantities(make_engine, world):
    for i in range(5):
        world.add_product(f"SKU-{i}", 10 + i)
    engine = make_engine(connection_data(schedule={"full_stock_every": 100}))
    report = await engine.run_flow("c1", "stock")
    assert report.counts["pushed"] == 5
    assert world.amazon_stock == {f"SKU-{i}": 10 + i for i in range(5)}
    world.now += timedelta(minutes=1)
    world.set_stock("SKU-2", 3)
    report = await engine.run_flow("c1", "stock")
    assert [lvl.sku for lvl in world.stock_push_calls[-1]] == ["SKU-2"]
    assert world.amazon_stock["SKU-2"] == 3
    world.now += timedelta(minutes=1)
    calls = len(world.stock_push_calls)
    await engine.run_flow("c1", "stock")
    assert len(world.stock_push_calls) == calls  # nothing changed, nothing sent


async def test_full_read_repairs_drift_without_resending_unchanged(make_engine, world):
    world.add_product("SKU-1", 5)
    world.add_product("SKU-2", 7)
    engine = make_engine(connection_data(schedule={"full_stock_every": 2}))
    world.now += timedelta(minutes=1)
    await engine.run_flow("c1", "stock")
    # Change without a change timestamp (e.g. a direct DB edit in the shop).
    world.stock["SKU-2"] = 1
    world.now += timedelta(minutes=1)
    await engine.run_flow("c1", "stock")  # incremental: cannot see it
    assert world.amazon_stock["SKU-2"] == 7
    world.now += timedelta(minutes=1)
    await engine.run_flow("c1", "stock")  # every 2nd run reads everything
    assert world.amazon_stock["SKU-2"] == 1
    assert [lvl.sku for lvl in world.stock_push_calls[-1]] == ["SKU-2"]


async def test_orders_not_yet_in_the_shop_reserve_stock(make_engine, world):
    world.add_product("SKU-1", 5)
    world.add_order("P-1", {"SKU-1": 2}, status=OrderStatus.PENDING)
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock["SKU-1"] == 3  # 5 in the shop, 2 promised on Amazon
    assert world.stock["SKU-1"] == 5


async def test_negative_shop_stock_is_pushed_as_zero(make_engine, world):
    world.add_product("SKU-1", -4)
    engine = make_engine()
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock["SKU-1"] == 0


async def test_one_failing_sku_is_recorded_while_others_apply(make_engine, world):
    world.add_product("SKU-1", 1)
    world.add_product("BAD", 2)
    world.add_product("SKU-3", 3)
    world.failing_skus.add("BAD")
    engine = make_engine(CHANGES_ONLY)
    world.now += timedelta(minutes=1)  # the shop's changes-since reads are inclusive
    report = await engine.run_flow("c1", "stock")
    assert report.counts["pushed"] == 2 and report.counts["failed"] == 1
    assert world.amazon_stock == {"SKU-1": 1, "SKU-3": 3}
    failure = engine.store.failures("c1")[0]
    assert (failure["kind"], failure["key"], failure["reason"]) == (
        "stock",
        "BAD",
        "marketplace_rejected",
    )
    assert "BAD" in failure["message"]
    # Not recorded as pushed, so it is pushed again at the next (changed-only) run,
    # although the shop reports no change of it.
    world.failing_skus.clear()
    world.now += timedelta(minutes=2)
    calls = len(world.stock_push_calls)
    report = await engine.run_flow("c1", "stock")
    assert report.counts["changes read"] == 1 and report.counts["skus read"] == 0
    assert pushed_skus(world, calls) == ["BAD"]
    assert world.amazon_stock["BAD"] == 2
    assert engine.store.failures("c1") == []


async def test_a_sku_rejected_again_and_again_waits_for_retry(make_engine, world):
    world.add_product("SKU-1", 1)
    world.add_product("BAD", 2)
    world.failing_skus.add("BAD")
    engine = make_engine(CHANGES_ONLY)
    world.now += timedelta(minutes=1)
    for _ in range(RETRIES):
        await engine.run_flow("c1", "stock")
        world.now += timedelta(minutes=2)
    assert pushed_skus(world, 1).count("BAD") == RETRIES - 1  # the first run pushed both
    failure = engine.store.failures("c1")[0]
    assert (failure["key"], failure["attempts"]) == ("BAD", RETRIES)
    # Given up: no more pushes of it, the failure stays visible.
    world.failing_skus.clear()
    calls = len(world.stock_push_calls)
    await engine.run_flow("c1", "stock")
    world.now += timedelta(minutes=2)
    assert pushed_skus(world, calls) == []
    assert "BAD" not in world.amazon_stock
    # `ordersync retry` re-queues it: pushed at the next run, nothing else is.
    engine.store.retry_failed("c1")
    await engine.run_flow("c1", "stock")
    assert pushed_skus(world, calls) == ["BAD"]
    assert world.amazon_stock["BAD"] == 2
    assert engine.store.failures("c1") == []


async def test_a_rejected_stock_request_is_a_marketplace_failure(make_engine, world):
    world.add_product("SKU-1", 1)
    world.add_product("SKU-2", 2)
    world.fail_next["mkt.stock.before"] = FatalAPIError(
        "invalid quantity", platform="fake", operation="push", status=400, code="InvalidInput"
    )
    engine = make_engine(CHANGES_ONLY)
    report = await engine.run_flow("c1", "stock")
    assert report.errors
    failures = sorted((f["kind"], f["key"], f["reason"]) for f in engine.store.failures("c1"))
    assert failures == [
        ("stock", "SKU-1", "marketplace_rejected"),
        ("stock", "SKU-2", "marketplace_rejected"),
    ]
    world.now += timedelta(minutes=2)
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock == {"SKU-1": 1, "SKU-2": 2}
    assert engine.store.failures("c1") == []


async def test_a_reservation_change_is_pushed_by_a_changed_only_run(make_engine, world):
    """No stock change in the shop, but a new Pending order takes units (and gives them
    back when cancelled): Amazon must not list more than the shop can supply."""
    world.add_product("SKU-1", 10)
    world.add_product("SKU-2", 4)
    engine = make_engine(CHANGES_ONLY)
    world.now += timedelta(minutes=1)
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock == {"SKU-1": 10, "SKU-2": 4}
    world.now += timedelta(minutes=5)
    world.add_order("P-1", {"SKU-1": 3}, status=OrderStatus.PENDING)
    world.add_order("P-2", {"SKU-2": 5}, status=OrderStatus.PENDING)  # more than in stock
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=2)
    calls = len(world.stock_push_calls)
    report = await engine.run_flow("c1", "stock")
    assert report.counts["changes read"] == 1 and report.counts["skus read"] == 0
    assert world.amazon_stock == {"SKU-1": 7, "SKU-2": 0}
    assert sorted(pushed_skus(world, calls)) == ["SKU-1", "SKU-2"]
    # The buyer cancels P-1 while it is Pending: its units are offered again.
    world.update_order("P-1", status=OrderStatus.CANCELLED)
    world.now += timedelta(minutes=5)
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=2)
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock == {"SKU-1": 10, "SKU-2": 0}
    # P-2 is released and imported: the shop's stock goes down, the reservation ends.
    world.add_product("SKU-2", 6)
    world.update_order("P-2", status=OrderStatus.UNSHIPPED)
    world.now += timedelta(minutes=5)
    await engine.run_flow("c1", "orders")
    assert world.stock["SKU-2"] == 1
    world.now += timedelta(minutes=2)
    calls = len(world.stock_push_calls)
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock == {"SKU-1": 10, "SKU-2": 1}
    await engine.run_flow("c1", "stock")
    assert pushed_skus(world, calls) == ["SKU-2"]  # once, not at every run


async def test_a_state_database_without_known_shop_stock_reads_everything(make_engine, world):
    """After an upgrade the shop's last known stock is empty: the next run is a full read."""
    world.add_product("SKU-1", 5)
    engine = make_engine(CHANGES_ONLY)
    await engine.run_flow("c1", "stock")
    engine.store.db.execute("DELETE FROM stock_shop")
    world.now += timedelta(minutes=2)
    report = await engine.run_flow("c1", "stock")
    assert report.counts["full read"] == 1 and report.counts["skus read"] == 1
    world.now += timedelta(minutes=2)
    report = await engine.run_flow("c1", "stock")
    assert report.counts["changes read"] == 1
