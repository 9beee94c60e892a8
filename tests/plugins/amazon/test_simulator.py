"""The simulator on its own: admin API, validation, state changes, command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from plugins.amazon import simulator as simulator_module
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import token_headers


@pytest.fixture
async def http(sim: AmazonSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        client.headers.update(await token_headers(client, sim))
        yield client


async def test_admin_http_api_cancels_as_the_buyer(
    sim: AmazonSimulator, http: httpx.AsyncClient
) -> None:
    order_id = (await http.post("/_admin/orders", json={"items": {"MUG": 1}})).json()["orderId"]
    wrong = await http.post(f"/_admin/orders/{order_id}/cancellation", json={"by": "SELLER"})
    assert wrong.status_code == 400 and "BUYER" in wrong.json()["error"]
    done = await http.post(
        f"/_admin/orders/{order_id}/cancellation",
        json={"by": "BUYER", "reason": "No longer needed"},
    )
    assert done.status_code == 200
    assert done.json()["orderItems"][0]["cancellation"]["cancellationExecution"] == {
        "cancelledBy": "BUYER",
        "cancelReason": "No longer needed",
    }
    assert done.json()["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert [(c["orderId"], c["by"]) for c in sim.cancellations] == [(order_id, "BUYER")]


async def test_admin_http_api_round_trip(sim: AmazonSimulator, http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/_admin/orders",
        json={
            "items": {"MUG": 2},
            "marketplace": "Amazon.com",
            "prime": True,
            "business": True,
            "status": "PENDING",
            "prices": {"MUG": "12.50"},
            "shipping": "0",
        },
    )
    assert created.status_code == 201
    order = created.json()
    order_id = order["orderId"]
    assert order["programs"] == ["PRIME", "AMAZON_BUSINESS"]
    assert order["salesChannel"]["marketplaceId"] == "ATVPDKIKX0DER"
    assert order["orderItems"][0]["product"]["price"]["unitPrice"] == {
        "amount": "12.50",
        "currencyCode": "USD",
    }
    # US: 7.25 % sales tax on 25.00 is added to the total
    assert order["proceeds"]["grandTotal"] == {"amount": "26.81", "currencyCode": "USD"}

    stamps = [order["lastUpdatedTime"]]
    for action, body in [
        ("status", {"status": "UNSHIPPED"}),
        ("buyer-cancellation", {"reason": "Ordered twice"}),
        ("amazon-cancellation", {"reason": "Payment declined"}),
    ]:
        answer = await http.post(f"/_admin/orders/{order_id}/{action}", json=body)
        assert answer.status_code == 200, answer.text
        stamps.append(answer.json()["lastUpdatedTime"])
    assert stamps == sorted(set(stamps))  # every update moves lastUpdatedTime forward

    final = (await http.get(f"/_admin/orders/{order_id}")).json()
    assert final["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    cancellation = final["orderItems"][0]["cancellation"]
    assert cancellation["cancellationRequest"] == {
        "requester": "BUYER",
        "cancelReason": "Ordered twice",
    }
    assert cancellation["cancellationExecution"] == {
        "cancelledBy": "AMAZON",
        "cancelReason": "Payment declined",
    }

    stock = await http.put("/_admin/stock", json={"failingSkus": ["X"], "quantities": {"MUG": 4}})
    assert stock.json()["failingSkus"] == ["X"] and stock.json()["quantities"] == {"MUG": 4}
    lead = {"availability": {"MUG": {"quantity": 6, "lead_time_to_ship_max_days": 2}}}
    assert (await http.put("/_admin/stock", json=lead)).json()["availability"] == {
        "MUG": {
            "fulfillment_channel_code": "DEFAULT",
            "quantity": 6,
            "lead_time_to_ship_max_days": 2,
        }
    }
    assert (await http.put("/_admin/participations", json={"Amazon.fr": False})).json()[
        "A13V1IB3VIYZZH"
    ] is False
    before = sim.now()
    moved = await http.post("/_admin/clock/advance", json={"seconds": 3600})
    assert moved.status_code == 200 and sim.now() - before >= timedelta(hours=1)
    assert (await http.post("/_admin/tokens/expire")).status_code == 200
    assert (await http.get("/sellers/v1/marketplaceParticipations")).status_code == 403
    assert (await http.get("/_admin/confirmations")).json() == {"confirmations": []}
    cancellations = (await http.get("/_admin/cancellations")).json()["cancellations"]
    assert [(c["orderId"], c["by"]) for c in cancellations] == [(order_id, "AMAZON")]
    state = (await http.get("/_admin/state")).json()
    assert state["orders"] == {order_id: "CANCELLED"}
    assert state["cancellations"][0]["by"] == "AMAZON"
    assert state["rejectedRequests"] == 1
    bad = await http.post(f"/_admin/orders/{order_id}/status", json={"status": "LOST"})
    assert bad.status_code == 400


async def test_admin_loads_raw_orders(http: httpx.AsyncClient) -> None:
    raw = {
        "orderId": "111-0000000-0000001",
        "createdTime": "2026-01-01T00:00:00Z",
        "lastUpdatedTime": "2026-01-01T00:00:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1PA6795UKMFR9"},
        "orderItems": [],
    }
    assert (await http.post("/_admin/orders", json={"order": raw})).status_code == 201
    listed = (await http.get("/_admin/orders")).json()["orders"]
    assert [o["orderId"] for o in listed] == ["111-0000000-0000001"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Exactly one of createdAfter and lastUpdatedAfter"),
        ("createdAfter=2026-01-01T00:00:00Z&lastUpdatedAfter=2026-01-01T00:00:00Z", "Exactly one"),
        ("lastUpdatedAfter=2026-01-01T00:00:00Z&createdBefore=2026-01-02T00:00:00Z", "cannot be"),
        ("lastUpdatedAfter=yesterday", "Invalid date/time field [lastUpdatedAfter]"),
        (
            "lastUpdatedAfter=2026-01-01T00:00:00Z&lastUpdatedBefore=2099-01-01T00:00:00Z",
            "two minutes",
        ),
        ("lastUpdatedAfter=2026-01-02T00:00:00Z&lastUpdatedBefore=2026-01-01T00:00:00Z", "after"),
        ("lastUpdatedAfter=2026-01-01T00:00:00Z&maxResultsPerPage=0", "between 1 and 100"),
        ("lastUpdatedAfter=2026-01-01T00:00:00Z&includedData=BUYER,EVERYTHING", "EVERYTHING"),
        ("lastUpdatedAfter=2026-01-01T00:00:00Z&NextToken=abc", "Unknown query parameter"),
        ("lastUpdatedAfter=2026-01-01T00:00:00Z&includedData=BUYER&includedData=TAX", "repeated"),
        (
            "lastUpdatedAfter=2026-01-01T00:00:00Z&paginationToken=made-up",
            "Invalid paginationToken",
        ),
    ],
)
async def test_search_validation(http: httpx.AsyncClient, query: str, message: str) -> None:
    answer = await http.get(f"/orders/2026-01-01/orders?{query}")
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["code"] == "InvalidInput"
    assert message in error["message"]


async def test_page_token_needs_the_same_filters(
    sim: AmazonSimulator, http: httpx.AsyncClient
) -> None:
    start = sim.now() - timedelta(hours=1)
    for n in range(3):
        sim.create_order({"A": 1}, created_at=start + timedelta(minutes=n))
    after = (start - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first = await http.get(
        f"/orders/2026-01-01/orders?lastUpdatedAfter={after}&maxResultsPerPage=2"
    )
    token = first.json()["pagination"]["nextToken"]
    other = await http.get(
        f"/orders/2026-01-01/orders?lastUpdatedAfter={start.year - 1}-01-01T00:00:00Z&paginationToken={token}"
    )
    assert other.status_code == 400 and "same values" in other.json()["errors"][0]["message"]
    same = await http.get(
        f"/orders/2026-01-01/orders?lastUpdatedAfter={after}&paginationToken={token}&includedData=BUYER"
    )
    assert same.status_code == 200 and len(same.json()["orders"]) == 1
    assert "pagination" not in same.json()


async def test_included_data_and_pending_pii(sim: AmazonSimulator, http: httpx.AsyncClient) -> None:
    pending = sim.create_order({"A": 1}, status="PENDING")["orderId"]
    bare = (await http.get(f"/orders/2026-01-01/orders/{pending}")).json()["order"]
    assert {"buyer", "recipient", "proceeds", "fulfillment", "packages"}.isdisjoint(bare)
    assert "proceeds" not in bare["orderItems"][0]
    full = await http.get(f"/orders/2026-01-01/orders/{pending}?includedData=BUYER,RECIPIENT")
    order = full.json()["order"]
    assert "buyerName" not in order["buyer"]
    assert set(order["recipient"]["deliveryAddress"]) == {
        "city",
        "postalCode",
        "countryCode",
        "addressType",
    }


def _confirmation(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    item = order["orderItems"][0]
    package = {
        "packageReferenceId": "1",
        "carrierCode": "DHL",
        "trackingNumber": "T1",
        "shipDate": "2026-01-01T10:00:00Z",
        "orderItems": [{"orderItemId": item["orderItemId"], "quantity": 1}],
    }
    package.update(changes)
    return {"marketplaceId": order["salesChannel"]["marketplaceId"], "packageDetail": package}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"packageReferenceId": "PKG-1"}, "positive number"),
        ({"packageReferenceId": 1}, "positive number"),
        ({"carrierCode": "FedExx"}, "Invalid carrierCode"),
        ({"carrierCode": "Other"}, "carrierName is required"),
        ({"shipDate": "02/21/2022"}, "Invalid date/time field [shipDate]"),
        ({"trackingNumber": ""}, "trackingNumber is required"),
        ({"orderItems": [{"orderItemId": "nope", "quantity": 1}]}, "OrderItemId nope is invalid"),
    ],
)
async def test_confirm_shipment_validation(
    sim: AmazonSimulator, http: httpx.AsyncClient, changes: dict[str, Any], message: str
) -> None:
    order = sim.create_order({"A": 1})
    answer = await http.post(
        f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation",
        json=_confirmation(order, **changes),
    )
    assert answer.status_code == 400
    assert message in answer.json()["errors"][0]["message"]
    assert sim.confirmations == []


async def test_confirm_shipment_beyond_the_ordered_quantity(
    sim: AmazonSimulator, http: httpx.AsyncClient
) -> None:
    order = sim.create_order({"A": 2})
    url = f"/orders/v0/orders/{order['orderId']}/shipmentConfirmation"
    assert (await http.post(url, json=_confirmation(order))).status_code == 204
    item = order["orderItems"][0]["orderItemId"]
    two = [{"orderItemId": item, "quantity": 2}]
    again = await http.post(url, json=_confirmation(order, packageReferenceId="2", orderItems=two))
    assert again.status_code == 400 and "exceeds" in again.json()["errors"][0]["message"]
    pending = sim.create_order({"A": 1}, status="PENDING")
    early = await http.post(
        f"/orders/v0/orders/{pending['orderId']}/shipmentConfirmation", json=_confirmation(pending)
    )
    assert early.status_code == 400 and "PENDING" in early.json()["errors"][0]["message"]


async def test_document_upload_rules(sim: AmazonSimulator, http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/feeds/2021-06-30/documents", json={"contentType": "text/xml; charset=UTF-8"}
    )
    assert created.status_code == 201
    url = created.json()["url"]
    assert url.startswith("http://sim/feed-documents/")
    wrong = await http.put(url, content=b"<x/>", headers={"content-type": "application/json"})
    assert wrong.status_code == 403 and b"SignatureDoesNotMatch" in wrong.content
    feed = await http.post(
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": ["A1PA6795UKMFR9"],
            "inputFeedDocumentId": created.json()["feedDocumentId"],
        },
    )
    assert feed.status_code == 400 and "uploaded" in feed.json()["errors"][0]["message"]
    sim.advance(301)
    late = await http.put(url, content=b"<x/>", headers={"content-type": "text/xml; charset=UTF-8"})
    assert late.status_code == 403 and b"expired" in late.content


async def test_removed_inventory_feed_ends_fatal(http: httpx.AsyncClient) -> None:
    created = (
        await http.post("/feeds/2021-06-30/documents", json={"contentType": "text/xml"})
    ).json()
    await http.put(created["url"], content=b"<x/>", headers={"content-type": "text/xml"})
    feed_id = (
        await http.post(
            "/feeds/2021-06-30/feeds",
            json={
                "feedType": "POST_INVENTORY_AVAILABILITY_DATA",
                "marketplaceIds": ["A1PA6795UKMFR9"],
                "inputFeedDocumentId": created["feedDocumentId"],
            },
        )
    ).json()["feedId"]
    feed = (await http.get(f"/feeds/2021-06-30/feeds/{feed_id}")).json()
    assert feed["processingStatus"] == "FATAL"
    assert "resultFeedDocumentId" not in feed


async def test_lwa_errors(sim: AmazonSimulator) -> None:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        grantless = await client.post(
            "/auth/o2/token", data={"grant_type": "client_credentials", "scope": "x"}
        )
        assert grantless.status_code == 400
        assert grantless.json()["error"] == "unsupported_grant_type"
    assert sim.token_grants == 0


async def test_faults_can_be_set_over_http(sim: AmazonSimulator, http: httpx.AsyncClient) -> None:
    rules = {"rules": [{"kind": "503", "match": "marketplaceParticipations", "count": 1}]}
    assert (await http.post("/_faults", json=rules)).status_code == 200
    assert (await http.get("/sellers/v1/marketplaceParticipations")).status_code == 503
    assert (await http.get("/sellers/v1/marketplaceParticipations")).status_code == 200
    assert sim.faults.injected == {"503": 1}


def test_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, host: str, port: int, log_level: str) -> None:
        seen.update(app=app, host=host, port=port)

    monkeypatch.setattr("uvicorn.run", fake_run)
    simulator_module.main(
        ["--port", "8123", "--time-scale", "50", "--no-rate-limits", "--seed", "3"]
    )
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    faults = seen["app"]
    limiter = faults.app.limiter
    assert limiter.enabled is False
    assert limiter.clock.time_scale == 50
