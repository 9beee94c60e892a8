"""check(): getMarketplaceParticipations with clear messages."""

from __future__ import annotations

import httpx

from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory


async def test_check_ok(sim: AmazonSimulator, make_connector: ConnectorFactory) -> None:
    connector = make_connector(marketplaces=["Amazon.de", "A13V1IB3VIYZZH"])
    result = await connector.check()
    assert result.ok
    assert result.message == (
        f"connected to SP-API EU as seller {sim.seller_id} (Amazon.de, Amazon.fr)"
    )
    assert {"A1PA6795UKMFR9", "A13V1IB3VIYZZH"} <= set(result.details["participating"])


async def test_check_names_the_marketplace_the_seller_is_not_in(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    sim.participations = {"A1PA6795UKMFR9": True, "A13V1IB3VIYZZH": False}
    connector = make_connector(marketplaces=["Amazon.de", "Amazon.fr", "Amazon.it"])
    result = await connector.check()
    assert not result.ok
    assert result.message == (
        f"seller {sim.seller_id} does not participate in Amazon.fr (A13V1IB3VIYZZH), "
        "Amazon.it (APJ6JRA9NG5V4); participating marketplaces: Amazon.de (A1PA6795UKMFR9)"
    )


async def test_check_with_a_revoked_refresh_token(make_connector: ConnectorFactory) -> None:
    connector = make_connector(lwa_refresh_token="revoked")
    result = await connector.check()
    assert not result.ok
    assert "Amazon rejected the credentials" in result.message
    assert "invalid_grant" in result.message
    assert result.details["code"] == "invalid_grant"


async def test_check_with_a_wrong_client_secret(make_connector: ConnectorFactory) -> None:
    result = await make_connector(lwa_client_secret="old-secret").check()
    assert not result.ok
    assert result.details["code"] == "invalid_client"
    assert "old-secret" not in result.message


async def test_check_when_amazon_is_unreachable(make_connector: ConnectorFactory) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    connector = make_connector(transport=httpx.MockTransport(refuse))
    connector.client.api.retry.max_tries = 1
    connector.auth._http.retry.max_tries = 1  # noqa: SLF001 - keep the test fast
    result = await connector.check()
    assert not result.ok
    assert "connection failed" in result.message
