"""`ordersync check`: findings with the command that fixes each, exit 1 when any."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.errors import FatalAPIError, RetriableAPIError
from engine.models import Cancellation, Money, OrderStatus
from engine.reconcile import check_connection
from engine.state import IntentKind, IntentState
from tests.fakes import WORLDS, ShopOrder, World

SINCE_DAYS = 2
SHIPMENTS = "ordersync sync --connection c1 --flow shipments"
RETRY_SHIPMENTS = "ordersync retry --connection c1 && " + SHIPMENTS


async def findings(engine, world, **kw):
    return await check_connection(
        engine.context("c1"), world.now - timedelta(days=SINCE_DAYS), **kw
    )


async def by_key(engine, world, **kw):
    return {(f.key, f.kind): f for f in await findings(engine, world, **kw)}


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
    world.ship("A-1")
    await engine.run_flow("c1", "shipments")
    assert world.confirmations  # a shipped, confirmed order is consistent too
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
    engine = await synced(make_engine, world, "A-1", "A-2", "A-3")
    original = world.shop_order_for("A-1")[0]
    world.shop_orders.append(ShopOrder(id="S99", marketplace_order_id="A-1", order=original.order))
    shop_a2 = world.shop_order_for("A-2")[0]
    shop_a2.order = shop_a2.order.model_copy(
        update={"total": Money(amount=Decimal("1.00"), currency="EUR")}
    )
    shop_a3 = world.shop_order_for("A-3")[0]  # same amount, another currency
    shop_a3.order = shop_a3.order.model_copy(
        update={"total": Money(amount=shop_a3.order.total.amount, currency="USD")}
    )
    found = await by_key(engine, world, stock=False)
    assert set(found) == {
        ("A-1", "duplicated"),
        ("A-2", "amount_mismatch"),
        ("A-3", "amount_mismatch"),
    }
    dup = found[("A-1", "duplicated")]
    assert dup.fix == (
        "in the shop, cancel duplicate order(s) S99 of Amazon order A-1 without restocking "
        f"twice; keep {original.id} (the one ordersync tracks)"
    )
    a2 = found[("A-2", "amount_mismatch")]
    assert "totals 1.00 EUR, Amazon 14.90 EUR" in a2.detail
    assert a2.fix == (
        f"in the shop, edit order {shop_a2.id} so that it totals 14.90 EUR, Amazon's total for "
        "A-2 (1× SKU-1 at 10.00, shipping 4.90)"
    )
    a3 = found[("A-3", "amount_mismatch")]
    assert "totals 14.90 USD, Amazon 14.90 EUR" in a3.detail and "currency" in a3.detail


async def test_following_the_duplicate_fix_leaves_the_amazon_order_alone(make_engine, world):
    engine = await synced(make_engine, world, "A-1")
    original = world.shop_order_for("A-1")[0]
    duplicate = ShopOrder(id="S99", marketplace_order_id="A-1", order=original.order)
    world.shop_orders.append(duplicate)
    assert (
        "cancel duplicate order(s) S99" in (await by_key(engine, world))[("A-1", "duplicated")].fix
    )
    duplicate.cancelled = True  # what the fix says, done in the shop
    world.shop_events.append(
        (
            world.now,
            Cancellation(marketplace_order_id="A-1", shop_order_id="S99", cancelled_at=world.now),
        )
    )
    await engine.run_flow("c1", "shipments")
    assert world.amazon_cancellations == []


async def test_cancellation_status_mismatches_both_ways(make_engine, world):
    engine = await synced(make_engine, world, "A-1", "A-2")
    world.update_order("A-1", status=OrderStatus.CANCELLED)  # not synced yet
    world.shop_order_for("A-2")[0].cancelled = True  # cancelled in the shop, not synced yet
    found = {f.key: f for f in await findings(engine, world, stock=False)}
    assert found["A-1"].kind == "status_mismatch" and found["A-1"].fix.endswith("--flow orders")
    assert found["A-2"].kind == "status_mismatch" and found["A-2"].fix == SHIPMENTS


async def test_shipment_status_mismatches_name_the_command_that_fixes_them(make_engine, world):
    ids = [f"A-{n}" for n in range(1, 6)]
    engine = await synced(make_engine, world, *ids)
    # Amazon rejected the confirmation for good.
    world.fail_next["mkt.confirm.before"] = FatalAPIError(
        "tracking number rejected", platform="fake", status=400
    )
    world.ship("A-3", tracking="T-REJECTED")
    await engine.run_flow("c1", "shipments")
    # confirmed by ordersync, but the package is not on Amazon.
    world.ship("A-5", tracking="T-LOST")
    await engine.run_flow("c1", "shipments")
    world.confirmations = [c for c in world.confirmations if c[0] != "A-5"]
    # the confirmation failed for now; it is retried at the next sync.
    world.fail_next["mkt.confirm.before"] = RetriableAPIError("amazon is down", platform="fake")
    world.ship("A-2", tracking="T-RETRY")
    await engine.run_flow("c1", "shipments")
    # shipped in the shop, not synced yet (an unread shop change).
    world.ship("A-1", tracking="T-UNREAD")
    # shipped on Amazon (outside ordersync), open in the shop.
    world.update_order("A-4", status=OrderStatus.SHIPPED)

    found = await by_key(engine, world, stock=False)
    assert set(found) == {(oid, "status_mismatch") for oid in ids}
    a1, a2, a3 = (found[(oid, "status_mismatch")] for oid in ("A-1", "A-2", "A-3"))
    assert "T-UNREAD" in a1.detail and "not on Amazon yet" in a1.detail
    assert a1.fix == SHIPMENTS
    assert "1 attempt(s)" in a2.detail and "amazon is down" in a2.detail
    assert a2.fix == SHIPMENTS
    assert "tracking number rejected" in a3.detail and a3.fix == RETRY_SHIPMENTS
    a4 = found[("A-4", "status_mismatch")]
    shop_a4 = world.shop_order_for("A-4")[0].id
    assert f"shipped on Amazon, open in the shop as {shop_a4}" in a4.detail
    assert a4.fix.startswith(f"in the shop, fulfil order {shop_a4}")
    a5 = found[("A-5", "status_mismatch")]
    assert "T-LOST" in a5.detail and "without that package" in a5.detail
    assert a5.fix.startswith("confirm the shipment of A-5 on Amazon by hand") and "T-LOST" in a5.fix

    # The commands named fix what they claim to fix.
    await engine.run_flow("c1", "shipments")
    after = await by_key(engine, world, stock=False)
    assert ("A-1", "status_mismatch") not in after and ("A-2", "status_mismatch") not in after
    assert ("A-3", "status_mismatch") in after
    engine.store.retry_failed("c1")
    await engine.run_flow("c1", "shipments")
    assert {key for key, _ in await by_key(engine, world, stock=False)} == {"A-4", "A-5"}
    assert [c[0] for c in world.confirmations].count("A-3") == 1


async def test_open_intents_are_reported_whatever_the_window(make_engine, world):
    engine = await synced(make_engine, world, "A-1")
    world.fail_next["mkt.confirm.before"] = FatalAPIError("rejected", platform="fake", status=400)
    world.ship("A-1")
    await engine.run_flow("c1", "shipments")
    intent = engine.store.intents("c1", IntentKind.CONFIRM_SHIPMENT, IntentState.FAILED)
    assert len(intent) == 1
    world.now += timedelta(days=30)  # the Amazon order is far outside --since now
    assert [(f.key, f.fix) for f in await findings(engine, world, stock=False)] == [
        ("A-1", RETRY_SHIPMENTS)
    ]


async def test_stock_is_compared_with_amazons_listed_quantities(make_engine, world):
    engine = await synced(make_engine, world)
    world.add_order("P-1", {"SKU-1": 2}, status=OrderStatus.PENDING)  # reserves 2
    await engine.run_flow("c1", "orders")
    world.now += timedelta(minutes=1)
    engine.connection("c1").schedule.full_stock_every = 1
    await engine.run_flow("c1", "stock")
    assert world.amazon_stock["SKU-1"] == 8
    assert await findings(engine, world) == []
    world.amazon_stock["SKU-1"] = 999  # changed on Amazon, outside ordersync
    found = await findings(engine, world)
    assert [(f.kind, f.key) for f in found] == [("stock_drift", "SKU-1")]
    assert found[0].detail == (
        "shop offers 8 (stock 10, 2 reserved by Amazon orders not yet in the shop), "
        "Amazon lists 999 (compared with Amazon's listed quantities)"
    )
    # ordersync believes it pushed 8: a stock sync would not push again.
    assert found[0].fix.startswith("set the quantity of SKU-1 to 8 on Amazon by hand")
    world.amazon_stock["SKU-1"] = 8
    world.set_stock("SKU-1", 3)  # changed in the shop, not pushed yet
    found = await findings(engine, world)
    assert "shop offers 1" in found[0].detail and "Amazon lists 8" in found[0].detail
    assert found[0].fix == "ordersync sync --connection c1 --flow stock"


async def test_stock_falls_back_to_the_last_push_and_says_so(make_engine, world):
    engine = await synced(make_engine, world)
    world.lists_quantities = False
    world.amazon_stock["SKU-1"] = 999  # invisible without listed quantities
    assert await findings(engine, world) == []
    world.stock["SKU-1"] = 3  # changed without a sync
    found = await findings(engine, world)
    assert [(f.kind, f.key) for f in found] == [("stock_drift", "SKU-1")]
    assert "shop offers 3" in found[0].detail and "last pushed 10" in found[0].detail
    assert "compared with what ordersync last pushed" in found[0].detail
    assert found[0].fix == "ordersync sync --connection c1 --flow stock"
    await engine.run_flow("c1", "stock")
    world.now += timedelta(minutes=1)
    engine.connection("c1").schedule.full_stock_every = 1
    await engine.run_flow("c1", "stock")
    assert await findings(engine, world) == []


async def test_stock_only_connections_compare_no_orders(make_engine, world):
    from tests.conftest import connection_data

    world.add_product("SKU-1", 10)
    world.add_order("A-1")  # never imported: this connection only syncs stock
    engine = make_engine(connection_data(level="stock_only"))
    await engine.run_flow("c1", "stock")
    assert await findings(engine, world) == []


CONFIG = """
state_path = "state.db"
[[connections]]
id = "c1"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
start_date = 2026-11-01
marketplace = { type = "fakemarket" }
shop = { type = "fakeshop" }
"""
SECOND = """
[[connections]]
id = "c2"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
start_date = 2026-11-01
marketplace = { type = "fakemarket", settings = { world = "other" } }
shop = { type = "fakeshop", settings = { world = "other" } }
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "ordersync.toml"
    path.write_text(textwrap.dedent(CONFIG))
    return path


def day(moment) -> str:
    return moment.strftime("%Y-%m-%d")


def run_check(config, plugins, *args):
    result = CliRunner().invoke(
        cli, ["check", "-c", str(config), "--json", *args], obj={"plugins": plugins}
    )
    rows = json.loads(result.stdout) if result.exit_code in (0, 1) else result.output
    return result.exit_code, rows


def test_check_command_exits_1_with_findings(config_file, fake_plugins, world):
    world.add_product("SKU-1")
    world.add_order("LOST-1")
    since = ["--since", day(world.now - timedelta(days=1))]
    code, rows = run_check(config_file, fake_plugins, *since)
    assert code == 1
    assert [(r["kind"], r["key"]) for r in rows] == [("missing", "LOST-1")]
    CliRunner().invoke(cli, ["sync", "-c", str(config_file)], obj={"plugins": fake_plugins})
    assert run_check(config_file, fake_plugins, *since) == (0, [])


def test_check_command_filters_by_connection_and_since(tmp_path, fake_plugins, world):
    config = tmp_path / "ordersync.toml"
    config.write_text(textwrap.dedent(CONFIG) + textwrap.dedent(SECOND))
    other = WORLDS["other"] = World()
    world.add_order("C1-NEW")
    world.add_order("C1-OLD", updated_at=world.now - timedelta(days=3))
    other.add_order("C2-NEW")

    def keys(*args):
        code, rows = run_check(config, fake_plugins, "--no-stock", *args)
        assert code == 1, rows
        return sorted((r["connection_id"], r["key"]) for r in rows)

    recent = ["--since", day(world.now - timedelta(days=1))]
    assert keys(*recent) == [("c1", "C1-NEW"), ("c2", "C2-NEW")]
    assert keys(*recent, "--connection", "c2") == [("c2", "C2-NEW")]
    assert keys("--since", day(world.now - timedelta(days=4)), "--connection", "c1") == [
        ("c1", "C1-NEW"),
        ("c1", "C1-OLD"),
    ]
