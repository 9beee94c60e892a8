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


def test_nested_environment_overrides_by_index_and_by_id(tmp_path, fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_TOKEN", "t")
    (tmp_path / "shop-token.txt").write_text("y")
    text = GOOD.replace('id = "de"', 'id = "amazon-de"')
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__ACTIVE", "false")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__AMAZON_DE__SCHEDULE__ORDERS", "60")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__AMAZON_DE__MARKETPLACE__SETTINGS__WORLD", "fr")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__CARRIER_MAP", '{"UPS Standard": "UPS"}')
    loaded = load_config(write(tmp_path, text), fake_plugins.registry)
    conn = loaded.connections[0]
    assert conn.active is False and conn.flows() == ()
    assert conn.schedule.orders == 60 and conn.schedule.stock == 60  # the file's value stays
    assert conn.carrier_map == {"UPS Standard": "UPS"}
    assert loaded.plugin_settings("amazon-de", "marketplace").world == "fr"
    assert loaded.plugin_settings("amazon-de", "marketplace").token.get_secret_value() == "t"


def test_bad_environment_overrides_name_the_variable_and_the_key(
    tmp_path, fake_plugins, monkeypatch
):
    monkeypatch.setenv("FAKE_TOKEN", "t")
    (tmp_path / "shop-token.txt").write_text("y")
    monkeypatch.setenv("ORDERSYNC_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__ACTIVE", "maybe")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__DE__ACTIV", "false")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__SHOP__SETTINGS__BOGUS", "1")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__7__ACTIVE", "false")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__FR__ACTIVE", "false")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__LABEL__TEXT", "x")
    monkeypatch.setenv("ORDERSYNC_CONNECTIONS__0__SCHEDULE", "{not json")
    errors = errors_of(write(tmp_path, GOOD), fake_plugins.registry)
    assert errors["log_level"].endswith("(set by ORDERSYNC_LOG_LEVEL)")
    assert "valid boolean" in errors["connections.0.active"]
    assert errors["connections.0.active"].endswith("(set by ORDERSYNC_CONNECTIONS__0__ACTIVE)")
    assert errors["connections.0.activ"] == (
        "Extra inputs are not permitted (set by ORDERSYNC_CONNECTIONS__DE__ACTIV)"
    )
    assert errors["connections.0.shop.settings.bogus"] == (
        "Extra inputs are not permitted (set by ORDERSYNC_CONNECTIONS__0__SHOP__SETTINGS__BOGUS)"
    )
    assert errors["connections.7"] == (
        "ORDERSYNC_CONNECTIONS__7__ACTIVE: no connection 7; the config has 1 connection(s): 0 (de)"
    )
    assert errors["connections.fr"].startswith(
        "ORDERSYNC_CONNECTIONS__FR__ACTIVE: no connection with id FR"
    )
    assert errors["connections.0.label.text"] == (
        "ORDERSYNC_CONNECTIONS__0__LABEL__TEXT: connections.0.label is not a table"
    )
    assert errors["connections.0.schedule"].startswith(
        "ORDERSYNC_CONNECTIONS__0__SCHEDULE is not valid JSON"
    )


def test_config_check_lists_every_error_at_once(tmp_path, fake_plugins, monkeypatch):
    """A core error does not hide plugin errors; a missing secret does not hide the rest."""
    monkeypatch.delenv("FAKE_TOKEN", raising=False)
    text = """
    [[connections]]
    id = "de"
    level = "everything"
    default_shipping_service = "Pigeon"
    cancellation_reason = "NoInventory"
    marketplace = { type = "fakemarket", settings = { wrld = "x" } }
    shop = { type = "fakeshop", settings = { token = { "$env" = "FAKE_TOKEN" }, bogus = 1 } }
    """
    path = write(tmp_path, text)
    errors = errors_of(path, fake_plugins.registry)
    assert errors == {
        "connections.0.level": "Input should be 'orders_and_stock' or 'stock_only'",
        "connections.0.marketplace.settings.wrld": "Extra inputs are not permitted",
        "connections.0.default_shipping_service": "'Pigeon' is not a fakemarket carrier code",
        "connections.0.shop.settings.token": "environment variable FAKE_TOKEN is not set",
        "connections.0.shop.settings.bogus": "Extra inputs are not permitted",
    }
    result = CliRunner().invoke(
        cli, ["config", "check", "-c", str(path)], obj={"plugins": fake_plugins}
    )
    assert result.exit_code == 1
    for key in errors:
        assert f"{key}:" in result.output
