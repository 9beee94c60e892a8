"""pytest plugin (``pytest11`` entry point): what plugin authors test with.

Installed with ordersync, it is active in every pytest run. It offers the
``state_store`` fixture and re-exports the conformance suites, so a plugin's
tests need one import::

    from engine.testing.pytest_plugin import ShopConformance

    class TestMyShop(ShopConformance):
        @pytest.fixture
        def harness(self): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.state import StateStore
from engine.testing.conformance import (
    MarketplaceConformance,
    MarketplaceHarness,
    ShopConformance,
    ShopHarness,
    let_time_pass,
    sample_order,
)

__all__ = [
    "MarketplaceConformance",
    "MarketplaceHarness",
    "ShopConformance",
    "ShopHarness",
    "let_time_pass",
    "sample_order",
    "state_store",
]


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[StateStore]:
    """A fresh state database in a temporary folder."""
    store = StateStore(tmp_path / "state.db")
    yield store
    store.close()
