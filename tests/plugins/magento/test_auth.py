"""OAuth 1.0a HMAC-SHA256 signing (RFC 5849) and bearer tokens, against known values."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from engine.errors import AuthError
from plugins.magento.auth import (
    OAuth1Credentials,
    OAuth1Signer,
    base_string_uri,
    parse_authorization_header,
    signature_base_string,
    url_parts,
)
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import Credentials, MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, connector_for

# RFC 5849 section 3.4.1.1: the request, its parameters and its signature base string.
RFC_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
RFC_OAUTH = {
    "oauth_consumer_key": "9djdj82h48djs9d2",
    "oauth_token": "kkk9d7dh3k39sjv7",
    "oauth_signature_method": "HMAC-SHA1",
    "oauth_timestamp": "137131201",
    "oauth_nonce": "7d8f3e4a",
}
RFC_BODY = [("c2", ""), ("a3", "2 q")]
RFC_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D"
    "%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce"
    "%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201"
    "%26oauth_token%3Dkkk9d7dh3k39sjv7"
)


def test_base_string_matches_rfc_5849_example() -> None:
    uri, query = url_parts(httpx.URL(RFC_URL))
    assert signature_base_string("POST", uri, query, RFC_OAUTH, RFC_BODY) == RFC_BASE_STRING


def test_base_string_uri_rules_from_rfc_5849() -> None:
    # 3.4.1.2: "http://EXAMPLE.COM:80/r%20v/X?id=123" → "http://example.com/r%20v/X"
    uri, query = url_parts(httpx.URL("http://EXAMPLE.COM:80/r%20v/X?id=123"))
    assert (uri, query) == ("http://example.com/r%20v/X", "id=123")
    assert base_string_uri("https", "www.example.net", 8080, "/") == "https://www.example.net:8080/"


def test_hmac_sha256_signature_of_a_magento_search() -> None:
    """Sign a searchCriteria GET and recompute the signature by hand."""
    creds = OAuth1Credentials("ck", "cs&1", "tok", "ts 2")
    signer = OAuth1Signer(creds, clock=lambda: 1700000000, nonce=lambda: "abc123")
    url = httpx.URL(
        "https://shop.example.com/rest/default/V1/products",
        params=[
            ("searchCriteria[filterGroups][0][filters][0][field]", "sku"),
            ("searchCriteria[filterGroups][0][filters][0][value]", "A B,C/D"),
            ("searchCriteria[pageSize]", "100"),
        ],
    )
    header = signer.sign("GET", url)

    expected_base = "&".join(
        [
            "GET",
            "https%3A%2F%2Fshop.example.com%2Frest%2Fdefault%2FV1%2Fproducts",
            "oauth_consumer_key%3Dck%26oauth_nonce%3Dabc123%26oauth_signature_method%3D"
            "HMAC-SHA256%26oauth_timestamp%3D1700000000%26oauth_token%3Dtok%26oauth_version"
            "%3D1.0%26searchCriteria%255BfilterGroups%255D%255B0%255D%255Bfilters%255D%255B0%255D"
            "%255Bfield%255D%3Dsku%26searchCriteria%255BfilterGroups%255D%255B0%255D%255Bfilters"
            "%255D%255B0%255D%255Bvalue%255D%3DA%2520B%252CC%252FD%26searchCriteria%255BpageSize"
            "%255D%3D100",
        ]
    )
    key = b"cs%261&ts%202"
    digest = hmac.new(key, expected_base.encode(), hashlib.sha256).digest()
    params = parse_authorization_header(header)
    assert params["oauth_signature"] == base64.b64encode(digest).decode()
    assert params["oauth_signature_method"] == "HMAC-SHA256"
    assert header.startswith("OAuth ")


async def test_simulator_accepts_a_signed_search_with_odd_characters(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    sim.create_product("A B/1+ü", "1.00", 1)
    assert list(await connector.resolve_products("sku", ["A B/1+ü"])) == ["A B/1+ü"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("consumer_secret", "The signature is invalid"),
        ("access_token_secret", "The signature is invalid"),
        ("consumer_key", "A consumer having the specified key does not exist"),
        ("access_token", "Specified token does not exist"),
    ],
)
async def test_simulator_rejects_wrong_oauth_values(
    sim: MagentoSimulator, make_connector: ConnectorFactory, field: str, message: str
) -> None:
    connector = make_connector(**{field: "wrong-value-0000000000000000000"})
    with pytest.raises(AuthError) as rejected:
        await connector.find_order("302-1111111-1111111")
    assert rejected.value.status == 401
    assert message in rejected.value.message


async def test_simulator_rejects_a_tampered_url(sim: MagentoSimulator) -> None:
    c = sim.credentials
    signer = OAuth1Signer(
        OAuth1Credentials(c.consumer_key, c.consumer_secret, c.access_token, c.access_token_secret)
    )
    signed = httpx.URL("http://magento.test/rest/default/V1/orders?searchCriteria[pageSize]=1")
    sent = "http://magento.test/rest/default/V1/orders?searchCriteria[pageSize]=2"
    async with httpx.AsyncClient(transport=sim.transport()) as client:
        response = await client.get(sent, headers={"Authorization": signer.sign("GET", signed)})
    assert response.status_code == 401
    assert response.json() == {"message": "The signature is invalid. Verify and try again."}


async def test_simulator_rejects_a_replayed_nonce(sim: MagentoSimulator) -> None:
    c = sim.credentials
    creds = OAuth1Credentials(
        c.consumer_key, c.consumer_secret, c.access_token, c.access_token_secret
    )
    signer = OAuth1Signer(creds, nonce=lambda: "same-nonce")
    url = "http://magento.test/rest/default/V1/store/storeConfigs"
    async with httpx.AsyncClient(transport=sim.transport()) as client:
        first = await client.get(url, headers={"Authorization": signer.sign("GET", httpx.URL(url))})
        second = await client.get(
            url, headers={"Authorization": signer.sign("GET", httpx.URL(url))}
        )
    assert first.status_code == 200
    assert second.status_code == 401
    assert "nonce" in second.json()["message"]


class HeaderCapture(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.authorization: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.authorization.append(request.headers.get("authorization", ""))
        return await self.inner.handle_async_request(request)


async def test_bearer_token(sim: MagentoSimulator) -> None:
    capture = HeaderCapture(sim.transport())
    connector = connector_for(
        sim, capture, auth_mode="bearer", consumer_key=None, consumer_secret=None
    )
    try:
        assert await connector.find_order("302-1111111-1111111") is None
    finally:
        await connector.aclose()
    assert capture.authorization == [f"Bearer {sim.credentials.access_token}"]


async def test_bearer_rejected_when_magento_disables_it(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.bearer_enabled = False
    connector = make_connector(auth_mode="bearer")
    with pytest.raises(AuthError) as rejected:
        await connector.find_order("302-1111111-1111111")
    assert "isn't authorized" in rejected.value.message


async def test_every_retry_is_signed_afresh(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    """A replayed signature would hit the nonce check; each try gets a new nonce."""
    sim.faults.add("500", match=r"GET .*/V1/orders", count=2)
    connector = make_connector()
    assert await connector.find_order("302-1111111-1111111") is None


def test_simulator_credentials_are_placeholders() -> None:
    creds = Credentials()
    assert all(value.startswith("sim-magento-") for value in vars(creds).values())
