"""Stock: patchListingsItem for a few SKUs, JSON_LISTINGS_FEED for many."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from engine.models import StockLevel
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.sim_listings import Listing, apply_availability_patch
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory
from tests.plugins.amazon.contract import RecordingTransport, listings_feed_errors


def levels(**quantities: int) -> list[StockLevel]:
    return [StockLevel(sku=sku.replace("_", "-"), quantity=q) for sku, q in quantities.items()]


async def test_few_skus_are_patched_one_by_one(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder, stock_batch_threshold=3)

    results = await connector.push_stock(
        levels(SKU_A=5, SKU_B=-2) + [StockLevel(sku="SKU-A", quantity=7)]  # last one wins
    )

    assert [(r.key, r.ok) for r in results] == [("SKU-A", True), ("SKU-B", True)]
    assert sim.quantities == {"SKU-A": 7, "SKU-B": 0}  # negative stock is sent as 0
    assert "createFeed" not in sim.calls
    patches = [json.loads(e.request_body) for e in recorder.exchanges if e.method == "PATCH"]
    assert patches[0] == {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "merge",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
            }
        ],
    }


async def test_sku_with_slash_is_one_path_segment(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    (result,) = await connector.push_stock([StockLevel(sku="BOX/12 PCS", quantity=3)])
    assert result.ok and sim.quantities == {"BOX/12 PCS": 3}
    (patch,) = [e for e in recorder.exchanges if e.method == "PATCH"]
    assert patch.url.raw_path.decode().startswith(
        f"/listings/2021-08-01/items/{sim.seller_id}/BOX%2F12%20PCS?"
    )


async def test_failing_sku_in_a_patch_is_reported_and_the_rest_apply(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    sim.failing_skus = {"BAD"}
    results = await connector.push_stock(levels(GOOD=1, BAD=2, ALSO_GOOD=3))
    by_sku = {r.key: r for r in results}
    assert by_sku["BAD"].ok is False
    assert by_sku["BAD"].code == "90000900"
    assert by_sku["BAD"].message == "The attributes are invalid."
    assert by_sku["GOOD"].ok and by_sku["ALSO-GOOD"].ok
    assert sim.quantities == {"GOOD": 1, "ALSO-GOOD": 3}


async def test_many_skus_go_in_one_feed_and_one_failure_is_reported(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder, stock_batch_threshold=5)
    sim.failing_skus = {"SKU-13"}
    stock = [StockLevel(sku=f"SKU-{n}", quantity=n - 3) for n in range(40)]

    results = await connector.push_stock(stock)

    assert len(results) == 40
    failed = [r for r in results if not r.ok]
    assert [(r.key, r.code) for r in failed] == [("SKU-13", "90000900")]
    assert sim.quantities == {f"SKU-{n}": max(0, n - 3) for n in range(40) if n != 13}
    assert sim.calls["createFeed"] == 1
    assert "patchListingsItem" not in sim.calls
    (upload,) = [e for e in recorder.exchanges if e.method == "PUT"]
    document = json.loads(upload.request_body)
    assert listings_feed_errors(document) == []
    assert document["header"] == {"sellerId": sim.seller_id, "version": "2.0"}
    assert [m["messageId"] for m in document["messages"]] == list(range(1, 41))


async def test_feed_level_rejection_fails_every_sku(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(stock_batch_threshold=0, seller_id="A-DIFFERENT-SELLER")
    results = await connector.push_stock(levels(A=1, B=2))
    assert [r.ok for r in results] == [False, False]
    assert all("is not this seller" in (r.message or "") for r in results)
    assert sim.quantities == {}


async def test_rejected_patch_request_keeps_amazons_code(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    sim.set_participation("Amazon.de", False)
    connector = make_connector()
    (result,) = await connector.push_stock(levels(A=1))
    assert (result.ok, result.code) == (False, "InvalidInput")
    assert "does not participate" in (result.message or "")


async def test_nothing_to_push(connector: AmazonConnector, sim: AmazonSimulator) -> None:
    assert await connector.push_stock([]) == []
    assert sim.calls == {}


async def test_a_quantity_update_keeps_the_other_availability_fields(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """Lead time and restock date set in Seller Central survive, by patch and by feed."""
    extra = {"lead_time_to_ship_max_days": 4, "restock_date": "2026-03-01"}
    skus = [f"SKU-{n}" for n in range(4)]
    for sku in skus:
        sim.set_quantity(sku, 1, **extra)
    patched = make_connector(stock_batch_threshold=10)
    fed = make_connector(stock_batch_threshold=0)

    assert all(r.ok for r in await patched.push_stock(levels(SKU_0=7, SKU_1=8)))
    assert all(r.ok for r in await fed.push_stock(levels(SKU_2=9, SKU_3=0)))

    assert sim.calls["patchListingsItem"] == 2 and sim.calls["createFeed"] == 1
    for sku, quantity in zip(skus, (7, 8, 9, 0), strict=True):
        assert sim.availability(sku) == {
            "fulfillment_channel_code": "DEFAULT",
            "quantity": quantity,
            **extra,
        }


def test_simulator_replace_drops_the_other_fields_as_amazon_does() -> None:
    """The simulator tells merge from replace, so the test above can fail."""
    listing = Listing("SKU", datetime.now(UTC), datetime.now(UTC))
    listing.availability["DEFAULT"] = {
        "fulfillment_channel_code": "DEFAULT",
        "quantity": 1,
        "lead_time_to_ship_max_days": 4,
    }
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}]
    assert apply_availability_patch(listing, {"op": "replace", "value": value}) is None
    assert listing.availability["DEFAULT"] == value[0]
