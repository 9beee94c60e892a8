from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.registry import PlatformSpec
from engine.state import StateStore
from tests.conftest import connection_data
from tests.fakes import FakeSettings, FakeShop

CONFIG = """
state_path = "state.db"

[[connections]]
id = "de"
label = "Amazon.de"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
orders_per_month = 2
start_date = 2026-11-01
marketplace = {{ type = "fakemarket" }}
shop = {{ type = "fakeshop", settings = {{ token = {{ "$env" = "SHOP_TOKEN" }} }} }}

[[connections]]
id = "it"
level = "stock_only"
active = {active}
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
marketplace = {{ type = "fakemarket" }}
shop = {{ type = "fakeshop" }}
"""


@pytest.fixture
def run(tmp_path, fake_plugins, world, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", "shop-token-value-123")
    path = tmp_path / "ordersync.toml"
    path.write_text(textwrap.dedent(CONFIG.format(active="false")))
    # The fake world's clock is fixed in the past; run the CLI "now" in it.
    from engine import runner

    monkeypatch.setattr(runner, "utcnow", lambda: world.now)

    def invoke(*args: str, expect: int = 0):
        result = CliRunner().invoke(cli, [*args, "-c", str(path)], obj={"plugins": fake_plugins})
        assert result.exit_code == expect, result.stdout
        return result

    return invoke


@pytest.fixture
def orders(world):
    world.add_product("SKU-1")
    world.add_order("BAD", {"NOPE": 1}, purchased_at=world.now - timedelta(hours=3))
    for i in range(3):
        world.add_order(f"A-{i}")


def test_sync_then_tables(run, orders, world):
    out = run("sync", "--connection", "de", "--flow", "orders", expect=0).stdout
    assert out.strip() == "orders: 4 received, 1 failed, 1 held, 2 imported"
    table = json.loads(run("connections", "--json").stdout)
    de = next(r for r in table if r["id"] == "de")
    assert de["orders_this_month"] == 2 and de["orders_per_month"] == 2
    assert de["status"] == "ok"
    assert "orders:" in de["last_message"]
    it = next(r for r in table if r["id"] == "it")
    assert it["status"] == "disabled" and it["level"] == "stock_only"
    text = run("connections").stdout
    assert "Connections" in text and "de" in text


def test_quota_and_states_visible(run, orders, world):
    run("sync", "--connection", "de", "--flow", "orders")
    rows = json.loads(run("orders", "list", "--json").stdout)
    states = sorted(r["state"] for r in rows)
    assert states == ["failed", "held", "imported", "imported"]
    held = json.loads(run("orders", "list", "--state", "held", "--json").stdout)
    assert len(held) == 1
    table = json.loads(run("connections", "--json").stdout)
    assert next(r for r in table if r["id"] == "de")["orders_this_month"] == 2


def test_order_details_and_log(run, orders):
    run("sync", "--connection", "de", "--flow", "orders")
    data = json.loads(run("orders", "show", "BAD", "--json").stdout)
    assert data["state"] == "failed" and data["failure_reason"] == "unknown_sku"
    assert [row["action"] for row in data["log"]] == ["received", "order failed"]
    assert data["log"][0]["direction"] == "amazon->shop"
    text = run("orders", "show", "A-0").stdout
    assert "imported" in text and "SKU-1" in text
    run("orders", "show", "NOPE-1", expect=1)


def test_retry_command(run, orders, world):
    run("sync", "--connection", "de", "--flow", "orders")
    world.add_product("NOPE")
    out = run("retry").stdout
    assert "re-queued 1 order(s)" in out
    bad = json.loads(run("orders", "show", "BAD", "--json").stdout)
    assert (bad["state"], bad["failure_reason"], bad["failure_message"]) == ("queued", None, None)
    run("sync", "--connection", "de", "--flow", "orders")
    assert json.loads(run("orders", "list", "--state", "failed", "--json").stdout) == []


def test_the_daemon_runs_its_flows_with_the_startup_heap_frozen(run, orders, monkeypatch):
    """Full collections skip what startup built (they paused the loop 66-93 ms each),
    and the collector gets it all back when the daemon returns."""
    frozen_during_flows: list[int] = []
    read_stock = FakeShop.stock_levels

    async def stock_levels(self, attribute, cursor):  # noqa: ANN001, ANN202
        frozen_during_flows.append(gc.get_freeze_count())
        return await read_stock(self, attribute, cursor)

    monkeypatch.setattr(FakeShop, "stock_levels", stock_levels)
    assert gc.get_freeze_count() == 0
    run("run", "--cycles", "1")
    assert frozen_during_flows, "the stock flow never ran"
    assert min(frozen_during_flows) > 10_000  # modules, plugins, config: not a handful
    assert gc.get_freeze_count() == 0


def test_connection_test_command(run):
    out = run("connections", "test", "de").stdout
    assert "OK" in out and "fake shop reachable" in out
    run("connections", "test", "zz", expect=1)


def test_connection_test_failure_exits_1(tmp_path, fake_plugins, world, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", "wrong")
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(CONFIG.format(active="true")))
    result = CliRunner().invoke(
        cli, ["connections", "test", "de", "-c", str(path), "--json"], obj={"plugins": fake_plugins}
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["shop"]["message"] == "shop rejected the token"


def test_secrets_never_printed(run, orders):
    outputs = [
        run("sync").output,
        run("connections", "--json").output,
        run("connections", "test", "de").output,
        run("orders", "list").output,
        run("config", "check").output,
    ]
    assert not any("shop-token-value-123" in out for out in outputs)


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in (
        "run",
        "sync",
        "connections",
        "orders",
        "retry",
        "check",
        "plugins",
        "config",
        "demo",
    ):
        assert f"  {command} " in result.stdout, command
    for group, subs in (
        ("connections", ("list", "test")),
        ("orders", ("list", "show")),
        ("config", ("check",)),
    ):
        sub = CliRunner().invoke(cli, [group, "--help"]).stdout
        assert all(f"  {s} " in sub or f"  {s}* " in sub for s in subs), group


def test_every_command_takes_a_config_option():
    commands = [
        ("run",),
        ("sync",),
        ("connections", "list"),
        ("connections", "test"),
        ("orders", "list"),
        ("orders", "show"),
        ("retry",),
        ("check",),
        ("plugins",),
        ("config", "check"),
        ("demo",),
    ]
    for path in commands:
        out = CliRunner().invoke(cli, [*path, "--help"]).stdout
        assert "-c, --config" in out, path


# -- a connector that cannot be built, a busy connection -------------------------


class BrokenShop(FakeShop):
    def __init__(self, settings, context):  # noqa: ANN001
        raise RuntimeError("api_version 1999-01 is not supported")


@pytest.fixture
def broken(fake_plugins, tmp_path, world):
    fake_plugins.registry.register(
        PlatformSpec(
            name="brokenshop", role="shop", connector=BrokenShop, settings_model=FakeSettings
        ),
        plugin="test",
    )
    path = tmp_path / "broken.toml"
    path.write_text(
        textwrap.dedent(
            """
            state_path = "state.db"

            [[connections]]
            id = "de"
            default_shipping_service = "Other"
            cancellation_reason = "NoInventory"
            marketplace = { type = "fakemarket" }
            shop = { type = "brokenshop" }
            """
        )
    )

    def invoke(*args: str):
        return CliRunner().invoke(cli, [*args, "-c", str(path)], obj={"plugins": fake_plugins})

    return invoke


SETUP_ERROR = (
    "connection de: the shop connector (brokenshop) could not be set up: "
    "RuntimeError: api_version 1999-01 is not supported"
)


async def test_a_connector_that_cannot_be_built_is_a_recorded_error(
    fake_plugins, make_engine, world, tmp_path
):
    fake_plugins.registry.register(
        PlatformSpec(
            name="brokenshop", role="shop", connector=BrokenShop, settings_model=FakeSettings
        ),
        plugin="test",
    )
    engine = make_engine(connection_data(id="de", shop={"type": "brokenshop"}))
    report = await engine.run_flow("de", "orders")  # does not raise
    assert report is not None and report.errors == [SETUP_ERROR]
    runtime = engine.store.runtime("de")
    assert runtime["status"] == "error" and runtime["last_message"] == f"orders: {SETUP_ERROR}"
    other = StateStore(tmp_path / "state.db")
    try:
        assert other.acquire_lease("de") is not None  # released, not left to expire
    finally:
        other.close()
    await engine.aclose()


def test_sync_reports_a_connector_that_cannot_be_built(broken):
    result = broken("sync", "--flow", "orders")
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, RuntimeError)
    assert result.stdout.strip() == f"orders: nothing to do; 1 error(s): {SETUP_ERROR}"


def test_connections_test_reports_a_connector_that_cannot_be_built(broken):
    result = broken("connections", "test", "de", "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["marketplace"]["ok"] is True
    assert data["shop"] == {"ok": False, "message": SETUP_ERROR, "details": data["shop"]["details"]}


def test_check_reports_a_connector_that_cannot_be_built(broken):
    result = broken("check", "--no-stock")
    assert result.exit_code == 1
    assert not isinstance(result.exception, RuntimeError)
    assert result.stderr.strip() == f"Error: {SETUP_ERROR}"


def test_sync_says_when_another_process_holds_the_connection(run, orders, tmp_path):
    other = StateStore(tmp_path / "state.db")
    try:
        assert other.acquire_lease("de") is not None
        result = run("sync", "--connection", "de", "--flow", "orders", expect=3)
    finally:
        other.close()
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "orders: skipped: connection de is being synced by another process"
    )


def test_demo_says_why_it_takes_no_config():
    result = CliRunner().invoke(cli, ["demo", "-c", "mine.toml"])
    assert result.exit_code == 2
    assert "demo does not read a config" in result.stderr
    assert "ordersync run -c FILE" in result.stderr


def test_plugins_lists_the_builtin_platforms_through_the_installed_entry_points(tmp_path):
    """The console script as installed, outside the source tree, with no plugin controls."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_") and k != "PYTHONPATH"
    }
    script = Path(sys.executable).with_name("ordersync")
    result = subprocess.run(
        [str(script), "plugins"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    expected = {
        "amazon": "marketplace",
        "shopify": "shop",
        "woocommerce": "shop",
        "magento": "shop",
    }
    for name, role in expected.items():
        assert plugins[name]["platforms"] == [{"name": name, "role": role}], name
        assert plugins[name]["module"] == f"plugins.{name}"
        assert plugins[name]["version"]
