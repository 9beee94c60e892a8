"""check(): a working connection, and a clear message for each way it can fail."""

from __future__ import annotations

import httpx

from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, connector_for


async def test_ok(make_connector: ConnectorFactory) -> None:
    result = await make_connector().check()
    assert result.ok
    assert result.message == "Connected to Magento store 'default' (EUR, UTC) via oauth."
    assert result.details["store_id"] == 1


async def test_bad_bearer_token_names_the_2_4_4_setting(make_connector: ConnectorFactory) -> None:
    result = await make_connector(auth_mode="bearer", access_token="not-the-token").check()
    assert not result.ok
    assert "isn't authorized" in result.message
    assert "standalone Bearer tokens" in result.message
    assert "not-the-token" not in result.message


async def test_bearer_disabled_in_magento(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.bearer_enabled = False
    result = await make_connector(auth_mode="bearer").check()
    assert not result.ok
    assert "auth_mode 'oauth'" in result.message


async def test_oauth_signature_rejected(make_connector: ConnectorFactory) -> None:
    result = await make_connector(consumer_secret="wrong-secret-000000000000000000").check()
    assert not result.ok
    assert result.message.startswith("Magento rejected the OAuth 1.0a signature")
    assert "base_url" in result.message
    assert "wrong-secret" not in result.message


async def test_oauth_unknown_consumer(make_connector: ConnectorFactory) -> None:
    result = await make_connector(consumer_key="unknown-key-00000000000000000000").check()
    assert not result.ok
    assert "Re-activate the integration" in result.message


async def test_missing_acl_resources_are_listed(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.denied_resources = {"Magento_Sales::sales", "Magento_InventoryApi::source"}
    result = await make_connector().check()
    assert not result.ok
    assert "orders (Magento_Sales::sales)" in result.message
    assert "MSI source items" in result.message
    assert "products" not in result.message.split("may not read")[1].split(";")[0]


async def test_unknown_store_code(make_connector: ConnectorFactory) -> None:
    result = await make_connector(endpoint="http://magento.test/rest/de", store_code="de").check()
    assert not result.ok
    assert "store that was requested wasn't found" in result.message


async def test_store_code_not_in_store_configs(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(endpoint="http://magento.test/rest/default", store_code="fr")
    result = await connector.check()
    assert not result.ok
    assert "store 'fr' not found" in result.message


async def test_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sim = MagentoSimulator(rate_limits=False)
    connector = connector_for(sim, httpx.MockTransport(refuse))
    try:
        result = await connector.check()
    finally:
        await connector.aclose()
    assert not result.ok
    assert result.message.startswith("Cannot reach Magento at https://magento.test/rest/default")
