"""All traffic of a full connector exercise conforms to the published schema.

The exercise must send every operation declared in ``queries.DOCUMENTS`` (the
list is derived from the plugin, so a new document cannot go unchecked) and
nothing undeclared. Requests: every document validates, every variables object
coerces to the operation's variable types and uses no deprecated input field or
enum value. Responses: the execute-result shape, ``extensions.cost``, and data
that matches the selections (with the request's variables, for ``@include``)
with the schema's types and nullability. Bulk operation rows are checked against
the bulk query's node selections, and the OAuth token answer against the
client credentials grant's documented fields.
"""

from __future__ import annotations

import json
import re

import pytest
from graphql import parse, validate

from engine.errors import FatalAPIError
from engine.models import ProductRef, ShopOrderRef
from plugins.shopify import queries
from plugins.shopify.client import operation_name
from plugins.shopify.queries import DOCUMENTS
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, Exchange, RecordingTransport
from .contract import ResponseChecker, bulk_row_problems, contract_schema, variable_errors
from .factories import eur_order, usd_order


async def _exercise(make_connector: ConnectorFactory, sim: ShopifySimulator) -> None:
    """Every operation the connector can send, with the variants that change the traffic."""
    connector = make_connector()
    assert (await connector.check()).ok
    by_id = make_connector(location=(await connector.location())["id"])
    assert (await by_id.check()).ok
    oauth = make_connector(
        access_token=None, client_id="test-client-id", client_secret="test-client-secret"
    )
    assert (await oauth.check()).ok
    for attribute, keys in (
        ("sku", ["SKU-1", "SKU-2", "NOPE"]),
        ("barcode", ["4006381333931"]),
        ("id", [sim.add_product("BY-ID")["variant_id"]]),
        ("metafield:custom.ean", ["EAN-1"]),
    ):
        await connector.resolve_products(attribute, keys)

    changes = (await connector.changes_since(None)).cursor
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    created = []
    for order in (eur_order(), usd_order()):
        assert await connector.find_order(order.marketplace_order_id) is None
        created.append((await connector.create_order(order, refs), order))
    bogus = ProductRef(sku="SKU-2", product_id="x", variant_id="gid://shopify/ProductVariant/1")
    with pytest.raises(FatalAPIError):
        await connector.create_order(eur_order("028-9999999-9999999"), {**refs, "SKU-2": bogus})
    batch = [eur_order(f"028-7777777-{n:07d}") for n in range(3)]
    assert await connector.find_order_refs([o.marketplace_order_id for o in batch]) == {}
    made = await connector.create_orders([(o, refs) for o in batch])
    assert all(isinstance(r, ShopOrderRef) for r in made)
    assert len(await connector.find_order_refs([o.marketplace_order_id for o in batch])) == 3

    skus = [f"L-{n:02d}" for n in range(25)]  # more lines than one page of fulfilment lines
    for sku in skus:
        sim.add_product(sku, quantity=50)
    wide = eur_order("028-8888888-8888888")
    wide = wide.model_copy(
        update={
            "lines": tuple(
                wide.lines[0].model_copy(update={"sku": s, "line_id": s, "quantity": 7})
                for s in skus
            )
        }
    )
    many = await connector.create_order(wide, await connector.resolve_products("sku", skus))
    for _ in range(6):  # more fulfilments than the changed-orders page lists
        sim.fulfil(many.id, {s: 1 for s in skus}, tracking_company="UPS", tracking_number="W")

    sim.fulfil(created[0][0].id, {"SKU-1": 1}, tracking_company="DHL", tracking_number="1")
    sim.fulfil(created[0][0].id, tracking_company="DHL", tracking_number="2")
    await connector.cancel_order(*created[1])
    sim.api.job_seconds = 2.0  # Shopify cancels in a background job: polled until done
    await connector.cancel_order(made[0], batch[0])
    sim.api.job_seconds = 0.0
    page = await connector.changes_since(changes)
    assert len(page.shipments) == 8 and len(page.cancellations) == 2

    stock = await connector.stock_levels("sku", None)
    sim.advance(5)
    sim.set_stock("SKU-3", 4)
    await connector.stock_levels("barcode", stock.cursor)
    metafield = await connector.stock_levels("metafield:custom.ean", None)
    assert {lv.sku for lv in metafield.levels} >= {"EAN-1", "EAN-2"}
    bulk = make_connector(bulk_threshold=1, bulk_poll_interval=0.5)
    await bulk.stock_levels("metafield:custom.ean", None)
    assert set(await bulk.resolve_products("metafield:custom.ean", ["EAN-1"])) == {"EAN-1"}

    sim.configure_bucket(restore_rate=0.5)
    sim.set_available_points(0)
    await connector.find_order("028-1111111-1111111")  # THROTTLED, then retried


def _declared_documents() -> dict[str, str]:
    """Operation name → a document, for every operation the plugin declares."""
    return {operation_name(document): document for document in DOCUMENTS.values()}


def test_every_document_of_the_plugin_is_declared() -> None:
    """A document written into ``queries`` but left out of ``DOCUMENTS`` would escape
    the schema and traffic checks."""
    declared = set(DOCUMENTS.values())
    for name, value in vars(queries).items():
        if isinstance(value, str) and re.search(r"^\s*(query|mutation) Ordersync", value, re.M):
            assert value in declared, f"queries.{name} is not in queries.DOCUMENTS"


async def test_every_request_and_response_conforms(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    await _exercise(make_connector, sim)

    exchanges = recorder.graphql()
    operations = {e.body["operationName"] for e in exchanges}
    declared = _declared_documents()
    assert operations == set(declared), (
        f"never exercised: {sorted(set(declared) - operations)}; "
        f"undeclared: {sorted(operations - set(declared))}"
    )
    throttled = 0
    for exchange in exchanges:
        problems = _request_problems(exchange) + _response_problems(exchange)
        assert problems == [], f"{exchange.body['operationName']}: {problems}"
        throttled += _is_throttled(exchange)
    assert throttled == 1

    queries_by_file = {
        run.response["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"].rsplit("/", 1)[-1]
        + ".jsonl": run.body["variables"]["query"]
        for run in recorder.graphql("OrdersyncBulkRun")
    }
    downloads = [e for e in recorder.exchanges if e.path.startswith("/bulk-results/")]
    assert len(downloads) == len(queries_by_file) == 2  # stock levels, the metafield index
    for download in downloads:
        assert download.status == 200
        rows = [json.loads(line) for line in download.response.splitlines() if line]
        query = parse(queries_by_file[download.path.rsplit("/", 1)[-1]])
        assert rows and bulk_row_problems(query, rows) == []

    tokens = [e for e in recorder.exchanges if e.path == "/admin/oauth/access_token"]
    assert tokens
    for exchange in tokens:
        assert _token_problems(exchange) == []


def _token_problems(exchange: Exchange) -> list[str]:
    """The client credentials grant's answer: ``access_token``, ``scope``, ``expires_in``."""
    answer = exchange.response
    if exchange.status != 200 or not isinstance(answer, dict):
        return [f"HTTP {exchange.status}: {answer!r}"]
    expected = {"access_token": str, "scope": str, "expires_in": int}
    problems = [f"unexpected key {k}" for k in set(answer) - set(expected)]
    for key, kind in expected.items():
        if not isinstance(answer.get(key), kind) or isinstance(answer.get(key), bool):
            problems.append(f"{key}: {answer.get(key)!r} is not a {kind.__name__}")
    scopes = set(str(answer.get("scope", "")).split(","))
    needed = {"read_orders", "write_orders", "read_products", "read_inventory"}
    return problems + [f"scope {s} missing" for s in sorted(needed - scopes)]


def _request_problems(exchange: Exchange) -> list[str]:
    body = exchange.body
    document = parse(body["query"])
    problems = [e.message for e in validate(contract_schema(), document)]
    return problems + variable_errors(document, body["operationName"], body["variables"])


def _is_throttled(exchange: Exchange) -> bool:
    errors = exchange.response.get("errors") or []
    return any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


def _response_problems(exchange: Exchange) -> list[str]:
    answer = exchange.response
    if exchange.status != 200 or not isinstance(answer, dict):
        return [f"HTTP {exchange.status}: {answer!r}"]
    problems = [
        f"unexpected top-level key {k}" for k in set(answer) - {"data", "errors", "extensions"}
    ]
    cost = answer.get("extensions", {}).get("cost", {})
    status = cost.get("throttleStatus", {})
    if not isinstance(cost.get("requestedQueryCost"), int) or set(status) != {
        "maximumAvailable",
        "currentlyAvailable",
        "restoreRate",
    }:
        problems.append(f"bad extensions.cost {cost!r}")
    if _is_throttled(exchange):
        return problems + (["throttled answer has data"] if "data" in answer else [])
    if answer.get("errors"):
        problems.append(f"errors {answer['errors']!r}")
    if not isinstance(cost.get("actualQueryCost"), int):
        problems.append("actualQueryCost missing")
    document = parse(exchange.body["query"])
    checker = ResponseChecker(
        document, exchange.body["operationName"], exchange.body.get("variables")
    )
    return problems + checker.check(answer["data"])


def test_response_checker_catches_violations() -> None:
    document = parse(
        'query Q { shop { name currencyCode } order(id: "x") { id displayFulfillmentStatus } }'
    )
    checker = ResponseChecker(document, "Q")
    problems = checker.check(
        {
            "shop": {"name": None, "currencyCode": "EURO"},
            "order": {"id": 1, "displayFulfillmentStatus": "DONE", "x": 1},
        }
    )
    assert problems == [
        "data.shop.name: null for non-null String!",
        "data.shop.currencyCode: 'EURO' is not a CurrencyCode",
        "data.order: unexpected keys ['x']",
        "data.order.id: 1 is not a ID",
        "data.order.displayFulfillmentStatus: 'DONE' is not a OrderDisplayFulfillmentStatus",
    ]


def test_variable_checks_catch_bad_and_deprecated_values() -> None:
    document = parse(
        "query Q($o: OrderCreateOptionsInput, $s: FulfillmentStatus) { shop { name } }"
    )
    assert variable_errors(document, "Q", {"o": {"inventoryBehaviour": "SOMETIMES"}})
    assert variable_errors(document, "Q", {"s": "OPEN"}) == [
        "enum value FulfillmentStatus.OPEN at s"
    ]
    assert variable_errors(document, "Q", {"o": {"sendReceipt": False}, "s": "SUCCESS"}) == []


def test_bulk_row_checker_catches_violations() -> None:
    from plugins.shopify.queries import bulk_stock_query
    from plugins.shopify.settings import parse_attribute

    document = parse(bulk_stock_query("gid://shopify/Location/1", parse_attribute("sku")))
    good = {
        "id": "gid://shopify/InventoryItem/1",
        "tracked": True,
        "variant": {"id": "v", "legacyResourceId": "1", "sku": "A", "barcode": None},
        "inventoryLevel": {
            "updatedAt": "2026-01-01T00:00:00Z",
            "quantities": [{"name": "available", "quantity": 3}],
        },
    }
    assert bulk_row_problems(document, [good]) == []
    bad = {**good, "tracked": "yes", "variant": {**good["variant"], "title": "x"}}
    del bad["inventoryLevel"]
    assert bulk_row_problems(document, [bad, {**good, "__parentId": "p"}]) == [
        "row 0.tracked: 'yes' is not a Boolean",
        "row 0.variant: unexpected keys ['title']",
        "row 0.inventoryLevel: missing",
        "row 1: a nested-connection row was not expected",
    ]


def test_token_answer_checker_catches_violations() -> None:
    def answer(body: object, status: int = 200) -> Exchange:
        return Exchange("POST", "/admin/oauth/access_token", {}, "", status, body)

    good = {"access_token": "t", "scope": "read_orders,write_orders,read_products,read_inventory"}
    assert _token_problems(answer({**good, "expires_in": 86399})) == []
    assert _token_problems(answer({**good, "expires_in": "soon", "extra": 1})) == [
        "unexpected key extra",
        "expires_in: 'soon' is not a int",
    ]
    assert _token_problems(answer({"error": "invalid_client"}, 401))[0].startswith("HTTP 401")
