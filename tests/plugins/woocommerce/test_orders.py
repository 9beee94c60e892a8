"""Order create (totals exact to the cent), idempotent lookup, cancel, batch helpers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import FailureReason, FatalAPIError, ItemError, RetriableAPIError
from engine.models import Order, ProductRef, ShopOrderRef
from plugins.woocommerce import mapping
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import WooCommerceSimulator
from tests.plugins.woocommerce.conftest import make_order

CREATE = r"^POST /wp-json/wc/v3/orders$"


async def _products(woo: WooCommerceConnector, *skus: str) -> dict[str, ProductRef]:
    return dict(await woo.resolve_products("sku", list(skus)))


def _meta(obj: dict, key: str) -> object:
    return mapping.meta_value(obj, key)


async def test_tax_inclusive_eur_order_is_exact_without_adjustment(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    order = make_order(
        "303-1000001-1000001",
        [("CAP-2", 2, "19.99", "6.38"), ("SHIRT-M", 1, "14.99", "2.39")],
        shipping="4.99",
        shipping_tax="0.80",
    )
    ref = await woo.create_order(order, await _products(woo, "CAP-2", "SHIRT-M"))

    wc = sim.get_order(int(ref.id))
    assert Decimal(wc["total"]) == order.total.amount == Decimal("59.96")
    assert wc["fee_lines"] == []
    assert wc["status"] == "processing" and wc["date_paid_gmt"]
    assert wc["currency"] == "EUR" and wc["total_tax"] == "9.57"
    cap, shirt = wc["line_items"]
    assert (cap["product_id"], cap["variation_id"], cap["quantity"]) == (ids["CAP-2"], 0, 2)
    assert (shirt["product_id"], shirt["variation_id"]) == (ids["SHIRT"], ids["SHIRT-M"])
    assert cap["total"] == "33.60"  # 39.98 less Amazon's 6.38 VAT: WooCommerce adds its own
    assert _meta(cap, mapping.LINE_ID_META) == "303-1000001-1000001-L1"
    assert _meta(wc, "_amazon_order_id") == "303-1000001-1000001"
    assert wc["transaction_id"] == "303-1000001-1000001"
    assert wc["shipping"]["first_name"] == "Erika" and wc["shipping"]["address_2"] == "2. OG"
    assert wc["billing"]["email"] == "abc123@marketplace.amazon.de"
    assert "Amazon order 303-1000001-1000001" in wc["customer_note"]
    assert sim.stock_of(ids["CAP-2"]) == 3 and sim.stock_of(ids["SHIRT-M"]) == 6


async def test_tax_inclusive_rounding_difference_becomes_a_fee_line(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    # 3 x 9.99 incl. 19 %: Amazon's VAT 4.79, WooCommerce's on the net 25.18 is 4.78.
    order = make_order("303-1000002-1000002", [("MUG-1", 3, "9.99", "4.79")])
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))

    wc = sim.get_order(int(ref.id))
    assert wc["total"] == "29.97" == str(order.total.amount)
    [fee] = wc["fee_lines"]
    assert fee["name"] == mapping.ROUNDING_FEE_NAME
    assert (fee["total"], fee["tax_status"], fee["total_tax"]) == ("0.01", "none", "0.00")


async def test_tax_inclusive_discount_keeps_the_total(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    order = make_order(
        "303-1000003-1000003", [("MUG-1", 2, "9.99", "2.87")], discounts={"MUG-1": "2.00"}
    )
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))
    wc = sim.get_order(int(ref.id))
    assert wc["total"] == "17.98" == str(order.total.amount)
    assert wc["discount_total"] == "1.68"  # the net part of Amazon's 2.00 promotion
    assert wc["fee_lines"] == []


async def test_tax_exclusive_usd_order_books_amazons_tax_when_the_shop_has_none(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    order = make_order(
        "111-2000001-2000001",
        [("CAP-2", 2, "10.00", "1.65")],
        currency="USD",
        taxes_included=False,
        shipping="5.00",
        shipping_tax="0.41",
        country="US",
    )
    ref = await woo.create_order(order, await _products(woo, "CAP-2"))

    wc = sim.get_order(int(ref.id))
    assert wc["currency"] == "USD"
    assert wc["total"] == "27.06" == str(order.total.amount)
    [fee] = wc["fee_lines"]
    assert (fee["name"], fee["total"]) == (mapping.TAX_FEE_NAME, "2.06")
    assert wc["line_items"][0]["total"] == "20.00"  # tax-exclusive prices go in unchanged


async def test_tax_exclusive_usd_order_with_matching_shop_tax_needs_no_fee(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(rate_limits=False, tax_rates={"US": "8.25"}, currency="USD")
    sim.create_product("CAP-2", "10.00", 5)
    woo = make_connector(sim.transport())
    order = make_order(
        "111-2000002-2000002",
        [("CAP-2", 2, "10.00", "1.65")],
        currency="USD",
        taxes_included=False,
        shipping="5.00",
        shipping_tax="0.41",
        country="US",
    )
    sim.requests.clear()
    ref = await woo.create_order(order, await _products(woo, "CAP-2"))

    wc = sim.get_order(int(ref.id))
    assert wc["total"] == "27.06" and wc["total_tax"] == "2.06" and wc["fee_lines"] == []
    assert [r for r in sim.requests if r[0] != "GET"] == [("POST", "/wp-json/wc/v3/orders")]


@pytest.mark.parametrize(
    ("currency", "included", "shipping_tax", "country", "total", "fees"),
    [
        ("EUR", True, "0.80", "DE", "44.97", []),
        ("USD", False, "0.41", "US", "27.06", [mapping.TAX_FEE_NAME]),
    ],
)
async def test_amazon_tax_handling_sends_amazons_amounts_in_one_call(
    make_connector: Callable[..., WooCommerceConnector],
    currency: str,
    included: bool,
    shipping_tax: str,
    country: str,
    total: str,
    fees: list[str],
) -> None:
    sim = WooCommerceSimulator(rate_limits=False, tax_rates={})  # the shop charges no tax
    sim.create_product("CAP-2", "10.00", 5)
    woo = make_connector(sim.transport(), tax_handling="amazon")
    unit, tax = ("19.99", "6.38") if included else ("10.00", "1.65")
    order = make_order(
        "303-3000001-3000001",
        [("CAP-2", 2, unit, tax)],
        currency=currency,
        taxes_included=included,
        shipping="4.99" if included else "5.00",
        shipping_tax=shipping_tax,
        country=country,
    )
    sim.requests.clear()
    ref = await woo.create_order(order, await _products(woo, "CAP-2"))

    wc = sim.get_order(int(ref.id))
    assert wc["total"] == total == str(order.total.amount)
    assert [f["name"] for f in wc["fee_lines"]] == fees
    assert [r for r in sim.requests if r[0] != "GET"] == [("POST", "/wp-json/wc/v3/orders")]


async def test_unknown_sku_and_currency_are_item_errors(woo: WooCommerceConnector) -> None:
    order = make_order("303-1000004-1000004", [("MUG-1", 1, "9.99", "1.60")])
    with pytest.raises(ItemError) as err:
        await woo.create_order(order, {})
    assert err.value.reason is FailureReason.UNKNOWN_SKU


async def test_find_order_is_exact_and_survives_similar_ids(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    products = await _products(woo, "MUG-1")
    assert await woo.find_order("303-4000001-4000001") is None
    longer = await woo.create_order(
        make_order("303-4000001-40000011", [("MUG-1", 1, "9.99", "1.60")]), products
    )
    exact = await woo.create_order(
        make_order("303-4000001-4000001", [("MUG-1", 1, "9.99", "1.60")]), products
    )
    # An order typed in by hand that merely mentions the id is no match either.
    sim._create_order({"billing": {"first_name": "303-4000001-4000001"}, "line_items": []})

    found = await woo.find_order("303-4000001-4000001")
    assert (found.id, found.number, found.cancelled) == (exact.id, exact.number, False)
    assert found.total is not None  # ordersync check compares it with Amazon's total
    assert (await woo.find_order("303-4000001-40000011")).id == longer.id  # type: ignore[union-attr]


async def test_engine_style_import_twice_creates_one_order(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    order = make_order("303-4000002-4000002", [("MUG-1", 1, "9.99", "1.60")])
    products = await _products(woo, "MUG-1")
    for _ in range(2):  # what the engine does: look up, create only when absent
        if await woo.find_order(order.marketplace_order_id) is None:
            await woo.create_order(order, products)
    assert sim.count_orders(order.marketplace_order_id) == 1


async def test_lost_create_answer_is_reconciled_not_resent(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    sim.faults.add("reset_after", match=CREATE, count=1)  # committed, then the line drops
    order = make_order("303-4000003-4000003", [("MUG-1", 3, "9.99", "4.79")])
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))

    assert sim.count_orders(order.marketplace_order_id) == 1
    assert sim.get_order(int(ref.id))["total"] == "29.97"  # the fee was still added


@pytest.mark.parametrize("kind", ["reset_after", "reset_before"])
async def test_lost_fee_update_is_checked_before_sending_again(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, kind: str
) -> None:
    sim.faults.add(kind, match=r"^PUT /wp-json/wc/v3/orders/\d+$", count=1)
    order = make_order(f"303-4000006-{kind}", [("MUG-1", 3, "9.99", "4.79")])
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))
    wc = sim.get_order(int(ref.id))
    assert wc["total"] == "29.97" and len(wc["fee_lines"]) == 1


async def test_batch_fees_for_many_orders_take_one_call(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    orders = [
        make_order(f"303-4000007-000000{n}", [("MUG-1", 3, "9.99", "4.79")]) for n in range(3)
    ]
    products = await _products(woo, "MUG-1")
    sim.requests.clear()
    results = await woo.create_orders([(o, products) for o in orders])
    assert [r for r in sim.requests if r[0] != "GET"] == [
        ("POST", "/wp-json/wc/v3/orders/batch")
    ] * 2
    refs = [r for r in results if isinstance(r, ShopOrderRef)]
    assert len(refs) == 3
    assert {sim.get_order(int(r.id))["total"] for r in refs} == {"29.97"}


async def test_create_that_never_landed_raises_retriable(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    sim.faults.add("reset_before", match=CREATE, count=1)
    order = make_order("303-4000004-4000004", [("MUG-1", 1, "9.99", "1.60")])
    with pytest.raises(RetriableAPIError):
        await woo.create_order(order, await _products(woo, "MUG-1"))
    assert sim.count_orders(order.marketplace_order_id) == 0


async def test_create_after_a_429_is_sent_once_more(
    make_connector: Callable[..., WooCommerceConnector], sim: WooCommerceSimulator
) -> None:
    woo = make_connector(sim.transport(), time_scale=100.0)  # Retry-After 1 s becomes 10 ms
    sim.faults.add("429", match=CREATE, count=1)
    order = make_order("303-4000005-4000005", [("MUG-1", 1, "9.99", "1.60")])
    await woo.create_order(order, await _products(woo, "MUG-1"))
    assert sim.count_orders(order.marketplace_order_id) == 1


async def test_cancel_is_idempotent_restocks_and_is_marked_as_ours(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    order = make_order("303-5000001-5000001", [("MUG-1", 2, "9.99", "3.19")])
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))
    assert sim.stock_of(ids["MUG-1"]) == 18

    await woo.cancel_order(ref, order)
    wc = sim.get_order(int(ref.id))
    assert wc["status"] == "cancelled"
    assert _meta(wc, mapping.CANCELLED_BY_META) == mapping.CANCELLED_BY_US
    assert sim.stock_of(ids["MUG-1"]) == 20

    sim.requests.clear()
    await woo.cancel_order(ref, order)
    assert [m for m, _ in sim.requests] == ["GET"]  # already cancelled: no second write
    assert (await woo.find_order(order.marketplace_order_id)).cancelled  # type: ignore[union-attr]


async def test_cancel_of_a_shipped_order_is_refused(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    order = make_order("303-5000002-5000002", [("MUG-1", 1, "9.99", "1.60")])
    ref = await woo.create_order(order, await _products(woo, "MUG-1"))
    sim.ship_order(int(ref.id), [{"provider": "dhl", "number": "123"}])
    with pytest.raises(ItemError) as err:
        await woo.cancel_order(ref, order)
    assert err.value.reason is FailureReason.SHOP_REJECTED


async def test_cancel_of_a_deleted_order_is_a_no_op(woo: WooCommerceConnector) -> None:
    order = make_order("303-5000003-5000003", [("MUG-1", 1, "9.99", "1.60")])
    await woo.cancel_order(ShopOrderRef(id="987654"), order)


async def test_batch_create_and_cancel_use_one_call_each(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    products = await _products(woo, "MUG-1", "CAP-2")
    first = make_order("303-6000001-6000001", [("MUG-1", 1, "9.99", "1.60")])
    await woo.create_order(first, products)
    orders = [
        make_order("303-6000002-6000002", [("MUG-1", 3, "9.99", "4.79")]),
        make_order("303-6000003-6000003", [("CAP-2", 1, "19.99", "3.19")]),
        make_order("303-6000004-6000004", [("NOPE", 1, "1.00", "0.16")]),
    ]
    sim.requests.clear()
    results = await woo.create_orders([(o, products) for o in orders])

    created, capped, unknown = results
    assert isinstance(created, ShopOrderRef) and isinstance(capped, ShopOrderRef)
    assert isinstance(unknown, ItemError) and unknown.reason is FailureReason.UNKNOWN_SKU
    assert "NOPE" in unknown.message
    writes = [r for r in sim.requests if r[0] != "GET"]
    assert writes == [  # one create for all, one fee for the order WooCommerce rounded off
        ("POST", "/wp-json/wc/v3/orders/batch"),
        ("PUT", f"/wp-json/wc/v3/orders/{created.id}"),
    ]
    assert sim.get_order(int(created.id))["total"] == "29.97"
    for o in orders[:2]:
        assert sim.count_orders(o.marketplace_order_id) == 1
    assert sim.count_orders(orders[2].marketplace_order_id) == 0

    found = await woo.find_order(first.marketplace_order_id)
    assert found is not None
    refs = [found, created, capped]
    sim.ship_order(int(refs[2].id), [{"provider": "dhl", "number": "S-1"}])
    sim.requests.clear()
    gone = ShopOrderRef(id="987654")
    cancelled = await woo.cancel_orders([(r, first) for r in [*refs, gone]])
    assert cancelled[:2] == [None, None]
    shipped = cancelled[2]  # shipped meanwhile: refused, as cancel_order refuses it
    assert isinstance(shipped, ItemError) and shipped.reason is FailureReason.SHOP_REJECTED
    assert "already completed" in shipped.message
    assert cancelled[3] is None  # no longer in the shop: nothing to do
    assert sim.requests == [
        ("GET", "/wp-json/wc/v3/orders"),
        ("POST", "/wp-json/wc/v3/orders/batch"),
    ]
    assert [sim.get_order(int(r.id))["status"] for r in refs] == [
        "cancelled",
        "cancelled",
        "completed",
    ]
    assert await woo.cancel_orders([(r, first) for r in refs[:2]]) == [None, None]
    assert sim.requests[-1] == ("GET", "/wp-json/wc/v3/orders")  # cancelled already: no write


async def _three_orders(woo: WooCommerceConnector, tag: str) -> list[tuple[ShopOrderRef, Order]]:
    products = await _products(woo, "MUG-1")
    orders = [
        make_order(f"303-7{tag}0000{n}-7000000", [("MUG-1", 1, "9.99", "1.60")]) for n in range(3)
    ]
    refs = await woo.create_orders([(o, products) for o in orders])
    assert all(isinstance(r, ShopOrderRef) for r in refs)
    return [(r, o) for r, o in zip(refs, orders, strict=True)]  # type: ignore[misc]


async def test_batch_cancel_reports_an_order_the_shop_refuses(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    items = await _three_orders(woo, "1")
    sim.lock_order(int(items[1][0].id), "Order is locked by the ERP.")
    results = await woo.cancel_orders(items)

    assert results[0] is None and results[2] is None
    refused = results[1]
    assert isinstance(refused, FatalAPIError)
    assert refused.code == "order_locked" and refused.status == 400
    assert items[1][0].id in refused.message and "locked by the ERP" in refused.message
    assert [sim.get_order(int(r.id))["status"] for r, _ in items] == [
        "cancelled",
        "processing",
        "cancelled",
    ]


async def test_batch_cancel_of_an_order_deleted_meanwhile_is_done(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = await _three_orders(woo, "2")
    doomed = int(items[0][0].id)
    lookup = sim._order_or_404

    def deleted_before_the_write(oid: int, status: int = 404) -> dict[str, Any]:
        if status == 400:  # inside the batch: a shop manager deleted it after our read
            sim.orders.pop(doomed, None)
        return lookup(oid, status)

    monkeypatch.setattr(sim, "_order_or_404", deleted_before_the_write)
    results = await woo.cancel_orders(items)
    assert results == [None, None, None]
    assert doomed not in sim.orders
    assert [sim.get_order(int(r.id))["status"] for r, _ in items[1:]] == ["cancelled"] * 2


async def test_cancel_of_an_order_deleted_between_read_and_write_is_done(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(ref, order)] = (await _three_orders(woo, "5"))[:1]
    lookup = sim._order_or_404

    def deleted_before_the_write(oid: int, status: int = 404) -> dict[str, Any]:
        if status == 400:  # the update: a shop manager deleted it after our read
            sim.orders.pop(int(ref.id), None)
        return lookup(oid, status)

    monkeypatch.setattr(sim, "_order_or_404", deleted_before_the_write)
    await woo.cancel_order(ref, order)  # WooCommerce's 400 invalid id: nothing left to do
    assert int(ref.id) not in sim.orders


async def test_batch_cancel_that_fails_as_a_whole_fails_each_order_to_cancel(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    items = await _three_orders(woo, "3")
    sim.ship_order(int(items[2][0].id), [{"provider": "dhl", "number": "S-2"}])
    sim.faults.add("500", match=r"^POST /wp-json/wc/v3/orders/batch$")
    results = await woo.cancel_orders(items)

    assert all(isinstance(r, RetriableAPIError) and r.status == 500 for r in results[:2])
    assert isinstance(results[2], ItemError)  # shipped: refused before anything was sent
    assert [sim.get_order(int(r.id))["status"] for r, _ in items] == [
        "processing",
        "processing",
        "completed",
    ]
    sim.faults.clear()
    assert (await woo.cancel_orders(items))[:2] == [None, None]  # the engine's retry


async def test_cancel_orders_without_batch_puts_each_order(
    make_connector: Callable[..., WooCommerceConnector], sim: WooCommerceSimulator
) -> None:
    woo = make_connector(sim.transport(), use_batch=False)
    items = await _three_orders(woo, "4")
    sim.ship_order(int(items[1][0].id), [{"provider": "dhl", "number": "S-3"}])
    sim.requests.clear()
    results = await woo.cancel_orders(items)

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ItemError)
    assert ("POST", "/wp-json/wc/v3/orders/batch") not in sim.requests
    assert sorted(r for r in sim.requests if r[0] == "PUT") == sorted(
        ("PUT", f"/wp-json/wc/v3/orders/{r.id}") for r, _ in (items[0], items[2])
    )


async def test_cancel_refuses_a_ref_that_is_no_woocommerce_order_id(
    woo: WooCommerceConnector,
) -> None:
    order = make_order("303-8000001-8000001", [("MUG-1", 1, "9.99", "1.60")])
    with pytest.raises(ItemError, match="not a WooCommerce order id"):
        await woo.cancel_order(ShopOrderRef(id="#1001"), order)
    [result] = await woo.cancel_orders([(ShopOrderRef(id="#1001"), order)])
    assert isinstance(result, ItemError)
