from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from engine.cli import cli
from engine.config import load_config
from engine.errors import ConfigError

GOOD = """
log_level = "INFO"
state_path = "state.db"

[[connections]]
id = "de"
label = "Amazon.de to the fake shop"
level = "orders_and_stock"
product_identification_attribute = "ean"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
carrier_map = { "DHL Paket" = "DHL" }
orders_per_month = 500
start_date = 2026-11-01

[connections.schedule]
orders = 120
stock = 60

[connections.marketplace]
type = "fakemarket"
settings = { world = "de", token = { "$env" = "FAKE_TOKEN" } }

[connections.shop]
type = "fakeshop"
settings = { token = { "$file" = "shop-token.txt" } }
"""


def write(tmp_path, text: str, name: str = "ordersync.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path, registry) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, registry)
    return dict(info.value.errors)


def test_valid_config_resolves_secrets_from_env_and_files(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", "env-secret-value")
    (tmp_path / "shop-token.txt").write_text("file-secret-value\n")
    loaded = load_config(write(tmp_path, GOOD), fake_plugins.registry)
    conn = loaded.connections[0]
    assert conn.schedule.orders == 120 and conn.schedule.shipments == 300
    market = loaded.plugin_settings("de", "marketplace")
    assert isinstance(market.token, SecretStr)
    assert market.token.get_secret_value() == "env-secret-value"
    assert loaded.plugin_settings("de", "shop").token.get_secret_value() == "file-secret-value"
    assert "env-secret-value" not in repr(market)


def test_missing_env_and_secret_file_are_named_by_path(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.delenv("FAKE_TOKEN", raising=False)
    errors = errors_of(write(tmp_path, GOOD), fake_plugins.registry)
    assert (
        errors["connections.0.marketplace.settings.token"]
        == "environment variable FAKE_TOKEN is not set"
    )
    assert "cannot read secret file" in errors["connections.0.shop.settings.token"]


def test_literal_secrets_are_refused(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", "x-token")
    (tmp_path / "shop-token.txt").write_text("y")
    text = GOOD.replace('token = { "$file" = "shop-token.txt" }', 'token = "literal-token"')
    errors = errors_of(write(tmp_path, text), fake_plugins.registry)
    assert "must not be written in the file" in errors["connections.0.shop.settings.token"]


def test_every_error_is_reported_with_its_dotted_path(tmp_path, fake_plugins):
    text = """
    bogus_top = 1

    [[connections]]
    id = "bad id!"
    level = "everything"
    default_shipping_service = "Other"
    cancellation_reason = "NoInventory"
    marketplace = { type = "fakemarket" }
    shop = { type = "fakeshop" }
    schedule = { orders = -5 }
    """
    errors = errors_of(write(tmp_path, text), fake_plugins.registry)
    assert set(errors) >= {
        "bogus_top",
        "connections.0.id",
        "connections.0.level",
        "connections.0.schedule.orders",
    }


def test_plugin_settings_and_platform_values_are_checked(tmp_path, fake_plugins):
    text = """
    [[connections]]
    id = "de"
    product_identification_attribute = "colour"
    default_shipping_service = "Pigeon"
    cancellation_reason = "Bored"
    carrier_map = { "DHL Paket" = "Owl" }
    marketplace = { type = "fakemarket", settings = { wrld = "x" } }
    shop = { type = "noshop" }

    [[connections]]
    id = "it"
    product_identification_attribute = "colour"
    default_shipping_service = "Pigeon"
    cancellation_reason = "Bored"
    marketplace = { type = "fakemarket" }
    shop = { type = "fakeshop" }
    """
    errors = errors_of(write(tmp_path, text), fake_plugins.registry)
    assert errors["connections.0.marketplace.settings.wrld"] == "Extra inputs are not permitted"
    assert "unknown shop type 'noshop'" in errors["connections.0.shop.type"]
    assert (
        "cannot match products by 'colour'"
        in errors["connections.1.product_identification_attribute"]
    )
    assert "'Bored' is not a fakemarket reason" in errors["connections.1.cancellation_reason"]
    assert (
        "'Pigeon' is not a fakemarket carrier code"
        in errors["connections.1.default_shipping_service"]
    )


def test_prefix_attributes_are_accepted(tmp_path, fake_plugins):
    text = """
    [[connections]]
    id = "de"
    product_identification_attribute = "meta:gtin"
    default_shipping_service = "Other"
    cancellation_reason = "NoInventory"
    marketplace = { type = "fakemarket" }
    shop = { type = "fakeshop" }
    """
    assert load_config(write(tmp_path, text), fake_plugins.registry).connections[0].id == "de"


def test_duplicate_connection_ids(tmp_path, fake_plugins):
    block = """
    [[connections]]
    id = "de"
    default_shipping_service = "Other"
    cancellation_reason = "NoInventory"
    marketplace = { type = "fakemarket" }
    shop = { type = "fakeshop" }
    """
    errors = errors_of(write(tmp_path, block + block), fake_plugins.registry)
    assert "used twice" in errors["connections"]


def test_environment_overrides_the_file(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", "t")
    (tmp_path / "shop-token.txt").write_text("y")
    monkeypatch.setenv("ORDERSYNC_LOG_LEVEL", "DEBUG")
    loaded = load_config(write(tmp_path, GOOD), fake_plugins.registry)
    assert loaded.config.log_level == "DEBUG"


def test_missing_and_broken_files(tmp_path, fake_plugins):
    assert "does not exist" in errors_of(tmp_path / "nope.toml", fake_plugins.registry)["<file>"]
    assert (
        "not valid TOML"
        in errors_of(write(tmp_path, "connections = [[["), fake_plugins.registry)["<file>"]
    )


def test_config_check_command(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", "t")
    (tmp_path / "shop-token.txt").write_text("y")
    runner = CliRunner()
    good = runner.invoke(
        cli, ["config", "check", "-c", str(write(tmp_path, GOOD))], obj={"plugins": fake_plugins}
    )
    assert good.exit_code == 0, good.output
    assert "OK (1 connection)" in good.output
    bad_text = GOOD.replace('level = "orders_and_stock"', 'level = "all"')
    bad = runner.invoke(
        cli,
        ["config", "check", "-c", str(write(tmp_path, bad_text, "bad.toml"))],
        obj={"plugins": fake_plugins},
    )
    assert bad.exit_code == 1
    assert "connections.0.level:" in bad.output
