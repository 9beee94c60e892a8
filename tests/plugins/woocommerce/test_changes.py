"""Shipped detection (tracking meta, partial packages, fulfillments) and cancellations."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.models import ShopChanges, ShopOrderRef
from plugins.woocommerce import mapping
from plugins.woocommerce.connector import WooCommerceConnector, decode_cursor, encode_cursor
from plugins.woocommerce.simulator import WooCommerceSimulator
from tests.plugins.woocommerce.conftest import make_order


async def _import(woo: WooCommerceConnector, order_id: str, lines: list) -> ShopOrderRef:
    products = await woo.resolve_products("sku", [line[0] for line in lines])
    return await woo.create_order(make_order(order_id, lines), products)


async def _drain(woo: WooCommerceConnector, cursor: str) -> tuple[ShopChanges, list[ShopChanges]]:
    pages = [await woo.changes_since(cursor)]
    while pages[-1].has_more:
        pages.append(await woo.changes_since(pages[-1].cursor))
    return pages[-1], pages


async def test_none_starts_from_now_without_replaying_history(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    ref = await _import(woo, "303-7000001-7000001", [("MUG-1", 1, "9.99", "1.60")])
    sim.ship_order(int(ref.id), [{"provider": "dhl", "number": "111"}])
    sim.advance(10)

    start = await woo.changes_since(None)
    assert (start.shipments, start.cancellations, start.has_more) == ((), (), False)
    assert start.cursor
    later = await woo.changes_since(start.cursor)
    assert later.shipments == () and later.cancellations == ()


async def test_start_boundary_is_exact_within_the_same_second(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    ref = await _import(woo, "303-7000010-7000010", [("MUG-1", 2, "9.99", "3.19")])
    sim.ship_order(
        int(ref.id),
        [{"provider": "dhl", "number": "BEFORE", "items": [{"sku": "MUG-1", "qty": 1}]}],
        complete=False,
    )
    start = await woo.changes_since(None)  # no clock advance: all in one second
    sim.ship_order(int(ref.id), [{"provider": "dhl", "number": "AFTER"}])
    changes = await woo.changes_since(start.cursor)
    assert [s.tracking_number for s in changes.shipments] == ["AFTER"]


async def test_completed_order_with_tracking_is_one_full_shipment(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    start = await woo.changes_since(None)
    ref = await _import(
        woo, "303-7000002-7000002", [("MUG-1", 2, "9.99", "3.19"), ("SHIRT-M", 1, "14.99", "2.39")]
    )
    sim.ship_order(int(ref.id), [{"provider": "dhl", "number": "00340434161234567890"}])

    changes = await woo.changes_since(start.cursor)

    [shipment] = changes.shipments
    assert shipment.marketplace_order_id == "303-7000002-7000002"
    assert shipment.shop_order_id == ref.id
    assert (shipment.carrier, shipment.tracking_number) == ("dhl", "00340434161234567890")
    assert [(x.sku, x.quantity, x.line_id) for x in shipment.lines] == [
        ("MUG-1", 2, "303-7000002-7000002-L1"),
        ("SHIRT-M", 1, "303-7000002-7000002-L2"),
    ]
    assert abs(shipment.shipped_at - datetime.now(UTC)) < timedelta(minutes=1)
    again = await woo.changes_since(start.cursor)
    assert again.shipments[0].shipment_id == shipment.shipment_id  # stable dedupe key


async def test_partial_packages_then_the_rest(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    start = await woo.changes_since(None)
    ref = await _import(
        woo, "303-7000003-7000003", [("MUG-1", 3, "9.99", "4.79"), ("SHIRT-M", 1, "14.99", "2.39")]
    )
    first = {
        "provider": "ups",
        "number": "1Z999",
        "items": [{"sku": "MUG-1", "qty": 1}, {"sku": "SHIRT-M", "qty": 1}],
    }
    sim.ship_order(int(ref.id), [first], complete=False)

    partial = await woo.changes_since(start.cursor)
    [one] = partial.shipments
    assert sim.get_order(int(ref.id))["status"] == "processing"
    assert [(x.sku, x.quantity) for x in one.lines] == [("MUG-1", 1), ("SHIRT-M", 1)]
    assert one.tracking_number == "1Z999"

    sim.ship_order(int(ref.id), [{"provider": "Kurier Express", "number": "KE-7"}])
    done = await woo.changes_since(partial.cursor)
    [rest] = done.shipments  # the first package is not reported again
    assert rest.carrier == "Kurier Express"  # a custom provider
    assert [(x.sku, x.quantity) for x in rest.lines] == [("MUG-1", 2)]
    assert rest.shipment_id != one.shipment_id
    assert (await woo.changes_since(done.cursor)).shipments == ()


async def test_completed_without_tracking_ships_everything_untracked_after_a_delay(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    start = await woo.changes_since(None)
    ref = await _import(woo, "303-7000004-7000004", [("CAP-2", 2, "19.99", "6.38")])
    sim.set_order_status(int(ref.id), "completed")
    early = await woo.changes_since(start.cursor)
    assert early.shipments == ()  # tracking may still be added (600 s by default)

    sim.advance(601)
    [shipment] = (await woo.changes_since(early.cursor)).shipments
    assert shipment.shipment_id == f"{ref.id}:complete"
    assert (shipment.carrier, shipment.tracking_number) == (None, None)
    assert [(x.sku, x.quantity) for x in shipment.lines] == [("CAP-2", 2)]


async def test_tracking_added_after_completing_gives_one_tracked_shipment(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    start = await woo.changes_since(None)
    ref = await _import(woo, "303-7000009-7000009", [("CAP-2", 1, "19.99", "3.19")])
    sim.set_order_status(int(ref.id), "completed")
    first = await woo.changes_since(start.cursor)
    sim.advance(120)
    sim.ship_order(int(ref.id), [{"provider": "dpd", "number": "DPD-9"}])
    second = await woo.changes_since(first.cursor)
    sim.advance(900)
    third = await woo.changes_since(second.cursor)

    reported = [s for c in (first, second, third) for s in c.shipments]
    assert [(s.tracking_number, s.lines[0].quantity) for s in reported] == [("DPD-9", 1)]


async def test_shipped_statuses_are_a_setting(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    woo = make_connector(
        sim.transport(),
        shipped_statuses=["completed", "on-hold"],
        untracked_shipment_delay_seconds=0,
    )
    start = await woo.changes_since(None)
    ref = await _import(woo, "303-7000005-7000005", [("CAP-2", 1, "19.99", "3.19")])
    assert (await woo.changes_since(start.cursor)).shipments == ()
    sim.set_order_status(int(ref.id), "on-hold")
    assert len((await woo.changes_since(start.cursor)).shipments) == 1


async def test_cancellation_in_the_shop_is_reported_ours_is_not(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    start = await woo.changes_since(None)
    theirs = await _import(woo, "303-7000006-7000006", [("MUG-1", 1, "9.99", "1.60")])
    ours_order = make_order("303-7000007-7000007", [("MUG-1", 1, "9.99", "1.60")])
    ours = await woo.create_order(ours_order, await woo.resolve_products("sku", ["MUG-1"]))
    sim.cancel_order(int(theirs.id))
    await woo.cancel_order(ours, ours_order)
    sim._create_order({"status": "cancelled", "line_items": []})  # not an Amazon order

    changes = await woo.changes_since(start.cursor)
    [cancellation] = changes.cancellations
    assert cancellation.marketplace_order_id == "303-7000006-7000006"
    assert cancellation.shop_order_id == theirs.id
    assert changes.shipments == ()


async def test_pages_and_an_opaque_cursor(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    woo = make_connector(sim.transport(), page_size=2)
    start = await woo.changes_since(None)
    for n in range(5):
        ref = await _import(woo, f"303-7100000-710000{n}", [("MUG-1", 1, "9.99", "1.60")])
        sim.ship_order(int(ref.id), [{"provider": "dhl", "number": f"T{n}"}])

    last, pages = await _drain(woo, start.cursor or "")
    assert [p.has_more for p in pages] == [True, True, False]
    numbers = sorted(s.tracking_number or "" for p in pages for s in p.shipments)
    assert numbers == [f"T{n}" for n in range(5)]
    state = decode_cursor(last.cursor or "")
    assert set(state) == {"since", "seen"}  # the next window start, the overlap's events
    since = datetime.fromisoformat(state["since"]).replace(tzinfo=UTC)
    server_now = sim.now().replace(tzinfo=UTC)
    assert server_now - timedelta(seconds=125) <= since <= server_now  # server clock - lookback
    assert len(state["seen"]) == 5

    sim.advance(600)
    overlap, more = await _drain(woo, last.cursor or "")  # re-reads the overlap, reports none
    assert [s for p in more for s in p.shipments] == []
    assert decode_cursor(overlap.cursor or "")["seen"] == {}  # nothing left in the new overlap
    assert (await woo.changes_since(overlap.cursor)).shipments == ()


async def test_fulfillments_source(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(rate_limits=False, fulfillments=True)
    sim.create_product("MUG-1", "9.99", 10)
    woo = make_connector(sim.transport(), tracking_source="fulfillments")
    assert (await woo.check()).ok
    start = await woo.changes_since(None)
    ref = await _import(woo, "303-7000008-7000008", [("MUG-1", 3, "9.99", "4.79")])
    sim.ship_order(
        int(ref.id),
        [{"provider": "dhl", "number": "F-1", "items": [{"sku": "MUG-1", "qty": 2}]}],
        complete=False,
        via="fulfillments",
    )
    [partial] = (await woo.changes_since(start.cursor)).shipments
    assert (partial.tracking_number, partial.lines[0].quantity) == ("F-1", 2)
    sim.ship_order(int(ref.id), [{"provider": "dpd", "number": "F-2"}], via="fulfillments")
    shipments = (await woo.changes_since(start.cursor)).shipments
    assert sorted((s.tracking_number, s.lines[0].quantity) for s in shipments) == [
        ("F-1", 2),
        ("F-2", 1),
    ]


def test_tracking_meta_in_every_stored_shape() -> None:
    item = {
        "tracking_provider": "",
        "custom_tracking_provider": "Spedition Meier",
        "tracking_number": " SM-1 ",
        "date_shipped": "1700000000",
    }
    for value in ([item], json.dumps([item]), {"0": item}):
        order = {"meta_data": [{"id": 1, "key": "_wc_shipment_tracking_items", "value": value}]}
        [package], problems = mapping.tracking_packages(order, "_wc_shipment_tracking_items")
        assert (package.carrier, package.tracking_number) == ("Spedition Meier", "SM-1")
        assert package.shipped_at == datetime.fromtimestamp(1700000000, tz=UTC)
        assert package.items == () and problems == []
    for empty in ("", None, []):
        assert mapping.tracking_packages({"meta_data": [{"key": "x", "value": empty}]}, "x") == (
            [],
            [],
        )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("junk", "tracking meta 'x' is not a list but 'junk'"),
        (7, "is not a list but 7"),
        (["DHL 123"], "entry 1 is 'DHL 123', not an object"),
        ([{"tracking_number": "T", "date_shipped": "soon"}], "date_shipped 'soon' is not a date"),
        ([{"tracking_number": "T", "date_shipped": "9" * 30}], "is not a date"),
        (
            [{"tracking_number": "T", "products_list": [{"product": "1", "qty": "-1"}]}],
            "item quantity '-1' is not a whole number",
        ),
        (
            [{"tracking_number": "T", "products_list": [{"product": "1", "qty": "1.5"}]}],
            "item quantity '1.5'",
        ),
        ([{"tracking_number": "T", "products_list": "3x mug"}], "products_list is not a list"),
    ],
)
def test_unreadable_tracking_meta_is_a_problem_not_nothing(value: object, problem: str) -> None:
    order = {"meta_data": [{"key": "x", "value": value}]}
    packages, problems = mapping.tracking_packages(order, "x")
    assert packages == []
    [found] = problems
    assert problem in found.message


async def _changes_after(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, start: ShopChanges
) -> ShopChanges:
    sim.advance(700)  # past the untracked-shipment delay
    last, pages = await _drain(woo, start.cursor or "")
    return ShopChanges(
        shipments=tuple(s for p in pages for s in p.shipments),
        cancellations=tuple(c for p in pages for c in p.cancellations),
        rejected=tuple(r for p in pages for r in p.rejected),
        cursor=last.cursor,
    )


async def test_unreadable_shipments_are_rejected_and_the_page_goes_on(
    make_connector: Callable[..., WooCommerceConnector], sim: WooCommerceSimulator
) -> None:
    woo = make_connector(sim.transport(), page_size=2)  # the records span pages
    start = await woo.changes_since(None)
    junk = await _import(woo, "303-7100001-7100001", [("MUG-1", 1, "9.99", "1.60")])
    stranger = await _import(woo, "303-7100002-7100002", [("MUG-1", 2, "9.99", "3.19")])
    good = await _import(woo, "303-7100003-7100003", [("CAP-2", 1, "19.99", "3.19")])
    gone = await _import(woo, "303-7100004-7100004", [("CAP-2", 1, "19.99", "3.19")])
    sim.set_order_meta(int(junk.id), "_wc_shipment_tracking_items", "DHL 00340434161094042557")
    sim.set_order_status(int(junk.id), "completed")
    sim.ship_order(
        int(stranger.id),
        [{"provider": "dhl", "number": "S-1", "items": [{"sku": "MUG-1", "qty": 1}]}],
    )
    [entry] = mapping.meta_value(sim.get_order(int(stranger.id)), "_wc_shipment_tracking_items")
    entry["products_list"][0]["item_id"] = "999999"  # an item the order does not have
    entry["products_list"][0]["product"] = "999999"
    sim.set_order_meta(int(stranger.id), "_wc_shipment_tracking_items", [entry])
    sim.ship_order(int(good.id), [{"provider": "dhl", "number": "G-1"}])
    sim.cancel_order(int(gone.id))

    changes = await _changes_after(woo, sim, start)

    assert [s.tracking_number for s in changes.shipments] == ["G-1"]  # the rest goes on
    assert [c.marketplace_order_id for c in changes.cancellations] == ["303-7100004-7100004"]
    by_order = {r.marketplace_order_id: r for r in changes.rejected}
    assert set(by_order) == {"303-7100001-7100001", "303-7100002-7100002"}
    assert all(r.kind == "shipment" for r in changes.rejected)
    assert "is not a list but 'DHL 00340434161094042557'" in by_order["303-7100001-7100001"].message
    assert by_order["303-7100001-7100001"].key.startswith(f"{junk.id}:")
    assert "names order item 999999 / product 999999" in by_order["303-7100002-7100002"].message
    assert by_order["303-7100002-7100002"].key == f"{stranger.id}:{entry['tracking_id']}"

    entry["products_list"][0].update(
        item_id="", product=str(sim.get_order(int(stranger.id))["line_items"][0]["product_id"])
    )
    sim.set_order_meta(int(stranger.id), "_wc_shipment_tracking_items", [entry])  # fixed
    fixed = await _changes_after(woo, sim, ShopChanges(cursor=changes.cursor))
    assert [(s.shipment_id, s.lines[0].quantity) for s in fixed.shipments] == [
        (by_order["303-7100002-7100002"].key, 1),  # the key the rejection had: it clears it
        (f"{stranger.id}:{mapping.UNTRACKED}", 1),  # the rest of the completed order
    ]
    assert fixed.rejected == ()  # the junk order did not change: not read again


async def test_unreadable_fulfilments_are_rejected_and_the_others_reported(
    make_connector: Callable[..., WooCommerceConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = WooCommerceSimulator(rate_limits=False, fulfillments=True)
    sim.create_product("MUG-1", "9.99", 10)
    woo = make_connector(sim.transport(), tracking_source="fulfillments")
    start = await woo.changes_since(None)
    bad = await _import(woo, "303-7200001-7200001", [("MUG-1", 3, "9.99", "4.79")])
    deleted = await _import(woo, "303-7200002-7200002", [("MUG-1", 1, "9.99", "1.60")])
    for ref in (bad, deleted):
        sim.ship_order(
            int(ref.id),
            [{"provider": "dhl", "number": f"F-{ref.id}", "items": [{"sku": "MUG-1", "qty": 1}]}],
            complete=False,
            via="fulfillments",
        )
    sim.ship_order(
        int(bad.id),
        [{"provider": "dpd", "number": "F-BAD", "items": [{"sku": "MUG-1", "qty": 1}]}],
        complete=False,
        via="fulfillments",
    )
    sim.fulfillments[int(bad.id)][1]["meta_data"][0]["value"] = "one mug"  # _items unreadable
    listing = sim._filter_common

    def deleted_after_listing(items: Any, q: Any) -> Any:  # then its fulfilments are a 404
        out = listing(items, q)
        sim.orders.pop(int(deleted.id), None)
        return out

    monkeypatch.setattr(sim, "_filter_common", deleted_after_listing)
    changes = await _changes_after(woo, sim, start)

    assert [s.tracking_number for s in changes.shipments] == [f"F-{bad.id}"]
    rejected = {r.key: r for r in changes.rejected}
    assert set(rejected) == {f"{bad.id}:f2", f"{deleted.id}:order"}
    assert "fulfilment 2: _items is not a list but 'one mug'" in rejected[f"{bad.id}:f2"].message
    assert "refused to list the order's fulfilments" in rejected[f"{deleted.id}:order"].message
    assert "404" in rejected[f"{deleted.id}:order"].message


async def test_an_order_that_cannot_be_read_at_all_is_rejected(
    woo: WooCommerceConnector,
) -> None:
    meta = [{"key": "_amazon_order_id", "value": "303-7300001-7300001"}]
    events, [no_id] = await woo._read_order({"status": "completed", "meta_data": meta}, "A-1")
    assert events == {} and no_id.key == "A-1:no-id" and "without a usable id" in no_id.message
    broken = {"id": 5, "status": "completed", "line_items": 7, "meta_data": meta}
    events, [bad] = await woo._read_order(broken, "A-2")
    assert (bad.kind, bad.key, bad.marketplace_order_id) == ("shipment", "5:order", "A-2")
    assert "cannot read shop order 5: TypeError" in bad.message


async def test_foreign_cursor_is_refused(woo: WooCommerceConnector) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await woo.changes_since("2024-01-01T00:00:00")
    with pytest.raises(ValueError, match="start time"):
        await woo.changes_since(encode_cursor({"page": 2}))


async def test_auto_tracking_without_fulfilments_reads_the_meta_and_asks_once(
    make_connector: Callable[..., WooCommerceConnector], sim: WooCommerceSimulator
) -> None:
    sent: list[str] = []
    inner = sim.transport()

    class Logged(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            return await inner.handle_async_request(request)

    woo = make_connector(Logged(), tracking_source="auto")
    result = await woo.check()
    assert result.ok and result.details["tracking_source"] == "auto: meta"
    start = await woo.changes_since(None)
    for n in (1, 2):
        ref = await _import(woo, f"303-7400001-740000{n}", [("MUG-1", 1, "9.99", "1.60")])
        sim.ship_order(int(ref.id), [{"provider": "dhl", "number": f"M-{n}"}])
    changes = await _changes_after(woo, sim, start)
    assert sorted(s.tracking_number for s in changes.shipments) == ["M-1", "M-2"]
    probes = [p for p in sent if p.endswith("/fulfillments")]
    assert probes == ["/wp-json/wc/v3/orders/0/fulfillments"]  # once, by check()


async def test_auto_tracking_reads_meta_and_fulfilments_and_counts_a_parcel_once(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(rate_limits=False, fulfillments=True)
    sim.create_product("MUG-1", "9.99", 10)
    woo = make_connector(sim.transport(), tracking_source="auto")
    start = await woo.changes_since(None)
    ref = await _import(woo, "303-7500001-7500001", [("MUG-1", 3, "9.99", "4.79")])
    one = [{"sku": "MUG-1", "qty": 1}]
    sim.ship_order(  # an older parcel tracked with the Shipment Tracking extension
        int(ref.id), [{"provider": "dhl", "number": "OLD-1", "items": one}], complete=False
    )
    for number in ("NEW-2", "OLD-1"):  # a new one, and the old one migrated into fulfilments
        sim.ship_order(
            int(ref.id),
            [{"provider": "dhl", "number": number, "items": one}],
            complete=False,
            via="fulfillments",
        )
    changes = await _changes_after(woo, sim, start)
    assert sorted((s.tracking_number, s.lines[0].quantity) for s in changes.shipments) == [
        ("NEW-2", 1),
        ("OLD-1", 1),
    ]
    assert (await woo.check()).details["tracking_source"] == "auto: meta and fulfillments"
