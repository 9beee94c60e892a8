"""Shared fixtures: in-test plugins, a fake world, an engine on a temp state DB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_config
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.state import StateStore
from tests.fakes import WORLDS, World


@pytest.fixture(autouse=True)
def _plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ORDERSYNC_STRICT_PLUGINS",
        "ORDERSYNC_LOAD_PLUGINS",
        "ORDERSYNC_DISABLED_PLUGINS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_plugins() -> Plugins:
    return load_plugins(entry_points_group=None, extra_modules=("tests.fakes",))


@pytest.fixture
def world() -> Iterator[World]:
    WORLDS.clear()
    WORLDS["default"] = World()
    yield WORLDS["default"]
    WORLDS.clear()


def connection_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "c1",
        "label": "Fake DE",
        "marketplace": {"type": "fakemarket", "settings": {"world": "default"}},
        "shop": {"type": "fakeshop", "settings": {"world": "default"}},
        "default_shipping_service": "Other",
        "cancellation_reason": "NoInventory",
        "carrier_map": {"DHL Paket": "DHL"},
        "start_date": "2026-11-01",
    }
    data.update(overrides)
    return data


EngineFactory = Callable[..., Engine]


@pytest.fixture
def make_engine(tmp_path: Path, fake_plugins: Plugins, world: World) -> Iterator[EngineFactory]:
    """Build engines on one state DB; a second call is a 'restarted process'."""
    stores: list[StateStore] = []

    def factory(*connections: dict[str, Any], **config: Any) -> Engine:
        data = {"connections": list(connections) or [connection_data()], **config}
        loaded = load_config(None, fake_plugins.registry, data=data, allow_literal_secrets=True)
        store = StateStore(tmp_path / "state.db")
        stores.append(store)
        return Engine(
            loaded, fake_plugins.registry, store, hooks=fake_plugins.pm.hook, now=lambda: world.now
        )

    yield factory
    for store in stores:
        store.close()
