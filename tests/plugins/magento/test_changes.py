"""Shop changes: shipments with tracks (partial too) and cancellations, by cursor."""

from __future__ import annotations

from engine.models import ShipmentLine, ShopChanges
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, eur_order, import_order, usd_order


async def drain(connector: MagentoConnector, cursor: str | None) -> tuple[ShopChanges, int]:
    """Read pages until ``has_more`` is false; returns everything and the page count."""
    shipments, cancellations, pages = [], [], 0
    while True:
        page = await connector.changes_since(cursor)
        pages += 1
        shipments += page.shipments
        cancellations += page.cancellations
        cursor = page.cursor
        if not page.has_more:
            merged = ShopChanges(
                shipments=tuple(shipments), cancellations=tuple(cancellations), cursor=cursor
            )
            return merged, pages


async def test_first_call_starts_from_now(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    ref = await import_order(connector, eur_order())
    sim.ship_order(int(ref.id), tracks=[{"carrier_code": "dhl", "track_number": "OLD"}])
    sim.advance(30)
    first = await connector.changes_since(None)
    assert first.shipments == () and first.cancellations == () and not first.has_more
    sim.advance(30)
    later, _ = await drain(connector, first.cursor)
    assert later.shipments == ()


async def test_partial_shipments_with_tracks(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    sim.ship_order(
        int(ref.id),
        {"SKU-1": 2},
        [{"carrier_code": "dhl", "title": "DHL", "track_number": "00340434161234567890"}],
    )
    sim.ship_order(
        int(ref.id),
        {"SKU-1": 1, "SKU-2": 1},
        [{"carrier_code": "custom", "title": "Hermes", "track_number": "H100"}],
    )
    sim.advance(20)
    changes, _ = await drain(connector, cursor)

    first, second = changes.shipments
    assert first.marketplace_order_id == "302-1111111-1111111"
    assert first.shop_order_id == ref.id
    assert first.lines == (ShipmentLine(sku="SKU-1", quantity=2, line_id="11111111111111"),)
    assert (first.carrier, first.tracking_number) == ("dhl", "00340434161234567890")
    assert second.lines == (
        ShipmentLine(sku="SKU-1", quantity=1, line_id="11111111111111"),
        ShipmentLine(sku="SKU-2", quantity=1, line_id="22222222222222"),
    )
    assert (second.carrier, second.tracking_number) == ("Hermes", "H100")
    assert first.shipment_id != second.shipment_id

    sim.advance(120)
    again, _ = await drain(connector, changes.cursor)
    assert again.shipments == ()


async def test_lookback_reads_shipments_again(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(lookback_seconds=60)
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.ship_order(int(ref.id), tracks=[{"carrier_code": "dhl", "track_number": "T"}])
    sim.advance(20)
    first, _ = await drain(connector, cursor)
    sim.advance(20)
    again, _ = await drain(connector, first.cursor)
    assert [s.shipment_id for s in again.shipments] == [s.shipment_id for s in first.shipments]
    assert len(first.shipments) == 1


async def test_shipments_are_paged_by_keyset(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(page_size=2)
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    for n in range(5):
        ref = await import_order(connector, eur_order(f"302-0000000-00000{n:02d}"))
        sim.ship_order(
            int(ref.id), {"SKU-1": 1}, [{"carrier_code": "ups", "track_number": f"1Z{n}"}]
        )
    sim.advance(20)
    changes, pages = await drain(connector, cursor)
    assert [s.tracking_number for s in changes.shipments] == [f"1Z{n}" for n in range(5)]
    assert pages == 3


async def test_shipments_of_orders_not_from_amazon_are_skipped(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    web = sim._persist(  # noqa: SLF001 - a web-shop order without ext_order_id
        {
            "customer_email": "web@example.com",
            "grand_total": 5,
            "base_grand_total": 5,
            "items": [{"sku": "SKU-2", "qty_ordered": 1}],
        }
    )
    sim.ship_order(web["entity_id"], tracks=[{"carrier_code": "dhl", "track_number": "W1"}])
    sim.advance(20)
    changes, _ = await drain(connector, cursor)
    assert changes.shipments == ()


async def test_cancellations_made_in_the_shop(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    shop_cancelled = await import_order(connector, eur_order())
    amazon_cancelled = await import_order(connector, usd_order())
    kept = await import_order(connector, eur_order("302-3333333-3333333"))
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    assert sim.cancel_order(int(shop_cancelled.id))
    await connector.cancel_order(amazon_cancelled, usd_order())  # echo of Amazon's own
    sim.advance(20)
    changes, _ = await drain(connector, cursor)
    assert [c.marketplace_order_id for c in changes.cancellations] == ["302-1111111-1111111"]
    assert changes.cancellations[0].shop_order_id == shop_cancelled.id
    assert kept.id not in {c.shop_order_id for c in changes.cancellations}


async def test_events_within_the_settle_margin_wait_for_the_next_poll(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    sim.ship_order(int(ref.id), tracks=[{"carrier_code": "dhl", "track_number": "T"}])
    early, _ = await drain(connector, cursor)  # shipped < settle_seconds ago
    assert early.shipments == ()
    sim.advance(20)
    late, _ = await drain(connector, early.cursor)
    assert [s.tracking_number for s in late.shipments] == ["T"]
