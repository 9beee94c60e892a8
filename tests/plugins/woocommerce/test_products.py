"""Product lookup by SKU, id, EAN meta and any meta key; variations included."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import WooCommerceSimulator


async def test_by_sku_finds_products_and_variations_and_leaves_out_unknowns(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    found = await woo.resolve_products("sku", ["MUG-1", "SHIRT-M", "NOPE", "SHIRT"])

    assert set(found) == {"MUG-1", "SHIRT-M"}  # unknown and the variable parent left out
    assert found["MUG-1"].product_id == str(ids["MUG-1"])
    assert found["MUG-1"].variant_id is None
    assert found["SHIRT-M"].product_id == str(ids["SHIRT"])
    assert found["SHIRT-M"].variant_id == str(ids["SHIRT-M"])


async def test_by_sku_is_exact_and_costs_one_call_per_chunk(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    sim.create_product("mug-1", "1.00", 1)  # differs only in case (MySQL would match it)
    sim.requests.clear()

    found = await woo.resolve_products("sku", ["MUG-1", "CAP-2", "SHIRT-L"])

    assert found["MUG-1"].title == "Mug"
    assert set(found) == {"MUG-1", "CAP-2", "SHIRT-L"}
    assert sim.requests == [("GET", "/wp-json/wc/v3/products")]


async def test_sku_with_a_comma_is_looked_up_alone(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    sim.create_product("A,B", "1.00", 1)
    found = await woo.resolve_products("sku", ["A,B", "MUG-1"])
    assert set(found) == {"A,B", "MUG-1"}


async def test_by_id_finds_products_and_variations(
    woo: WooCommerceConnector, ids: dict[str, int]
) -> None:
    wanted = [str(ids["CAP-2"]), str(ids["SHIRT-L"]), "99999", "not-a-number", str(ids["SHIRT"])]
    found = await woo.resolve_products("id", wanted)

    assert set(found) == {str(ids["CAP-2"]), str(ids["SHIRT-L"])}
    assert found[str(ids["SHIRT-L"])].product_id == str(ids["SHIRT"])
    assert found[str(ids["SHIRT-L"])].variant_id == str(ids["SHIRT-L"])


async def test_by_ean_meta_scans_once_and_caches(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    found = await woo.resolve_products("ean", ["4006381333931", "4006381333955", "0000000000000"])
    assert set(found) == {"4006381333931", "4006381333955"}
    assert found["4006381333931"].product_id == str(ids["MUG-1"])
    assert found["4006381333955"].variant_id == str(ids["SHIRT-L"])
    assert found["4006381333955"].shop_sku == "SHIRT-L"  # the shop's own SKU, for the engine

    sim.requests.clear()
    again = await woo.resolve_products("ean", ["4006381333948"])
    assert again["4006381333948"].variant_id == str(ids["SHIRT-M"])
    assert sim.requests == []  # served from the catalogue cache


async def test_ean_meta_key_is_a_setting(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    sim.create_product("GTIN-1", "3.00", 2, ean="5901234123457", ean_meta_key="_ean")
    woo = make_connector(sim.transport(), ean_meta_key="_ean")
    found = await woo.resolve_products("ean", ["5901234123457", "4006381333931"])
    assert set(found) == {"5901234123457"}


async def test_any_meta_key_can_identify(woo: WooCommerceConnector, ids: dict[str, int]) -> None:
    found = await woo.resolve_products("meta:_alg_ean", ["4006381333948"])
    assert found["4006381333948"].variant_id == str(ids["SHIRT-M"])


async def test_unknown_attribute_is_refused(woo: WooCommerceConnector) -> None:
    assert WooCommerceConnector.identification_attributes == {"sku", "id", "ean", "meta:"}
    with pytest.raises(ValueError, match="asin"):
        await woo.resolve_products("asin", ["B000000000"])
    with pytest.raises(ValueError, match="meta:"):
        await woo.stock_levels("meta:", None)
