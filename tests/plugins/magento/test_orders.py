"""Order import: exact amounts, stock, the Amazon id as idempotency key, cancellation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.errors import FailureReason, ItemError
from engine.models import Address
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import (
    ConnectorFactory,
    connector_for,
    eur_order,
    import_order,
    levels,
    usd_order,
)

MODES = ["orders_create", "cart"]


def amounts(raw: dict[str, Any], *names: str) -> dict[str, Decimal]:
    return {name: Decimal(str(raw[name])) for name in names}


ORDER_FIELDS = (
    "grand_total",
    "base_grand_total",
    "subtotal",
    "subtotal_incl_tax",
    "tax_amount",
    "discount_amount",
    "shipping_amount",
    "shipping_incl_tax",
    "shipping_tax_amount",
    "total_paid",
)
ITEM_FIELDS = ("row_total", "row_total_incl_tax", "tax_amount", "discount_amount", "qty_ordered")


def D(value: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(value)


@pytest.mark.parametrize("mode", MODES)
async def test_eur_tax_inclusive_order_matches_amazon_to_the_cent(
    sim: MagentoSimulator, make_connector: ConnectorFactory, mode: str
) -> None:
    connector = make_connector(order_create_mode=mode)
    order = eur_order()
    await import_order(connector, order)

    raw = sim.order_by_ext(order.marketplace_order_id)
    assert raw is not None
    assert raw["order_currency_code"] == "EUR"
    assert amounts(raw, *ORDER_FIELDS) == {
        "grand_total": D("68.87"),
        "base_grand_total": D("68.87"),
        "subtotal": D("54.59"),  # (59.97 - 9.58) + (5.00 - 0.80)
        "subtotal_incl_tax": D("64.97"),
        "tax_amount": D("11.16"),  # 9.58 + 0.80 + 0.78
        "discount_amount": D("-1.00"),
        "shipping_amount": D("4.12"),
        "shipping_incl_tax": D("4.90"),
        "shipping_tax_amount": D("0.78"),
        "total_paid": D("68.87"),
    }
    items = {item["sku"]: amounts(item, *ITEM_FIELDS) for item in raw["items"]}
    assert items["SKU-1"] == {
        "row_total": D("50.39"),
        "row_total_incl_tax": D("59.97"),
        "tax_amount": D("9.58"),
        "discount_amount": D("0"),
        "qty_ordered": D("3"),
    }
    assert items["SKU-2"]["row_total_incl_tax"] == D("5.00")
    assert items["SKU-2"]["discount_amount"] == D("1.00")
    assert Decimal(str(raw["items"][0]["price_incl_tax"])) == D("19.99")


@pytest.mark.parametrize("mode", MODES)
async def test_usd_tax_exclusive_order_matches_amazon_to_the_cent(mode: str) -> None:
    sim = MagentoSimulator(rate_limits=False, base_currency="USD", prices_include_tax=False)
    sim.tax_rates = {"US": Decimal("0.0825")}
    sim.create_product("SKU-1", "13.00", 10)
    sim.create_product("SKU-3", "7.00", 5)
    connector = connector_for(sim, order_create_mode=mode)
    try:
        await import_order(connector, usd_order())
    finally:
        await connector.aclose()

    raw = sim.order_by_ext("113-2222222-2222222")
    assert raw is not None
    assert raw["order_currency_code"] == "USD"
    assert amounts(raw, *ORDER_FIELDS) == {
        "grand_total": D("34.50"),
        "base_grand_total": D("34.50"),
        "subtotal": D("32.33"),  # 24.98 + 7.35
        "subtotal_incl_tax": D("35.00"),
        "tax_amount": D("2.67"),
        "discount_amount": D("-4.49"),  # 0.50 promo + 3.99 free shipping
        "shipping_amount": D("3.99"),
        "shipping_incl_tax": D("3.99"),
        "shipping_tax_amount": D("0"),
        "total_paid": D("34.50"),
    }
    items = {item["sku"]: amounts(item, *ITEM_FIELDS) for item in raw["items"]}
    assert items["SKU-1"]["row_total"] == D("24.98")
    assert items["SKU-1"]["tax_amount"] == D("2.06")
    assert items["SKU-3"]["discount_amount"] == D("0.50")
    assert Decimal(str(raw["items"][0]["price"])) == D("12.49")


async def test_cart_mode_checkout_uses_catalogue_prices_until_aligned(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    """Why the cart flow needs the alignment save: Magento prices from its catalogue."""
    placed: list[dict[str, Any]] = []
    original = sim._merge  # noqa: SLF001 - observe the order just before alignment

    def spy(entity: dict[str, Any]) -> dict[str, Any]:
        placed.append(dict(sim.orders[int(entity["entity_id"])]))
        return original(entity)

    sim._merge = spy  # type: ignore[method-assign]  # noqa: SLF001
    await import_order(make_connector(order_create_mode="cart"), eur_order())
    assert Decimal(str(placed[0]["grand_total"])) == D("70.00")  # 3 x 20 + 5 + 5 flat rate
    assert placed[0].get("ext_order_id") is None
    assert Decimal(str(sim.list_orders()[0]["grand_total"])) == D("68.87")


@pytest.mark.parametrize("mode", MODES)
async def test_import_twice_holds_stock_once_and_writes_no_source_item(
    sim: MagentoSimulator, make_connector: ConnectorFactory, mode: str
) -> None:
    connector = make_connector(order_create_mode=mode)
    order = eur_order()
    first = await import_order(connector, order)
    second = await import_order(connector, order)
    assert second == first
    assert sim.order_count(order.marketplace_order_id) == 1
    assert await levels(connector) == {"SKU-1": 7, "SKU-2": 2, "SKU-3": 5}
    assert (sim.source_quantity("SKU-1"), sim.source_quantity("SKU-2")) == (10, 3)
    assert not [r for r in sim.requests if r == ("POST", "/rest/default/V1/inventory/source-items")]
    # Magento's own salable quantity: reserved by the checkout, not by /V1/orders/create.
    assert sim.salable_quantity("SKU-1") == (7 if mode == "cart" else 10)


async def test_find_order_by_amazon_id(make_connector: ConnectorFactory) -> None:
    connector = make_connector()
    assert await connector.find_order("302-1111111-1111111") is None
    created = await import_order(connector, eur_order())
    found = await connector.find_order("302-1111111-1111111")
    assert found == created
    assert found.id == created.id
    assert found.number == "AMZ-302-1111111-1111111"
    assert found.total == eur_order().total  # the check command compares it with Amazon's
    assert await connector.find_order("302-0000000-0000000") is None


async def test_a_dropped_create_is_looked_up_not_repeated(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("reset_after", match=r"PUT .*/V1/orders/create", count=1)
    connector = make_connector()
    ref = await import_order(connector, eur_order())
    assert sim.order_count("302-1111111-1111111") == 1
    assert ref.number == "AMZ-302-1111111-1111111"
    assert (await levels(connector))["SKU-1"] == 7


async def test_a_failed_create_is_sent_again_after_a_lookup(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("503", match=r"PUT .*/V1/orders/create", count=2)
    await import_order(make_connector(), eur_order())
    creates = [r for r in sim.requests if r[0] == "PUT"]
    assert len(creates) == 1  # the two 503s never reached the app
    assert sim.order_count("302-1111111-1111111") == 1


async def test_a_dropped_cart_order_is_found_through_the_cart(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("reset_after", match=r"PUT .*/V1/guest-carts/.*/order", count=1)
    ref = await import_order(make_connector(order_create_mode="cart"), eur_order())
    assert sim.order_count("302-1111111-1111111") == 1
    assert sim.list_orders()[0]["entity_id"] == int(ref.id)
    assert len(sim.orders) == 1


async def test_unknown_sku_and_bad_address_are_item_errors(
    make_connector: ConnectorFactory,
) -> None:
    connector = make_connector()
    order = eur_order()
    products = await connector.resolve_products("sku", ["SKU-1"])
    with pytest.raises(ItemError) as unknown:
        await connector.create_order(order, products)
    assert unknown.value.reason is FailureReason.UNKNOWN_SKU

    no_city = order.model_copy(update={"shipping_address": Address(name="X", line1="Y")})
    products = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    with pytest.raises(ItemError) as address:
        await connector.create_order(no_city, products)
    assert address.value.reason is FailureReason.INVALID_ADDRESS


async def test_order_carries_ids_addresses_and_payment(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    await import_order(make_connector(), eur_order())
    raw = sim.order_by_ext("302-1111111-1111111")
    assert raw is not None
    assert raw["state"] == "processing"
    assert raw["payment"]["method"] == "checkmo"
    assert raw["billing_address"]["lastname"] == "Mustermann"
    shipping = raw["extension_attributes"]["shipping_assignments"][0]["shipping"]
    assert shipping["method"] == "flatrate_flatrate"
    assert shipping["address"]["street"] == ["Heidestr. 17"]
    assert [i["ext_order_item_id"] for i in raw["items"]] == ["11111111111111", "22222222222222"]
    assert raw["shipping_description"] == "Amazon - Std DE Dom"


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_is_idempotent_and_returns_stock(
    sim: MagentoSimulator, make_connector: ConnectorFactory, mode: str
) -> None:
    connector = make_connector(order_create_mode=mode)
    order = eur_order()
    ref = await import_order(connector, order)
    assert (await levels(connector))["SKU-1"] == 7
    await connector.cancel_order(ref, order)
    await connector.cancel_order(ref, order)
    raw = sim.order_by_ext(order.marketplace_order_id)
    assert raw is not None
    assert raw["state"] == "canceled"
    assert (await levels(connector))["SKU-1"] == 10
    assert sim.source_quantity("SKU-1") == 10
    cancels = [r for r in sim.requests if r[1].endswith("/cancel")]
    assert len(cancels) == 1
    found = await connector.find_order(order.marketplace_order_id)
    assert found is not None
    assert found.cancelled


async def test_cancel_of_a_shipped_order_is_refused(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector()
    order = eur_order()
    ref = await import_order(connector, order)
    sim.ship_order(int(ref.id))
    with pytest.raises(ItemError) as refused:
        await connector.cancel_order(ref, order)
    assert refused.value.reason is FailureReason.SHOP_REJECTED
    assert "complete" in refused.value.message
