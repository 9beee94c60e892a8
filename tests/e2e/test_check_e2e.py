"""`ordersync check` against real plugins: clean after a sync, then each kind of finding."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.reconcile import check_connection
from engine.state import utcnow


async def findings(world):
    return await check_connection(world.engine.context("eu"), utcnow() - timedelta(days=1))


@pytest.mark.parametrize("world", ["shopify"], indirect=True)
async def test_check_is_clean_after_sync_and_finds_drift(world):
    assert world.shop_name == "shopify"
    world.shop.add_product("CHK-A", 10)
    world.amazon.add_order("302-9000001-0000001", {"CHK-A": 1})
    assert [(f.kind, f.key) for f in await findings(world)] == [
        ("missing", "302-9000001-0000001"),
        ("stock_drift", "CHK-A"),
    ]
    for flow in ("orders", "shipments", "stock"):
        await world.run(flow)
    assert await findings(world) == []
    # A duplicate made by hand in the shop, and a stock change not yet pushed.
    world.shop.sim.add_order(
        {"CHK-A": 1}, source_name="ordersync", source_identifier="302-9000001-0000001"
    )
    world.shop.set_stock("CHK-A", 2)
    found = {(f.kind, f.key): f for f in await findings(world)}
    assert set(found) == {("duplicated", "302-9000001-0000001"), ("stock_drift", "CHK-A")}
    assert "cancel shop order(s)" in found[("duplicated", "302-9000001-0000001")].fix
    assert found[("stock_drift", "CHK-A")].fix == "ordersync sync --connection eu --flow stock"
