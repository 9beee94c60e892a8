"""End to end: the Amazon simulator → the real engine → a shop simulator, in process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Variant:
    """A shop platform set up one way: harness options and connector settings."""

    id: str
    platform: str
    harness: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


VARIANTS = [
    Variant("shopify", "shopify"),
    Variant("woocommerce", "woocommerce"),
    Variant("woocommerce-fulfillments", "woocommerce", harness={"tracking_source": "fulfillments"}),
    Variant("magento", "magento"),
    Variant("magento-cart", "magento", settings={"order_create_mode": "cart"}),
]
"""Every way the round trip runs; ``world`` (used by the other e2e tests) runs the
first set-up of each platform."""
BY_ID = {v.id: v for v in VARIANTS}


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
    variant: Variant

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
    cid: str,
    shop: str,
    amazon: MarketplaceSim,
    store: ShopSim,
    shop_settings: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    market_settings = amazon.settings("https://amazon.test")
    market_settings.update(extra.pop("marketplace_settings", {}))
    return {
        "id": cid,
        "default_shipping_service": "Other",
        "cancellation_reason": "NoInventory",
        "carrier_map": {"DHL Paket": "DHL"},
        "marketplace": {"type": "amazon", "settings": market_settings},
        "shop": {
            "type": shop,
            "settings": {**store.settings(f"https://{shop}.test"), **(shop_settings or {})},
        },
        **extra,
    }


@contextmanager
def build_world(
    variant: Variant, plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The Amazon simulator, one shop simulator set up as ``variant`` says, the engine."""
    shop = variant.platform
    amazon: MarketplaceSim = load_harness(
        plugins.registry.get("amazon").simulator or "", time_scale=TIME_SCALE
    )
    store: ShopSim = load_harness(
        plugins.registry.get(shop).simulator or "", time_scale=TIME_SCALE, **variant.harness
    )
    for name, value in {**amazon.env(), **store.env()}.items():
        monkeypatch.setenv(name, value)
    data = {
        "time_scale": TIME_SCALE,
        "connections": [
            connection("eu", shop, amazon, store, variant.settings),
            connection(
                "us",
                shop,
                amazon,
                store,
                variant.settings,
                marketplace_settings={"marketplaces": ["Amazon.com"]},
            ),
        ],
    }
    loaded = load_config(None, plugins.registry, data=data)
    state = StateStore(tmp_path / "state.db")
    engine = Engine(
        loaded,
        plugins.registry,
        state,
        hooks=plugins.pm.hook,
        transports={"amazon": amazon.transport(), shop: store.transport()},
    )
    try:
        yield World(amazon, store, shop, engine, variant)
    finally:
        state.close()


@pytest.fixture(params=SHOPS)
def world(
    request: pytest.FixtureRequest,
    builtin_plugins: Plugins,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    with build_world(BY_ID[request.param], builtin_plugins, tmp_path, monkeypatch) as built:
        yield built
