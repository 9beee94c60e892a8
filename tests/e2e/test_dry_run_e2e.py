"""`sync --dry-run` against the real Amazon and Shopify plugins and their simulators.

Every kind of write a sync would make is listed, and nothing changes on either
simulator or in the state database.
"""

from __future__ import annotations

import sqlite3

import pytest

from engine.dryrun import dry_run_engine

O1, O2, O3, O4, O5 = (f"302-70000{n}1-0000001" for n in range(1, 6))
SKUS = ("DRY-A", "DRY-B", "DRY-C", "DRY-D", "DRY-E")
TABLES = ("orders", "outbox", "cursors", "stock_pushed", "quota_usage", "order_log", "failures")


def state_snapshot(path):
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in TABLES
        }


def amazon_snapshot(amazon) -> str:
    sim = amazon.sim
    return repr(
        (
            {oid: order.data for oid, order in sim.orders.items()},
            sim.confirmations,
            sim.cancellations,
            sim.listings,
            sim.listing_updates,
            sim.feeds,
            sim.quantities,
        )
    )


def shopify_snapshot(shop) -> str:
    state = shop.sim.state
    with state.lock:
        return repr((state.orders, state.fulfillments, state.levels, state.variants))


@pytest.mark.parametrize("world", ["shopify"], indirect=True)
async def test_dry_run_lists_every_write_and_changes_nothing(world, tmp_path):
    amazon, shop = world.amazon, world.shop
    for sku in SKUS:
        shop.add_product(sku, 10)
    for oid, sku in ((O1, "DRY-A"), (O2, "DRY-B"), (O3, "DRY-C")):
        amazon.add_order(oid, {sku: 1})
    for flow in ("orders", "shipments", "stock"):
        await world.run(flow)
    shop.ship(O1, None, "DHL Paket", "TRK-DRY-1")  # → a confirmation on Amazon
    shop.cancel(O2)  # → a cancellation on Amazon
    amazon.marketplace_cancel(O3)  # → a cancellation in the shop
    amazon.add_order(O4, {"DRY-D": 2})  # → a new shop order
    amazon.add_order(O5, {"DRY-E": 1})  # already in the shop: found, not created
    shop.sim.add_order({"DRY-E": 1}, source_name="ordersync", source_identifier=O5)
    shop.set_stock("DRY-C", 3)  # → a new quantity on Amazon
    await world.settle()
    world.wait_on_amazon()

    state_path = world.engine.store.path
    before = (state_snapshot(state_path), amazon_snapshot(amazon), shopify_snapshot(shop))
    with dry_run_engine(
        world.engine.loaded,
        world.engine.registry,
        state_path,
        transports=world.engine.transports,
        now=world.engine.now,
    ) as (engine, log):
        engine.connectors("eu").marketplace.inner.now = world.engine.now  # type: ignore[attr-defined]
        try:
            reports = await engine.sync("eu", None)
        finally:
            await engine.aclose()
    assert [r.errors for r in reports] == [[], [], []]

    planned = {(w.side, w.action, w.key): w.detail for w in log.writes}
    assert set(planned) == {
        ("shop", "create order", O4),
        ("shop", "cancel order", O3),
        ("amazon", "confirm shipment", O1),
        ("amazon", "cancel order", O2),
        ("amazon", "set quantity", "DRY-C"),
        ("amazon", "set quantity", "DRY-E"),  # the order made by hand for O5 took one
    }
    assert planned[("amazon", "confirm shipment", O1)] == "DHL TRK-DRY-1 (1× DRY-A)"
    assert planned[("amazon", "cancel order", O2)] == "reason NoInventory"
    assert planned[("amazon", "set quantity", "DRY-C")] == "3"
    assert "2× DRY-D" in planned[("shop", "create order", O4)]
    assert (state_snapshot(state_path), amazon_snapshot(amazon), shopify_snapshot(shop)) == before

    # The real sync makes exactly the writes listed.
    for flow in ("orders", "shipments", "stock"):
        await world.run(flow)
    assert shop.count_orders(O4) == 1 and shop.count_orders(O5) == 1
    assert [c["tracking"] for c in amazon.confirmations()] == ["TRK-DRY-1"]
    assert amazon.cancellations() == [(O2, "NoInventory")]
    assert [o["cancelled"] for o in shop.orders() if o["marketplace_order_id"] == O3] == [True]
    # Not anticipated by the dry run: the shop's own stock changes once its writes are
    # made (O3's unit restocked by its cancellation, O4's units taken by its creation).
    assert amazon.quantity("DRY-C") == 3 + 1
    assert amazon.quantity("DRY-D") == 8
