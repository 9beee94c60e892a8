"""LWA: refresh-token exchange, caching until a minute before expiry, refresh on 401/403."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from engine.errors import AuthError
from engine.interfaces import ConnectorContext
from engine.models import Order, Shipment, ShipmentLine
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory, settings_for
from tests.plugins.amazon.contract import RecordingTransport


async def test_exchange_form_and_header(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    await connector.check()

    lwa, call = recorder.exchanges
    assert lwa.url.path == "/auth/o2/token"
    assert parse_qs(lwa.request_body.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["test-refresh-token"],
        "client_id": ["test-client-id"],
        "client_secret": ["test-client-secret"],
    }
    token = json.loads(lwa.response_body)["access_token"]
    assert call.request_headers["x-amz-access-token"] == token
    assert "authorization" not in call.request_headers  # no SigV4


async def test_token_is_cached(sim: AmazonSimulator, connector: AmazonConnector) -> None:
    for _ in range(3):
        assert await connector.get_order("000-0000000-0000000") is None
    assert sim.token_grants == 1
    assert connector.auth.exchanges == 1


async def test_token_is_renewed_a_minute_before_it_expires(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    now = [1000.0]
    connector.auth.clock = lambda: now[0]
    await connector.get_order("000-0000000-0000000")

    now[0] += 3600 - 61  # still valid for 61 s: reused
    await connector.get_order("000-0000000-0000000")
    assert sim.token_grants == 1

    now[0] += 2  # within the last minute: renewed before Amazon could reject it
    await connector.get_order("000-0000000-0000000")
    assert sim.token_grants == 2
    assert sim.rejected_requests == 0


async def test_rejected_token_is_refreshed_once_and_the_call_retried(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order_id = sim.create_order({"A": 1})["orderId"]
    await connector.get_order(order_id)
    sim.expire_access_tokens()  # e.g. revoked, or a clock that drifted

    order = await connector.get_order(order_id)

    assert isinstance(order, Order)
    assert sim.rejected_requests == 1
    assert sim.token_grants == 2


async def test_401_is_refreshed_once_and_the_call_retried(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    order = await connector.get_order(sim.create_order({"A": 1})["orderId"])
    assert isinstance(order, Order)
    sim.revoke_access_tokens()  # Amazon no longer knows the token

    await connector.confirm_shipment(
        order,
        Shipment(
            shipment_id="1",
            marketplace_order_id=order.marketplace_order_id,
            shop_order_id="1",
            lines=(ShipmentLine(sku="A", quantity=1),),
            tracking_number="T",
            shipped_at=order.purchased_at,
        ),
        "DHL",
    )

    confirms = [e.status for e in recorder.exchanges if e.url.path.endswith("Confirmation")]
    assert confirms == [401, 204]
    assert sim.token_grants == 2
    assert len(sim.confirmations) == 1


async def test_still_rejected_after_refresh_raises_auth_error() -> None:
    sim = AmazonSimulator(token_ttl=0)  # every token is already expired when used
    connector = AmazonConnector(settings_for(sim), ConnectorContext("c", transport=sim.transport()))
    try:
        with pytest.raises(AuthError) as caught:
            await connector.get_order("000-0000000-0000000")
    finally:
        await connector.aclose()
    assert caught.value.status == 403
    assert caught.value.code == "Unauthorized"
    assert sim.token_grants == 2  # refreshed exactly once
    assert sim.rejected_requests == 2


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"lwa_refresh_token": "revoked-refresh-token"}, "invalid_grant"),
        ({"lwa_client_secret": "rotated-away-secret"}, "invalid_client"),
    ],
)
async def test_bad_credentials_raise_auth_error_without_leaking_them(
    make_connector: ConnectorFactory, override: dict[str, str], code: str
) -> None:
    connector = make_connector(**override)
    with pytest.raises(AuthError) as caught:
        await connector.get_order("000-0000000-0000000")
    assert caught.value.code == code
    assert "Login with Amazon rejected the credentials" in str(caught.value)
    secret = next(iter(override.values()))
    assert secret not in str(caught.value)
    assert secret not in repr(connector.settings)
