from __future__ import annotations

import json
import textwrap
from datetime import timedelta

import pytest
from click.testing import CliRunner

from engine.cli import cli

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
    ]
    for path in commands:
        out = CliRunner().invoke(cli, [*path, "--help"]).stdout
        assert "-c, --config" in out, path
