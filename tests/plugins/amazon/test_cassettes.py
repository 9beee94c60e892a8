"""Cassette tests of the main SP-API calls (vcrpy), replayed without any server.

Modes, chosen with the ``AMAZON_CASSETTES`` environment variable:

- unset / ``replay`` (CI): ``record_mode="none"``; a request missing from the
  cassette fails the test, nothing reaches the network.
- ``record``: serve :class:`AmazonSimulator` on loopback (``serve_in_thread``),
  run each scenario over real HTTP and rewrite the cassettes. The ``sandbox_*``
  scenarios are served by :class:`StaticSandbox` (the models' static sandbox
  answers in front of the simulator).
- ``sandbox``: record the ``sandbox_*`` scenarios against Amazon's NA sandbox host
  (``sandbox.sellingpartnerapi-na.amazon.com``, marketplace Amazon.com, the one the
  sandbox examples answer for) with real credentials from ``AMAZON_LWA_CLIENT_ID``,
  ``AMAZON_LWA_CLIENT_SECRET``, ``AMAZON_REFRESH_TOKEN`` and ``AMAZON_SELLER_ID``.
  Amazon's static sandbox answers only the exact parameters of each model's
  ``x-amzn-api-sandbox`` cases, so these scenarios call :class:`SpApiClient` with
  those parameters; the simulator scenarios skip.

Before anything is written, the LWA request body, the LWA token in its answer,
``authorization`` and ``x-amz-access-token`` are replaced, any credential value
from the environment is scrubbed from every body, and the seller id is replaced by
the replay placeholder, so replay settings are the same whoever recorded.
``test_sandbox_recording_path_runs_against_the_stand_in`` records and replays the
sandbox scenarios against :class:`StaticSandbox` in a temporary folder, so that
path is exercised on every run without reaching Amazon.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest

from engine.interfaces import ConnectorContext
from engine.models import CancelRequest, Order, Shipment, ShipmentLine, StockLevel
from engine.testing.server import serve_in_thread
from plugins.amazon import feeds
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.mapping import order_from_api
from plugins.amazon.settings import AmazonSettings
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import read_orders
from tests.plugins.amazon.sandbox import StaticSandbox, case_value

MODE = os.environ.get("AMAZON_CASSETTES", "replay")
SELLER = "A1SIMULATEDSELLER"
"""The seller id of every cassette (a real one is replaced when recording)."""
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "amazon"
REPLAY_URL = "http://127.0.0.1:9"  # never contacted: replay matches method, path, query, body
FILTERED = "FILTERED"
SIM_SECRETS = ("test-client-id", "test-client-secret", "test-refresh-token")
ENV_SECRETS = ("AMAZON_LWA_CLIENT_ID", "AMAZON_LWA_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN")

WINDOW = (datetime(2026, 1, 5, 10, 0, tzinfo=UTC), datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
ORDER_A, ORDER_B, ORDER_C = "302-1000001-0000001", "302-1000001-0000002", "302-1000001-0000003"


def _secrets() -> list[str]:
    values = [os.environ.get(name, "") for name in ENV_SECRETS]
    return [v for v in (*values, *SIM_SECRETS) if len(v) >= 4]


def _scrub(text: str) -> str:
    for secret in _secrets():
        text = text.replace(secret, FILTERED)
    seller = os.environ.get("AMAZON_SELLER_ID", "")
    return text.replace(seller, SELLER) if len(seller) >= 4 else text


def scrub_request(request: VcrRequest) -> VcrRequest:
    request.uri = _scrub(request.uri)
    if request.path.endswith("/auth/o2/token"):
        request.body = (
            b"grant_type=refresh_token&refresh_token=FILTERED"
            b"&client_id=FILTERED&client_secret=FILTERED"
        )
    elif request.body:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        request.body = _scrub(body).encode()
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    raw = response["body"]["string"]
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if '"access_token"' in text:
        data = json.loads(text)
        for key in ("access_token", "refresh_token"):
            if key in data:
                data[key] = FILTERED
        text = json.dumps(data)
    response["body"]["string"] = _scrub(text).encode()
    return response


def recorder(record_mode: str, library: Path = CASSETTES) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(library),
        record_mode=record_mode,
        match_on=["method", "path", "query", "body"],
        filter_headers=["authorization", "x-amz-access-token"],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


def seed(sim: AmazonSimulator) -> None:
    """The account state every recording starts from (fixed ids and times)."""
    start = WINDOW[0]
    sim.create_order({"SHIRT": 2, "MUG": 1}, created_at=start.replace(minute=5), order_id=ORDER_A)
    sim.create_order({"SHIRT": 1}, created_at=start.replace(minute=15), order_id=ORDER_B)
    sim.create_order({"POSTER": 3}, created_at=start.replace(minute=25), order_id=ORDER_C)
    sim.failing_skus = {"RETIRED-SKU"}


@contextmanager
def base_url(mode: str, *, sandbox: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """Where the connector talks to, and settings for it, per mode."""
    market = {"marketplaces": ["Amazon.com"]} if sandbox else {}
    if mode == "record":
        sim = AmazonSimulator(seed=2026)
        seed(sim)
        app = StaticSandbox(sim.app) if sandbox else sim.app
        with serve_in_thread(app) as url:
            yield (
                url,
                {"seller_id": sim.seller_id, "lwa_token_url": f"{url}/auth/o2/token", **market},
            )
        return
    if mode == "sandbox":
        yield (
            "",
            {
                "sandbox": True,
                "marketplaces": ["Amazon.com"],
                "seller_id": os.environ["AMAZON_SELLER_ID"],
                "lwa_client_id": os.environ["AMAZON_LWA_CLIENT_ID"],
                "lwa_client_secret": os.environ["AMAZON_LWA_CLIENT_SECRET"],
                "lwa_refresh_token": os.environ["AMAZON_REFRESH_TOKEN"],
            },
        )
        return
    yield (
        REPLAY_URL,
        {"seller_id": SELLER, "lwa_token_url": f"{REPLAY_URL}/auth/o2/token", **market},
    )


Scenario = Callable[[AmazonConnector], Awaitable[None]]


async def run(
    name: str,
    scenario: Scenario,
    *,
    sandbox: bool = False,
    mode: str = MODE,
    library: Path = CASSETTES,
) -> None:
    """Run ``scenario`` on the cassette ``name``: recorded (record, sandbox) or replayed."""
    if mode == "sandbox" and not sandbox:
        pytest.skip("Amazon's static sandbox does not answer this scenario's parameters")
    cassette = library / f"{name}.yaml"
    if mode != "replay":
        cassette.unlink(missing_ok=True)  # a recording starts from nothing, never appends
    record_mode = "none" if mode == "replay" else "all"
    with (
        base_url(mode, sandbox=sandbox) as (url, overrides),
        recorder(record_mode, library).use_cassette(cassette.name),
    ):
        values: dict[str, Any] = {
            "marketplaces": ["Amazon.de"],
            "lwa_client_id": SIM_SECRETS[0],
            "lwa_client_secret": SIM_SECRETS[1],
            "lwa_refresh_token": SIM_SECRETS[2],
            "page_size": 2,
            "stock_batch_threshold": 5,
            "feed_poll_interval": 0.01,
        }
        if url:
            values["endpoint"] = url
        values.update(overrides)
        connector = AmazonConnector(AmazonSettings(**values), ConnectorContext("cassette"))
        try:
            await scenario(connector)
        finally:
            await connector.aclose()


async def test_search_orders() -> None:
    async def scenario(connector: AmazonConnector) -> None:
        orders = await read_orders(connector, *WINDOW)
        assert [o.marketplace_order_id for o in orders] == [ORDER_A, ORDER_B, ORDER_C]
        assert {o.currency for o in orders} == {"EUR"}
        assert orders[0].quantities_by_sku() == {"SHIRT": 2, "MUG": 1}
        assert all(o.taxes_included and o.shipping_address for o in orders)

    await run("search_orders", scenario)


async def test_confirm_shipment() -> None:
    async def scenario(connector: AmazonConnector) -> None:
        order = await connector.get_order(ORDER_A)
        assert isinstance(order, Order)
        shipment = Shipment(
            shipment_id="shop-fulfillment-1",
            marketplace_order_id=ORDER_A,
            shop_order_id="1001",
            lines=(ShipmentLine(sku="SHIRT", quantity=2),),
            carrier="DHL",
            tracking_number="00340434161234567890",
            shipped_at=datetime(2026, 1, 5, 14, 0, tzinfo=UTC),
        )
        assert await connector.shipment_confirmed(order, shipment) is False
        await connector.confirm_shipment(order, shipment, "DHL")
        assert await connector.shipment_confirmed(order, shipment) is True

    await run("confirm_shipment", scenario)


async def test_cancel_feed() -> None:
    async def scenario(connector: AmazonConnector) -> None:
        results = await connector.cancel_orders(
            [
                CancelRequest(marketplace_order_id=ORDER_B, reason="NoInventory"),
                CancelRequest(marketplace_order_id=ORDER_C, reason="BuyerCanceled"),
            ]
        )
        assert [(r.key, r.ok) for r in results] == [(ORDER_B, True), (ORDER_C, True)]

    await run("cancel_feed", scenario)


async def test_patch_listings_items() -> None:
    async def scenario(connector: AmazonConnector) -> None:
        results = await connector.push_stock(
            [StockLevel(sku="SHIRT", quantity=12), StockLevel(sku="RETIRED-SKU", quantity=0)]
        )
        assert [(r.key, r.ok, r.code) for r in results] == [
            ("SHIRT", True, None),
            ("RETIRED-SKU", False, "90000900"),
        ]

    await run("patch_listings_items", scenario)


async def test_participations() -> None:
    async def scenario(connector: AmazonConnector) -> None:
        result = await connector.check()
        assert result.ok, result.message

    await run("participations", scenario)


# -- sandbox scenarios: each model's x-amzn-api-sandbox parameters -------------------


async def sandbox_participations(connector: AmazonConnector) -> None:
    result = await connector.check()
    assert result.ok, result.message
    assert result.details["participating"] == ["ATVPDKIKX0DER"]


async def sandbox_orders(connector: AmazonConnector) -> None:
    client = connector.client
    order_id = case_value("getOrder", 200, "orderId")
    included = case_value("getOrder", 200, "includedData")
    order = order_from_api((await client.get_order(order_id, included))["order"])
    assert (order.marketplace_order_id, order.currency) == (order_id, "BRL")
    page = await client.search_orders(
        {
            name: ",".join(value) if isinstance(value, list) else str(value)
            for name, value in (
                (n, case_value("searchOrders", 200, n))
                for n in ("createdAfter", "marketplaceIds", "includedData")
            )
        }
    )
    assert [order_from_api(o).currency for o in page["orders"]] == ["JPY"]
    body = case_value("confirmShipment", 204, "body")
    await client.confirm_shipment(case_value("confirmShipment", 204, "orderId"), body)


async def sandbox_feeds(connector: AmazonConnector) -> None:
    client = connector.client
    content_type = case_value("createFeedDocument", 201, "body")["contentType"]
    document = await client.create_feed_document(content_type)
    assert document["feedDocumentId"] and document["url"]
    feed = case_value("createFeed", 202, "body")
    feed_id = await client.create_feed(
        feed["feedType"], tuple(feed["marketplaceIds"]), feed["inputFeedDocumentId"]
    )
    assert feed_id
    status = await client.get_feed(case_value("getFeed", 200, "feedId"))
    assert status["processingStatus"] in ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
    result = await client.get_feed_document(case_value("getFeedDocument", 200, "feedDocumentId"))
    assert result["url"]


async def sandbox_listings(connector: AmazonConnector) -> None:
    preview = {
        "mode": case_value("patchListingsItem", 200, "mode", 1),
        "includedData": ",".join(case_value("patchListingsItem", 200, "includedData", 1)),
    }
    sku = case_value("patchListingsItem", 200, "sku", 1)
    body = {"productType": connector.settings.product_type, "patches": [feeds.quantity_patch(5)]}
    answer = await connector.client.patch_listings_item(sku, body, extra=preview)
    assert (answer["sku"], answer["status"]) == ("VALIDATION_VALID", "VALID")
    item = await connector.client.get_listings_item("GM-ZDPI-9B4E", ["fulfillmentAvailability"])
    assert item["sku"] == "GM-ZDPI-9B4E"


SANDBOX_SCENARIOS: dict[str, Scenario] = {
    "sandbox_participations": sandbox_participations,
    "sandbox_orders": sandbox_orders,
    "sandbox_feeds": sandbox_feeds,
    "sandbox_listings": sandbox_listings,
}


@pytest.mark.parametrize("name", SANDBOX_SCENARIOS)
async def test_sandbox(name: str) -> None:
    """Replayed in CI; ``AMAZON_CASSETTES=sandbox`` records them from Amazon's sandbox."""
    await run(name, SANDBOX_SCENARIOS[name], sandbox=True)


def _read_all(folder: Path) -> dict[str, str]:
    return {f.stem: f.read_text("utf-8") for f in folder.glob("*.yaml")}


@pytest.mark.skipif(MODE != "replay", reason="records on its own when replaying")
async def test_sandbox_recording_path_runs_against_the_stand_in(tmp_path: Path) -> None:
    """The recording path of the sandbox scenarios, against the static-sandbox stand-in
    on loopback: recorded into a temporary folder, then replayed from it."""
    for name, scenario in SANDBOX_SCENARIOS.items():
        await run(name, scenario, sandbox=True, mode="record", library=tmp_path)
        await run(name, scenario, sandbox=True, mode="replay", library=tmp_path)
    recorded = _read_all(tmp_path)
    assert set(recorded) == set(SANDBOX_SCENARIOS)
    for text in recorded.values():
        assert not any(secret in text for secret in _secrets())
    assert "902-1106328-1059050/shipmentConfirmation" in recorded["sandbox_orders"]


TOKENISH = re.compile(r"Atz[ar]\||sim-access-[0-9a-f]+")


def test_cassettes_hold_no_secrets() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "search_orders",
        "confirm_shipment",
        "cancel_feed",
        "patch_listings_items",
        "participations",
        *SANDBOX_SCENARIOS,
    }
    for file in files:
        text = file.read_text("utf-8")
        for secret in _secrets():
            assert secret not in text, f"{secret!r} in {file.name}"
        assert not TOKENISH.search(text), file.name
        assert "x-amz-access-token" not in text.lower(), file.name
        assert "authorization" not in text.lower(), file.name
        if "/auth/o2/token" in text:
            assert '"access_token": "FILTERED"' in text, file.name


@pytest.mark.skipif(MODE != "replay", reason="only meaningful when replaying")
async def test_replay_refuses_requests_that_were_not_recorded() -> None:
    settings = AmazonSettings(
        marketplaces=["Amazon.fr"],  # not what the cassette recorded
        seller_id=SELLER,
        lwa_client_id=SIM_SECRETS[0],
        lwa_client_secret=SIM_SECRETS[1],
        lwa_refresh_token=SIM_SECRETS[2],
        endpoint=REPLAY_URL,
        lwa_token_url=f"{REPLAY_URL}/auth/o2/token",
    )
    connector = AmazonConnector(settings, ConnectorContext("cassette"))
    try:
        with recorder("none").use_cassette("search_orders.yaml"):
            with pytest.raises(CannotOverwriteExistingCassetteException):
                _ = [o async for o in connector.orders_updated(*WINDOW)]
    finally:
        await connector.aclose()


def test_a_real_seller_id_is_replaced_by_the_replay_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cassettes recorded from the sandbox with a real seller replay with the placeholder."""
    monkeypatch.setenv("AMAZON_SELLER_ID", "AREALSELLER42")
    request = VcrRequest(
        "PATCH",
        "https://sandbox.sellingpartnerapi-na.amazon.com/listings/2021-08-01/items/AREALSELLER42/SKU",
        b'{"sellerId": "AREALSELLER42"}',
        {},
    )
    scrubbed = scrub_request(request)
    assert scrubbed.path == f"/listings/2021-08-01/items/{SELLER}/SKU"
    assert b"AREALSELLER42" not in scrubbed.body
