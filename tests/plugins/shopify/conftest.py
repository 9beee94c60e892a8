"""Fixtures: a simulator, a connector talking to it in-process, traffic capture."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from engine.interfaces import ConnectorContext
from plugins.shopify import ShopifyConnector, ShopifySettings
from plugins.shopify.simulator import ShopifySimulator

TIME_SCALE = 100.0
"""Simulated seconds per real second: the cost bucket restores 10 000 points/s."""


@dataclass
class Exchange:
    """One captured HTTP request/response pair."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    response: Any


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request and response (JSON-decoded)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        response = await self.inner.handle_async_request(request)
        data = await response.aread()
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                headers=dict(request.headers),
                body=_decode(content, request.headers.get("content-type", "")),
                status=response.status_code,
                response=_decode(data, response.headers.get("content-type", "")),
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=data, request=request
        )

    def graphql(self, operation: str | None = None) -> list[Exchange]:
        """GraphQL exchanges, optionally only those of one operation name."""
        return [
            e
            for e in self.exchanges
            if e.path.endswith("/graphql.json")
            and isinstance(e.body, dict)
            and (operation is None or e.body.get("operationName") == operation)
        ]


def _decode(raw: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return raw.decode(errors="replace")
    return raw.decode(errors="replace")


@pytest.fixture
def sim() -> ShopifySimulator:
    return ShopifySimulator(time_scale=TIME_SCALE)


@pytest.fixture
def catalog(sim: ShopifySimulator) -> dict[str, dict[str, str]]:
    """Three products: SKU-1/2/3 with barcodes and an ``custom.ean`` metafield."""
    return {
        "SKU-1": sim.add_product(
            "SKU-1",
            barcode="4006381333931",
            price="19.99",
            quantity=10,
            title="Mug",
            metafields={"custom.ean": "EAN-1"},
        ),
        "SKU-2": sim.add_product(
            "SKU-2",
            barcode="4006381333948",
            price="5.00",
            quantity=5,
            title="Spoon",
            metafields={"custom.ean": "EAN-2"},
        ),
        "SKU-3": sim.add_product("SKU-3", barcode="4006381333955", price="7.50", quantity=0),
    }


@pytest.fixture
def recorder(sim: ShopifySimulator) -> RecordingTransport:
    return RecordingTransport(sim.transport())


ConnectorFactory = Callable[..., ShopifyConnector]


@pytest.fixture
async def make_connector(recorder: RecordingTransport) -> AsyncIterator[ConnectorFactory]:
    """Build connectors against the simulator; ``**overrides`` go to the settings."""
    made: list[ShopifyConnector] = []

    def factory(**overrides: Any) -> ShopifyConnector:
        values: dict[str, Any] = {
            "shop_domain": "ordersync-sim.myshopify.com",
            "access_token": "test-access-token",
            "location": "Warehouse",
            "lookback_seconds": 0,
        }
        values.update(overrides)
        context = ConnectorContext(
            connection_id="test", transport=values.pop("transport", recorder), time_scale=TIME_SCALE
        )
        connector = ShopifyConnector(ShopifySettings(**values), context)
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


@pytest.fixture
async def connector(make_connector: ConnectorFactory) -> ShopifyConnector:
    return make_connector()
