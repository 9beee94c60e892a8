"""check(), locations, static tokens and the client credentials grant."""

from __future__ import annotations

import pytest

from engine.errors import AuthError, ConfigError
from plugins.shopify import ShopifyConnector
from plugins.shopify.settings import DEFAULT_API_VERSION
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, RecordingTransport


async def test_check_ok(connector: ShopifyConnector, sim: ShopifySimulator) -> None:
    result = await connector.check()
    assert result.ok
    assert "Warehouse" in result.message
    assert result.details["shop"] == "ordersync-sim.myshopify.com"
    assert result.details["location_id"].startswith("gid://shopify/Location/")
    assert result.details["api_version"] == DEFAULT_API_VERSION == "2026-10"
    assert result.details["api_version_served"] == DEFAULT_API_VERSION
    assert "answered with API version" not in result.message


async def test_check_reports_the_api_version_served(
    make_connector: ConnectorFactory, recorder: RecordingTransport
) -> None:
    """Shopify answers a retired version with its oldest supported one, in a header."""
    result = await make_connector(api_version="2025-01").check()

    assert recorder.graphql()[0].path == "/admin/api/2025-01/graphql.json"
    assert result.ok
    assert result.details["api_version_served"] == "2026-01"
    assert (
        "Shopify answered with API version 2026-01, not 2025-01: the version asked for is "
        "not supported (any more); set api_version to a supported one (the default is 2026-10)"
    ) in result.message


async def test_bad_token_is_a_clear_check_failure(make_connector: ConnectorFactory) -> None:
    result = await make_connector(access_token="wrong-access-token").check()
    assert not result.ok
    assert "Shopify rejected the credentials for ordersync-sim.myshopify.com" in result.message
    assert "Invalid API key or access token" in result.message
    assert "wrong-access-token" not in result.message
    assert result.details["status"] == 401


async def test_unknown_location_is_a_clear_check_failure(
    make_connector: ConnectorFactory, sim: ShopifySimulator
) -> None:
    sim.add_location("Store Berlin")
    result = await make_connector(location="Lager Hamburg").check()
    assert not result.ok
    assert "unknown location 'Lager Hamburg'" in result.message
    assert "'Warehouse', 'Store Berlin'" in result.message


async def test_unknown_location_id(make_connector: ConnectorFactory) -> None:
    result = await make_connector(location="gid://shopify/Location/42").check()
    assert not result.ok
    assert "no Shopify location with id gid://shopify/Location/42" in result.message


async def test_location_by_id_name_or_default(
    make_connector: ConnectorFactory, sim: ShopifySimulator
) -> None:
    warehouse = (await make_connector().location())["id"]
    assert (await make_connector(location=warehouse).location())["id"] == warehouse
    assert (await make_connector(location=warehouse.rsplit("/", 1)[-1]).location())[
        "id"
    ] == warehouse
    assert (await make_connector(location="warehouse").location())["id"] == warehouse
    assert (await make_connector(location=None).location())["id"] == warehouse

    sim.add_location("Store Berlin")
    with pytest.raises(ConfigError, match="several locations"):
        await make_connector(location=None).location()


async def test_client_credentials_token_is_fetched_and_refreshed(
    make_connector: ConnectorFactory, sim: ShopifySimulator, recorder: RecordingTransport
) -> None:
    connector = make_connector(
        access_token=None, client_id="test-client-id", client_secret="test-client-secret"
    )
    now = [1000.0]
    connector.client.tokens.clock = lambda: now[0]

    assert (await connector.check()).ok
    token_calls = [e for e in recorder.exchanges if e.path == "/admin/oauth/access_token"]
    assert len(token_calls) == 1
    assert token_calls[0].body == (
        "grant_type=client_credentials&client_id=test-client-id&client_secret=test-client-secret"
    )
    first = token_calls[0].response["access_token"]
    assert recorder.graphql()[0].headers["x-shopify-access-token"] == first

    now[0] += (86_399 - 300) / 100 - 0.01  # just before the refresh margin (simulated s / scale)
    await connector.check()
    assert connector.client.tokens.fetched == 1

    now[0] += 1.0
    await connector.check()
    assert connector.client.tokens.fetched == 2
    assert recorder.graphql()[-1].headers["x-shopify-access-token"] != first


async def test_expired_token_is_refreshed_on_401(
    make_connector: ConnectorFactory, sim: ShopifySimulator, recorder: RecordingTransport
) -> None:
    connector = make_connector(
        access_token=None, client_id="test-client-id", client_secret="test-client-secret"
    )
    assert (await connector.check()).ok
    sim.issued.clear()  # the shop revoked or expired the token early

    assert (await connector.check()).ok
    assert connector.client.tokens.fetched == 2
    assert [e.status for e in recorder.graphql()][-2:] == [401, 200]


async def test_wrong_client_secret(make_connector: ConnectorFactory) -> None:
    connector = make_connector(
        access_token=None, client_id="test-client-id", client_secret="wrong-client-secret"
    )
    result = await connector.check()
    assert not result.ok
    assert "client credentials were rejected" in result.message
    assert "wrong-client-secret" not in result.message
    with pytest.raises(AuthError):
        await connector.resolve_products("sku", ["SKU-1"])
