"""resolve_products by sku, barcode, variant id and metafield."""

from __future__ import annotations

import pytest

from engine.errors import RetriableAPIError
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, RecordingTransport


async def test_by_sku_leaves_unknown_out(connector: ShopifyConnector, catalog: dict) -> None:
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2", "NOPE", "SKU-1"])

    assert set(refs) == {"SKU-1", "SKU-2"}
    assert refs["SKU-1"].variant_id == catalog["SKU-1"]["variant_id"]
    assert refs["SKU-1"].product_id == catalog["SKU-1"]["product_id"]
    assert refs["SKU-1"].title == "Mug"
    assert refs["SKU-1"].sku == "SKU-1"


async def test_sku_search_must_match_exactly(
    connector: ShopifyConnector, sim: ShopifySimulator, recorder: RecordingTransport
) -> None:
    sim.add_product("ABC-10")
    sim.add_product("XL ABC-1")
    assert await connector.resolve_products("sku", ["ABC-1"]) == {}
    # Shopify's search is loose: both near misses came back and were dropped.
    nodes = recorder.graphql("OrdersyncVariantsSearch")[0].response["data"]["productVariants"]
    assert sorted(n["sku"] for n in nodes["nodes"]) == ["ABC-10", "XL ABC-1"]

    exact = sim.add_product("ABC-1")["variant_id"]
    assert {
        k: r.variant_id for k, r in (await connector.resolve_products("sku", ["ABC-1"])).items()
    } == {"ABC-1": exact}


async def test_barcode_search_must_match_exactly(
    connector: ShopifyConnector, sim: ShopifySimulator
) -> None:
    sim.add_product("LONG", barcode="40063813339310")
    assert await connector.resolve_products("barcode", ["4006381333931"]) == {}


async def test_by_barcode(connector: ShopifyConnector, catalog: dict) -> None:
    refs = await connector.resolve_products("barcode", ["4006381333948", "0000000000000"])

    assert list(refs) == ["4006381333948"]
    assert refs["4006381333948"].variant_id == catalog["SKU-2"]["variant_id"]


async def test_by_variant_id_numeric_or_gid(connector: ShopifyConnector, catalog: dict) -> None:
    gid = catalog["SKU-3"]["variant_id"]
    numeric = catalog["SKU-1"]["variant_id"].rsplit("/", 1)[-1]

    refs = await connector.resolve_products("id", [gid, numeric, "999", "not-an-id"])

    assert set(refs) == {gid, numeric}
    assert refs[numeric].variant_id == catalog["SKU-1"]["variant_id"]
    assert refs[gid].variant_id == gid


async def test_by_metafield(connector: ShopifyConnector, catalog: dict) -> None:
    refs = await connector.resolve_products("metafield:custom.ean", ["EAN-2", "EAN-404"])

    assert list(refs) == ["EAN-2"]
    assert refs["EAN-2"].variant_id == catalog["SKU-2"]["variant_id"]


async def test_metafield_index_is_cached(
    connector: ShopifyConnector, catalog: dict, recorder: RecordingTransport
) -> None:
    await connector.resolve_products("metafield:custom.ean", ["EAN-1"])
    await connector.resolve_products("metafield:custom.ean", ["EAN-2"])
    assert len(recorder.graphql("OrdersyncVariantsMetafield")) == 1


async def test_duplicate_sku_is_left_out(
    connector: ShopifyConnector, sim: ShopifySimulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_product("DUP")
    sim.add_product("DUP")
    assert await connector.resolve_products("sku", ["DUP"]) == {}
    assert "matches 2 variants" in caplog.text


async def test_batches_and_pages(
    make_connector: ConnectorFactory, sim: ShopifySimulator, recorder: RecordingTransport
) -> None:
    for n in range(7):
        sim.add_product(f"B-{n}")
    connector = make_connector(product_batch_size=3)

    refs = await connector.resolve_products("sku", [f"B-{n}" for n in range(7)])

    assert set(refs) == {f"B-{n}" for n in range(7)}
    searches = recorder.graphql("OrdersyncVariantsSearch")
    assert len(searches) == 3
    assert searches[0].body["variables"]["query"] == 'sku:"B-0" OR sku:"B-1" OR sku:"B-2"'


async def test_sku_with_quotes_is_escaped(
    connector: ShopifyConnector, sim: ShopifySimulator
) -> None:
    sim.add_product('MUG "XL"')
    refs = await connector.resolve_products("sku", ['MUG "XL"'])
    assert list(refs) == ['MUG "XL"']


async def test_unknown_attribute_is_rejected(connector: ShopifyConnector) -> None:
    with pytest.raises(ValueError, match="unknown identification attribute"):
        await connector.resolve_products("metafield:no-dot", ["x"])


async def test_metafield_index_of_a_large_catalog_is_one_bulk_operation(
    make_connector: ConnectorFactory, catalog: dict, recorder: RecordingTransport
) -> None:
    connector = make_connector(bulk_threshold=2, bulk_poll_interval=0.5)

    refs = await connector.resolve_products("metafield:custom.ean", ["EAN-1", "EAN-2", "EAN-9"])

    assert {k: r.variant_id for k, r in refs.items()} == {
        "EAN-1": catalog["SKU-1"]["variant_id"],
        "EAN-2": catalog["SKU-2"]["variant_id"],
    }
    assert (
        refs["EAN-1"].title == "Mug" and refs["EAN-1"].product_id == catalog["SKU-1"]["product_id"]
    )
    assert recorder.graphql("OrdersyncVariantsMetafield") == []
    query = recorder.graphql("OrdersyncBulkRun")[0].body["variables"]["query"]
    assert "productVariants" in query and 'metafield(namespace: "custom", key: "ean")' in query


async def test_metafield_index_reads_pages_while_another_bulk_operation_runs(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    sim.api.bulk_seconds = 10_000.0
    stock = make_connector(bulk_threshold=1, bulk_timeout=0.01, bulk_poll_interval=0.5)
    with pytest.raises(RetriableAPIError, match="still RUNNING"):
        await stock.stock_levels("sku", None)  # a stock bulk operation is left running
    connector = make_connector(bulk_threshold=2)

    refs = await connector.resolve_products("metafield:custom.ean", ["EAN-2"])

    assert refs["EAN-2"].variant_id == catalog["SKU-2"]["variant_id"]
    runs = recorder.graphql("OrdersyncBulkRun")
    assert runs[-1].response["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"] == (
        "OPERATION_IN_PROGRESS"
    )
    assert len(recorder.graphql("OrdersyncVariantsMetafield")) == 1
