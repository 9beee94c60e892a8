"""Every file in examples/ passes `ordersync config check` (with its secrets provided)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.plugins import load_plugins

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_passes_config_check(path, tmp_path, monkeypatch):
    text = path.read_text()
    for name in re.findall(r'"\$env" = "(\w+)"', text):
        monkeypatch.setenv(name, f"example-{name.lower()}")
    for rel in re.findall(r'"\$file" = "([^"]+)"', text):
        secret = tmp_path / rel
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text("example-secret-from-file\n")
    copy = tmp_path / path.name
    copy.write_text(text)
    plugins = load_plugins(
        entry_points_group=None,
        extra_modules=(
            "plugins.amazon",
            "plugins.shopify",
            "plugins.woocommerce",
            "plugins.magento",
        ),
    )
    result = CliRunner().invoke(cli, ["config", "check", "-c", str(copy)], obj={"plugins": plugins})
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_there_are_examples_for_every_builtin_shop():
    shops = {
        re.search(r'type = "(\w+)"\n\n\[connections.shop.settings\]', p.read_text()).group(1)
        for p in EXAMPLES
    }
    assert shops == {"shopify", "woocommerce", "magento"}


def _load(name: str) -> dict:
    import tomllib

    return tomllib.loads((EXAMPLES[0].parent / name).read_text())


def test_the_woocommerce_examples_show_stock_only_and_orders_with_ean_and_tracking():
    stock_only = _load("amazon-woocommerce-stock-only.toml")["connections"][0]
    assert stock_only["level"] == "stock_only"
    [orders] = _load("amazon-woocommerce.toml")["connections"]
    assert orders["level"] == "orders_and_stock"
    assert orders["product_identification_attribute"] == "ean"
    settings = orders["shop"]["settings"]
    assert settings["ean_meta_key"] and settings["amazon_order_id_meta_key"]
    assert settings["tracking_source"] in ("meta", "fulfillments")
    assert {"shipped_statuses", "tracking_meta_key", "untracked_shipment_delay_seconds"} <= set(
        settings
    )
