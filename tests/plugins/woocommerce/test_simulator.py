"""The simulator behaves like WooCommerce where the connector depends on it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from engine.testing.server import serve_in_thread
from plugins.woocommerce import simulator as simulator_module
from plugins.woocommerce.simulator import NS, WooCommerceSimulator

AUTH = {"Authorization": "Basic " + base64.b64encode(b"ck_test:cs_test").decode()}


@pytest.fixture
async def http(sim: WooCommerceSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://shop.example.com"
    ) as client:
        yield client


async def _order(http: httpx.AsyncClient, ids: dict[str, int], **extra: Any) -> dict[str, Any]:
    body = {
        "set_paid": True,
        "currency": "EUR",
        "shipping": {"first_name": "A", "country": "DE"},
        "line_items": [{"product_id": ids["MUG-1"], "quantity": 2}],
        "shipping_lines": [{"method_id": "flat_rate", "method_title": "Flat", "total": "5.00"}],
        **extra,
    }
    response = await http.post(f"{NS}/orders", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    ("headers", "query", "code", "message"),
    [
        ({}, "", "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
        (
            {"Authorization": "Basic " + base64.b64encode(b"ck_nope:cs_test").decode()},
            "",
            "woocommerce_rest_authentication_error",
            "Consumer key is invalid.",
        ),
        (
            {},
            "?consumer_key=ck_test&consumer_secret=wrong",
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        ),
    ],
)
async def test_authentication_errors(
    http: httpx.AsyncClient, headers: dict, query: str, code: str, message: str
) -> None:
    response = await http.get(f"{NS}/orders{query}", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": code, "message": message, "data": {"status": 401}}


async def test_query_string_auth_and_read_only_keys(
    http: httpx.AsyncClient, sim: WooCommerceSimulator
) -> None:
    assert (
        await http.get(f"{NS}/orders?consumer_key=ck_test&consumer_secret=cs_test")
    ).status_code == 200
    sim.add_key("ck_read", "cs_read", "read")
    read_only = {"Authorization": "Basic " + base64.b64encode(b"ck_read:cs_read").decode()}
    assert (await http.get(f"{NS}/products", headers=read_only)).status_code == 200
    denied = await http.post(f"{NS}/orders", json={}, headers=read_only)
    assert denied.status_code == 401
    assert "does not have write permissions" in denied.json()["message"]


async def test_pagination_headers_and_limits(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{NS}/products?per_page=2&page=2&orderby=id&order=asc", headers=AUTH)
    assert response.headers["X-WP-Total"] == "4" and response.headers["X-WP-TotalPages"] == "2"
    assert 'rel="prev"' in response.headers["Link"]
    assert [p["sku"] for p in response.json()] == ["SHIRT", "EBOOK-3"]
    assert "Date" in response.headers

    too_many = await http.get(f"{NS}/products?per_page=101", headers=AUTH)
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"
    beyond = await http.get(f"{NS}/products?per_page=2&page=3", headers=AUTH)
    assert beyond.json()["code"] == "rest_post_invalid_page_number"
    bad_enum = await http.get(f"{NS}/orders?orderby=modified", headers=AUTH)
    assert bad_enum.status_code == 400


async def test_sku_filter_matches_variations_in_product_shape(
    http: httpx.AsyncClient, ids: dict[str, int]
) -> None:
    found = (await http.get(f"{NS}/products?sku=SHIRT-L,MUG-1", headers=AUTH)).json()
    by_sku = {p["sku"]: p for p in found}
    assert by_sku["SHIRT-L"]["type"] == "variation"
    assert by_sku["SHIRT-L"]["parent_id"] == ids["SHIRT"]
    assert by_sku["MUG-1"]["type"] == "simple"
    single = (await http.get(f"{NS}/products/{ids['SHIRT-L']}", headers=AUTH)).json()
    assert single["parent_id"] == ids["SHIRT"]


async def test_unknown_route_is_a_wordpress_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/wp-json/wc/v3/nothing-here", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == "rest_no_route"


async def test_order_create_computes_taxes_reduces_stock_once_and_restocks_on_cancel(
    http: httpx.AsyncClient, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    order = await _order(http, ids, status="processing")
    assert order["status"] == "processing" and order["created_via"] == "rest-api"
    item = order["line_items"][0]
    assert (item["subtotal"], item["total_tax"], item["price"]) == ("19.98", "3.80", 9.99)
    assert (order["shipping_tax"], order["total_tax"], order["total"]) == ("0.95", "4.75", "29.73")
    assert order["tax_lines"][0]["rate_code"] == "DE-VAT-1"
    assert sim.stock_of(ids["MUG-1"]) == 18

    sim.advance(5)
    done = (
        await http.put(f"{NS}/orders/{order['id']}", json={"status": "completed"}, headers=AUTH)
    ).json()
    assert done["date_completed_gmt"] and done["date_modified_gmt"] > order["date_modified_gmt"]
    assert sim.stock_of(ids["MUG-1"]) == 18  # completing does not reduce again

    sim.advance(5)
    cancelled = (
        await http.put(f"{NS}/orders/{order['id']}", json={"status": "cancelled"}, headers=AUTH)
    ).json()
    assert cancelled["date_modified_gmt"] > done["date_modified_gmt"]
    assert sim.stock_of(ids["MUG-1"]) == 20


async def test_unpaid_order_and_unmanaged_stock_leave_stock_alone(
    http: httpx.AsyncClient, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    await _order(http, ids, set_paid=False)
    assert sim.stock_of(ids["MUG-1"]) == 20
    await _order(http, ids, line_items=[{"product_id": ids["EBOOK-3"], "quantity": 1}])
    assert sim.stock_of(ids["EBOOK-3"]) is None


async def test_invalid_order_input(http: httpx.AsyncClient, ids: dict[str, int]) -> None:
    unknown = await http.post(
        f"{NS}/orders", json={"line_items": [{"product_id": 1}]}, headers=AUTH
    )
    assert unknown.json()["code"] == "woocommerce_rest_invalid_product_id"
    currency = await http.post(f"{NS}/orders", json={"currency": "XXX"}, headers=AUTH)
    assert currency.status_code == 400
    garbage = await http.post(f"{NS}/orders", content=b"{not json", headers=AUTH)
    assert garbage.json()["code"] == "rest_invalid_json"


async def test_order_search_covers_addresses_and_item_names_not_meta(
    http: httpx.AsyncClient, ids: dict[str, int]
) -> None:
    order = await _order(
        http,
        ids,
        shipping_lines=[
            {"method_id": "x", "method_title": "Amazon Standard (028-1)", "total": "0"}
        ],
        meta_data=[{"key": "_hidden_ref", "value": "SECRET-REF-9"}],
    )
    hits = (await http.get(f"{NS}/orders?search=028-1", headers=AUTH)).json()
    assert [o["id"] for o in hits] == [order["id"]]
    assert (await http.get(f"{NS}/orders?search=SECRET-REF-9", headers=AUTH)).json() == []


async def test_batch_endpoints(
    http: httpx.AsyncClient, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    response = await http.post(
        f"{NS}/products/batch",
        json={
            "create": [
                {
                    "name": "Bag",
                    "sku": "BAG-9",
                    "regular_price": "5.00",
                    "manage_stock": True,
                    "stock_quantity": 4,
                }
            ],
            "update": [{"id": ids["CAP-2"], "stock_quantity": 11}, {"id": 1, "stock_quantity": 1}],
            "delete": [ids["EBOOK-3"]],
        },
        headers=AUTH,
    )
    body = response.json()
    assert body["create"][0]["sku"] == "BAG-9" and body["create"][0]["stock_quantity"] == 4
    assert body["update"][0]["stock_quantity"] == 11
    assert body["update"][1]["error"]["code"] == "woocommerce_rest_product_invalid_id"
    assert body["delete"][0]["id"] == ids["EBOOK-3"] and ids["EBOOK-3"] not in sim.products

    too_big = await http.post(f"{NS}/orders/batch", json={"create": [{}] * 101}, headers=AUTH)
    assert too_big.status_code == 413


async def test_admin_routes(http: httpx.AsyncClient, sim: WooCommerceSimulator) -> None:
    product = (
        await http.post(
            "/_admin/products", json={"sku": "PEN", "price": "1.50", "stock": 9, "ean": "123"}
        )
    ).json()
    parent = (await http.post("/_admin/products", json={"sku": "SOCK", "type": "variable"})).json()
    variation = (
        await http.post(
            f"/_admin/products/{parent['id']}/variations", json={"sku": "SOCK-S", "stock": 2}
        )
    ).json()
    await http.put(f"/_admin/stock/{variation['id']}", json={"quantity": 6})
    assert sim.stock_of(variation["id"]) == 6 and sim.stock_of(product["id"]) == 9

    order = await _order(
        http,
        {"MUG-1": product["id"]},
        meta_data=[{"key": "_amazon_order_id", "value": "303-1"}],
    )
    count = (await http.get("/_admin/orders/count", params={"amazon_order_id": "303-1"})).json()
    assert count == {"count": 1}
    shipped = (
        await http.post(
            f"/_admin/orders/{order['id']}/ship",
            json={
                "tracking": [
                    {"provider": "dhl", "number": "1", "items": [{"sku": "PEN", "qty": 1}]}
                ],
                "complete": False,
            },
        )
    ).json()
    [tracking] = next(
        m["value"] for m in shipped["meta_data"] if m["key"] == "_wc_shipment_tracking_items"
    )
    assert tracking["products_list"][0]["qty"] == "1" and shipped["status"] == "processing"
    cancelled = (await http.post(f"/_admin/orders/{order['id']}/cancel")).json()
    assert cancelled["status"] == "cancelled"
    assert len((await http.get("/_admin/orders")).json()) == 1
    before = sim.now()
    clock = (await http.post("/_admin/clock", json={"advance_seconds": 3600})).json()
    assert abs((datetime.fromisoformat(clock["now_gmt"]) - sim.now()).total_seconds()) <= 1
    assert (sim.now() - before).total_seconds() >= 3600
    bad = await http.post(
        f"/_admin/orders/{order['id']}/ship", json={"tracking": [{"items": [{"sku": "NOPE"}]}]}
    )
    assert bad.status_code == 400


async def test_rate_limit_answers_429_with_retry_after() -> None:
    sim = WooCommerceSimulator(rate_limit=simulator_module.Limit(rate=1.0, burst=1))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://s") as http:
        assert (await http.get(f"{NS}/orders", headers=AUTH)).status_code == 200
        throttled = await http.get(f"{NS}/orders", headers=AUTH)
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert (await http.get("/_admin/orders")).status_code == 200  # admin is never limited


def test_serves_on_loopback() -> None:
    sim = WooCommerceSimulator(key_auth_over_http=True)  # Basic over plain HTTP: demo only
    with serve_in_thread(sim.app) as base_url:
        response = httpx.get(f"{base_url}{NS}/system_status", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["settings"]["currency"] == "EUR"


def test_main_runs_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    simulator_module.main(["--port", "8103", "--time-scale", "10", "--fulfillments"])
    assert seen["port"] == 8103 and seen["host"] == "127.0.0.1"
