"""All traffic of a full connector exercise conforms to the published schema.

Requests: every document validates, every variables object coerces to the
operation's variable types and uses no deprecated input field or enum value.
Responses: the execute-result shape, ``extensions.cost``, and data that matches
the selections with the schema's types and nullability.
"""

from __future__ import annotations

import pytest
from graphql import parse, validate

from engine.errors import FatalAPIError
from engine.models import ProductRef
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, Exchange, RecordingTransport
from .contract import ResponseChecker, contract_schema, variable_errors
from .factories import eur_order, usd_order


async def _exercise(make_connector: ConnectorFactory, sim: ShopifySimulator) -> None:
    connector = make_connector()
    assert (await connector.check()).ok
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

    sim.fulfil(created[0][0].id, {"SKU-1": 1}, tracking_company="DHL", tracking_number="1")
    sim.fulfil(created[0][0].id, tracking_company="DHL", tracking_number="2")
    await connector.cancel_order(*created[1])
    page = await connector.changes_since(changes)
    assert len(page.shipments) == 2 and len(page.cancellations) == 1

    stock = await connector.stock_levels("sku", None)
    sim.advance(5)
    sim.set_stock("SKU-3", 4)
    await connector.stock_levels("barcode", stock.cursor)
    bulk = make_connector(bulk_threshold=1, bulk_poll_interval=0.5)
    await bulk.stock_levels("metafield:custom.ean", None)

    sim.configure_bucket(restore_rate=0.5)
    sim.set_available_points(0)
    await connector.find_order("028-1111111-1111111")  # THROTTLED, then retried


async def test_every_request_and_response_conforms(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    await _exercise(make_connector, sim)

    exchanges = recorder.graphql()
    operations = {e.body["operationName"] for e in exchanges}
    assert operations >= {
        "OrdersyncShop",
        "OrdersyncLocations",
        "OrdersyncVariantsSearch",
        "OrdersyncVariantsById",
        "OrdersyncVariantsMetafield",
        "OrdersyncLatestOrder",
        "OrdersyncFindOrder",
        "OrdersyncOrderCreate",
        "OrdersyncOrderStatus",
        "OrdersyncOrderCancel",
        "OrdersyncChangedOrders",
        "OrdersyncFulfillmentDetails",
        "OrdersyncStockLevels",
        "OrdersyncVariantsCount",
        "OrdersyncBulkRun",
        "OrdersyncBulkStatus",
    }
    throttled = 0
    for exchange in exchanges:
        problems = _request_problems(exchange) + _response_problems(exchange)
        assert problems == [], f"{exchange.body['operationName']}: {problems}"
        throttled += _is_throttled(exchange)
    assert throttled == 1


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
    return problems + ResponseChecker(document, exchange.body["operationName"]).check(
        answer["data"]
    )


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
