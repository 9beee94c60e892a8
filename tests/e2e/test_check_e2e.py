"""`ordersync check` against the real Amazon and Shopify plugins and their simulators."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.reconcile import check_connection
from engine.state import utcnow

A, B, C, D, E = (f"302-90000{n}1-0000001" for n in range(1, 6))


async def findings(world, *, stock: bool = True):
    since = utcnow() - timedelta(days=1)
    return await check_connection(world.engine.context("eu"), since, stock=stock)


async def by_key(world, **kw):
    return {(f.key, f.kind): f for f in await findings(world, **kw)}


async def sync_all(world) -> None:
    for flow in ("orders", "shipments", "stock"):
        await world.run(flow)


def shopify_order(world, marketplace_order_id: str):
    state = world.shop.sim.state
    with state.lock:
        return next(o for o in state.orders.values() if o.source_identifier == marketplace_order_id)


@pytest.mark.parametrize("world", ["shopify"], indirect=True)
async def test_check_is_clean_after_sync_and_finds_duplicates_and_drift(world):
    world.shop.add_product("CHK-A", 10)
    world.amazon.add_order(A, {"CHK-A": 1})
    assert [(f.kind, f.key) for f in await findings(world)] == [("missing", A)]
    await sync_all(world)
    assert await findings(world) == []
    # A duplicate made by hand in the shop, and a stock change not yet pushed.
    world.shop.sim.add_order({"CHK-A": 1}, source_name="ordersync", source_identifier=A)
    world.shop.set_stock("CHK-A", 2)
    found = await by_key(world)
    assert set(found) == {(A, "duplicated"), ("CHK-A", "stock_drift")}
    assert "cancel duplicate order(s)" in found[(A, "duplicated")].fix
    assert found[("CHK-A", "stock_drift")].fix == "ordersync sync --connection eu --flow stock"


@pytest.mark.parametrize("world", ["shopify"], indirect=True)
async def test_status_and_amount_mismatches_with_the_real_plugins(world):
    world.shop.add_product("CHK-A", 50)
    for oid in (A, B, C, D, E):
        world.amazon.add_order(oid, {"CHK-A": 1})
    await sync_all(world)
    assert await findings(world, stock=False) == []

    # C: shipped in the shop and confirmed, then the package vanishes on Amazon.
    world.shop.ship(C, None, "DHL Paket", "TRK-C")
    await world.settle()
    await world.run("shipments")
    assert [c["tracking"] for c in world.amazon.confirmations()] == ["TRK-C"]
    world.amazon.sim.order(C)["packages"] = []
    world.amazon.set_status(C, "UNSHIPPED")
    # A: shipped in the shop, not synced yet.
    world.shop.ship(A, None, "DHL Paket", "TRK-A")
    await world.settle()
    # B: shipped on Amazon (Seller Central), open in the shop.
    world.amazon.set_status(B, "SHIPPED")
    # D: the shop's total was edited; E: the shop order is in another currency.
    shopify_order(world, D).item_discount = Decimal("3.00")
    shopify_order(world, E).currency = "USD"
    world.wait_on_amazon()

    found = await by_key(world, stock=False)
    assert set(found) == {
        (A, "status_mismatch"),
        (B, "status_mismatch"),
        (C, "status_mismatch"),
        (D, "amount_mismatch"),
        (E, "amount_mismatch"),
    }
    a = found[(A, "status_mismatch")]
    assert "TRK-A" in a.detail and "not on Amazon yet" in a.detail
    assert a.fix == "ordersync sync --connection eu --flow shipments"
    b = found[(B, "status_mismatch")]
    name_b = shopify_order(world, B).name
    assert f"shipped on Amazon, open in the shop as {name_b}" in b.detail
    assert b.fix.startswith(f"in the shop, fulfil order {name_b}")
    c = found[(C, "status_mismatch")]
    assert "without that package" in c.detail
    assert c.fix.startswith(f"confirm the shipment of {C} on Amazon by hand") and "TRK-C" in c.fix
    total = world.amazon.order_total(D)
    d = found[(D, "amount_mismatch")]
    assert f"totals {total - 3} EUR, Amazon {total} EUR" in d.detail
    assert f"totals {total} EUR, Amazon's total for {D}" in d.fix
    e = found[(E, "amount_mismatch")]
    assert " USD, Amazon " in e.detail and "in another currency" in e.detail

    # The command named for A fixes A, with the real plugins.
    await world.run("shipments")
    assert (A, "status_mismatch") not in await by_key(world, stock=False)
    assert "TRK-A" in [c["tracking"] for c in world.amazon.confirmations()]


@pytest.mark.parametrize("world", ["shopify"], indirect=True)
async def test_stock_is_compared_with_what_amazon_lists(world):
    world.shop.add_product("CHK-A", 10)
    world.amazon.add_order(A, {"CHK-A": 2}, status="PENDING")  # reserves 2
    await sync_all(world)
    assert world.amazon.quantity("CHK-A") == 8
    listed = await world.engine.context("eu").marketplace.listed_quantities(["CHK-A"])
    assert listed == {"CHK-A": 8}  # the real connector reads Amazon's quantities
    assert await findings(world) == []
    world.amazon.sim.set_quantity("CHK-A", 999)  # changed in Seller Central
    found = await findings(world)
    assert [(f.kind, f.key) for f in found] == [("stock_drift", "CHK-A")]
    assert found[0].detail == (
        "shop offers 8 (stock 10, 2 reserved by Amazon orders not yet in the shop), "
        "Amazon lists 999 (compared with Amazon's listed quantities)"
    )
    assert found[0].fix.startswith("set the quantity of CHK-A to 8 on Amazon by hand")
