"""Secrets never appear in logs, the state DB, cassettes or any CLI output.

A full sync runs through the real CLI at DEBUG log level, against simulators on
loopback that accept only distinctive secret values; everything ordersync
wrote or printed is then searched for those values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.demo import write_config
from engine.testing.server import serve_in_thread
from plugins.amazon.harness import AmazonSimHarness
from plugins.amazon.sim_state import Credentials
from plugins.shopify.harness import ShopifySimHarness
from plugins.shopify.simulator import ShopifySimulator

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "lwa_client_id": "amzn1.application-oa2-client.SECRETCLIENTID7731",
    "lwa_client_secret": "amzn1.oa2-cs.v1.SECRETCLIENTSECRET9942",
    "refresh_token": "SECRET-REFRESH-TOKEN-5518-xyzzy",
    "shopify_token": "SECRET-SHOPIFY-TOKEN-6620-plugh",
}


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


def test_no_secret_in_logs_state_cassettes_or_cli_output(tmp_path):
    amazon, shop = harnesses()
    outputs: list[str] = []
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
        shop.add_product("SEC-1", 5)
        amazon.add_order("302-8000001-0000001", {"SEC-1": 1})
        amazon.add_order("302-8000002-0000002", {"SEC-UNKNOWN": 1})

        def cli(*args: str) -> None:
            result = subprocess.run(
                [sys.executable, "-m", "engine", *args, "-c", str(config)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            outputs.append(result.stdout + result.stderr)

        cid = "amazon-eu-shopify"
        cli("config", "check")
        cli("connections", "test", cid)
        cli("sync")
        shop.ship("302-8000001-0000001", None, "DHL", "T-SEC-1")
        cli("sync", "--dry-run")
        cli("run", "--cycles", "1")
        cli("connections")
        cli("connections", "--json")
        cli("orders", "list")
        cli("orders", "show", "302-8000001-0000001")
        cli("orders", "show", "302-8000002-0000002", "--json")
        cli("check")
        cli("retry")
        issued = set(amazon.sim.access_tokens)
        assert shop.count_orders("302-8000001-0000001") == 1  # the sync really ran end to end
        assert [c["tracking"] for c in amazon.confirmations()] == ["T-SEC-1"]

    assert any("DEBUG" in out for out in outputs), "the sync did not log at DEBUG level"
    assert any("302-8000001-0000001" in out for out in outputs)
    assert issued, "no LWA access token was issued: the sync never authenticated"
    state = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    cassettes = b"".join(p.read_bytes() for p in (ROOT / "tests" / "cassettes").rglob("*.yaml"))
    for value in [*SECRETS.values(), *issued]:
        for text in outputs:
            assert value not in text
        assert value.encode() not in state
        assert value.encode() not in cassettes
