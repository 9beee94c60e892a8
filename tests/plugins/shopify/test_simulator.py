"""The simulator itself: schema validation, auth, cost, admin routes, bulk rules, CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from plugins.shopify import simulator as simulator_module
from plugins.shopify.simulator import ShopifySimulator

GRAPHQL = "/admin/api/2025-01/graphql.json"
TOKEN = {"X-Shopify-Access-Token": "test-access-token"}


@pytest.fixture
async def http(sim: ShopifySimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://shop.test") as client:
        yield client


async def _gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict:
    response = await http.post(
        GRAPHQL, json={"query": query, "variables": variables or {}}, headers=TOKEN
    )
    assert response.status_code == 200
    return response.json()


async def test_invalid_document_is_rejected_like_shopify(http: httpx.AsyncClient) -> None:
    answer = await _gql(http, "{ shop { name bogusField } }")
    assert set(answer) == {"errors"}
    assert "Cannot query field 'bogusField' on type 'Shop'" in answer["errors"][0]["message"]
    assert answer["errors"][0]["locations"] == [{"line": 1, "column": 15}]


async def test_syntax_error_and_bad_variables(http: httpx.AsyncClient) -> None:
    assert "Syntax Error" in (await _gql(http, "{ shop { name "))["errors"][0]["message"]
    answer = await _gql(http, "query Q($id: ID!) { order(id: $id) { id } }", {"id": None})
    assert "data" not in answer or answer["data"] is None
    assert "$id" in answer["errors"][0]["message"]


async def test_authentication(http: httpx.AsyncClient) -> None:
    missing = await http.post(GRAPHQL, json={"query": "{ shop { name } }"})
    wrong = await http.post(
        GRAPHQL, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": "nope"}
    )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert "Invalid API key or access token" in response.json()["errors"]


async def test_client_credentials_grant(http: httpx.AsyncClient) -> None:
    bad = await http.post(
        "/admin/oauth/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client-id",
            "client_secret": "x",
        },
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    good = await http.post(
        "/admin/oauth/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
        },
    )
    token = good.json()
    assert token["expires_in"] == 86399 and "write_orders" in token["scope"]
    ok = await http.post(
        GRAPHQL,
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": token["access_token"]},
    )
    assert ok.status_code == 200


async def test_every_answer_carries_the_cost(
    http: httpx.AsyncClient, sim: ShopifySimulator
) -> None:
    answer = await _gql(http, "{ productVariants(first: 10) { nodes { id product { id } } } }")
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * 2
    assert cost["actualQueryCost"] <= cost["requestedQueryCost"]
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    mutation = await _gql(
        http,
        'mutation { orderCancel(orderId: "gid://shopify/Order/1", reason: OTHER, refund: false, '
        "restock: false) { orderCancelUserErrors { code field message } } }",
    )
    assert mutation["extensions"]["cost"]["requestedQueryCost"] == 10
    assert mutation["data"]["orderCancel"]["orderCancelUserErrors"] == [
        {"code": "NOT_FOUND", "field": ["orderId"], "message": "Order does not exist"}
    ]


async def test_single_query_cost_limit(http: httpx.AsyncClient) -> None:
    answer = await _gql(
        http,
        "{ productVariants(first: 250) { nodes { product { id } inventoryItem { id } "
        'metafield(key: "x") { value } } } }',
    )
    assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert answer["errors"][0]["extensions"]["cost"] == 1002
    assert "data" not in answer


async def test_throttled_when_the_bucket_is_empty() -> None:
    sim = ShopifySimulator(time_scale=1.0, restore_rate=1.0)  # slow: a loaded CPU cannot refill it
    sim.set_available_points(5)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://shop.test") as http:
        answer = await _gql(http, "{ locations(first: 5) { nodes { id } } }")
    assert answer["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    assert answer["extensions"]["cost"]["actualQueryCost"] is None
    assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 7


async def test_connections_need_first_or_last(http: httpx.AsyncClient) -> None:
    answer = await _gql(http, "{ orders { nodes { id } } }")
    assert answer["errors"][0]["message"] == "you must provide one of first or last"


async def test_search_syntax(http: httpx.AsyncClient, sim: ShopifySimulator) -> None:
    for sku in ("A-1", "A-2", "B-1"):
        sim.add_product(sku, barcode=f"bar-{sku}")
    query = "query Q($q: String!) { productVariants(first: 10, query: $q) { nodes { sku } } }"

    async def skus(search: str) -> list[str]:
        answer = await _gql(http, query, {"q": search})
        return sorted(n["sku"] for n in answer["data"]["productVariants"]["nodes"])

    assert await skus('sku:"A-1" OR sku:B-1') == ["A-1", "B-1"]
    assert await skus("sku:A*") == ["A-1", "A-2"]
    assert await skus("sku:A* AND NOT sku:A-2") == ["A-1"]
    assert await skus("-sku:A-1 (barcode:bar-A-2 OR barcode:bar-B-1)") == ["A-2", "B-1"]
    assert await skus("unknown_field:x sku:B-1") == ["B-1"]
    sim.add_product("A-10")
    sim.add_product("XL A-1 blue")
    # Like Shopify's index: words of the query start words of the value, in a row.
    assert await skus('sku:"A-1"') == ["A-1", "A-10", "XL A-1 blue"]
    assert await skus("sku:A-1-red") == []
    assert await skus("sku:a-1-blue") == ["XL A-1 blue"]
    assert await skus("sku:A-1 blue") == ["XL A-1 blue"]  # and a bare word, in any field


async def test_fulfilments_can_be_cancelled(http: httpx.AsyncClient, sim: ShopifySimulator) -> None:
    sim.add_product("FUL-1", quantity=5)
    order = sim.add_order({"FUL-1": 2})
    shipped = sim.fulfil(order, {"FUL-1": 2})
    assert sim.stock("FUL-1") == {"available": 3, "committed": 0, "on_hand": 3}

    cancelled = await http.post(f"/_admin/fulfillments/{shipped.rsplit('/', 1)[-1]}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["fulfillments"][0]["status"] == "CANCELLED"
    assert cancelled.json()["fulfillment_status"] == "UNFULFILLED"
    assert sim.stock("FUL-1") == {"available": 3, "committed": 2, "on_hand": 5}
    again = await http.post(f"/_admin/fulfillments/{shipped.rsplit('/', 1)[-1]}/cancel")
    assert again.status_code == 400 and "CANCELLED" in again.json()["error"]
    query = "query Q($id: ID!) { fulfillment(id: $id) { status } }"
    answer = await _gql(http, query, {"id": shipped})
    assert answer["data"]["fulfillment"]["status"] == "CANCELLED"


async def test_admin_routes(http: httpx.AsyncClient, sim: ShopifySimulator) -> None:
    product = (
        await http.post(
            "/_admin/products",
            json={
                "sku": "ADM-1",
                "barcode": "123",
                "price": "12.50",
                "quantity": 4,
                "metafields": {"custom.ean": "E"},
            },
        )
    ).json()
    assert product["variant_id"].startswith("gid://shopify/ProductVariant/")
    assert (await http.post("/_admin/stock", json={"sku": "ADM-1", "quantity": 6})).json() == {
        "available": 6
    }
    order_id = (
        await http.post("/_admin/orders", json={"lines": {"ADM-1": 3}, "source_identifier": "X-1"})
    ).json()["id"]

    numeric = order_id.rsplit("/", 1)[-1]
    shipped = await http.post(
        f"/_admin/orders/{numeric}/fulfillments",
        json={
            "lines": [{"sku": "ADM-1", "quantity": 2}],
            "tracking_company": "DHL",
            "tracking_number": "1",
        },
    )
    assert shipped.json()["fulfillment_id"].startswith("gid://shopify/Fulfillment/")
    too_many = await http.post(
        f"/_admin/orders/{numeric}/fulfillments", json={"lines": [{"sku": "ADM-1", "quantity": 2}]}
    )
    assert too_many.status_code == 400 and "1 left" in too_many.json()["error"]

    orders = (await http.get("/_admin/orders")).json()
    assert orders[0]["source_identifier"] == "X-1"
    assert orders[0]["fulfillment_status"] == "PARTIALLY_FULFILLED"
    assert orders[0]["totals"]["total"] == "37.50"
    assert (await http.get("/_admin/orders/count", params={"source_identifier": "X-1"})).json()[
        "count"
    ] == 1
    assert (await http.get("/_admin/orders/count")).json()["counts"] == {"X-1": 1}

    cancelled = await http.post(
        f"/_admin/orders/{numeric}/cancel", json={"reason": "CUSTOMER", "restock": True}
    )
    assert cancelled.json()["cancel_reason"] == "CUSTOMER"
    again = await http.post(f"/_admin/orders/{numeric}/cancel", json={})
    assert again.status_code == 400
    assert sim.stock("ADM-1") == {"available": 4, "committed": 0, "on_hand": 4}

    location = (await http.post("/_admin/locations", json={"name": "Store"})).json()["id"]
    assert location.startswith("gid://shopify/Location/")
    status = (await http.post("/_admin/throttle", json={"available": 10})).json()
    assert status["currentlyAvailable"] == pytest.approx(10, abs=5)
    assert "now" in (await http.post("/_admin/clock", json={"advance": 5})).json()
    state = (await http.get("/_admin/state")).json()
    assert state["orders"] == 1 and state["variants"] == 1


async def test_admin_routes_are_never_faulted(
    http: httpx.AsyncClient, sim: ShopifySimulator
) -> None:
    sim.faults.add("500")
    assert (await http.get("/_admin/state")).status_code == 200
    faulted = await http.post(GRAPHQL, json={"query": "{ shop { name } }"}, headers=TOKEN)
    assert faulted.status_code == 500


async def test_bulk_operation_rules(http: httpx.AsyncClient, sim: ShopifySimulator) -> None:
    sim.add_product("BULK-1", quantity=3)
    run = "mutation R($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { code field message } } }"

    invalid = await _gql(http, run, {"q": "{ inventoryItems { edges { node { nope } } } }"})
    assert invalid["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"] == "INVALID"
    no_connection = await _gql(http, run, {"q": "{ shop { name } }"})
    assert (
        "at least one connection"
        in no_connection["data"]["bulkOperationRunQuery"]["userErrors"][0]["message"]
    )

    started = await _gql(http, run, {"q": "{ productVariants { edges { node { id sku } } } }"})
    operation = started["data"]["bulkOperationRunQuery"]["bulkOperation"]
    assert operation["status"] == "RUNNING"
    busy = await _gql(http, run, {"q": "{ productVariants { edges { node { id } } } }"})
    assert busy["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"

    sim.advance(5)
    status = await _gql(http, "{ currentBulkOperation { id status url objectCount } }")
    current = status["data"]["currentBulkOperation"]
    assert current["id"] == operation["id"] and current["status"] == "COMPLETED"
    assert current["objectCount"] == "1"
    body = (await http.get(current["url"])).text
    assert (
        body.strip().startswith('{"id": "gid://shopify/ProductVariant/')
        and '"sku": "BULK-1"' in body
    )


def test_command_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    served: dict[str, Any] = {}

    def fake_run(app: Any, host: str, port: int, log_level: str) -> None:
        served.update(app=app, host=host, port=port)

    monkeypatch.setattr("uvicorn.run", fake_run)
    simulator_module.main(
        [
            "--port",
            "8102",
            "--time-scale",
            "10",
            "--no-rate-limits",
            "--seed",
            "3",
            "--products",
            "2",
        ]
    )
    assert served["port"] == 8102 and served["host"] == "127.0.0.1"
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8102" in out and "the built-in test token" in out
    assert "test-access-token" not in out

    monkeypatch.setenv("MY_SIM_TOKEN", "shpat-sim-secret-4711")
    simulator_module.main(["--token-env", "MY_SIM_TOKEN"])
    out = capsys.readouterr().out
    assert "$MY_SIM_TOKEN" in out and "shpat-sim-secret-4711" not in out

    async def shop_name() -> int:
        transport = httpx.ASGITransport(app=served["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            headers = {"X-Shopify-Access-Token": "shpat-sim-secret-4711"}
            answer = await client.post(
                GRAPHQL, json={"query": "{ shop { name } }"}, headers=headers
            )
            return answer.status_code

    assert asyncio.run(shop_name()) == 200  # the token from the variable is the one accepted


async def test_customer_notifications_are_recorded(
    http: httpx.AsyncClient, sim: ShopifySimulator
) -> None:
    """What the "no e-mail to the buyer" assertions rely on: asked-for mails are recorded."""
    variant = sim.add_product("MAIL-1", quantity=3)["variant_id"]
    create = (
        "mutation C($o: OrderCreateOrderInput!, $opt: OrderCreateOptionsInput) {"
        " orderCreate(order: $o, options: $opt) { order { id name } userErrors { message } } }"
    )
    order = {"email": "buyer@example.com", "lineItems": [{"variantId": variant, "quantity": 1}]}
    quiet = await _gql(http, create, {"o": order, "opt": {"sendReceipt": False}})
    loud = await _gql(
        http, create, {"o": order, "opt": {"sendReceipt": True, "sendFulfillmentReceipt": True}}
    )
    cancel = (
        "mutation X($id: ID!) { orderCancel(orderId: $id, reason: OTHER, refund: false,"
        " restock: false, notifyCustomer: true) { orderCancelUserErrors { message } } }"
    )
    await _gql(http, cancel, {"id": quiet["data"]["orderCreate"]["order"]["id"]})

    names = (quiet, loud)
    first, second = (a["data"]["orderCreate"]["order"]["name"] for a in names)
    assert [(n["kind"], n["order"], n["to"]) for n in sim.notifications()] == [
        ("order_confirmation", second, "buyer@example.com"),
        ("shipping_confirmation", second, "buyer@example.com"),
        ("order_cancelled", first, "buyer@example.com"),
    ]
    assert (await http.get("/_admin/state")).json()["notifications"] == 3


async def test_search_lag_hides_new_orders_from_searches_only() -> None:
    sim = ShopifySimulator(time_scale=100.0, search_lag=30.0)
    sim.add_product("LAG-1", quantity=5)
    order = sim.add_order({"LAG-1": 1}, source_identifier="LAG-ORDER-1")
    search = "query S($q: String) { orders(first: 5, query: $q) { nodes { id } } }"

    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://shop.test") as raw:

        async def ids(query: str | None) -> list[str]:
            answer = await _gql(raw, search, {"q": query})
            return [n["id"] for n in answer["data"]["orders"]["nodes"]]

        assert await ids('source_identifier:"LAG-ORDER-1"') == []
        assert await ids("tag:x OR source_name:web") == []
        assert await ids(None) == [order]  # a listing reads the orders, not the index
        by_id = await _gql(raw, "query O($id: ID!) { order(id: $id) { id } }", {"id": order})
        assert by_id["data"]["order"] == {"id": order}
        sim.advance(31)
        assert await ids('source_identifier:"LAG-ORDER-1"') == [order]


async def test_an_unsupported_api_version_is_answered_with_the_oldest_supported(
    http: httpx.AsyncClient,
) -> None:
    async def served(version: str) -> str:
        response = await http.post(
            f"/admin/api/{version}/graphql.json", json={"query": "{ shop { name } }"}, headers=TOKEN
        )
        assert response.status_code == 200 and response.json()["data"]["shop"]["name"]
        return response.headers["x-shopify-api-version"]

    assert await served("2026-10") == "2026-10"
    assert await served("2026-04") == "2026-04"
    assert await served("unstable") == "unstable"
    assert await served("2025-01") == "2026-01"


def test_connection_pages_like_a_plain_filter_and_slice() -> None:
    """The simulator pages by bisection (a 100,000-SKU catalogue made each page a full
    sort); it must answer exactly as sorting, filtering by cursor and slicing would."""
    import base64
    import json
    import random

    from plugins.shopify import simulator_schema as schema

    class Item:
        def __init__(self, ident: int) -> None:
            self.id = ident

    class Info:
        context: dict = {}

    def reference(ids, first=None, after=None, last=None, before=None, reverse=False):
        keys = sorted(ids, reverse=reverse)
        if after:
            mark = schema._uncursor(after)
            keys = [k for k in keys if (k < mark if reverse else k > mark)]
        if before:
            mark = schema._uncursor(before)
            keys = [k for k in keys if (k > mark if reverse else k < mark)]
        total = len(keys)
        if first is not None:
            keys = keys[:first]
        if last is not None:
            keys = keys[-last:] if last else []
        return keys, first is not None and total > len(keys)

    rng = random.Random(7)
    for _ in range(2000):
        ids = rng.sample(range(60), rng.randint(0, 30))
        args: dict = {"reverse": rng.random() < 0.5}
        if rng.random() < 0.6:
            args["first"] = rng.randint(0, 10)
        if rng.random() < 0.3 or "first" not in args:
            args["last"] = rng.randint(0, 10)
        if rng.random() < 0.5:
            args["after"] = schema._cursor(rng.randint(-1, 61))
        if rng.random() < 0.3:
            args["before"] = schema._cursor(rng.randint(-1, 61))
        items = [Item(i) for i in ids]
        page = schema.connection(Info(), items, lambda item: item.id, **args)
        got = [json.loads(base64.b64decode(e["cursor"])) for e in page["edges"]]
        assert (got, page["pageInfo"]["hasNextPage"]) == reference(ids, **args), args
        ordered = sorted(items, key=lambda item: item.id)
        again = schema.connection(
            Info(), ordered, lambda item: item.id, ordered=([i.id for i in ordered],), **args
        )
        assert again["edges"] == page["edges"]
