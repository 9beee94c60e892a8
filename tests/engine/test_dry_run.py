"""`ordersync sync --dry-run` prints the writes a sync would make and makes none."""

from __future__ import annotations

import inspect
import json
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.dryrun import DryRunLog, DryRunMarketplace, DryRunShop
from engine.interfaces import ConnectorContext, MarketplaceConnector, ShopConnector
from engine.models import CancelRequest, OrderStatus, ProductRef, Shipment, ShipmentLine, StockLevel
from tests.fakes import FakeMarketplace, FakeSettings, FakeShop, ShopOrder

CONFIG = """
state_path = "state.db"
[[connections]]
id = "c1"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
carrier_map = { "DHL Paket" = "DHL" }
start_date = 2026-11-01
marketplace = { type = "fakemarket" }
shop = { type = "fakeshop" }
"""
WRITE_POINTS = {
    "shop.create.before",
    "shop.complete",
    "shop.cancel.before",
    "mkt.confirm.before",
    "mkt.cancel.before",
    "mkt.stock.before",
}
TABLES = ("orders", "outbox", "cursors", "stock_pushed", "quota_usage", "order_log", "failures")


def snapshot(path):
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in TABLES
        }


def world_snapshot(world):
    return repr(
        (
            [(o.id, o.marketplace_order_id, o.cancelled) for o in world.shop_orders],
            world.confirmations,
            world.amazon_cancellations,
            world.amazon_stock,
            {oid: o.status for oid, o in world.amazon.items()},
            world.stock,
        )
    )


def test_dry_run_writes_nothing_and_lists_every_write(tmp_path, fake_plugins, world):
    config = tmp_path / "ordersync.toml"
    config.write_text(textwrap.dedent(CONFIG))

    def invoke(*a):
        return CliRunner().invoke(cli, [*a, "-c", str(config)], obj={"plugins": fake_plugins})

    recent = datetime.now(UTC) - timedelta(minutes=10)
    world.add_product("SKU-1", 10)
    for oid in ("A-1", "A-3", "A-4"):
        world.add_order(oid, {"SKU-1": 2})
    assert invoke("sync").exit_code == 0  # imported; the shop cursor starts
    world.ship("A-1", carrier="DHL Paket", tracking="T-1")  # → confirm on Amazon
    world.cancel_in_shop("A-3")  # → cancel on Amazon
    world.update_order(
        "A-4", status=OrderStatus.CANCELLED, updated_at=recent
    )  # → cancel in the shop
    world.add_order("A-2", {"SKU-1": 1}, updated_at=recent)  # → create in the shop
    done_by_hand = world.add_order("A-5", {"SKU-1": 1}, updated_at=recent)
    world.shop_orders.append(ShopOrder(id="S-HAND", marketplace_order_id="A-5", order=done_by_hand))
    world.set_stock("SKU-1", 9)  # → a new quantity on Amazon
    before_state = snapshot(tmp_path / "state.db")
    before_world = world_snapshot(world)
    calls_before = len(world.calls)

    result = invoke("sync", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    planned = {(w["side"], w["action"], w["key"]) for w in json.loads(result.stdout)}
    assert planned == {
        ("shop", "create order", "A-2"),
        ("shop", "complete order", "A-5"),  # found in the shop: finished, not created
        ("shop", "cancel order", "A-4"),
        ("amazon", "confirm shipment", "A-1"),
        ("amazon", "cancel order", "A-3"),
        ("amazon", "set quantity", "SKU-1"),
    }
    assert snapshot(tmp_path / "state.db") == before_state
    assert world_snapshot(world) == before_world
    dry_calls = set(world.calls[calls_before:])
    assert "mkt.page" in dry_calls and "shop.changes" in dry_calls  # reads were made
    assert dry_calls.isdisjoint(WRITE_POINTS)

    table = invoke("sync", "--dry-run").stdout
    assert "nothing was written" in table and "DHL T-1" in table
    # The real sync then makes exactly those writes.
    assert invoke("sync").exit_code == 0
    assert len(world.shop_order_for("A-2")) == 1 and len(world.shop_order_for("A-5")) == 1
    assert [c[2] for c in world.confirmations] == ["DHL"]
    assert world.amazon_cancellations == [("A-3", "NoInventory")]
    assert world.shop_order_for("A-4")[0].cancelled
    assert "shop.complete" in world.calls
    assert world.amazon_stock["SKU-1"] == world.stock["SKU-1"] == 8  # A-2 took one


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


@pytest.mark.parametrize(
    ("contract", "wrapper"),
    [(MarketplaceConnector, DryRunMarketplace), (ShopConnector, DryRunShop)],
)
def test_the_wrappers_implement_every_contract_method_themselves(contract, wrapper):
    """An inherited default could call the real connector's write (or grow one later)."""
    methods = public_methods(contract)
    assert {"check", "aclose", "push_stock", "cancel_orders"} & methods  # not empty
    assert sorted(m for m in methods if m not in vars(wrapper)) == []


class Tripwire(Exception):
    pass


def tripwire(cls: type) -> type:
    """A fake connector whose every write raises."""
    writes = {
        "create_order",
        "create_orders",
        "complete_order",
        "cancel_order",
        "cancel_orders",
        "confirm_shipment",
        "push_stock",
    }

    async def boom(self, *args, **kwargs):
        raise Tripwire(f"{cls.__name__} was asked to write")

    return type(
        f"Tripwire{cls.__name__}", (cls,), {name: boom for name in writes if hasattr(cls, name)}
    )


async def test_no_write_method_reaches_the_real_connector(world):
    world.add_product("SKU-1")
    order = world.add_order("A-1")
    context = ConnectorContext(connection_id="c1")
    log = DryRunLog()
    market = DryRunMarketplace(tripwire(FakeMarketplace)(FakeSettings(), context), log)
    shop = DryRunShop(tripwire(FakeShop)(FakeSettings(), context), log)
    products = {"SKU-1": ProductRef(sku="SKU-1", product_id="P-SKU-1")}
    shipment = Shipment(
        shipment_id="F-1",
        marketplace_order_id="A-1",
        shop_order_id="S1",
        lines=(ShipmentLine(sku="SKU-1", quantity=1),),
        shipped_at=world.now,
    )
    ref = await shop.create_order(order, products)
    assert await shop.create_orders([(order, products)]) == [ref]
    assert await shop.complete_order(order, ref) == ref
    await shop.cancel_order(ref, order)
    assert await shop.cancel_orders([(ref, order)]) == [None]
    await market.confirm_shipment(order, shipment, "DHL")
    results = await market.cancel_orders([CancelRequest(marketplace_order_id="A-1", reason="x")])
    assert [r.ok for r in results] == [True]
    await market.push_stock([StockLevel(sku="SKU-1", quantity=3)])
    assert [w.action for w in log.writes] == [
        "create order",
        "create order",
        "complete order",
        "cancel order",
        "cancel order",
        "confirm shipment",
        "cancel order",
        "set quantity",
    ]
    # Reads still reach the platform, planned orders overlaid.
    assert await shop.find_order_refs(["A-1", "A-9"]) == {"A-1": ref}
    assert await market.listed_quantities(["SKU-1"]) == {}
    assert world.shop_orders == [] and world.confirmations == [] and world.amazon_stock == {}
