"""`ordersync sync --dry-run` prints the writes a sync would make and makes none."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from engine.cli import cli

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


def snapshot(path):
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in ("orders", "outbox", "cursors", "stock_pushed", "quota_usage")
        }


def test_dry_run_writes_nothing_and_lists_every_write(tmp_path, fake_plugins, world):
    config = tmp_path / "ordersync.toml"
    config.write_text(textwrap.dedent(CONFIG))

    def invoke(*a):
        return CliRunner().invoke(cli, [*a, "-c", str(config)], obj={"plugins": fake_plugins})  # noqa: E731

    world.add_product("SKU-1", 10)
    world.add_order("A-1", {"SKU-1": 2})
    assert invoke("sync").exit_code == 0  # A-1 imported; shop cursor starts
    world.ship("A-1", carrier="DHL Paket", tracking="T-1")
    world.add_order("A-2", {"SKU-1": 1}, updated_at=datetime.now(UTC) - timedelta(minutes=10))
    world.set_stock("SKU-1", 4)
    before_state = snapshot(tmp_path / "state.db")
    before_world = (len(world.shop_orders), list(world.confirmations), dict(world.amazon_stock))

    result = invoke("sync", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    planned = {(w["side"], w["action"], w["key"]) for w in json.loads(result.stdout)}
    assert planned == {
        ("shop", "create order", "A-2"),
        ("amazon", "confirm shipment", "A-1"),
        ("amazon", "set quantity", "SKU-1"),
    }
    assert snapshot(tmp_path / "state.db") == before_state
    assert (
        len(world.shop_orders),
        list(world.confirmations),
        dict(world.amazon_stock),
    ) == before_world

    table = invoke("sync", "--dry-run").stdout
    assert "nothing was written" in table and "DHL T-1" in table
    # The real sync then makes exactly those writes.
    assert invoke("sync").exit_code == 0
    assert len(world.shop_order_for("A-2")) == 1
    assert [c[2] for c in world.confirmations] == ["DHL"]
    assert world.amazon_stock["SKU-1"] == world.stock["SKU-1"] == 3  # A-2 took one
