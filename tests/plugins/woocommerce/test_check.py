"""check(): a clear message for each way a connection fails."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from engine.testing.server import free_port
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import WooCommerceSimulator
from tests.plugins.woocommerce.conftest import STORE


class StripAuthorization(httpx.AsyncBaseTransport):
    """A server (CGI/FastCGI setups) that drops the Authorization header."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers.pop("authorization", None)
        return await self.inner.handle_async_request(request)


async def test_check_passes(woo: WooCommerceConnector) -> None:
    result = await woo.check()
    assert result.ok
    assert result.message == f"connected to WooCommerce 8.9.0 at {STORE}"
    assert result.details["currency"] == "EUR"


async def test_bad_key_and_bad_secret(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    bad_key = await make_connector(sim.transport(), consumer_key="ck_wrong").check()
    assert not bad_key.ok
    assert bad_key.details == {"status": 401, "code": "woocommerce_rest_authentication_error"}
    assert "rejected the API key (Consumer key is invalid.)" in bad_key.message
    assert "consumer_key and consumer_secret" in bad_key.message

    bad_secret = await make_connector(sim.transport(), consumer_secret="cs_wrong").check()
    assert "Consumer secret is invalid." in bad_secret.message
    assert "cs_wrong" not in bad_secret.message


async def test_stripped_authorization_header_points_at_query_string_auth(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    stripped = await make_connector(StripAuthorization(sim.transport())).check()
    assert not stripped.ok
    assert stripped.details["code"] == "woocommerce_rest_cannot_view"
    assert "woocommerce_rest_cannot_view" in stripped.message
    assert "query_string_auth = true" in stripped.message

    fixed = make_connector(StripAuthorization(sim.transport()), query_string_auth=True)
    assert (await fixed.check()).ok


async def test_unreachable_store(make_connector: Callable[..., WooCommerceConnector]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = await make_connector(None, store_url=url).check()
    assert not result.ok
    assert result.message.startswith(f"cannot reach the store at {url}: connection failed")


async def test_no_woocommerce_api_at_the_url(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    result = await make_connector(sim.transport(), api_base=f"{STORE}/wp-json/wc/v9").check()
    assert not result.ok
    assert "no WooCommerce REST API at" in result.message and "rest_no_route" in result.message


async def test_html_instead_of_json(woo: WooCommerceConnector, sim: WooCommerceSimulator) -> None:
    sim.faults.add("html_200", match="system_status")
    result = await woo.check()
    assert not result.ok
    assert (
        "did not answer as the WooCommerce REST API (expected JSON, got an HTML page"
        in result.message
    )


async def test_server_errors(woo: WooCommerceConnector, sim: WooCommerceSimulator) -> None:
    sim.faults.add("503", match="system_status")
    result = await woo.check()
    assert not result.ok and result.message.startswith("the store answered HTTP 503")


async def test_fulfillments_source_needs_the_feature(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    result = await make_connector(sim.transport(), tracking_source="fulfillments").check()
    assert not result.ok
    assert "Order Fulfillments" in result.message
