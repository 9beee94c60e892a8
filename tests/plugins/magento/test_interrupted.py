"""An import interrupted at any call, then retried as the engine does: one order, the
stock held once, in both create modes."""

from __future__ import annotations

import re

import pytest

from engine.models import Order, ShopOrderRef
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import EAN_1, connector_for, eur_order, levels

CALLS = {
    "orders_create": [
        "GET /V1/products",
        "GET /V1/orders",
        "GET /V1/store/storeConfigs",
        "PUT /V1/orders/create",
    ],
    "cart": [
        "GET /V1/products",
        "GET /V1/orders",
        "POST /V1/guest-carts",
        "POST /V1/guest-carts/{cartId}/items",
        "POST /V1/guest-carts/{cartId}/shipping-information",
        "PUT /V1/guest-carts/{cartId}/order",
        "GET /V1/orders/{id}",
        "POST /V1/orders",
    ],
}
"""Every distinct call of one import, in order of first use."""


def fresh() -> MagentoSimulator:
    sim = MagentoSimulator(rate_limits=False)
    sim.create_product("SKU-1", "20.00", 10, ean=EAN_1, name="Blue mug")
    sim.create_product("SKU-2", "5.00", 3, name="Coaster")
    sim.create_product("SKU-3", "7.00", 5)
    return sim


def template(path: str) -> str:
    v1 = re.sub(r"^/rest/default", "", path)
    v1 = re.sub(r"^/V1/guest-carts/[^/]+", "/V1/guest-carts/{cartId}", v1)
    return re.sub(r"^/V1/orders/\d+$", "/V1/orders/{id}", v1)


def pattern(call: str) -> str:
    method, path = call.split(" ", 1)
    path = re.escape(path).replace(r"\{cartId\}", "[^/]+").replace(r"\{id\}", r"\d+")
    return f"^{method} /rest/default{path}$"


async def engine_attempt(connector: MagentoConnector, order: Order) -> ShopOrderRef:
    """What the orders flow does: resolve, batch lookup, then complete or create."""
    products = await connector.resolve_products("sku", [line.sku for line in order.lines])
    found = await connector.find_order_refs([order.marketplace_order_id])
    if order.marketplace_order_id in found:
        return await connector.complete_order(order, found[order.marketplace_order_id])
    [result] = await connector.create_orders([(order, products)])
    if isinstance(result, Exception):
        raise result
    return result


@pytest.mark.parametrize("mode", sorted(CALLS))
async def test_the_call_list_is_complete(mode: str) -> None:
    sim = fresh()
    connector = connector_for(sim, order_create_mode=mode)
    try:
        await engine_attempt(connector, eur_order())
    finally:
        await connector.aclose()
    seen = list(dict.fromkeys(f"{m} {template(p)}" for m, p in sim.requests))
    assert seen == CALLS[mode]


@pytest.mark.parametrize(
    ("mode", "call", "kind"),
    [
        (mode, call, kind)
        for mode, calls in sorted(CALLS.items())
        for call in calls
        for kind in ("500", "reset_after")
    ],
)
async def test_interrupted_at_each_call_then_retried(mode: str, call: str, kind: str) -> None:
    sim = fresh()
    order = eur_order()
    sim.faults.add(kind, match=pattern(call))  # the first run never gets past this call
    first = connector_for(sim, order_create_mode=mode)
    try:
        await engine_attempt(first, order)
    except Exception:  # noqa: BLE001, S110 - the run stopped here; what it left counts
        pass
    finally:
        await first.aclose()
    sim.faults.clear()
    retry = connector_for(sim, order_create_mode=mode)  # a restarted process
    try:
        ref = await engine_attempt(retry, order)
        assert await levels(retry) == {"SKU-1": 7, "SKU-2": 2, "SKU-3": 5}
    finally:
        await retry.aclose()
    assert len(sim.orders) == 1
    assert sim.order_count(order.marketplace_order_id) == 1
    placed = sim.orders[int(ref.id)]
    assert str(placed["grand_total"]) == "68.87"
    assert (sim.source_quantity("SKU-1"), sim.source_quantity("SKU-2")) == (10, 3)
    if mode == "cart":
        assert sim.salable_quantity("SKU-1") == 7  # one reservation, not two


async def test_an_unstamped_order_is_only_taken_when_it_is_this_checkout() -> None:
    """Orders without an Amazon id that differ in buyer, items, recipient or state are
    someone else's (or dead): a new cart is placed."""
    sim = fresh()
    order = eur_order()

    def to(postcode: str) -> dict[str, object]:
        address = {
            "firstname": "Erika",
            "lastname": "Mustermann",
            "street": ["Heidestr. 17"],
            "city": "Köln",
            "postcode": postcode,
            "country_id": "DE",
            "telephone": "0",
        }
        return {"shipping_assignments": [{"shipping": {"address": address}}]}

    base = {
        "customer_email": order.buyer.email,
        "grand_total": 70,
        "base_grand_total": 70,
        "payment": {"method": "checkmo"},
        "items": [{"sku": "SKU-1", "qty_ordered": 3}, {"sku": "SKU-2", "qty_ordered": 1}],
        "extension_attributes": to("51147"),
    }
    decoys = [
        {**base, "customer_email": "someone@example.com"},
        {**base, "items": [{"sku": "SKU-1", "qty_ordered": 2}, {"sku": "SKU-2", "qty_ordered": 1}]},
        {**base, "payment": {"method": "banktransfer"}},
        {**base, "state": "canceled"},
        {**base, "extension_attributes": to("10115")},
    ]
    for decoy in decoys:
        sim._persist(decoy)  # noqa: SLF001 - stored as Magento stores an order
    connector = connector_for(sim, order_create_mode="cart")
    try:
        ref = await engine_attempt(connector, order)
    finally:
        await connector.aclose()
    assert int(ref.id) == len(decoys) + 1  # a new order
    assert [o.get("ext_order_id") for o in sim.list_orders()].count(None) == len(decoys)

    control = fresh()  # the same order without a difference is taken
    unstamped = control._persist(base)  # noqa: SLF001
    connector = connector_for(control, order_create_mode="cart")
    try:
        ref = await engine_attempt(connector, order)
    finally:
        await connector.aclose()
    assert (ref.id, len(control.orders)) == (str(unstamped["entity_id"]), 1)


async def test_find_order_refs_asks_once_per_50_ids() -> None:
    sim = fresh()
    sim.create_product("SKU-9", "1.00", 500)
    connector = connector_for(sim)
    ids = [f"302-0000000-{n:07d}" for n in range(120)]
    try:
        for oid in ids[::40]:  # 0, 40, 80
            await engine_attempt(connector, eur_order(oid))
        duplicate = dict(sim.order_by_ext(ids[40]) or {})
        duplicate.pop("increment_id")
        sim._persist(duplicate)  # noqa: SLF001 - a second order with the same Amazon id
        before = len(sim.requests)
        found = await connector.find_order_refs([*ids, ids[0].upper()])
    finally:
        await connector.aclose()
    assert sim.requests[before:] == [("GET", "/rest/default/V1/orders")] * 3
    assert sorted(found) == [ids[0], ids[40], ids[80]]
    assert found[ids[40]].id == str(sim.order_by_ext(ids[40])["entity_id"])  # the oldest
