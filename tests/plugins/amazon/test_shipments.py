"""Shipment confirmation (v0 confirmShipment) and crash reconciliation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine.errors import FailureReason, FatalAPIError, ItemError
from engine.models import Order, OrderStatus, Shipment, ShipmentLine
from plugins.amazon.connector import AmazonConnector, package_reference_id
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory
from tests.plugins.amazon.contract import RecordingTransport


def shipment(
    order: Order,
    shipment_id: str,
    lines: dict[str, int],
    *,
    carrier: str | None = "DHL",
    tracking: str | None = None,
    line_ids: dict[str, str] | None = None,
) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        marketplace_order_id=order.marketplace_order_id,
        shop_order_id="1001",
        lines=tuple(
            ShipmentLine(sku=sku, quantity=q, line_id=(line_ids or {}).get(sku))
            for sku, q in lines.items()
        ),
        carrier=carrier,
        tracking_number=tracking if tracking is not None else f"TRK-{shipment_id}",
        shipped_at=order.purchased_at + timedelta(hours=5),
    )


async def _order(sim: AmazonSimulator, connector: AmazonConnector, **kw: object) -> Order:
    items = kw.pop("items", {"SHIRT": 3, "MUG": 1})
    raw = sim.create_order(items, **kw)  # type: ignore[arg-type]
    order = await connector.get_order(raw["orderId"])
    assert isinstance(order, Order)
    return order


async def test_partial_shipments_one_package_each(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector)
    first = shipment(order, "ship-1", {"SHIRT": 1})
    await connector.confirm_shipment(order, first, "DHL")

    raw = sim.order(order.marketplace_order_id)
    assert raw["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    (package,) = raw["packages"]
    shirt = next(line for line in order.lines if line.sku == "SHIRT")
    assert package["packageItems"] == [{"orderItemId": shirt.line_id, "quantity": 1}]
    assert package["packageReferenceId"] == package_reference_id("ship-1")
    assert package["carrier"] == "DHL"

    again = await connector.get_order(order.marketplace_order_id)
    assert isinstance(again, Order) and again.status is OrderStatus.PARTIALLY_SHIPPED
    second = shipment(again, "ship-2", {"SHIRT": 2, "MUG": 1})
    await connector.confirm_shipment(again, second, "DHL")

    raw = sim.order(order.marketplace_order_id)
    assert raw["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert len(raw["packages"]) == 2
    done = await connector.get_order(order.marketplace_order_id)
    assert isinstance(done, Order)
    assert {line.sku: line.quantity_shipped for line in done.lines} == {"SHIRT": 3, "MUG": 1}


def test_package_reference_id_is_stable_positive_and_numeric() -> None:
    ids = {package_reference_id(f"shop-shipment-{n}") for n in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert value.isdigit() and len(value) == 9 and int(value) > 0
    assert package_reference_id("gid://shopify/Fulfillment/1") == package_reference_id(
        "gid://shopify/Fulfillment/1"
    )


async def test_retrying_the_same_shipment_does_not_ship_twice(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector)
    ship = shipment(order, "ship-1", {"SHIRT": 2})
    await connector.confirm_shipment(order, ship, "DHL")
    await connector.confirm_shipment(order, ship, "DHL")  # e.g. resent after a crash

    raw = sim.order(order.marketplace_order_id)
    assert len(raw["packages"]) == 1
    shirt = next(i for i in raw["orderItems"] if i["product"]["sellerSku"] == "SHIRT")
    assert shirt["fulfillment"]["quantityFulfilled"] == 2


async def test_shipment_confirmed_reads_packages_back(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector)
    ship = shipment(order, "ship-1", {"SHIRT": 1}, tracking="TRK-777")
    assert await connector.shipment_confirmed(order, ship) is False

    await connector.confirm_shipment(order, ship, "DHL")
    assert await connector.shipment_confirmed(order, ship) is True
    # confirmed by other means (e.g. Seller Central) with the same tracking number
    other_id = shipment(order, "renamed-in-shop", {"SHIRT": 1}, tracking="TRK-777")
    assert await connector.shipment_confirmed(order, other_id) is True
    unrelated = shipment(order, "ship-9", {"MUG": 1}, tracking="TRK-999")
    assert await connector.shipment_confirmed(order, unrelated) is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("DHL", {"carrierCode": "DHL"}),
        ("royal mail", {"carrierCode": "Royal Mail"}),
        ("Speedy Parcels", {"carrierCode": "Other", "carrierName": "Speedy Parcels"}),
        ("Other", {"carrierCode": "Other", "carrierName": "Hermes Germany"}),
    ],
)
async def test_carrier_codes_and_other_with_a_name(
    sim: AmazonSimulator,
    make_connector: ConnectorFactory,
    given: str,
    expected: dict[str, str],
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    order = await _order(sim, connector)
    ship = shipment(order, "ship-1", {"MUG": 1}, carrier="Hermes Germany")
    await connector.confirm_shipment(order, ship, given)

    (sent,) = [e for e in recorder.exchanges if e.url.path.endswith("/shipmentConfirmation")]
    package = json.loads(sent.request_body)["packageDetail"]
    assert {k: package[k] for k in ("carrierCode", "carrierName") if k in package} == expected
    assert package["trackingNumber"] == "TRK-ship-1"
    assert package["shipDate"] == ship.shipped_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(sent.request_body)["marketplaceId"] == "A1PA6795UKMFR9"


async def test_allowed_carriers_come_from_the_data_file(connector: AmazonConnector) -> None:
    carriers = await connector.allowed_carriers()
    assert {"DHL", "UPS", "Royal Mail", "Deutsche Post", "Other"} <= carriers
    assert len(carriers) > 50


async def test_line_ids_win_over_skus_and_same_sku_lines_are_filled_in_order(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector, items={"A": 1, "B": 2})
    b_line = next(line for line in order.lines if line.sku == "B")
    ship = shipment(order, "s", {"B": 2}, line_ids={"B": b_line.line_id})
    body = connector.shipment_request(order, ship, "DHL")
    assert body["packageDetail"]["orderItems"] == [{"orderItemId": b_line.line_id, "quantity": 2}]

    twice = order.model_copy(
        update={"lines": (order.lines[0], order.lines[0].model_copy(update={"line_id": "X2"}))}
    )
    split = connector.shipment_request(twice, shipment(twice, "s", {"A": 2}), "DHL")
    assert split["packageDetail"]["orderItems"] == [
        {"orderItemId": order.lines[0].line_id, "quantity": 1},
        {"orderItemId": "X2", "quantity": 1},
    ]


async def test_unshippable_shipments_are_item_errors(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector)
    with pytest.raises(ItemError) as unknown:
        connector.shipment_request(order, shipment(order, "s", {"NOPE": 1}), "DHL")
    assert unknown.value.reason is FailureReason.UNKNOWN_SKU
    with pytest.raises(ItemError, match="only 1 are unshipped"):
        connector.shipment_request(order, shipment(order, "s", {"MUG": 2}), "DHL")
    with pytest.raises(ItemError, match="tracking number"):
        connector.shipment_request(order, shipment(order, "s", {"MUG": 1}, tracking=""), "DHL")
    fba = await _order(sim, connector, fulfilled_by="AMAZON")
    with pytest.raises(ItemError, match="fulfilled by Amazon"):
        connector.shipment_request(fba, shipment(fba, "s", {"MUG": 1}), "DHL")


async def test_amazon_rejection_surfaces_its_code_and_message(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order = await _order(sim, connector)
    sim.cancel_order(order.marketplace_order_id, by="AMAZON")
    with pytest.raises(FatalAPIError) as caught:
        await connector.confirm_shipment(order, shipment(order, "s", {"MUG": 1}), "DHL")
    assert caught.value.status == 400
    assert caught.value.code == "InvalidInput"
    assert "CANCELLED cannot be confirmed" in caught.value.message
    assert caught.value.operation == "confirmShipment"
