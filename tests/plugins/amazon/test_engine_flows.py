"""The engine's real flows with the Amazon plugin on its simulator and the engine's fake shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.config import load_config
from engine.plugins import load_plugins
from engine.runner import Engine
from engine.state import StateStore
from plugins.amazon.harness import AmazonSimHarness
from tests.fakes import WORLDS, World


@pytest.fixture
def world() -> Iterator[World]:
    WORLDS.clear()
    WORLDS["default"] = World(now=datetime.now(UTC))
    yield WORLDS["default"]
    WORLDS.clear()


async def test_orders_shipments_cancellations_and_stock_through_the_engine(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    amazon = AmazonSimHarness(time_scale=1000.0, seed=5)
    sim = amazon.sim
    for name, value in amazon.env().items():
        monkeypatch.setenv(name, value)
    plugins = load_plugins(entry_points_group=None, extra_modules=("tests.fakes", "plugins.amazon"))
    config = {
        "time_scale": 1000.0,
        "connections": [
            {
                "id": "c1",
                "marketplace": {"type": "amazon", "settings": amazon.settings("http://sim")},
                "shop": {"type": "fakeshop", "settings": {"world": "default"}},
                "default_shipping_service": "Other",
                "cancellation_reason": "NoInventory",
                "carrier_map": {"DHL Paket": "DHL"},
                "start_date": (world.now - timedelta(days=1)).date().isoformat(),
            }
        ],
    }
    loaded = load_config(None, plugins.registry, data=config)
    for sku in ("MUG", "CAP"):
        world.add_product(sku, 10)
    amazon.add_order("302-0000001-0000001", {"MUG": 2})
    amazon.add_order("302-0000002-0000002", {"CAP": 1}, marketplace="Amazon.fr")
    amazon.add_order("302-0000003-0000003", {"MUG": 1}, status="PENDING")
    store = StateStore(tmp_path / "state.db")
    engine = Engine(
        loaded, plugins.registry, store, transports={"amazon": amazon.transport()}, now=sim.now
    )
    engine.connectors("c1").marketplace.now = sim.now  # type: ignore[attr-defined]
    try:
        report = await engine.run_flow("c1", "orders")
        assert report is not None and report.counts["imported"] == 2
        assert [o.marketplace_order_id for o in world.shop_orders] == [
            "302-0000001-0000001",
            "302-0000002-0000002",
        ]

        await engine.run_flow("c1", "shipments")  # the shop's change cursor starts now
        world.now = sim.now() + timedelta(seconds=5)
        world.ship("302-0000001-0000001", {"MUG": 1}, carrier="DHL Paket", tracking="T1")
        world.ship("302-0000001-0000001", {"MUG": 1}, carrier="Hermes Kurier", tracking="T2")
        world.cancel_in_shop("302-0000002-0000002")
        await engine.run_flow("c1", "shipments")
        assert [(c["carrier"], c["tracking"], c["items"]) for c in amazon.confirmations()] == [
            ("DHL", "T1", {"MUG": 1}),
            ("Other", "T2", {"MUG": 1}),
        ]
        assert sim.order("302-0000001-0000001")["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
        assert amazon.cancellations() == [("302-0000002-0000002", "NoInventory")]

        world.set_stock("CAP", 4)
        await engine.run_flow("c1", "stock")
        assert amazon.quantity("CAP") == 4

        sim.set_status("302-0000003-0000003", "UNSHIPPED")
        sim.advance(300)
        report = await engine.run_flow("c1", "orders")
        assert report is not None and report.counts.get("imported") == 1
        assert len(world.shop_order_for("302-0000003-0000003")) == 1
        assert amazon.counters()["throttled"] == 0
    finally:
        await engine.connectors("c1").aclose()
        store.close()
