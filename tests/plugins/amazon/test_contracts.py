"""Contract tests: all traffic of a full connector run validates against Amazon's models.

A recording transport sits between the connector and the simulator; every
request (path, query, body) and every response (status, body) is checked
against the Swagger operation it belongs to, with strict object schemas.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from engine.models import CancelRequest, Order, Shipment, ShipmentLine, StockLevel
from plugins.amazon import feeds, sim_orders
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory, hours_ago, read_orders, token_headers
from tests.plugins.amazon.contract import (
    CONTRACTS,
    Exchange,
    Models,
    RecordingTransport,
    listings_feed_errors,
    listings_report_errors,
    model_example_orders,
)

MODELS = Models()
PLUGIN_OPERATIONS = {
    "searchOrders",
    "getOrder",
    "confirmShipment",
    "createFeedDocument",
    "createFeed",
    "getFeed",
    "getFeeds",
    "getFeedDocument",
    "getListingsItem",
    "patchListingsItem",
    "getMarketplaceParticipations",
}
OUTSIDE_MODELS = ("/auth/o2/token", "/feed-documents/")


def contract_errors(
    exchanges: list[Exchange], *, requests: bool = True
) -> tuple[list[str], set[str]]:
    errors: list[str] = []
    seen: set[str] = set()
    for exchange in exchanges:
        op = MODELS.find_exchange(exchange)
        where = f"{exchange.method} {exchange.url.path} -> {exchange.status}"
        if op is None:
            if not exchange.url.path.startswith(OUTSIDE_MODELS):
                errors.append(f"{where}: no operation in the models")
            continue
        seen.add(op.operation_id)
        if requests:
            errors += [f"{where}: {e}" for e in MODELS.request_errors(op, exchange)]
        errors += [f"{where}: {e}" for e in MODELS.response_errors(op, exchange)]
    return errors, seen


def _shipment(order_id: str, shipment_id: str, lines: dict[str, int], carrier: str) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        marketplace_order_id=order_id,
        shop_order_id="shop-" + order_id,
        lines=tuple(ShipmentLine(sku=sku, quantity=q) for sku, q in lines.items()),
        carrier=carrier,
        tracking_number="TRACK-" + shipment_id,
        shipped_at=datetime.now(UTC) - timedelta(minutes=5),
    )


async def full_exercise(sim: AmazonSimulator, make_connector: ConnectorFactory) -> list[Exchange]:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder, page_size=2, stock_batch_threshold=3)
    start = hours_ago(3)
    ids = [
        sim.create_order({"SKU-A": 2, "SKU-B": 1}, created_at=start + timedelta(minutes=i))[
            "orderId"
        ]
        for i in range(5)
    ]
    sim.create_order({"SKU-C": 1}, created_at=start, status="PENDING", business=True)
    sim.request_cancellation(ids[4])
    for _, raw in model_example_orders():
        sim.add_order(raw)
    sim.advance(180)  # the last update is now older than the 2-minute safety margin

    assert (await connector.check()).ok
    orders = await read_orders(connector, start, sim.now())
    assert len(orders) == 6
    assert isinstance(await connector.get_order("123-4567890-1234567"), Order)
    assert await connector.get_order("000-0000000-0000000") is None

    first = next(o for o in orders if o.marketplace_order_id == ids[0])
    partial = _shipment(ids[0], "S1", {"SKU-A": 1}, "DHL")
    await connector.confirm_shipment(first, partial, "DHL")
    rest = _shipment(ids[0], "S2", {"SKU-A": 1, "SKU-B": 1}, "Speedy Parcels")
    sim.revoke_access_tokens()  # confirmShipment answers 401, then the call is retried
    await connector.confirm_shipment(first, rest, "Speedy Parcels")
    assert await connector.shipment_confirmed(first, rest)

    second = next(o for o in orders if o.marketplace_order_id == ids[1])
    sim.faults.add("timeout_after", match=r"^POST /feeds/2021-06-30/feeds$", count=1)
    results = await connector.cancel_orders(  # the lost answer is found with getFeeds
        [
            CancelRequest(marketplace_order_id=ids[1], reason="NoInventory", lines=second.lines),
            CancelRequest(marketplace_order_id=ids[2], reason="BuyerCanceled"),
            CancelRequest(marketplace_order_id=ids[0], reason="NoInventory"),  # shipped
        ]
    )
    assert [r.ok for r in results] == [True, True, False]

    sim.failing_skus = {"SKU-BAD"}
    small = [StockLevel(sku="SKU-A", quantity=4), StockLevel(sku="SKU-BAD", quantity=1)]
    assert [r.ok for r in await connector.push_stock(small)] == [True, False]
    many = [StockLevel(sku=f"SKU-{n}", quantity=n) for n in range(6)] + small
    assert sum(not r.ok for r in await connector.push_stock(many)) == 1
    listed = await connector.listed_quantities(["SKU-A", "SKU-5", "SKU-BAD", "SKU-NEW"])
    assert listed == {"SKU-A": 4, "SKU-5": 5}  # SKU-BAD and SKU-NEW are not listed (404)

    sim.expire_access_tokens()  # one 403 answered, then refreshed
    assert isinstance(await connector.get_order(ids[3]), Order)
    return recorder.exchanges


async def test_all_traffic_of_a_full_run_matches_the_models(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    exchanges = await full_exercise(sim, make_connector)
    errors, seen = contract_errors(exchanges)
    assert errors == []
    assert seen == PLUGIN_OPERATIONS
    statuses = {e.status for e in exchanges}
    assert {200, 201, 202, 204, 401, 403, 404} <= statuses


async def test_uploaded_listings_feeds_and_reports_match_their_schemas(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    exchanges = await full_exercise(sim, make_connector)
    uploads = [
        json.loads(e.request_body)
        for e in exchanges
        if e.method == "PUT" and e.request_headers["content-type"].startswith("application/json")
    ]
    reports = [
        json.loads(e.response_body)
        for e in exchanges
        if e.method == "GET"
        and e.url.path.startswith("/feed-documents/")
        and e.response_headers["content-type"].startswith("application/json")
    ]
    assert len(uploads) == 1 and len(reports) == 1
    assert listings_feed_errors(uploads[0]) == []
    assert [m["sku"] for m in uploads[0]["messages"]][-2:] == ["SKU-A", "SKU-BAD"]
    assert listings_report_errors(reports[0]) == []


def test_the_validator_rejects_what_the_models_forbid() -> None:
    """The checks above can fail: invented fields, bad enums and bad dates are caught."""
    base = "https://sellingpartnerapi-eu.amazon.com"

    def exchange(
        method: str, url: str, body: object = None, status: int = 200, answer: object = None
    ) -> Exchange:
        return Exchange(
            method,
            httpx.URL(base + url),
            {},
            json.dumps(body).encode() if body is not None else b"",
            status,
            {},
            json.dumps(answer).encode() if answer is not None else b"",
        )

    search = "/orders/2026-01-01/orders?lastUpdatedAfter=2026-01-01T00:00:00&includedData=BUYERS"
    errors, _ = contract_errors([exchange("GET", search, answer={"orders": [{"orderId": "1"}]})])
    assert any("lastUpdatedAfter" in e for e in errors)
    assert any("BUYERS" in e for e in errors)
    assert any("required property" in e for e in errors)
    confirm = "/orders/v0/orders/1/shipmentConfirmation"
    body = {"marketplaceId": "X", "packageDetail": {"packageReferenceId": 1, "surprise": True}}
    errors, _ = contract_errors([exchange("POST", confirm, body, status=204)])
    assert any("not of type 'string'" in e for e in errors)
    assert any("surprise" in e for e in errors)
    errors, _ = contract_errors(
        [exchange("GET", "/sellers/v1/marketplaceParticipations", status=418)]
    )
    assert errors == [
        "GET /sellers/v1/marketplaceParticipations -> 418: status 418 is not declared for getMarketplaceParticipations"
    ]


async def test_simulator_error_answers_match_the_models() -> None:
    """400, 403, 404 and 429 answers of the simulator have the models' error shapes."""
    sim = AmazonSimulator(time_scale=1.0, seed=1)
    recorder = RecordingTransport(sim.transport())
    async with httpx.AsyncClient(transport=recorder, base_url="http://sim") as client:
        headers = await token_headers(client, sim)
        await client.get("/orders/2026-01-01/orders?createdAfter=yesterday", headers=headers)
        await client.get("/orders/2026-01-01/orders/1", headers={"x-amz-access-token": "nope"})
        await client.get("/feeds/2021-06-30/feeds/404", headers=headers)
        for _ in range(16):  # burst 15
            await client.get("/sellers/v1/marketplaceParticipations", headers=headers)
    errors, _ = contract_errors(recorder.exchanges, requests=False)  # requests are bad on purpose
    assert errors == []
    assert [e.status for e in recorder.exchanges[1:4]] == [400, 403, 404]
    assert recorder.exchanges[-1].status == 429


@pytest.mark.parametrize(
    ("name", "sha256_prefix"),
    [
        ("orders_2026-01-01.json", "4bd47126b466b94c"),
        ("ordersV0.json", "027ac6f5c9712664"),
        ("feeds_2021-06-30.json", "ab235b4a0e5ce210"),
        ("listingsItems_2021-08-01.json", "ddba7322661a227b"),
        ("sellers.json", "497862ea32de8040"),
        ("listings-feed-schema-v2.json", "9f6c00a109f086c2"),
        ("listings-feed-processing-report-schema-v2.json", "03daac9d3fa97d72"),
    ],
)
def test_contract_models_are_unmodified_copies(name: str, sha256_prefix: str) -> None:
    digest = hashlib.sha256((CONTRACTS / name).read_bytes()).hexdigest()
    assert digest.startswith(sha256_prefix)
    assert (CONTRACTS / "LICENSE").exists() and (CONTRACTS / "NOTICE").exists()


async def test_simulator_edge_answers_match_the_models() -> None:
    """Answers a normal run never sees, each checked against the model: injected 429,
    500 and 503 faults, FATAL feeds, a gzip report, IN_PROGRESS, the 400s of the feed
    calls, confirmShipment 400/404, patchListingsItem INVALID, VALIDATION_PREVIEW and
    403, getListingsItem 400/403/404, getFeeds, searchOrders by createdAfter with
    every includedData value."""
    sim = AmazonSimulator(time_scale=1000, gzip_reports=True, seed=5)
    slow = AmazonSimulator(time_scale=1.0, feed_processing_seconds=3600, seed=6)
    order = sim.create_order({"A": 1, "B": 2}, business=True, prime=True, discounts={"A": "1"})
    pending = sim.create_order({"C": 1}, status="PENDING")
    sim.request_cancellation(order["orderId"])
    sim.set_quantity("LISTED", 3, lead_time_to_ship_max_days=2)
    sim.failing_skus = {"BAD"}
    market = "A1PA6795UKMFR9"
    everything = ",".join(sim_orders.INCLUDED_DATA)
    patch = {"productType": "PRODUCT", "patches": [feeds.quantity_patch(1)]}
    listing = f"/listings/2021-08-01/items/{sim.seller_id}"
    statuses: dict[str, int] = {}
    recorder = RecordingTransport(sim.transport())
    slow_recorder = RecordingTransport(slow.transport())

    async def call(
        client: httpx.AsyncClient, label: str, method: str, url: str, **kw: object
    ) -> httpx.Response:
        response = await client.request(method, url, **kw)  # type: ignore[arg-type]
        statuses[label] = response.status_code
        return response

    async def feed(client: httpx.AsyncClient, feed_type: str, content: bytes, ctype: str) -> str:
        document = (
            await call(
                client,
                "createFeedDocument",
                "POST",
                "/feeds/2021-06-30/documents",
                json={"contentType": ctype},
            )
        ).json()
        await client.put(document["url"], content=content, headers={"content-type": ctype})
        body = {
            "feedType": feed_type,
            "marketplaceIds": [market],
            "inputFeedDocumentId": document["feedDocumentId"],
        }
        created = await call(client, "createFeed", "POST", "/feeds/2021-06-30/feeds", json=body)
        return str(created.json()["feedId"])

    async with httpx.AsyncClient(transport=recorder, base_url="http://sim") as http:
        http.headers.update(await token_headers(http, sim))
        for target, label in ((order, "getOrder/all"), (pending, "getOrder/pending")):
            await call(
                http,
                label,
                "GET",
                f"/orders/2026-01-01/orders/{target['orderId']}",
                params={"includedData": everything},
            )
        await call(
            http,
            "searchOrders/createdAfter",
            "GET",
            "/orders/2026-01-01/orders",
            params={
                "createdAfter": "2020-01-01T00:00:00Z",
                "includedData": everything,
                "maxResultsPerPage": "1",
            },
        )
        bad_package = {
            "marketplaceId": market,
            "packageDetail": {
                "packageReferenceId": "1",
                "carrierCode": "FedExx",
                "trackingNumber": "1",
                "shipDate": "2026-01-01T00:00:00Z",
                "orderItems": [{"orderItemId": "1", "quantity": 1}],
            },
        }
        await call(
            http,
            "confirmShipment/400",
            "POST",
            f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation",
            json=bad_package,
        )
        await call(
            http,
            "confirmShipment/404",
            "POST",
            "/orders/v0/orders/999-9999999-9999999/shipmentConfirmation",
            json={},
        )
        wrong_seller = feeds.listings_feed("OTHER", [("A", 1)], product_type="PRODUCT")
        fatal = await feed(
            http,
            feeds.LISTINGS_FEED_TYPE,
            json.dumps(wrong_seller).encode(),
            feeds.JSON_CONTENT_TYPE,
        )
        answer = (
            await call(http, "getFeed/FATAL", "GET", f"/feeds/2021-06-30/feeds/{fatal}")
        ).json()
        assert answer["processingStatus"] == "FATAL"
        document = (
            await call(
                http,
                "getFeedDocument/gzip",
                "GET",
                f"/feeds/2021-06-30/documents/{answer['resultFeedDocumentId']}",
            )
        ).json()
        assert document["compressionAlgorithm"] == "GZIP"
        report = gzip.decompress((await http.get(document["url"])).content)
        assert listings_report_errors(json.loads(report)) == []
        removed = await feed(
            http, "POST_INVENTORY_AVAILABILITY_DATA", b"x", "text/tab-separated-values"
        )
        answer = (
            await call(http, "getFeed/removed", "GET", f"/feeds/2021-06-30/feeds/{removed}")
        ).json()
        assert answer["processingStatus"] == "FATAL"
        await call(
            http,
            "getFeeds",
            "GET",
            "/feeds/2021-06-30/feeds",
            params={"feedTypes": feeds.LISTINGS_FEED_TYPE, "pageSize": "1"},
        )
        await call(http, "getFeeds/400", "GET", "/feeds/2021-06-30/feeds")
        await call(
            http,
            "createFeed/400",
            "POST",
            "/feeds/2021-06-30/feeds",
            json={"marketplaceIds": [market], "inputFeedDocumentId": "bad"},
        )
        await call(http, "createFeedDocument/400", "POST", "/feeds/2021-06-30/documents", json={})
        await call(http, "getFeedDocument/404", "GET", "/feeds/2021-06-30/documents/nope")
        await call(
            http,
            "createFeedDocument/401",
            "POST",
            "/feeds/2021-06-30/documents",
            json={"contentType": "text/xml"},
            headers={"x-amz-access-token": "bad"},
        )
        markets = {"marketplaceIds": market}
        await call(
            http, "patchListingsItem/INVALID", "PATCH", f"{listing}/BAD", params=markets, json=patch
        )
        await call(
            http,
            "patchListingsItem/VALID",
            "PATCH",
            f"{listing}/GOOD",
            params={**markets, "mode": "VALIDATION_PREVIEW"},
            json=patch,
        )
        await call(
            http,
            "patchListingsItem/403",
            "PATCH",
            "/listings/2021-08-01/items/OTHER/GOOD",
            params=markets,
            json=patch,
        )
        await call(
            http,
            "getListingsItem/200",
            "GET",
            f"{listing}/LISTED",
            params={
                **markets,
                "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability,procurement,relationships,productTypes",
            },
        )
        await call(http, "getListingsItem/404", "GET", f"{listing}/UNLISTED", params=markets)
        await call(http, "getListingsItem/400", "GET", f"{listing}/LISTED")
        await call(
            http,
            "getListingsItem/403",
            "GET",
            "/listings/2021-08-01/items/OTHER/LISTED",
            params=markets,
        )
        sim.faults.add("503", match="marketplaceParticipations", count=1)
        sim.faults.add("500", match="orders/2026", count=1)
        sim.faults.add("429", match="feeds/2021-06-30/feeds/", count=1)
        await call(http, "fault/503", "GET", "/sellers/v1/marketplaceParticipations")
        await call(http, "fault/500", "GET", f"/orders/2026-01-01/orders/{order['orderId']}")
        await call(http, "fault/429", "GET", f"/feeds/2021-06-30/feeds/{fatal}")
    async with httpx.AsyncClient(transport=slow_recorder, base_url="http://sim") as http:
        http.headers.update(await token_headers(http, slow))
        xml = feeds.cancel_feed_xml(slow.seller_id, [feeds.CancelItem("1", (), "NoInventory")])
        queued = await feed(http, feeds.CANCEL_FEED_TYPE, xml, feeds.XML_CONTENT_TYPE)
        slow.advance(1900)  # past half of the processing time
        answer = (
            await call(http, "getFeed/IN_PROGRESS", "GET", f"/feeds/2021-06-30/feeds/{queued}")
        ).json()
        assert answer["processingStatus"] == "IN_PROGRESS"

    errors, _ = contract_errors(recorder.exchanges + slow_recorder.exchanges, requests=False)
    assert errors == []
    assert statuses == {
        "getOrder/all": 200, "getOrder/pending": 200, "searchOrders/createdAfter": 200,
        "confirmShipment/400": 400, "confirmShipment/404": 404, "createFeedDocument": 201,
        "createFeed": 202, "getFeed/FATAL": 200, "getFeedDocument/gzip": 200,
        "getFeed/removed": 200, "getFeeds": 200, "getFeeds/400": 400, "createFeed/400": 400,
        "createFeedDocument/400": 400, "getFeedDocument/404": 404,
        "createFeedDocument/401": 403, "patchListingsItem/INVALID": 200,
        "patchListingsItem/VALID": 200, "patchListingsItem/403": 403,
        "getListingsItem/200": 200, "getListingsItem/404": 404, "getListingsItem/400": 400,
        "getListingsItem/403": 403, "fault/503": 503, "fault/500": 500, "fault/429": 429,
        "getFeed/IN_PROGRESS": 200,
    }  # fmt: skip
