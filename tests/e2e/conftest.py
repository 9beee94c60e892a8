"""End to end: the Amazon simulator → the real engine → a shop simulator, in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_config
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.state import StateStore
from engine.testing.harness import MarketplaceSim, ShopSim, load_harness

SHOPS = ["shopify", "woocommerce", "magento"]
TIME_SCALE = 200.0


@pytest.fixture(scope="session")
def builtin_plugins() -> Plugins:
    return load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", *(f"plugins.{s}" for s in SHOPS))
    )


@dataclass
class World:
    amazon: MarketplaceSim
    shop: ShopSim
    shop_name: str
    engine: Engine

    async def run(self, flow: str, connection: str = "eu") -> Any:
        report = await self.engine.run_flow(connection, flow)
        assert report is not None
        return report

    def wait_on_amazon(self, seconds: float = 180) -> None:
        """Let time pass: Amazon only shows updates older than two minutes."""
        from datetime import timedelta

        from engine.state import utcnow

        self.amazon.sim.advance(seconds)  # type: ignore[attr-defined]
        shifted = lambda: utcnow() + timedelta(seconds=seconds)  # noqa: E731
        self.engine.now = shifted
        for cid in ("eu", "us"):
            self.engine.connectors(cid).marketplace.now = shifted  # type: ignore[attr-defined]

    async def settle(self) -> None:
        """Shops report changes after a settle delay (Magento: 2 s, whole seconds)."""
        await asyncio.sleep(3.5 if self.shop_name == "magento" else 0.05)


def connection(
    cid: str, shop: str, amazon: MarketplaceSim, store: ShopSim, **extra: Any
) -> dict[str, Any]:
    market_settings = amazon.settings("https://amazon.test")
    market_settings.update(extra.pop("marketplace_settings", {}))
    return {
        "id": cid,
        "default_shipping_service": "Other",
        "cancellation_reason": "NoInventory",
        "carrier_map": {"DHL Paket": "DHL"},
        "marketplace": {"type": "amazon", "settings": market_settings},
        "shop": {"type": shop, "settings": store.settings(f"https://{shop}.test")},
        **extra,
    }


@pytest.fixture(params=SHOPS)
def world(
    request: pytest.FixtureRequest,
    builtin_plugins: Plugins,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    shop = request.param
    amazon: MarketplaceSim = load_harness(
        builtin_plugins.registry.get("amazon").simulator or "", time_scale=TIME_SCALE
    )
    store: ShopSim = load_harness(
        builtin_plugins.registry.get(shop).simulator or "", time_scale=TIME_SCALE
    )
    for name, value in {**amazon.env(), **store.env()}.items():
        monkeypatch.setenv(name, value)
    data = {
        "time_scale": TIME_SCALE,
        "connections": [
            connection("eu", shop, amazon, store),
            connection(
                "us", shop, amazon, store, marketplace_settings={"marketplaces": ["Amazon.com"]}
            ),
        ],
    }
    loaded = load_config(None, builtin_plugins.registry, data=data)
    state = StateStore(tmp_path / "state.db")
    engine = Engine(
        loaded,
        builtin_plugins.registry,
        state,
        hooks=builtin_plugins.pm.hook,
        transports={"amazon": amazon.transport(), shop: store.transport()},
    )
    yield World(amazon, store, shop, engine)
    state.close()
