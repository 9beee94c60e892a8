"""Key authentication: Basic over HTTPS only, OAuth 1.0a signatures over plain HTTP.

The signing side (:mod:`plugins.woocommerce.auth`) follows the docs' steps; the
simulator verifies the way ``WC_REST_Authentication`` does (its own code), so each
checks the other. Fixed vectors come from the docs and from ``openssl dgst``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from engine.errors import AuthError
from engine.testing.server import serve_in_thread
from plugins.woocommerce.auth import OAuth1QueryAuth, base_string, base_url, signature
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import (
    DEFAULT_KEY,
    DEFAULT_SECRET,
    NS,
    WooCommerceSimulator,
)
from tests.plugins.woocommerce.conftest import make_order

PLAIN = "http://shop.example.com"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"ck_test:cs_test").decode()}
DOC_BASE_STRING = (  # wp-api-v3_authentication.md, "Example signature base string"
    "GET&http%3A%2F%2Fwww.example.com%2Fwp-json%2Fwc%2Fv3%2Forders"
    "&oauth_consumer_key%3Dabc123%26oauth_signature_method%3DHMAC-SHA1"
)


def test_base_string_is_the_documented_example() -> None:
    url = httpx.URL("http://www.example.com/wp-json/wc/v3/orders")
    params = [("oauth_signature_method", "HMAC-SHA1"), ("oauth_consumer_key", "abc123")]
    assert base_string("get", base_url(url), params) == DOC_BASE_STRING


def test_signatures_match_openssl() -> None:
    # printf '%s' "$BASE" | openssl dgst -sha1 -hmac 'cs_secret&' -binary | base64
    assert signature(DOC_BASE_STRING, "cs_secret", "HMAC-SHA1") == "CDJ6tfoSNhTmB2G5fah6oMlzagA="
    assert (
        signature(DOC_BASE_STRING, "cs_secret", "HMAC-SHA256")
        == "u4Ec9KGI3H39cC9/TXZROKlmWRt/UwZNpejZPoroncU="
    )


def test_base_url_keeps_a_non_default_port_and_the_raw_path() -> None:
    assert base_url(httpx.URL("http://Shop.example.com:80/wp-json/wc/v3/orders?x=1")) == (
        "http://shop.example.com/wp-json/wc/v3/orders"
    )
    assert base_url(httpx.URL("http://127.0.0.1:8103/wp-json/wc/v3/orders/7")) == (
        "http://127.0.0.1:8103/wp-json/wc/v3/orders/7"
    )


def test_signed_url_carries_the_required_parameters_and_never_the_secret() -> None:
    auth = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, clock=lambda: 1_700_000_000.0)
    url = auth.sign("GET", httpx.URL(f"{PLAIN}{NS}/orders?search=a+b&per_page=2"))
    names = [k for k, _ in url.params.multi_items()]
    assert names[:2] == ["search", "per_page"]
    assert set(names[2:]) == {
        "oauth_consumer_key",
        "oauth_nonce",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_signature",
    }  # oauth_version left out, as the docs advise
    assert url.params["oauth_timestamp"] == "1700000000"
    assert len(url.params["oauth_nonce"]) == 32
    assert DEFAULT_SECRET not in str(url)
    again = auth.sign("GET", url)  # a retry: re-signed, never signed twice
    assert [k for k, _ in again.params.multi_items()].count("oauth_signature") == 1
    assert again.params["oauth_nonce"] != url.params["oauth_nonce"]


@pytest.fixture
def plain_sim() -> WooCommerceSimulator:
    sim = WooCommerceSimulator(rate_limits=False, base_url=PLAIN)
    sim.create_product("MUG-1", "9.99", 20, ean="4006381333931")
    return sim


def _client(sim: WooCommerceSimulator, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sim.transport(), base_url=PLAIN, auth=auth)


async def test_keys_over_plain_http_are_not_read(plain_sim: WooCommerceSimulator) -> None:
    """WooCommerce reads keys only when ``is_ssl()``: over HTTP they authenticate nobody."""
    async with _client(plain_sim) as http:
        basic = await http.get(f"{NS}/orders", headers=BASIC)
        query = await http.get(
            f"{NS}/orders", params={"consumer_key": DEFAULT_KEY, "consumer_secret": DEFAULT_SECRET}
        )
    for response in (basic, query):
        assert response.status_code == 401
        assert response.json()["code"] == "woocommerce_rest_cannot_view"
    async with httpx.AsyncClient(
        transport=plain_sim.transport(), base_url="https://shop.example.com"
    ) as https:
        assert (await https.get(f"{NS}/orders", headers=BASIC)).status_code == 200


async def test_the_loopback_demo_switch_accepts_keys_over_http() -> None:
    sim = WooCommerceSimulator(rate_limits=False, key_auth_over_http=True)
    async with _client(sim) as http:
        assert (await http.get(f"{NS}/orders", headers=BASIC)).status_code == 200


@pytest.mark.parametrize("method", ["HMAC-SHA256", "HMAC-SHA1"])
async def test_signed_requests_are_accepted(plain_sim: WooCommerceSimulator, method: str) -> None:
    auth = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, method)  # type: ignore[arg-type]
    async with _client(plain_sim, auth) as http:
        listed = await http.get(f"{NS}/products", params={"sku": "MUG-1,X Y", "per_page": 5})
        created = await http.post(f"{NS}/orders", json={"status": "pending"})
    assert listed.status_code == 200 and [p["sku"] for p in listed.json()] == ["MUG-1"]
    assert created.status_code == 201


async def test_oauth_in_the_authorization_header_is_accepted(
    plain_sim: WooCommerceSimulator,
) -> None:
    auth = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET)
    signed = auth.sign("GET", httpx.URL(f"{PLAIN}{NS}/orders"))
    oauth = [(k, v) for k, v in signed.params.multi_items()]
    header = "OAuth " + ", ".join(f'{k}="{quote(v, safe="")}"' for k, v in oauth)
    async with _client(plain_sim) as http:
        response = await http.get(f"{NS}/orders", headers={"Authorization": header})
    assert response.status_code == 200, response.text


def _signed(path: str) -> httpx.URL:
    return OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET).sign("GET", httpx.URL(f"{PLAIN}{path}"))


@pytest.mark.parametrize(
    ("tamper", "code", "message"),
    [
        (lambda u: u.copy_add_param("per_page", "100"), "authentication_error", "does not match"),
        (lambda u: u.copy_with(path=f"{NS}/products"), "authentication_error", "does not match"),
        (
            lambda u: u.copy_set_param("oauth_consumer_key", "ck_other"),
            "authentication_error",
            "Consumer key is invalid",
        ),
        (
            lambda u: u.copy_set_param("oauth_signature_method", "PLAINTEXT"),
            "authentication_error",
            "signature method is invalid",
        ),
        (
            lambda u: u.copy_remove_param("oauth_nonce"),
            "authentication_missing_parameter",
            "Missing OAuth parameter oauth_nonce",
        ),
    ],
)
async def test_tampered_or_incomplete_signatures_are_refused(
    plain_sim: WooCommerceSimulator,
    tamper: Callable[[httpx.URL], httpx.URL],
    code: str,
    message: str,
) -> None:
    url = tamper(_signed(f"{NS}/orders"))
    async with _client(plain_sim) as http:
        response = await http.get(url)
    assert response.status_code == 401
    assert response.json()["code"] == f"woocommerce_rest_{code}"
    assert message in response.json()["message"]


async def test_a_replayed_nonce_and_an_old_timestamp_are_refused(
    plain_sim: WooCommerceSimulator,
) -> None:
    url = _signed(f"{NS}/orders")
    stale = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, clock=lambda: time.time() - 16 * 60)
    async with _client(plain_sim) as http:
        assert (await http.get(url)).status_code == 200
        replayed = await http.get(url)
        old = await http.get(stale.sign("GET", httpx.URL(f"{PLAIN}{NS}/orders")))
    assert "nonce has already been used" in replayed.json()["message"]
    assert old.status_code == 401 and old.json()["message"] == "Invalid timestamp."


async def test_the_connector_signs_every_call_to_a_plain_http_store(
    plain_sim: WooCommerceSimulator,
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    woo = make_connector(plain_sim.transport(), store_url=PLAIN, allow_insecure_http=True)
    assert woo.settings.signs_requests
    assert (await woo.check()).ok
    products = await woo.resolve_products("ean", ["4006381333931"])
    order = make_order("303-9000001-9000001", [("MUG-1", 1, "9.99", "1.60")])
    ref = await woo.create_order(order, {"MUG-1": products["4006381333931"]})
    plain_sim.faults.add("503", match=r"^GET /wp-json/wc/v3/orders/\d+$", count=1)
    await woo.cancel_order(ref, order)  # the retry after the 503 is signed afresh
    assert plain_sim.get_order(int(ref.id))["status"] == "cancelled"
    assert plain_sim.faults.injected == {"503": 1}


async def test_a_wrong_secret_over_http_is_reported_as_a_bad_signature(
    plain_sim: WooCommerceSimulator,
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    woo = make_connector(
        plain_sim.transport(),
        store_url=PLAIN,
        allow_insecure_http=True,
        consumer_secret="cs_wrong",
    )
    result = await woo.check()
    assert not result.ok
    assert "signature" in result.message and "store_url" in result.message
    with pytest.raises(AuthError):
        await woo.resolve_products("sku", ["MUG-1"])


def test_the_simulator_on_loopback_verifies_real_signatures() -> None:
    """Over uvicorn the request really is plain HTTP, with a port in the signed URL."""
    sim = WooCommerceSimulator()
    with serve_in_thread(sim.app) as url:
        signed = httpx.get(
            f"{url}{NS}/system_status", auth=OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET)
        )
        basic = httpx.get(f"{url}{NS}/system_status", headers=BASIC)
    assert signed.status_code == 200, signed.text
    assert signed.json()["settings"]["currency"] == "EUR"
    assert basic.status_code == 401
