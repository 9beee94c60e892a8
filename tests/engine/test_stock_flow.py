from __future__ import annotations

from datetime import timedelta

from engine.models import OrderStatus
from tests.conftest import connection_data


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
    engine = make_engine()
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
    # Not recorded as pushed, so it is tried again next time.
    world.failing_skus.clear()
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock["BAD"] == 2
    assert engine.store.failures("c1") == []
