"""Everything the connector sends keeps to the documented API; everything the simulator
answers has the documented shape. Captured through a wrapping transport while the
connector goes through all of its operations, then a sweep of documented requests the
connector never sends (every simulator route and method), then refusals: a bad key or
secret (401), bad parameters and bodies (400), an oversized batch (413), throttling (429)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.routing import Route

from engine.models import ShopOrderRef
from engine.testing.ratelimit import Limit
from plugins.woocommerce.simulator import (
    DEFAULT_KEY,
    DEFAULT_SECRET,
    NS,
    WooCommerceSimulator,
)
from tests.plugins.woocommerce import contract
from tests.plugins.woocommerce.conftest import STORE, connector, make_order


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, Any, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content  # a deliberately broken body
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


UPDATE_METHODS = ("POST", "PUT", "PATCH")


def _client(recorder: Recorder, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET) -> Any:
    return httpx.AsyncClient(
        transport=recorder, base_url=f"{STORE}/wp-json/wc/v3", auth=(key, secret)
    )


async def _sweep(sim: WooCommerceSimulator, recorder: Recorder) -> None:
    """Documented requests the connector never sends, so every route the simulator serves
    (every method) has its answers checked too: product create, update and batch, single
    variations, order updates by POST/PATCH and batch updates by PUT/PATCH."""
    async with _client(recorder) as http:
        made = await http.post(
            "/products",
            json={
                "name": "Sweep mug",
                "type": "simple",
                "sku": "SWEEP-1",
                "regular_price": "5.00",
                "manage_stock": True,
                "stock_quantity": 3,
                "meta_data": [{"key": "_alg_ean", "value": "4006381333962"}],
            },
        )
        pid = made.json()["id"]
        for n, method in enumerate(UPDATE_METHODS):
            await http.request(method, f"/products/{pid}", json={"stock_quantity": 4 + n})
        for n, method in enumerate(UPDATE_METHODS):
            await http.request(
                method,
                "/products/batch",
                json={
                    "create": [{"name": f"Batch {n}", "sku": f"SWEEP-B{n}", "regular_price": "1"}],
                    "update": [{"id": pid, "regular_price": f"6.0{n}"}],
                    "delete": [],
                },
            )
        batch_made = await http.post("/products/batch", json={"create": [{"name": "Gone"}]})
        await http.post("/products/batch", json={"delete": [batch_made.json()["create"][0]["id"]]})
        shirt = next(p for p in sim.products.values() if p["sku"] == "SHIRT")
        vid = shirt["variations"][0]
        await http.get(f"/products/{shirt['id']}/variations/{vid}")
        for n, method in enumerate(UPDATE_METHODS):
            await http.request(
                method, f"/products/{shirt['id']}/variations/{vid}", json={"stock_quantity": 7 + n}
            )
        oid = max(sim.orders)
        for method in ("POST", "PATCH"):
            await http.request(method, f"/orders/{oid}", json={"customer_note": method})
        for method in ("PUT", "PATCH"):
            await http.request(
                method, "/orders/batch", json={"update": [{"id": oid, "customer_note": method}]}
            )


async def _bad_requests(sim: WooCommerceSimulator, recorder: Recorder) -> None:
    """Requests the simulator must refuse with WordPress's error object: a wrong key or
    secret and no credentials (401), a bad parameter or body (400), unknown ids (400 in a
    batch, 404 on their route), an oversized batch (413)."""
    async with _client(recorder, key="ck_wrong") as http:
        await http.get("/orders")
    async with _client(recorder, secret="cs_wrong") as http:
        await http.get("/products")
    async with httpx.AsyncClient(transport=recorder, base_url=f"{STORE}/wp-json/wc/v3") as anon:
        await anon.post("/orders", json={})
    async with _client(recorder) as http:
        await http.get("/orders", params={"status": "shipped"})
        await http.get("/products", params={"orderby": "modified"})
        await http.get("/orders", params={"per_page": 500})
        await http.post("/orders", json={"currency": "XXX"})
        await http.post(
            "/orders", content=b"{not json", headers={"content-type": "application/json"}
        )
        await http.post("/orders/batch", json={"update": [{"id": 987654, "status": "cancelled"}]})
        await http.get("/products/987654/variations/1")
        await http.put("/products/987654", json={"name": "x"})
        await http.post("/orders/batch", json={"delete": list(range(1, 102))})


async def _throttled(recorder_for: Any) -> list[tuple[httpx.Request, Any, httpx.Response]]:
    """A store with rate limits on: requests until one is throttled (429)."""
    sim = WooCommerceSimulator(rate_limit=Limit(rate=0.001, burst=2))
    recorder = recorder_for(sim)
    async with _client(recorder) as http:
        for _ in range(5):
            if (await http.get("/orders")).status_code == 429:
                break
    return [e for e in recorder.exchanges if e[2].status_code == 429]


@pytest.fixture
async def exchanges(store: WooCommerceSimulator) -> list[tuple[httpx.Request, Any, httpx.Response]]:
    """What the connector sends in all its operations, then the simulator-only sweep."""
    recorder = Recorder(store.transport())
    await _exercise(store, recorder, "1")
    await _exercise(store, recorder, "2", tracking_source="fulfillments", tax_handling="amazon")
    await _sweep(store, recorder)
    return recorder.exchanges


@pytest.fixture
async def refused(store: WooCommerceSimulator) -> list[tuple[httpx.Request, Any, httpx.Response]]:
    recorder = Recorder(store.transport())
    await _bad_requests(store, recorder)
    return recorder.exchanges + await _throttled(lambda sim: Recorder(sim.transport()))


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
    checked = {"order": 0, "product": 0, "variation": 0, "batch": 0, "status": 0, "error": 0}
    for request, _, response in exchanges:
        path = _path(request)
        validator = contract.response_validator(request.method, path, response.status_code)
        assert validator is not None, f"no documented shape for {request.method} {path}"
        validator.validate(response.json())
        kind = (
            "error"
            if response.status_code >= 400
            else "batch"
            if path.endswith("/batch")
            else "status"
            if path.endswith("/system_status")
            else "variation"
            if "/variations" in path
            else ("order" if "/orders" in path else "product")
        )
        checked[kind] += 1
    assert all(checked.values()), checked


def _rest_routes(sim: WooCommerceSimulator) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in sim.rest_app.routes
        if isinstance(route, Route) and route.path.startswith(NS)
        for method in route.methods or ()
        if method != "HEAD"
    }


def _route_of(sim: WooCommerceSimulator, request: httpx.Request) -> tuple[str, str] | None:
    for route in sim.rest_app.routes:
        if (
            isinstance(route, Route)
            and request.method in (route.methods or ())
            and route.path_regex.fullmatch(request.url.path)
        ):
            return request.method, route.path
    return None


async def test_every_simulator_route_is_exercised_with_a_checked_answer(
    store: WooCommerceSimulator, exchanges: list
) -> None:
    """A route added to the simulator without a documented route and an exercised,
    validated answer fails here."""
    served = {_route_of(store, r) for r, _, response in exchanges if response.status_code < 400}
    assert _rest_routes(store) - served == set()
    for method, route in _rest_routes(store):
        path = route.replace("{pid:int}", "1").replace("{vid:int}", "2").replace("{oid:int}", "3")
        assert contract.find_endpoint(method, path.removeprefix("/wp-json")), (method, route)


async def test_refusals_are_wordpress_error_objects(refused: list) -> None:
    """Each refusal: the documented error object (``code``, ``message``, ``data.status``
    equal to the HTTP status), or, inside a batch, that object per failed item."""
    statuses: dict[int, set[str]] = {}
    for request, _, response in refused:
        path = _path(request)
        body = response.json()
        contract.response_validator(request.method, path, response.status_code).validate(body)
        if path.endswith("/batch") and response.status_code == 200:
            [item] = body["update"]
            assert item["id"] == 987654  # WooCommerce echoes the id of a failed update
            errors = [item["error"]]
        else:
            errors = [body]
        for error in errors:
            contract.response_validator(request.method, path, 400).validate(error)
            status = error["data"]["status"]
            assert response.status_code in (200, status)
            statuses.setdefault(status, set()).add(error["code"])
    assert statuses == {
        400: {
            "rest_invalid_param",
            "rest_invalid_json",
            "woocommerce_rest_shop_order_invalid_id",
            "woocommerce_rest_product_invalid_id",
        },
        401: {"woocommerce_rest_authentication_error", "woocommerce_rest_cannot_create"},
        404: {
            "woocommerce_rest_product_variation_invalid_id",
        },
        413: {"woocommerce_rest_request_entity_too_large"},
        429: {"rest_too_many_requests"},
    }
    throttled = next(resp for _, _, resp in refused if resp.status_code == 429)
    assert int(throttled.headers["retry-after"]) >= 1


async def test_the_bad_parameters_are_strays_to_the_checker_too(refused: list) -> None:
    """What the simulator refuses as a bad parameter, the documented contract refuses."""
    for request, body, response in refused:
        if response.status_code == 400 and response.json()["code"] == "rest_invalid_param":
            query = list(request.url.params.multi_items())
            if request.url.params.get("per_page") == "500":
                continue  # per_page's maximum (100) is WordPress's, not in the copied index
            assert contract.check_request(request.method, _path(request), query, body), request.url


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
