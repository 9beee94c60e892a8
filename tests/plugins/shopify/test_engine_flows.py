"""The engine's real import path (``find_order_refs`` + batched ``create_orders``) with the
Amazon and Shopify plugins on their simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import load_config
from engine.plugins import load_plugins
from engine.runner import Engine
from engine.state import OrderState, StateStore
from plugins.amazon.harness import AmazonSimHarness
from plugins.shopify.harness import ShopifySimHarness

from .conftest import RecordingTransport

TIME_SCALE = 200.0
CID = "eu"


@dataclass
class Flows:
    amazon: AmazonSimHarness
    shop: ShopifySimHarness
    wire: RecordingTransport
    engine: Engine

    async def run(self, flow: str) -> None:
        assert await self.engine.run_flow(CID, flow) is not None


@pytest.fixture
async def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Flows]:
    plugins = load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", "plugins.shopify")
    )
    amazon = AmazonSimHarness(time_scale=TIME_SCALE)
    shop = ShopifySimHarness(time_scale=TIME_SCALE)
    for name, value in {**amazon.env(), **shop.env()}.items():
        monkeypatch.setenv(name, value)
    data = {
        "time_scale": TIME_SCALE,
        "connections": [
            {
                "id": CID,
                "default_shipping_service": "Other",
                "cancellation_reason": "NoInventory",
                "marketplace": {"type": "amazon", "settings": amazon.settings("https://a.test")},
                "shop": {"type": "shopify", "settings": shop.settings("https://s.test")},
            }
        ],
    }
    wire = RecordingTransport(shop.transport())
    store = StateStore(tmp_path / "state.db")
    engine = Engine(
        load_config(None, plugins.registry, data=data),
        plugins.registry,
        store,
        transports={"amazon": amazon.transport(), "shopify": wire},
    )
    yield Flows(amazon, shop, wire, engine)
    await engine.aclose()
    store.close()


async def test_an_import_claims_shop_stock_and_mails_nobody(flows: Flows) -> None:
    flows.shop.add_product("ENG-A", 40)
    flows.shop.add_product("ENG-B", 40)
    ids = [f"302-7000000-{n:07d}" for n in range(12)]
    for oid in ids:
        flows.amazon.add_order(oid, {"ENG-A": 2, "ENG-B": 1})

    await flows.run("orders")

    store = flows.engine.store
    assert all(store.get_order(CID, oid).state is OrderState.IMPORTED for oid in ids)
    assert all(flows.shop.count_orders(oid) == 1 for oid in ids)
    batches = flows.wire.graphql("OrdersyncOrderCreateBatch")
    assert batches, "the engine imports through the batched create"
    for batch in batches:
        assert batch.body["variables"]["options"] == {
            "inventoryBehaviour": "DECREMENT_IGNORING_POLICY",
            "sendReceipt": False,
            "sendFulfillmentReceipt": False,
        }
    assert flows.shop.stock("ENG-A") == 40 - 24
    assert flows.shop.stock("ENG-B") == 40 - 12
    assert flows.shop.sim.notifications() == []
