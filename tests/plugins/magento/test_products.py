"""Product lookup by SKU, entity id or EAN attribute; unknown values are left out."""

from __future__ import annotations

import pytest

from engine.models import ProductRef
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import EAN_1, ConnectorFactory


async def test_by_sku(connector: MagentoConnector) -> None:
    found = await connector.resolve_products("sku", ["SKU-1", "SKU-3", "NOPE", "SKU-1"])
    assert found == {
        "SKU-1": ProductRef(sku="SKU-1", product_id="1", shop_sku="SKU-1", title="Blue mug"),
        "SKU-3": ProductRef(sku="SKU-3", product_id="3", shop_sku="SKU-3", title="Spoon"),
    }


async def test_by_sku_ignores_case_like_magento(connector: MagentoConnector) -> None:
    found = await connector.resolve_products("sku", ["sku-2"])
    assert found["sku-2"].shop_sku == "SKU-2"


async def test_by_entity_id(connector: MagentoConnector) -> None:
    found = await connector.resolve_products("id", ["2", "99", "not-a-number"])
    assert list(found) == ["2"]
    assert found["2"].shop_sku == "SKU-2"


async def test_by_ean_attribute(connector: MagentoConnector) -> None:
    found = await connector.resolve_products("ean", [EAN_1, "0000000000000"])
    assert list(found) == [EAN_1]
    assert found[EAN_1].product_id == "1"
    assert found[EAN_1].shop_sku == "SKU-1"


async def test_custom_ean_attribute_code(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.products["SKU-2"]["custom_attributes"].append({"attribute_code": "gtin", "value": "123"})
    found = await make_connector(ean_attribute="gtin").resolve_products("ean", ["123", EAN_1])
    assert list(found) == ["123"]


async def test_lookup_is_batched_and_paged(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    for n in range(25):
        sim.create_product(f"BULK-{n:02d}", "1.00", 1)
    connector = make_connector(page_size=10)
    wanted = [f"BULK-{n:02d}" for n in range(25)] + ["MISSING"]
    found = await connector.resolve_products("sku", wanted)
    assert sorted(found) == wanted[:25]
    searches = [r for r in sim.requests if r[1].endswith("/V1/products")]
    assert len(searches) == 3  # 10 + 10 + 6 values, one page each


async def test_sku_with_comma_is_matched_alone(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    sim.create_product("A,B", "1.00", 1)
    found = await connector.resolve_products("sku", ["A,B", "A", "SKU-1"])
    assert sorted(found) == ["A,B", "SKU-1"]


async def test_unknown_attribute_is_rejected(connector: MagentoConnector) -> None:
    assert connector.identification_attributes == frozenset({"sku", "id", "ean"})
    with pytest.raises(ValueError, match="asin"):
        await connector.resolve_products("asin", ["B0"])


async def test_the_magento_sku_is_the_shop_sku_not_a_variant(connector: MagentoConnector) -> None:
    """The engine matches shipment lines by ``shop_sku``; Magento has no variant ids here."""
    found = await connector.resolve_products("ean", [EAN_1])
    assert (found[EAN_1].shop_sku, found[EAN_1].variant_id) == ("SKU-1", None)
