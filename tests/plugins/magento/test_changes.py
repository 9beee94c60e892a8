"""Shop changes: shipments with tracks (partial too) and cancellations, by cursor."""

from __future__ import annotations

import pytest

from engine.models import ShipmentLine, ShopChanges
from plugins.magento import mapping
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, eur_order, import_order, usd_order


async def drain(connector: MagentoConnector, cursor: str | None) -> tuple[ShopChanges, int]:
    """Read pages until ``has_more`` is false; returns everything and the page count."""
    shipments, cancellations, rejected, pages = [], [], [], 0
    while True:
        page = await connector.changes_since(cursor)
        pages += 1
        shipments += page.shipments
        cancellations += page.cancellations
        rejected += page.rejected
        cursor = page.cursor
        if not page.has_more:
            merged = ShopChanges(
                shipments=tuple(shipments),
                cancellations=tuple(cancellations),
                rejected=tuple(rejected),
                cursor=cursor,
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


def track(number: str, carrier: str = "dhl") -> dict[str, str]:
    return {"carrier_code": carrier, "title": carrier.upper(), "track_number": number}


async def test_a_late_track_is_reported_with_its_shipment(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    shipment = sim.ship_order(int(ref.id))  # no track yet
    sim.advance(20)
    early, _ = await drain(connector, cursor)
    cursor = early.cursor
    assert early.shipments == ()  # waits for a track
    sim.advance(120)
    sim.add_track(shipment["entity_id"], track("LATE-1"))
    sim.advance(20)
    late, _ = await drain(connector, cursor)
    cursor = late.cursor
    assert [(s.shipment_id, s.tracking_number) for s in late.shipments] == [
        (str(shipment["entity_id"]), "LATE-1")
    ]
    sim.advance(20)
    again, _ = await drain(connector, cursor)
    assert again.shipments == ()


async def test_a_track_added_through_the_api_is_found_without_a_timestamp_change(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    """POST /V1/shipment/track saves only the track: the held shipment is read by id."""
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    shipment = sim.ship_order(int(ref.id))
    sim.advance(20)
    early, _ = await drain(connector, cursor)
    cursor = early.cursor
    assert early.shipments == ()
    sim.advance(60)
    stored = sim.shipments[shipment["entity_id"]]
    stored["tracks"].append(sim._track(stored, track("API-1"), sim.timestamp()))  # noqa: SLF001
    sim.advance(20)
    late, _ = await drain(connector, cursor)
    assert [s.tracking_number for s in late.shipments] == ["API-1"]


async def test_untracked_shipment_is_reported_once_the_delay_is_over(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(untracked_shipment_delay_seconds=300)
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    shipment = sim.ship_order(int(ref.id))
    sim.advance(200)
    waiting, _ = await drain(connector, cursor)
    cursor = waiting.cursor
    assert waiting.shipments == ()
    sim.advance(120)
    untracked, _ = await drain(connector, cursor)
    cursor = untracked.cursor
    assert [(s.shipment_id, s.tracking_number) for s in untracked.shipments] == [
        (str(shipment["entity_id"]), None)
    ]
    sim.add_track(shipment["entity_id"], track("TOO-LATE"))
    sim.advance(20)
    after, _ = await drain(connector, cursor)
    # Read again (updated_at moved) under the same id: nothing new to confirm.
    assert [(s.shipment_id, s.tracking_number) for s in after.shipments] == [
        (str(shipment["entity_id"]), None)
    ]


async def test_every_track_of_a_shipment_is_a_parcel(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    first = await import_order(connector, eur_order())
    second = await import_order(connector, eur_order("302-2222222-2222222"))
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    two = sim.ship_order(int(first.id), tracks=[track("T-1"), track("T-2", "ups")])
    three = sim.ship_order(int(second.id), tracks=[track("U-1"), track("U-2"), track("U-3")])
    sim.advance(20)
    changes, _ = await drain(connector, cursor)
    parcels = [
        (s.shipment_id, s.tracking_number, [(x.sku, x.quantity) for x in s.lines])
        for s in changes.shipments
    ]
    tracks_two = [t["entity_id"] for t in two["tracks"]]
    tracks_three = [t["entity_id"] for t in three["tracks"]]
    assert parcels == [
        (str(two["entity_id"]), "T-1", [("SKU-1", 3)]),  # one line per track
        (f"{two['entity_id']}-{tracks_two[1]}", "T-2", [("SKU-2", 1)]),
        (str(three["entity_id"]), "U-1", [("SKU-1", 2)]),  # units spread over three
        (f"{three['entity_id']}-{tracks_three[1]}", "U-2", [("SKU-1", 1)]),
        (f"{three['entity_id']}-{tracks_three[2]}", "U-3", [("SKU-2", 1)]),
    ]
    assert changes.shipments[1].carrier == "ups"


async def test_a_second_track_added_later_is_no_new_parcel(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    ref = await import_order(connector, eur_order())
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    shipment = sim.ship_order(int(ref.id), tracks=[track("FIRST")])
    sim.advance(20)
    first, _ = await drain(connector, cursor)
    cursor = first.cursor
    sim.advance(30)
    sim.add_track(shipment["entity_id"], track("SECOND"))
    sim.advance(20)
    again, _ = await drain(connector, cursor)
    assert [s.shipment_id for s in first.shipments] == [str(shipment["entity_id"])]
    assert [(s.shipment_id, s.tracking_number) for s in again.shipments] == [
        (str(shipment["entity_id"]), "FIRST")
    ]


async def test_unreadable_records_are_rejected_and_the_rest_reported(
    sim: MagentoSimulator, connector: MagentoConnector
) -> None:
    good = await import_order(connector, eur_order())
    bad_qty = await import_order(connector, eur_order("302-2222222-2222222"))
    bad_time = await import_order(connector, eur_order("302-3333333-3333333"))
    cursor = (await connector.changes_since(None)).cursor
    sim.advance(20)
    sim.ship_order(int(good.id), {"SKU-1": 3}, tracks=[track("OK")])
    broken = sim.ship_order(int(bad_qty.id), {"SKU-1": 1}, tracks=[track("BAD")])
    sim.shipments[broken["entity_id"]]["items"][0]["qty"] = "one"
    orphan = sim.ship_order(int(good.id), {"SKU-2": 1}, tracks=[track("ORPHAN")])
    sim.shipments[orphan["entity_id"]]["order_id"] = 999
    sim.cancel_order(int(bad_time.id))
    stamp = sim.orders[int(bad_time.id)]["updated_at"]
    sim.orders[int(bad_time.id)]["updated_at"] = stamp[:-1] + "x"  # still inside the window
    sim.advance(20)
    changes, _ = await drain(connector, cursor)
    assert [s.tracking_number for s in changes.shipments] == ["OK"]
    assert changes.cancellations == ()
    rejected = {(r.kind, r.key, r.marketplace_order_id): r.message for r in changes.rejected}
    assert rejected == {
        ("shipment", str(broken["entity_id"]), "302-2222222-2222222"): (
            "quantity 'one' is not a number"
        ),
        ("shipment", str(orphan["entity_id"]), None): "no order 999 for this shipment",
        ("cancellation", bad_time.id, "302-3333333-3333333"): (
            f"updated_at '{stamp[:-1]}x' is not a Magento timestamp"
        ),
    }


@pytest.mark.parametrize(
    ("quantities", "parts", "expected"),
    [
        ([3, 1], 1, [[3, 1]]),
        ([3, 1], 2, [[3], [1]]),
        ([1, 1, 1], 2, [[1, 1], [1]]),
        ([3, 1], 3, [[2], [1], [1]]),
        ([1], 3, [[1]]),
    ],
)
def test_split_lines(quantities: list[int], parts: int, expected: list[list[int]]) -> None:
    lines = [ShipmentLine(sku=f"S{n}", quantity=q) for n, q in enumerate(quantities)]
    groups = mapping.split_lines(lines, parts)
    assert [[line.quantity for line in group] for group in groups] == expected
    assert sum(line.quantity for group in groups for line in group) == sum(quantities)
