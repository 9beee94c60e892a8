"""`ordersync check`: findings with the command that fixes each, exit 1 when any."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.models import Money, OrderStatus
from engine.reconcile import check_connection
from tests.fakes import ShopOrder

SINCE_DAYS = 2


async def findings(engine, world, **kw):
    return await check_connection(
        engine.context("c1"), world.now - timedelta(days=SINCE_DAYS), **kw
    )


async def synced(make_engine, world, *ids):
    world.add_product("SKU-1", 10)
    for oid in ids:
        world.add_order(oid)
    engine = make_engine()
    for flow in ("orders", "shipments", "stock"):
        await engine.run_flow("c1", flow)
    return engine


async def test_clean_state_has_no_findings(make_engine, world):
    engine = await synced(make_engine, world, "A-1", "A-2")
    assert await findings(engine, world) == []


async def test_missing_orders_name_the_fix(make_engine, world):
    engine = await synced(make_engine, world, "A-1")
    world.add_order("NEW-1")  # never synced
    world.add_order("BAD-1", {"NOPE": 1})
    await engine.run_flow("c1", "orders")
    world.add_order("NEW-2")
    found = {f.key: f for f in await findings(engine, world, stock=False)}
    assert found["NEW-2"].kind == "missing"
    assert found["NEW-2"].fix == "ordersync sync --connection c1 --flow orders"
    assert found["BAD-1"].kind == "missing" and "unknown_sku" in found["BAD-1"].detail
    assert found["BAD-1"].fix.startswith("ordersync retry --connection c1")
    assert "NEW-1" not in found and "A-1" not in found


async def test_duplicates_and_amount_mismatch(make_engine, world):
    engine = await synced(make_engine, world, "A-1", "A-2")
    original = world.shop_order_for("A-1")[0]
    world.shop_orders.append(ShopOrder(id="S99", marketplace_order_id="A-1", order=original.order))
    shop_a2 = world.shop_order_for("A-2")[0]
    shop_a2.order = shop_a2.order.model_copy(
        update={"total": Money(amount=Decimal("1.00"), currency="EUR")}
    )
    found = {(f.key, f.kind): f for f in await findings(engine, world, stock=False)}
    dup = found[("A-1", "duplicated")]
    assert "S99" in dup.fix and f"keeps {original.id}" in dup.fix
    assert "1.00" in found[("A-2", "amount_mismatch")].detail


async def test_status_mismatches_both_ways(make_engine, world):
    engine = await synced(make_engine, world, "A-1", "A-2")
    world.update_order("A-1", status=OrderStatus.CANCELLED)  # not synced yet
    world.shop_order_for("A-2")[0].cancelled = True  # cancelled in the shop, not synced yet
    found = {f.key: f for f in await findings(engine, world, stock=False)}
    assert found["A-1"].kind == "status_mismatch" and found["A-1"].fix.endswith("--flow orders")
    assert found["A-2"].kind == "status_mismatch" and found["A-2"].fix.endswith("--flow shipments")


async def test_stock_drift(make_engine, world):
    engine = await synced(make_engine, world)
    world.stock["SKU-1"] = 3  # changed without a sync
    found = await findings(engine, world)
    assert [(f.kind, f.key) for f in found] == [("stock_drift", "SKU-1")]
    assert "shop offers 3" in found[0].detail and "last pushed 10" in found[0].detail
    await engine.run_flow("c1", "stock")
    world.now += timedelta(minutes=1)
    engine.connection("c1").schedule.full_stock_every = 1
    await engine.run_flow("c1", "stock")
    assert await findings(engine, world) == []


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "ordersync.toml"
    path.write_text(
        textwrap.dedent("""
        state_path = "state.db"
        [[connections]]
        id = "c1"
        default_shipping_service = "Other"
        cancellation_reason = "NoInventory"
        start_date = 2026-11-01
        marketplace = { type = "fakemarket" }
        shop = { type = "fakeshop" }
    """)
    )
    return path


def test_check_command_exits_1_with_findings(config_file, fake_plugins, world):
    world.add_product("SKU-1")
    world.add_order("LOST-1")
    args = [
        "check",
        "-c",
        str(config_file),
        "--since",
        (world.now - timedelta(days=1)).strftime("%Y-%m-%d"),
        "--json",
    ]
    result = CliRunner().invoke(cli, args, obj={"plugins": fake_plugins})
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert [(r["kind"], r["key"]) for r in rows] == [
        ("missing", "LOST-1"),
        ("stock_drift", "SKU-1"),
    ]
    CliRunner().invoke(cli, ["sync", "-c", str(config_file)], obj={"plugins": fake_plugins})
    clean = CliRunner().invoke(cli, args, obj={"plugins": fake_plugins})
    assert clean.exit_code == 0, clean.output
