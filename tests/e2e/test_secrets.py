"""Secrets never appear in logs, the state DB, cassettes or any CLI output.

A full sync runs through the real CLI at DEBUG log level, against simulators on
loopback that accept only distinctive secret values; everything ordersync
wrote or printed is then searched for those values. Cassettes are recorded
during the test, with the project's own recorders and the same secrets, and
searched too; an unfiltered recording of the same calls shows the search
would find a leak.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import vcr

from engine.demo import write_config
from engine.interfaces import ConnectorContext
from engine.models import StockLevel
from engine.testing.server import serve_in_thread
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.harness import AmazonSimHarness
from plugins.amazon.settings import AmazonSettings
from plugins.amazon.sim_state import Credentials
from plugins.shopify import ShopifyConnector, ShopifySettings
from plugins.shopify.harness import ShopifySimHarness
from plugins.shopify.simulator import ShopifySimulator
from tests.plugins.amazon.test_cassettes import recorder as amazon_recorder
from tests.plugins.shopify.test_cassettes import _recorder as shopify_recorder

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "lwa_client_id": "amzn1.application-oa2-client.SECRETCLIENTID7731",
    "lwa_client_secret": "amzn1.oa2-cs.v1.SECRETCLIENTSECRET9942",
    "refresh_token": "SECRET-REFRESH-TOKEN-5518-xyzzy",
    "shopify_token": "SECRET-SHOPIFY-TOKEN-6620-plugh",
}
WRONG = {
    "refresh_token": "SECRET-WRONG-REFRESH-TOKEN-3141-quux",
    "shopify_token": "SECRET-WRONG-SHOPIFY-TOKEN-2718-frob",
}
CID = "amazon-eu-shopify"
ORDER = "302-8000001-0000001"


def harnesses() -> tuple[AmazonSimHarness, ShopifySimHarness]:
    amazon = AmazonSimHarness()
    amazon.sim.credentials = Credentials(
        client_id=SECRETS["lwa_client_id"],
        client_secret=SECRETS["lwa_client_secret"],
        refresh_token=SECRETS["refresh_token"],
    )
    shop = ShopifySimHarness()
    shop.sim = ShopifySimulator(access_token=SECRETS["shopify_token"])
    shop.app, shop.faults = shop.sim.app, shop.sim.faults
    return amazon, shop


def assert_none_in(secrets: list[str], where: dict[str, bytes]) -> None:
    for name, content in where.items():
        for value in secrets:
            assert value.encode() not in content, f"{value!r} leaked into {name}"


def test_no_secret_in_logs_state_or_cli_output(tmp_path):
    amazon, shop = harnesses()
    outputs: dict[str, str] = {}
    codes: dict[str, int] = {}
    with serve_in_thread(amazon.app) as amazon_url, serve_in_thread(shop.app) as shop_url:
        config = tmp_path / "ordersync.toml"
        write_config(config, "shopify", amazon.settings(amazon_url), shop.settings(shop_url))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_")},
            **amazon.env(),
            **shop.env(),
            "ORDERSYNC_LOG_LEVEL": "DEBUG",
            "PYTHONPATH": str(ROOT),
        }
        assert set(amazon.env().values()) | set(shop.env().values()) == set(SECRETS.values())
        wrong_env = {
            **env,
            "AMAZON_SIM_REFRESH_TOKEN": WRONG["refresh_token"],
            "SHOPIFY_SIM_ACCESS_TOKEN": WRONG["shopify_token"],
        }
        assert set(wrong_env) == set(env)  # the names the config refers to
        shop.add_product("SEC-1", 5)
        amazon.add_order(ORDER, {"SEC-1": 1})
        amazon.add_order("302-8000002-0000002", {"SEC-UNKNOWN": 1})

        def cli(*args: str, environ: dict[str, str] = env) -> None:
            result = subprocess.run(
                [sys.executable, "-m", "engine", *args, "-c", str(config)],
                env=environ,
                capture_output=True,
                text=True,
                timeout=120,
            )
            key = " ".join(args) + (" (wrong secrets)" if environ is not env else "")
            outputs[key] = result.stdout + result.stderr
            codes[key] = result.returncode

        cli("config", "check")
        cli("plugins")
        cli("connections", "test", CID)
        cli("connections", "test", CID, environ=wrong_env)
        cli("connections", "test", CID, "--json", environ=wrong_env)
        cli("sync", "--flow", "orders", environ=wrong_env)
        cli("sync")
        shop.ship(ORDER, None, "DHL", "T-SEC-1")
        cli("sync", "--dry-run")
        cli("run", "--cycles", "1")
        cli("connections")
        cli("connections", "--json")
        cli("orders", "list")
        cli("orders", "show", ORDER)
        cli("orders", "show", "302-8000002-0000002", "--json")
        cli("check")
        cli("retry")
        issued = set(amazon.sim.access_tokens)
        assert shop.count_orders(ORDER) == 1  # the sync really ran end to end
        assert [c["tracking"] for c in amazon.confirmations()] == ["T-SEC-1"]

    assert '"plugins"' in outputs["plugins"] and codes["plugins"] == 0
    assert codes[f"connections test {CID}"] == 0
    failed = outputs[f"connections test {CID} (wrong secrets)"]
    assert codes[f"connections test {CID} (wrong secrets)"] != 0, failed
    assert "rejected" in failed.lower() or "invalid" in failed.lower(), failed
    assert any("DEBUG" in out for out in outputs.values()), "the sync did not log at DEBUG level"
    assert any(ORDER in out for out in outputs.values())
    assert issued, "no LWA access token was issued: the sync never authenticated"
    state = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    secrets = [*SECRETS.values(), *WRONG.values(), *issued]
    assert_none_in(secrets, {f"`ordersync {k}`": v.encode() for k, v in outputs.items()})
    assert_none_in(secrets, {"the state DB": state})


async def amazon_calls(url: str, amazon: AmazonSimHarness) -> None:
    settings = AmazonSettings(
        marketplaces=["Amazon.de"],
        seller_id=amazon.sim.seller_id,
        lwa_client_id=SECRETS["lwa_client_id"],
        lwa_client_secret=SECRETS["lwa_client_secret"],
        lwa_refresh_token=SECRETS["refresh_token"],
        endpoint=url,
        lwa_token_url=f"{url}/auth/o2/token",
    )
    connector = AmazonConnector(settings, ConnectorContext("secrets"))
    try:
        assert (await connector.check()).ok
        now = amazon.sim.now()
        orders = [o async for o in connector.orders_updated(now - timedelta(days=1), now)]
        assert [o.marketplace_order_id for o in orders] == [ORDER]
        results = await connector.push_stock([StockLevel(sku="SEC-1", quantity=3)])
        assert [r.ok for r in results] == [True]
    finally:
        await connector.aclose()


async def shopify_calls(url: str, shop: ShopifySimHarness) -> None:
    settings = ShopifySettings(
        shop_domain=shop.sim.state.domain,
        access_token=SECRETS["shopify_token"],
        endpoint=url,
        location="Warehouse",
    )
    connector = ShopifyConnector(settings, ConnectorContext("secrets"))
    try:
        assert (await connector.check()).ok
        assert set(await connector.resolve_products("sku", ["SEC-1"])) == {"SEC-1"}
        assert await connector.find_order(ORDER) is None
        page = await connector.stock_levels("sku", None)
        assert {lv.sku for lv in page.levels} == {"SEC-1"}
    finally:
        await connector.aclose()


async def record(tape: Path, with_recorder: vcr.VCR, calls: Callable[[], Awaitable[None]]) -> bytes:
    with with_recorder.use_cassette(str(tape)):
        await calls()
    return read(tape)


def read(path: Path) -> bytes:
    return path.read_bytes()


def raw_recorder() -> vcr.VCR:
    return vcr.VCR(record_mode="all", decode_compressed_response=True)


@pytest.mark.parametrize("platform", ["amazon", "shopify"])
async def test_cassettes_recorded_with_the_secrets_hold_none_of_them(tmp_path, platform):
    amazon, shop = harnesses()
    shop.add_product("SEC-1", 5)
    amazon.add_order(ORDER, {"SEC-1": 1})
    harness: Any = amazon if platform == "amazon" else shop
    project_recorder = amazon_recorder("all") if platform == "amazon" else shopify_recorder("sim")
    run = amazon_calls if platform == "amazon" else shopify_calls
    tokens = amazon.sim.access_tokens
    with serve_in_thread(harness.app) as url:
        recorded = await record(
            tmp_path / "project.yaml", project_recorder, lambda: run(url, harness)
        )
        ours = set(tokens)
        unfiltered = await record(tmp_path / "raw.yaml", raw_recorder(), lambda: run(url, harness))
        raw_tokens = set(tokens) - ours
    mine = [v for k, v in SECRETS.items() if (k == "shopify_token") == (platform == "shopify")]
    assert recorded.count(b"uri:") >= 4  # every call above was recorded
    assert ours or platform == "shopify", "no LWA access token was issued"
    # Without the project's filters the same calls carry the secrets: the scan can fail.
    leaked = [s for s in [*mine, *raw_tokens] if s.encode() in unfiltered]
    assert leaked == [*mine, *raw_tokens]
    assert_none_in([*mine, *ours], {f"the {platform} cassette": recorded})
