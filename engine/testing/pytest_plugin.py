"""pytest plugin (``pytest11`` entry point): fixtures for plugin authors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.state import StateStore


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[StateStore]:
    """A fresh state database in a temporary folder."""
    store = StateStore(tmp_path / "state.db")
    yield store
    store.close()
