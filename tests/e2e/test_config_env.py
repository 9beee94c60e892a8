"""Environment overrides and `config check` with the built-in plugins' settings models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.config import load_config
from engine.plugins import load_plugins

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "amazon-shopify.toml"
PREFIX = "ORDERSYNC_CONNECTIONS__AMAZON_EU_SHOPIFY__"


@pytest.fixture
def plugins():
    return load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", "plugins.shopify")
    )


@pytest.fixture
def example(tmp_path, monkeypatch) -> Path:
    text = EXAMPLE.read_text()
    for name in re.findall(r'"\$env" = "(\w+)"', text):
        monkeypatch.setenv(name, f"example-{name.lower()}")
    copy = tmp_path / EXAMPLE.name
    copy.write_text(text)
    return copy


def check(plugins, path: Path):
    return CliRunner().invoke(cli, ["config", "check", "-c", str(path)], obj={"plugins": plugins})


def test_plugin_settings_are_overridden_by_connection_id(plugins, example, monkeypatch):
    monkeypatch.setenv(PREFIX + "SHOP__SETTINGS__LOCATION", "Backroom")
    monkeypatch.setenv(PREFIX + "MARKETPLACE__SETTINGS__MARKETPLACES", '["Amazon.it"]')
    monkeypatch.setenv(PREFIX + "LEVEL", "stock_only")
    loaded = load_config(example, plugins.registry)
    conn = loaded.connections[0]
    assert conn.level == "stock_only" and conn.flows() == ("stock",)
    assert loaded.plugin_settings(conn.id, "shop").location == "Backroom"
    market = loaded.plugin_settings(conn.id, "marketplace")
    assert [m.domain for m in market.marketplace_list] == ["Amazon.it"]
    assert check(plugins, example).exit_code == 0


def test_config_check_names_the_variable_of_a_bad_plugin_value(plugins, example, monkeypatch):
    monkeypatch.setenv(PREFIX + "MARKETPLACE__SETTINGS__MARKETPLACES", '["Amazon.nowhere"]')
    monkeypatch.setenv(PREFIX + "SHOP__SETTINGS__TAGS", "amazon")  # a list is expected
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")
    result = check(plugins, example)
    assert result.exit_code == 1
    lines = dict(
        line.strip().split(": ", 1) for line in result.output.splitlines() if line.startswith("  ")
    )
    assert set(lines) == {
        "connections.0.marketplace.settings.marketplaces",
        "connections.0.shop.settings.tags",
        "connections.0.shop.settings.access_token",
    }
    assert lines["connections.0.marketplace.settings.marketplaces"].endswith(
        f"(set by {PREFIX}MARKETPLACE__SETTINGS__MARKETPLACES)"
    )
    assert "Amazon.nowhere" in lines["connections.0.marketplace.settings.marketplaces"]
    assert lines["connections.0.shop.settings.tags"].endswith(
        f"(set by {PREFIX}SHOP__SETTINGS__TAGS)"
    )
    assert "SHOPIFY_ACCESS_TOKEN is not set" in lines["connections.0.shop.settings.access_token"]


def test_a_disabled_connection_runs_nothing(plugins, example, monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__ACTIVE", "false")
    monkeypatch.setenv("ORDERSYNC_STATE_PATH", str(tmp_path / "state.db"))
    args = ["-c", str(example)]
    listed = CliRunner().invoke(cli, ["connections", "--json", *args], obj={"plugins": plugins})
    assert listed.exit_code == 0, listed.output
    assert [row["active"] for row in json.loads(listed.stdout)] == [False]
    synced = CliRunner().invoke(cli, ["sync", "--json", *args], obj={"plugins": plugins})
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == []  # no flow ran, nothing reached a platform
