"""``ordersync demo``: the real daemon, end to end, against bundled simulators.

The simulators run on loopback (uvicorn), seeded with a catalogue and Amazon
orders. The real ``ordersync run`` daemon runs as a subprocess for one cycle;
then a shipment, a carrier Amazon does not know, a shop cancellation and a
stock change are made in the shop, and the daemon runs another cycle. The
connections table, the orders list and what Amazon received are printed, and
the demo exits non-zero if anything did not arrive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.plugins import Plugins
from engine.testing.harness import MarketplaceSim, ShopSim, load_harness
from engine.testing.server import serve_in_thread

console = Console()

CATALOGUE = {"DEMO-MUG": 25, "DEMO-SHIRT-M": 12, "DEMO-SHIRT-L": 8, "DEMO-CAP": 40, "DEMO-BAG": 5}
ORDERS: dict[str, dict[str, Any]] = {
    "302-0000001-0000001": {"skus": {"DEMO-MUG": 2}},
    "302-0000002-0000002": {"skus": {"DEMO-SHIRT-M": 1, "DEMO-CAP": 1}},
    "302-0000003-0000003": {"skus": {"DEMO-BAG": 1}},
    "302-0000004-0000004": {"skus": {"DEMO-CAP": 3}, "marketplace": "Amazon.fr"},
    "302-0000005-0000005": {"skus": {"DEMO-SHIRT-L": 1}, "status": "PENDING"},
    "302-0000006-0000006": {"skus": {"DEMO-UNKNOWN": 1}},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(
    path: Path, shop: str, market_settings: dict[str, Any], shop_settings: dict[str, Any]
) -> None:
    lines = [
        'state_path = "state.db"',
        'log_level = "INFO"',
        "",
        "[[connections]]",
        f'id = "amazon-eu-{shop}"',
        f'label = "Amazon.de + Amazon.fr → {shop} (simulated)"',
        'level = "orders_and_stock"',
        'product_identification_attribute = "sku"',
        'default_shipping_service = "Other"',
        'cancellation_reason = "NoInventory"',
        'carrier_map = { "DHL Paket" = "DHL" }',
        "orders_per_month = 100",
        "schedule = { orders = 2, shipments = 2, stock = 2 }",
        "",
        "[connections.marketplace]",
        'type = "amazon"',
        f"settings = {_toml_value(market_settings)}",
        "",
        "[connections.shop]",
        f'type = "{shop}"',
        f"settings = {_toml_value(shop_settings)}",
        "",
    ]
    path.write_text("\n".join(lines))
    tomllib.loads(path.read_text())  # fail here, not in the daemon, if the writer is wrong


def run_cli(
    args: list[str], env: dict[str, str], *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine", *args]
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        command, env=env, check=True, text=True, capture_output=capture, timeout=120
    )


def run_demo(plugins: Plugins, shop: str = "shopify", workdir: Path = Path(".demo")) -> int:
    market_spec = plugins.registry.get("amazon", "marketplace")
    shop_spec = plugins.registry.get(shop, "shop")
    if not market_spec.simulator or not shop_spec.simulator:
        console.print(f"[red]no simulator registered for amazon or {shop}[/red]")
        return 2
    amazon: MarketplaceSim = load_harness(market_spec.simulator)
    store: ShopSim = load_harness(shop_spec.simulator)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = workdir / "ordersync.toml"

    with ExitStack() as stack:
        amazon_url = stack.enter_context(serve_in_thread(amazon.app))
        shop_url = stack.enter_context(serve_in_thread(store.app))
        console.rule(
            f"[bold]ordersync demo: Amazon simulator {amazon_url} ↔ {shop} simulator {shop_url}"
        )
        for sku, quantity in CATALOGUE.items():
            store.add_product(sku, quantity)
        for order_id, spec in ORDERS.items():
            amazon.add_order(
                order_id,
                spec["skus"],
                marketplace=spec.get("marketplace", "Amazon.de"),
                status=spec.get("status", "UNSHIPPED"),
            )
        write_config(config, shop, amazon.settings(amazon_url), store.settings(shop_url))
        env = {**os.environ, **amazon.env(), **store.env()}
        env.pop("ORDERSYNC_LOAD_PLUGINS", None)
        env.setdefault("COLUMNS", "160")
        console.print(f"config: {config}   (secrets come from the environment)")
        run_cli(["config", "check", "-c", str(config)], env)
        run_cli(["connections", "test", f"amazon-eu-{shop}", "-c", str(config)], env)

        console.rule("cycle 1: import orders, push stock")
        run_cli(["run", "-c", str(config), "--cycles", "1"], env)

        console.rule("in the shop: two shipments, one cancellation, one stock change")
        store.ship("302-0000001-0000001", None, "DHL Paket", "00340434161094042557")
        store.ship("302-0000002-0000002", {"DEMO-SHIRT-M": 1}, "Hermes Kurier", "H1234567890")
        store.cancel("302-0000003-0000003")
        store.set_stock("DEMO-MUG", 99)
        time.sleep(3)  # shops report changes with a settle delay of a few seconds

        console.rule("cycle 2: confirm shipments, cancel on Amazon, push changed stock")
        run_cli(["run", "-c", str(config), "--cycles", "1"], env)

        console.rule("result")
        run_cli(["connections", "-c", str(config)], env)
        run_cli(["orders", "list", "-c", str(config)], env)
        return report(amazon, store)


def report(amazon: MarketplaceSim, store: ShopSim) -> int:
    table = Table(title="What the Amazon simulator received")
    for column in ("kind", "order / SKU", "detail"):
        table.add_column(column)
    confirmations = amazon.confirmations()
    for c in confirmations:
        table.add_row("confirmShipment", c["order_id"], f"{c['carrier']} {c['tracking']}")
    cancellations = amazon.cancellations()
    for order_id, reason in cancellations:
        table.add_row("cancellation feed", order_id, reason)
    for sku in CATALOGUE:
        table.add_row("quantity", sku, str(amazon.quantity(sku)))
    console.print(table)

    problems = []
    for order_id in (
        "302-0000001-0000001",
        "302-0000002-0000002",
        "302-0000003-0000003",
        "302-0000004-0000004",
    ):
        if store.count_orders(order_id) != 1:
            problems.append(
                f"{order_id} is in the shop {store.count_orders(order_id)} times, expected once"
            )
    if store.count_orders("302-0000005-0000005") or store.count_orders("302-0000006-0000006"):
        problems.append("a pending or unknown-SKU order reached the shop")
    carriers = sorted(c["carrier"] for c in confirmations)
    if carriers != ["DHL", "Other"]:
        problems.append(f"expected confirmations with DHL and the default 'Other', got {carriers}")
    if [o for o, _ in cancellations] != ["302-0000003-0000003"]:
        problems.append(f"expected one cancellation on Amazon, got {cancellations}")
    if amazon.quantity("DEMO-MUG") != 99:
        problems.append(f"DEMO-MUG on Amazon is {amazon.quantity('DEMO-MUG')}, expected 99")
    for problem in problems:
        console.print(f"[red]✗ {problem}[/red]")
    if not problems:
        console.print(
            "[green]✓ orders imported once, shipments and the cancellation reached Amazon, stock pushed[/green]"
        )
    return 1 if problems else 0
