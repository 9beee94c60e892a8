"""Everything the connector sends keeps to the documented API; everything the simulator
answers has the documented shape. Captured through a wrapping transport while the
connector goes through all of its operations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from engine.models import ShopOrderRef
from plugins.woocommerce.simulator import WooCommerceSimulator
from tests.plugins.woocommerce import contract
from tests.plugins.woocommerce.conftest import connector, make_order


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, Any, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append((request, body, response))
        return httpx.Response(response.status_code, headers=response.headers, content=content)


async def _exercise(
    sim: WooCommerceSimulator, recorder: Recorder, tag: str, **overrides: Any
) -> None:
    """Every connector operation, the happy paths and the documented failures."""
    woo = connector(recorder, page_size=2, **overrides)
    try:
        await _operations(woo, sim, tag)
    finally:
        await woo.aclose()


async def _operations(woo: Any, sim: WooCommerceSimulator, tag: str) -> None:
    assert (await woo.check()).ok
    skus = await woo.resolve_products("sku", ["MUG-1", "SHIRT-M", "NOPE"])
    ids = {ref.sku: ref for ref in skus.values()}
    await woo.resolve_products("id", [ids["MUG-1"].product_id, ids["SHIRT-M"].variant_id, "999999"])
    await woo.resolve_products("ean", ["4006381333931"])
    start = await woo.changes_since(None)
    stock = [await woo.stock_levels("sku", None)]
    while stock[-1].has_more:
        stock.append(await woo.stock_levels("sku", stock[-1].cursor))

    products = await woo.resolve_products("sku", ["MUG-1", "SHIRT-M", "CAP-2"])
    eur = make_order(
        f"303-000000{tag}-0000001",
        [("MUG-1", 3, "9.99", "4.79"), ("SHIRT-M", 1, "14.99", "2.39")],
        shipping="4.99",
        shipping_tax="0.80",
    )
    usd = make_order(
        f"111-000000{tag}-0000002",
        [("CAP-2", 2, "10.00", "1.65")],
        currency="USD",
        taxes_included=False,
        shipping="5.00",
        shipping_tax="0.41",
        country="US",
    )
    assert await woo.find_order(eur.marketplace_order_id) is None
    eur_ref = await woo.create_order(eur, products)
    usd_ref = await woo.create_order(usd, products)
    sim.ship_order(
        int(eur_ref.id),
        [{"provider": "dhl", "number": "1", "items": [{"sku": "MUG-1", "qty": 1}]}],
        complete=False,
        via="fulfillments" if woo.settings.tracking_source == "fulfillments" else "meta",
    )
    sim.cancel_order(int(usd_ref.id))
    page = await woo.changes_since(start.cursor)
    while page.has_more:
        page = await woo.changes_since(page.cursor)
    sim.advance(600)
    delta = await woo.stock_levels("sku", stock[-1].cursor)
    while delta.has_more:
        delta = await woo.stock_levels("sku", delta.cursor)

    batch = [
        make_order(f"303-000000{tag}-000003{n}", [("MUG-1", 1, "9.99", "1.60")]) for n in range(2)
    ]
    results = await woo.create_orders([(o, products) for o in batch])
    await woo.cancel_orders(
        [(r, o) for r, o in zip(results, batch, strict=True) if isinstance(r, ShopOrderRef)]
    )
    await woo.cancel_order(eur_ref, eur)
    await woo.cancel_order(ShopOrderRef(id="999999"), eur)  # a documented 404


@pytest.fixture
def store() -> WooCommerceSimulator:
    sim = WooCommerceSimulator(rate_limits=False, fulfillments=True)
    sim.create_product("MUG-1", "9.99", 20, ean="4006381333931")
    sim.create_product("CAP-2", "19.99", 5)
    shirt = sim.create_product("SHIRT", type="variable", name="Shirt")
    sim.create_variation(shirt["id"], "SHIRT-M", "14.99", 7)
    sim.create_product("EBOOK-3", "4.99", None)
    return sim


@pytest.fixture
async def exchanges(store: WooCommerceSimulator) -> list[tuple[httpx.Request, Any, httpx.Response]]:
    recorder = Recorder(store.transport())
    await _exercise(store, recorder, "1")
    await _exercise(store, recorder, "2", tracking_source="fulfillments", tax_handling="amazon")
    return recorder.exchanges


def _path(request: httpx.Request) -> str:
    return request.url.path.removeprefix("/wp-json")


async def test_every_request_uses_documented_routes_args_and_properties(exchanges: list) -> None:
    errors = []
    for request, body, _ in exchanges:
        errors += contract.check_request(
            request.method, _path(request), list(request.url.params.multi_items()), body
        )
    assert errors == []
    seen = {(r.method, contract.find_endpoint(r.method, _path(r)).route) for r, _, _ in exchanges}  # type: ignore[union-attr]
    assert ("POST", "/wc/v3/orders/batch") in seen and (
        "PUT",
        r"/wc/v3/orders/(?P<id>[\d]+)",
    ) in seen
    assert ("GET", r"/wc/v3/orders/(?P<order_id>[\d]+)/fulfillments") in seen
    assert len(seen) >= 10


async def test_every_answer_has_the_documented_shape(exchanges: list) -> None:
    checked = {"order": 0, "product": 0, "variation": 0, "error": 0}
    for request, _, response in exchanges:
        validator = contract.response_validator(
            request.method, _path(request), response.status_code
        )
        if validator is None:
            assert _path(request) == "/wc/v3/system_status"
            continue
        validator.validate(response.json())
        path = _path(request)
        kind = (
            "error"
            if response.status_code >= 400
            else "variation"
            if "/variations" in path
            else ("order" if "/orders" in path else "product")
        )
        checked[kind] += 1
    assert all(checked.values()), checked


def test_query_string_auth_is_documented() -> None:
    assert (
        contract.check_request(
            "GET",
            "/wc/v3/orders",
            [("consumer_key", "ck_test"), ("consumer_secret", "cs_test")],
            None,
        )
        == []
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "problem"),
    [
        ("GET", "/wc/v3/orders", [("orderby", "modified")], None, "does not match"),
        ("GET", "/wc/v3/orders", [("sku", "X")], None, "undocumented query argument"),
        ("GET", "/wc/v3/orders", [("per_page", "ten")], None, "does not match"),
        ("DELETE", "/wc/v3/system_status", [], None, "undocumented route"),
        ("POST", "/wc/v3/orders", [], {"status": "shipped"}, "not one of the documented values"),
        ("POST", "/wc/v3/orders", [], {"line_items": [{"product_id": 1, "sku": "X"}]}, "read-only"),
        (
            "POST",
            "/wc/v3/orders",
            [],
            {"billing": {"first_name": "A", "vat": "1"}},
            "undocumented property",
        ),
        ("POST", "/wc/v3/orders", [], {"set_paid": "yes"}, "where ['boolean'] is documented"),
        ("POST", "/wc/v3/orders/batch", [], {"upsert": []}, "only create/update/delete"),
    ],
)
def test_the_checker_catches_strays(
    method: str, path: str, query: list, body: Any, problem: str
) -> None:
    errors = contract.check_request(method, path, query, body)
    assert errors and problem in errors[0]


def test_the_schemas_catch_wrong_answers() -> None:
    order = contract.resource_schema("order")
    assert {"id", "line_items", "meta_data", "date_modified_gmt", "total"} <= set(order["required"])
    validator = contract.response_validator("GET", "/wc/v3/orders/1", 200)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"id": "1"})
    product = contract.resource_schema("product")
    assert product["properties"]["stock_quantity"]["type"] == ["integer", "null"]
    assert product["properties"]["manage_stock"]["type"] == ["boolean"]
