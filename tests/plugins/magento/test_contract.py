"""Every request the plugin sends and every simulator answer, against the 2.4.9 schema."""

from __future__ import annotations

import gzip
import json

import pytest

from engine.errors import AuthError, FatalAPIError, RateLimited
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento import contract
from tests.plugins.magento.conftest import connector_for, eur_order, import_order, usd_order

EXPECTED_OPERATIONS = {
    "GET /V1/store/storeConfigs",
    "GET /V1/products",
    "GET /V1/orders",
    "GET /V1/orders/{id}",
    "PUT /V1/orders/create",
    "POST /V1/orders",
    "POST /V1/orders/{id}/cancel",
    "POST /V1/orders/{id}/comments",
    "GET /V1/shipments",
    "GET /V1/inventory/source-items",
    "POST /V1/inventory/source-items",
    "POST /V1/guest-carts",
    "GET /V1/guest-carts/{cartId}",
    "POST /V1/guest-carts/{cartId}/items",
    "POST /V1/guest-carts/{cartId}/shipping-information",
    "PUT /V1/guest-carts/{cartId}/order",
}


async def exercise(sim: MagentoSimulator, transport: contract.RecordingTransport) -> None:
    """Drive every connector call, both create modes and both auth modes."""
    direct = connector_for(sim, transport, page_size=2)
    cart = connector_for(sim, transport, order_create_mode="cart", auth_mode="bearer")
    wrong = connector_for(sim, transport, consumer_secret="wrong-secret-0000000000000000000")
    try:
        assert (await direct.check()).ok
        assert not (await wrong.check()).ok
        for attribute, values in (("sku", ["SKU-1", "X"]), ("id", ["2"]), ("ean", ["1"])):
            await direct.resolve_products(attribute, values)
        changes = (await direct.changes_since(None)).cursor
        stock = None
        while True:
            page = await direct.stock_levels("ean", stock)
            stock = page.cursor
            if not page.has_more:
                break
        sim.advance(20)

        eur = eur_order()
        ref = await import_order(direct, eur)
        await import_order(direct, eur)
        sim.faults.add("reset_after", match=r"PUT .*/guest-carts/.*/order", count=1)
        cart_ref = await import_order(cart, usd_order())
        await import_order(cart, eur_order("302-4444444-4444444"))
        sim.ship_order(
            int(ref.id),
            {"SKU-1": 1},
            [{"carrier_code": "dhl", "title": "DHL", "track_number": "1"}],
        )
        await cart.cancel_order(cart_ref, usd_order())
        third = await import_order(direct, eur_order("302-3333333-3333333"))
        sim.cancel_order(int(third.id))
        with pytest.raises(FatalAPIError):
            await direct.client.call("GET", "/V1/orders/999", "order_get")
        await bad_requests(direct)
        sim.advance(20)

        while True:
            result = await direct.changes_since(changes)
            changes = result.cursor
            if not result.has_more:
                break
        await direct.stock_levels("sku", stock)
        with pytest.raises(AuthError):
            await wrong.find_order("x")
    finally:
        for connector in (direct, cart, wrong):
            await connector.aclose()


async def bad_requests(connector: MagentoConnector) -> None:
    """Requests the schema allows that Magento refuses with 400 (a source item for no
    source, more than the shop can sell), and a source item saved (a void answer)."""
    item = {"sku": "SKU-3", "source_code": "nowhere", "quantity": 1, "status": 1}
    with pytest.raises(FatalAPIError) as refused:
        await connector.client.call(
            "POST", "/V1/inventory/source-items", "source_items_save", body={"sourceItems": [item]}
        )
    assert refused.value.status == 400
    item["source_code"] = "default"
    await connector.client.call(
        "POST", "/V1/inventory/source-items", "source_items_save", body={"sourceItems": [item]}
    )
    cart = str(await connector.client.call("POST", "/V1/guest-carts", "guest_cart_create"))
    too_many = {"sku": "SKU-2", "qty": 99, "quote_id": cart}
    with pytest.raises(FatalAPIError) as unavailable:
        await connector.client.call(
            "POST",
            f"/V1/guest-carts/{cart}/items",
            "guest_cart_item_add",
            body={"cartItem": too_many},
        )
    assert unavailable.value.status == 400


async def throttled(transport: contract.RecordingTransport, sim: MagentoSimulator) -> None:
    """Reads until the simulator's rate limit answers 429."""
    connector = connector_for(sim, transport)
    try:
        for _ in range(2):  # the burst
            await connector.find_order("302-0000000-0000000")
        with pytest.raises(RateLimited):
            await connector.find_order("302-0000000-0000000")
    finally:
        await connector.aclose()


async def test_plugin_requests_and_simulator_answers_follow_the_schema(
    sim: MagentoSimulator,
) -> None:
    recorder = contract.RecordingTransport(sim.transport())
    await exercise(sim, recorder)
    limited = MagentoSimulator(rate=0.1, burst=2)
    limited_recorder = contract.RecordingTransport(limited.transport())
    await throttled(limited_recorder, limited)
    recorder.exchanges += limited_recorder.exchanges

    assert {x.operation for x in recorder.exchanges} >= EXPECTED_OPERATIONS
    statuses = {x.status for x in recorder.exchanges}
    assert {200, 400, 401, 404, 429} <= statuses
    errors = []
    for exchange in recorder.exchanges:
        errors += contract.request_errors(exchange.request)
        errors += contract.response_errors(exchange.request, exchange.status, exchange.content)
    assert errors == []


def test_the_checker_catches_invented_fields() -> None:
    import httpx

    request = httpx.Request(
        "PUT",
        "http://magento.test/rest/default/V1/orders/create",
        json={
            "entity": {
                "customer_email": "a",
                "grand_total": 1,
                "base_grand_total": 1,
                "items": [{"sku": "A", "amazon_line": "1"}],
            }
        },
    )
    assert any("amazon_line" in e for e in contract.request_errors(request))
    search = httpx.Request(
        "GET",
        "http://magento.test/rest/V1/products?searchCriteria[filterGroups][3][filters][2]"
        "[field]=sku&searchCriteria[limit]=5",
    )
    assert contract.request_errors(search) == [
        "GET /V1/products: query parameter 'searchCriteria[limit]' is not in the schema"
    ]
    with pytest.raises(AssertionError, match="not an operation"):
        contract.operation("DELETE", "/rest/V1/orders")
    assert contract.request_errors(httpx.Request("GET", "http://m.test/rest/V1/orders/abc")) == [
        "GET /V1/orders/{id}: id='abc' is not an integer"
    ]


def test_json_cache_is_the_yaml() -> None:
    """Regenerate with ``python -m tests.plugins.magento.contract`` when the YAML changes."""
    assert contract.schema()["info"]["version"] == "2.4.9"
    with gzip.open(contract.CACHE_FILE, "rt", encoding="utf-8") as fh:
        assert json.load(fh)["source_sha256"] == contract.source_digest()
