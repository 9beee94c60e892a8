"""The simulator's own behaviour: searchCriteria, Magento quirks, admin HTTP routes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.testing.server import free_port
from plugins.magento.simulator import Credentials, MagentoError, MagentoSimulator, SearchCriteria

BASE = "http://magento.test"


@pytest.fixture
async def http(sim: MagentoSimulator) -> AsyncIterator[httpx.AsyncClient]:
    token = sim.credentials.access_token
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url=BASE, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def test_search_criteria_accepts_both_spellings() -> None:
    camel = SearchCriteria.parse(
        [
            ("searchCriteria[filterGroups][0][filters][0][field]", "sku"),
            ("searchCriteria[filterGroups][0][filters][0][value]", "a,b"),
            ("searchCriteria[filterGroups][0][filters][0][conditionType]", "in"),
            ("searchCriteria[sortOrders][0][field]", "sku"),
            ("searchCriteria[sortOrders][0][direction]", "desc"),
            ("searchCriteria[pageSize]", "5"),
            ("searchCriteria[currentPage]", "2"),
        ]
    )
    snake = SearchCriteria.parse(
        [
            ("searchCriteria[filter_groups][0][filters][0][field]", "sku"),
            ("searchCriteria[filter_groups][0][filters][0][value]", "a,b"),
            ("searchCriteria[filter_groups][0][filters][0][condition_type]", "in"),
            ("searchCriteria[sort_orders][0][field]", "sku"),
            ("searchCriteria[sort_orders][0][direction]", "DESC"),
            ("searchCriteria[page_size]", "5"),
            ("searchCriteria[current_page]", "2"),
        ]
    )
    assert camel == snake
    assert camel.groups == [[{"field": "sku", "value": "a,b", "condition_type": "in"}]]


async def test_filters_sorting_and_the_last_page_repeat(
    sim: MagentoSimulator, http: httpx.AsyncClient
) -> None:
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "sku",
        "searchCriteria[filter_groups][0][filters][0][value]": "SKU-%",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "like",
        "searchCriteria[sortOrders][0][field]": "sku",
        "searchCriteria[sortOrders][0][direction]": "DESC",
        "searchCriteria[pageSize]": "2",
        "searchCriteria[currentPage]": "9",
    }
    items = (await http.get("/rest/V1/inventory/source-items", params=params)).json()
    assert items["total_count"] == 3
    assert [i["sku"] for i in items["items"]] == ["SKU-1"]  # page 9 → the last page again
    products = (await http.get("/rest/default/V1/products", params=params)).json()
    assert products["items"] == []  # fixed for products in 2.4
    assert products["search_criteria"]["current_page"] == 9


async def test_filter_groups_are_and_filters_are_or(http: httpx.AsyncClient) -> None:
    params = {
        "searchCriteria[filterGroups][0][filters][0][field]": "sku",
        "searchCriteria[filterGroups][0][filters][0][value]": "SKU-1",
        "searchCriteria[filterGroups][0][filters][1][field]": "sku",
        "searchCriteria[filterGroups][0][filters][1][value]": "SKU-3",
        "searchCriteria[filterGroups][1][filters][0][field]": "price",
        "searchCriteria[filterGroups][1][filters][0][value]": "10",
        "searchCriteria[filterGroups][1][filters][0][conditionType]": "gt",
    }
    found = (await http.get("/rest/V1/products", params=params)).json()
    assert [p["sku"] for p in found["items"]] == ["SKU-1"]


async def test_magento_error_bodies(http: httpx.AsyncClient) -> None:
    missing = await http.get("/rest/default/V1/orders/999")
    assert missing.status_code == 404
    assert missing.json()["message"].startswith("The entity that was requested doesn't exist")
    no_route = await http.get("/rest/default/V1/nothing-here")
    assert (no_route.status_code, no_route.json()) == (
        404,
        {"message": "Request does not match any route."},
    )
    anonymous = await http.get("/rest/default/V1/orders", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "message": "The consumer isn't authorized to access Magento_Sales::sales."
    }


async def test_guest_cart_rejects_unavailable_quantity(http: httpx.AsyncClient) -> None:
    cart = (await http.post("/rest/default/V1/guest-carts")).json()
    item = {"cartItem": {"sku": "SKU-2", "qty": 4, "quote_id": cart}}
    response = await http.post(f"/rest/default/V1/guest-carts/{cart}/items", json=item)
    assert response.status_code == 400
    assert response.json() == {"message": "The requested qty is not available"}


async def test_updated_at_changes_on_every_update(sim: MagentoSimulator) -> None:
    order = sim._persist(  # noqa: SLF001
        {
            "customer_email": "a@example.com",
            "grand_total": 5,
            "base_grand_total": 5,
            "items": [{"sku": "SKU-2", "qty_ordered": 2}],
        }
    )
    stamps = [order["updated_at"]]
    sim.advance(5)
    sim.ship_order(order["entity_id"], {"SKU-2": 1})
    stamps.append(sim.orders[order["entity_id"]]["updated_at"])
    sim.advance(5)
    sim.cancel_order(order["entity_id"])
    stamps.append(sim.orders[order["entity_id"]]["updated_at"])
    assert stamps == sorted(set(stamps))


async def test_admin_http_routes(sim: MagentoSimulator, http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/_admin/products", json={"sku": "NEW-1", "price": "9.99", "qty": 4, "ean": "123"}
    )
    assert created.status_code == 200
    assert created.json()["custom_attributes"] == [{"attribute_code": "ean", "value": "123"}]
    stock = await http.put("/_admin/stock/NEW-1", json={"qty": 6})
    assert stock.json() == {"sku": "NEW-1", "quantity": 6.0}

    order = sim._persist(  # noqa: SLF001
        {
            "ext_order_id": "302-5555555-5555555",
            "customer_email": "a@example.com",
            "grand_total": 20,
            "base_grand_total": 20,
            "items": [{"sku": "NEW-1", "qty_ordered": 2}],
        }
    )
    oid = order["entity_id"]
    shipped = await http.post(
        f"/_admin/orders/{oid}/ship",
        json={"items": {"NEW-1": 1}, "tracks": [{"carrier_code": "dhl", "track_number": "X1"}]},
    )
    assert shipped.json()["tracks"][0]["track_number"] == "X1"
    too_many = await http.post(f"/_admin/orders/{oid}/ship", json={"items": {"NEW-1": 5}})
    assert too_many.status_code == 400
    count = await http.get("/_admin/orders/count", params={"ext_order_id": "302-5555555-5555555"})
    assert count.json()["count"] == 1
    listed = await http.get("/_admin/orders", params={"ext_order_id": "302-5555555-5555555"})
    assert [o["entity_id"] for o in listed.json()] == [oid]
    cancelled = await http.post(f"/_admin/orders/{oid}/cancel")
    assert cancelled.json() == {"cancelled": True}
    clock = await http.post("/_admin/clock", json={"advance": 60})
    assert clock.status_code == 200


def test_cli_serves_the_simulator() -> None:
    port = free_port()
    command = [sys.executable, "-m", "plugins.magento.simulator", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    token = Credentials().access_token
    url = f"http://127.0.0.1:{port}/rest/default/V1/store/storeConfigs"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes
    assert response.status_code == 200
    assert response.json()[0]["code"] == "default"


async def test_msi_cart_order_reserves_and_shipment_takes_the_shelf(
    sim: MagentoSimulator, http: httpx.AsyncClient
) -> None:
    """Checkout: -2 reservation; shipping 1: source -1 and +1; cancelling the rest: +1."""
    cart = (await http.post("/rest/default/V1/guest-carts")).json()
    base = f"/rest/default/V1/guest-carts/{cart}"
    await http.post(f"{base}/items", json={"cartItem": {"sku": "SKU-2", "qty": 2}})
    address = {
        "firstname": "A",
        "lastname": "B",
        "street": ["C 1"],
        "city": "D",
        "postcode": "1",
        "country_id": "DE",
        "telephone": "0",
        "email": "a@example.com",
    }
    info = {
        "shipping_address": address,
        "shipping_carrier_code": "flatrate",
        "shipping_method_code": "flatrate",
    }
    await http.post(f"{base}/shipping-information", json={"addressInformation": info})
    order_id = (
        await http.put(f"{base}/order", json={"paymentMethod": {"method": "checkmo"}})
    ).json()
    assert (sim.source_quantity("SKU-2"), sim.salable_quantity("SKU-2")) == (3, 1)
    sim.ship_order(order_id, {"SKU-2": 1})
    assert (sim.source_quantity("SKU-2"), sim.salable_quantity("SKU-2")) == (2, 1)
    assert sim.cancel_order(order_id)
    assert (sim.source_quantity("SKU-2"), sim.salable_quantity("SKU-2")) == (2, 2)
    events = [(r["metadata"]["event_type"], r["quantity"]) for r in sim.reservations]
    assert events == [("order_placed", -2), ("shipment_created", 1), ("order_canceled", 1)]


def test_msi_repository_orders_get_compensations_without_a_reservation(
    sim: MagentoSimulator,
) -> None:
    """magento2#26575 / #40313: no reservation at save, compensated anyway at shipment."""
    order = sim._persist(  # noqa: SLF001 - as PUT /V1/orders/create stores it
        {
            "customer_email": "a@example.com",
            "grand_total": 5,
            "base_grand_total": 5,
            "items": [{"sku": "SKU-2", "qty_ordered": 2}],
        }
    )
    assert sim.salable_quantity("SKU-2") == 3
    sim.ship_order(order["entity_id"], {"SKU-2": 2})
    assert sim.source_quantity("SKU-2") == 1
    assert sim.salable_quantity("SKU-2") == 3  # above the one unit on the shelf
    assert sim.available_quantity("SKU-2") == 1


def test_shipping_more_than_the_source_holds_is_refused(sim: MagentoSimulator) -> None:
    sim.set_stock("SKU-2", 1)
    order = sim._persist(  # noqa: SLF001
        {
            "customer_email": "a@example.com",
            "grand_total": 5,
            "base_grand_total": 5,
            "items": [{"sku": "SKU-2", "qty_ordered": 2}],
        }
    )
    with pytest.raises(MagentoError, match="requested quantity"):
        sim.ship_order(order["entity_id"])
    assert sim.source_quantity("SKU-2") == 1
    assert sim.shipments == {}
