"""Fixtures: a simulator and a connector wired to it in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.interfaces import ConnectorContext
from engine.models import Order, RejectedOrder
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.settings import AmazonSettings
from plugins.amazon.simulator import AmazonSimulator

TIME_SCALE = 1000.0
"""Rate limits and feed polling run this much faster than real time in tests."""


def settings_for(
    sim: AmazonSimulator, base_url: str = "http://sim", **overrides: Any
) -> AmazonSettings:
    values: dict[str, Any] = {
        "marketplaces": ["Amazon.de"],
        "seller_id": sim.seller_id,
        "lwa_client_id": sim.credentials.client_id,
        "lwa_client_secret": sim.credentials.client_secret,
        "lwa_refresh_token": sim.credentials.refresh_token,
        "endpoint": base_url,
        "lwa_token_url": f"{base_url}/auth/o2/token",
        "feed_poll_interval": 30.0,
    }
    values.update(overrides)
    return AmazonSettings(**values)


async def read_orders(connector: AmazonConnector, since: datetime, until: datetime) -> list[Order]:
    """All orders of a window; fails on a :class:`RejectedOrder` (none is expected)."""
    found = [o async for o in connector.orders_updated(since, until)]
    assert not [o for o in found if isinstance(o, RejectedOrder)], found
    return [o for o in found if isinstance(o, Order)]


def hours_ago(hours: float) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


@pytest.fixture
def sim() -> AmazonSimulator:
    return AmazonSimulator(time_scale=TIME_SCALE, seed=7)


ConnectorFactory = Callable[..., AmazonConnector]


@pytest.fixture
async def make_connector(
    sim: AmazonSimulator,
) -> AsyncIterator[ConnectorFactory]:
    """Build connectors on the simulator; ``transport=`` wraps or replaces its transport."""
    made: list[AmazonConnector] = []

    def make(
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        time_scale: float = TIME_SCALE,
        **overrides: Any,
    ) -> AmazonConnector:
        context = ConnectorContext(
            connection_id="amazon-test",
            transport=transport or sim.transport(),
            time_scale=time_scale,
        )
        connector = AmazonConnector(settings_for(sim, **overrides), context)
        connector.now = sim.now  # one clock: sim.advance() moves the connector's "now" too
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> AmazonConnector:
    return make_connector()


async def token_headers(client: httpx.AsyncClient, sim: AmazonSimulator) -> dict[str, str]:
    """Exchange the simulator's refresh token at its LWA endpoint; the SP-API auth header."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": sim.credentials.refresh_token,
        "client_id": sim.credentials.client_id,
        "client_secret": sim.credentials.client_secret,
    }
    token = (await client.post("/auth/o2/token", data=form)).json()["access_token"]
    return {"x-amz-access-token": token}
