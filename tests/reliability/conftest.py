"""The real plugins and simulators in process (:mod:`tests.reliability.world`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import engine.http
from engine.plugins import Plugins
from tests.reliability.world import FastRetrying, SimWorld, builtin_plugins, sim_env


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return builtin_plugins()


@pytest.fixture
def sim_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulators' credentials, retries without back-off sleeps, a quiet engine log."""
    for name, value in sim_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine.http, "AsyncRetrying", FastRetrying)
    monkeypatch.setattr(logging.getLogger("ordersync"), "disabled", True)


@pytest.fixture
def sim_world(plugins: Plugins, sim_setup: None) -> Iterator[SimWorld]:
    made = SimWorld(plugins)
    yield made
    made.close()
