"""listed_quantities: what Amazon offers now, read with getListingsItem."""

from __future__ import annotations

import pytest

from engine.errors import FatalAPIError
from engine.models import StockLevel
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory
from tests.plugins.amazon.contract import Models, RecordingTransport

MODELS = Models()


async def test_listed_quantities_reads_each_sku_and_leaves_out_unlisted_ones(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    sim.set_quantity("MUG", 5)
    sim.set_quantity("SOLD-OUT", 0)
    await connector.push_stock([StockLevel(sku="BOX/12 PCS", quantity=3)])
    sim.listing("FBA-ONLY").availability["AMAZON_EU"] = {
        "fulfillment_channel_code": "AMAZON_EU",
        "quantity": 40,
    }

    found = await connector.listed_quantities(
        ["MUG", "SOLD-OUT", "BOX/12 PCS", "NEVER-LISTED", "FBA-ONLY", "MUG"]
    )

    assert found == {"MUG": 5, "SOLD-OUT": 0, "BOX/12 PCS": 3}
    assert sim.calls["getListingsItem"] == 5  # the repeated SKU is read once
    reads = [e for e in recorder.exchanges if e.method == "GET" and "/listings/" in e.url.path]
    assert sorted(e.status for e in reads) == [200, 200, 200, 200, 404]
    for exchange in reads:
        op = MODELS.find_exchange(exchange)
        assert op is not None and op.operation_id == "getListingsItem"
        assert MODELS.request_errors(op, exchange) == []
        assert MODELS.response_errors(op, exchange) == []
        assert exchange.url.params["includedData"] == "fulfillmentAvailability"
        assert exchange.url.params["marketplaceIds"] == "A1PA6795UKMFR9"


async def test_another_channel_is_read_when_configured(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(fulfillment_channel_code="AMAZON_EU")
    sim.set_quantity("MUG", 5)
    sim.listing("FBA").availability["AMAZON_EU"] = {"fulfillment_channel_code": "AMAZON_EU"}
    assert await connector.listed_quantities(["MUG", "FBA"]) == {"FBA": 0}


async def test_a_rejected_read_names_the_sku(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    sim.set_quantity("MUG", 5)
    sim.set_participation("Amazon.de", False)
    connector = make_connector()
    with pytest.raises(FatalAPIError, match="SKU MUG") as info:
        await connector.listed_quantities(["MUG"])
    assert (info.value.status, info.value.code) == (400, "InvalidInput")


async def test_many_reads_keep_to_the_usage_plan(make_connector: ConnectorFactory) -> None:
    sim = AmazonSimulator(time_scale=20.0)  # getListingsItem: 100/s, burst 10
    connector = make_connector(transport=sim.transport(), time_scale=20.0)
    for n in range(30):
        sim.set_quantity(f"SKU-{n}", n)
    found = await connector.listed_quantities([f"SKU-{n}" for n in range(30)])
    assert found == {f"SKU-{n}": n for n in range(30)}
    assert sim.limiter.throttled == {}
    assert connector.client.api.stats["throttled"] == 0


async def test_simulator_answers_other_data_sets_within_the_model(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    sim.set_quantity("MUG", 5, lead_time_to_ship_max_days=3)
    item = await connector.client.get_listings_item(
        "MUG", ["summaries", "attributes", "issues", "fulfillmentAvailability", "productTypes"]
    )
    assert item["attributes"] == {
        "fulfillment_availability": [
            {"fulfillment_channel_code": "DEFAULT", "quantity": 5, "lead_time_to_ship_max_days": 3}
        ]
    }
    assert item["summaries"][0]["status"] == ["BUYABLE"]
    (exchange,) = [e for e in recorder.exchanges if "/listings/" in e.url.path]
    op = MODELS.find_exchange(exchange)
    assert op is not None
    assert MODELS.response_errors(op, exchange) == []
