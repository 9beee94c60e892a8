"""Mapping v2026 orders to engine models: every order example in Amazon's model.

The expected values below were read off the model's examples by hand; they are
not produced by the code under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ItemError
from engine.models import FulfillmentChannel, Order, OrderStatus
from plugins.amazon.mapping import order_from_api
from plugins.amazon.sim_orders import OrderFactory
from tests.plugins.amazon.contract import model_example_orders


@dataclass(frozen=True)
class Line:
    line_id: str
    sku: str
    quantity: int
    unit_price: str
    tax: str
    discount: str = "0"
    shipped: int = 0


@dataclass(frozen=True)
class Expected:
    marketplace_id: str
    currency: str
    status: OrderStatus
    channel: FulfillmentChannel
    prime: bool
    business: bool
    taxes_included: bool
    lines: tuple[Line, ...]
    total: str
    shipping: str = "0"
    shipping_tax: str = "0"
    buyer_name: str | None = None
    tax_id: str | None = None
    country: str | None = None
    cancellation_requested: bool = False


M, A = FulfillmentChannel.MERCHANT, FulfillmentChannel.MARKETPLACE
EXPECTED: dict[str, Expected] = {
    # searchOrders 200 "examples": US, tax added; TAX 0.02 on the first item only;
    # a DELIVERY_TIP of 5.00 is in grandTotal but in no line: carried as shipping.
    "123-4567890-1234567": Expected(
        "ATVPDKIKX0DER", "USD", OrderStatus.SHIPPED, M, True, True, False,
        (
            Line("12345678901234", "ECHO-DOT-4-CHARCOAL", 2, "49.99", "0.02", shipped=2),
            Line("12345678901235", "FIRE-TV-4K-2021", 1, "49.99", "0", shipped=1),
        ),
        total="154.99", shipping="5.00", buyer_name="John Smith", country="US",
    ),
    # sandbox: JP, fulfilled by Amazon, yen without decimals
    "250-1234567-8901234": Expected(
        "A1VC38T7YXB528", "JPY", OrderStatus.SHIPPED, A, True, False, True,
        (
            Line("25012345678901", "ECHO-DOT-4-JP-CHARCOAL", 1, "5980", "0", shipped=1),
            Line("25012345678902", "FIRE-TV-4K-MAX-JP", 2, "6980", "0", shipped=2),
        ),
        total="19940", buyer_name="John Smith", country="JP",
    ),
    "202-7654321-1098765": Expected(
        "A1F83G8C2ARO7P", "GBP", OrderStatus.SHIPPED, M, True, False, True,
        (Line("20276543210987", "ECHO-DOT-4-UK-CHARCOAL-SINGLE", 1, "34.99", "0", shipped=1),),
        total="34.99", buyer_name="Sarah Thompson", country="GB",
    ),
    # BR business order: buyer tax registration becomes the buyer's tax id
    "171-2345678-9012345": Expected(
        "A2Q3Y263D00KWC", "BRL", OrderStatus.UNSHIPPED, M, False, True, True,
        (Line("17123456789012", "DELL-I15-BR-001", 1, "1599.90", "0"),),
        total="1599.90", buyer_name="Carlos Oliveira", tax_id="1234567890", country="BR",
    ),
    # getOrder "examples": UK; TAX 4.00 = 3.00 on the item + 1.00 on 10.00 shipping,
    # added on top (89.97 + 10.00 + 4.00 = 103.97): tax-exclusive, unlike most UK orders
    "202-1234567-8901234": Expected(
        "A1F83G8C2ARO7P", "GBP", OrderStatus.SHIPPED, M, True, False, False,
        (Line("20212345678901", "ECHO-DOT-4-UK-CHARCOAL-3PACK", 3, "29.99", "3.00", shipped=3),),
        total="103.97", shipping="10.00", shipping_tax="1.00", buyer_name="James Wilson",
        country="GB",
    ),
    "171-9876543-2109876": Expected(
        "A2Q3Y263D00KWC", "BRL", OrderStatus.UNSHIPPED, M, True, False, True,
        (Line("17198765432109", "ECHO-DOT-4-BR-PRETO", 1, "299.90", "0"),),
        total="299.90", buyer_name="Maria Silva Santos", country="BR",
    ),
    "028-1234567-8901234": Expected(
        "A33AVAJ2PDY3EV", "TRY", OrderStatus.SHIPPED, M, False, False, True,
        (Line("02812345678901", "FIRE-HD10-TR-BLK", 2, "62.50", "0", shipped=2),),
        total="125.00", buyer_name="Mehmet Yilmaz", tax_id="TR1234567890", country="TR",
    ),
    # US in-store pickup: TAX 10.00 without a detailed breakdown is all item tax
    "114-9876543-1234567": Expected(
        "ATVPDKIKX0DER", "USD", OrderStatus.UNSHIPPED, M, False, False, False,
        (Line("11498765431234", "ECHO-POP-US-BLK", 1, "39.99", "10.00"),),
        total="49.99", country="US",
    ),
}  # fmt: skip

EXAMPLES = model_example_orders()


def test_every_model_example_has_an_expectation() -> None:
    assert len(EXAMPLES) == 8
    assert {order["orderId"] for _, order in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize(("label", "raw"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_model_example_maps_exactly(label: str, raw: dict[str, Any]) -> None:
    expected = EXPECTED[raw["orderId"]]
    order = order_from_api(raw)

    assert order.marketplace_order_id == raw["orderId"]
    assert order.marketplace_id == expected.marketplace_id
    assert order.currency == expected.currency
    assert order.status is expected.status
    assert order.fulfillment_channel is expected.channel
    assert (order.is_prime, order.is_business) == (expected.prime, expected.business)
    assert order.taxes_included is expected.taxes_included
    assert order.total.amount == Decimal(expected.total)
    assert order.shipping_price.amount == Decimal(expected.shipping)
    assert order.shipping_tax.amount == Decimal(expected.shipping_tax)
    assert order.shipping_discount.amount == 0
    assert order.cancellation_requested is expected.cancellation_requested
    assert order.buyer.name == expected.buyer_name
    assert order.buyer.tax_id == expected.tax_id
    assert order.shipping_address is not None
    assert order.shipping_address.country_code == expected.country
    assert order.purchased_at == datetime.fromisoformat(raw["createdTime"])
    assert order.updated_at == datetime.fromisoformat(raw["lastUpdatedTime"])
    assert order.raw == raw
    got = [
        Line(
            line.line_id,
            line.sku,
            line.quantity,
            str(line.unit_price.amount),
            str(line.tax.amount),
            str(line.discount.amount),
            line.quantity_shipped,
        )
        for line in order.lines
    ]
    # comparing text keeps the exponent: "29.99" and "3.00" to the cent, "5980" in yen
    assert got == list(expected.lines)
    assert {line.unit_price.currency for line in order.lines} == {expected.currency}
    assert parts_sum(order) == order.total.amount


def parts_sum(order: Order) -> Decimal:
    """What a shop computes: lines + shipping - discounts (+ tax when it is on top)."""
    total = sum((line.subtotal.amount - line.discount.amount for line in order.lines), Decimal(0))
    total += order.shipping_price.amount - order.shipping_discount.amount
    if not order.taxes_included:
        total += sum((line.tax.amount for line in order.lines), Decimal(0))
        total += order.shipping_tax.amount
    return total


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": "EUR"}


def test_gift_wrap_and_cod_fee_are_charged_with_shipping() -> None:
    """Charges without an engine field go into shipping, with their tax and discount."""
    raw = _order()
    raw["orderItems"][0]["proceeds"]["breakdowns"] += [
        {"type": "SHIPPING", "subtotal": _money("4.00")},
        {"type": "GIFT_WRAP", "subtotal": _money("2.00")},
        {"type": "COD_FEE", "subtotal": _money("3.00")},
        {
            "type": "TAX",
            "subtotal": _money("4.00"),
            "detailedBreakdowns": [
                {"subtype": "ITEM", "value": _money("3.19")},
                {"subtype": "GIFT_WRAP", "value": _money("0.32")},
                {"subtype": "COD_FEE", "value": _money("0.49")},
            ],
        },
    ]
    raw["proceeds"] = {"grandTotal": _money("25.50")}  # 20 + 4 + 2 + 3 - 3.50, VAT inside
    order = order_from_api(raw)
    assert order.shipping_price.amount == Decimal("9.00")
    assert order.shipping_tax.amount == Decimal("0.81")
    assert order.shipping_discount.amount == Decimal("1.00")
    assert order.lines[0].tax.amount == Decimal("3.19")
    assert order.taxes_included
    assert parts_sum(order) == order.total.amount == Decimal("25.50")


def test_taxes_included_follows_the_proceeds_not_the_marketplace() -> None:
    raw = _order()
    raw["orderItems"][0]["proceeds"]["breakdowns"].append(
        {"type": "TAX", "subtotal": _money("3.00")}
    )
    on_top = dict(raw, proceeds={"grandTotal": _money("19.50")})  # 20 - 3.50 + 3.00
    inside = dict(raw, proceeds={"grandTotal": _money("16.50")})
    neither = dict(raw, proceeds={"grandTotal": _money("99.00")})
    assert order_from_api(on_top).taxes_included is False
    assert order_from_api(inside).taxes_included is True
    assert order_from_api(neither).taxes_included is True  # Amazon.de's convention


def test_address_fields_of_the_search_example() -> None:
    raw = dict(EXAMPLES)["searchOrders-example-123-4567890-1234567"]
    address = order_from_api(raw).shipping_address
    assert address is not None
    assert (address.name, address.company) == ("John Smith", "Smith Industries LLC")
    assert (address.line1, address.line2, address.line3) == ("123 Main Street", "Suite 456", None)
    assert (address.city, address.district, address.state_or_region) == (
        "Seattle",
        "King County",
        "WA",
    )
    assert (address.postal_code, address.phone) == ("98101", "555-123-4567")


def _order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "orderId": "302-0000000-0000001",
        "createdTime": "2026-01-10T10:00:00Z",
        "lastUpdatedTime": "2026-01-10T11:00:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1PA6795UKMFR9"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {
                "orderItemId": "1",
                "quantityOrdered": 2,
                "product": {
                    "sellerSku": "A",
                    "price": {"unitPrice": {"amount": "10.00", "currencyCode": "EUR"}},
                },
                "proceeds": {
                    "breakdowns": [
                        {"type": "ITEM", "subtotal": {"amount": "20.00", "currencyCode": "EUR"}},
                        {
                            "type": "DISCOUNT",
                            "subtotal": {"amount": "-3.50", "currencyCode": "EUR"},
                            "detailedBreakdowns": [
                                {
                                    "subtype": "ITEM",
                                    "value": {"amount": "-2.50", "currencyCode": "EUR"},
                                },
                                {
                                    "subtype": "SHIPPING",
                                    "value": {"amount": "-1.00", "currencyCode": "EUR"},
                                },
                            ],
                        },
                    ]
                },
            }
        ],
    }
    base.update(changes)
    return base


def test_promotion_discounts_split_between_line_and_shipping() -> None:
    order = order_from_api(_order())
    assert order.lines[0].discount.amount == Decimal("2.50")
    assert order.shipping_discount.amount == Decimal("1.00")


def test_pending_status_and_missing_grand_total() -> None:
    raw = _order(fulfillment={"fulfillmentStatus": "PENDING", "fulfilledBy": "MERCHANT"})
    order = order_from_api(raw)
    assert order.status is OrderStatus.PENDING
    assert not order.importable
    # no grandTotal: gross lines - discounts (DE prices include VAT)
    assert order.total.amount == Decimal("16.50")


def test_pending_availability_is_pending() -> None:
    raw = _order(fulfillment={"fulfillmentStatus": "PENDING_AVAILABILITY"})
    assert order_from_api(raw).status is OrderStatus.PENDING


def test_open_buyer_cancellation_request_is_flagged() -> None:
    raw = _order()
    raw["orderItems"][0]["cancellation"] = {
        "cancellationRequest": {"requester": "BUYER", "cancelReason": "Found it cheaper"}
    }
    assert order_from_api(raw).cancellation_requested is True
    raw["orderItems"][0]["cancellation"]["cancellationExecution"] = {"cancelledBy": "MERCHANT"}
    assert order_from_api(raw).cancellation_requested is False


def test_mixed_currencies_are_rejected() -> None:
    raw = _order(proceeds={"grandTotal": {"amount": "16.50", "currencyCode": "GBP"}})
    with pytest.raises(ItemError, match="EUR"):
        order_from_api(raw)


def test_fully_cancelled_lines_are_left_out() -> None:
    raw = _order()
    raw["orderItems"][0]["quantityOrdered"] = 0
    assert order_from_api(raw).lines == ()


@settings(max_examples=60, deadline=None)
@given(
    quantities=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    marketplace=st.sampled_from(["Amazon.de", "Amazon.com", "Amazon.co.uk", "Amazon.co.jp"]),
    prime=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_simulated_orders_add_up_to_the_cent(
    quantities: list[int], marketplace: str, prime: bool, seed: int
) -> None:
    """Whatever the simulator builds, the mapped parts sum to Amazon's grandTotal."""
    factory = OrderFactory(random.Random(seed))
    items = {f"SKU-{i}": q for i, q in enumerate(quantities)}
    discounts = {"SKU-0": "1"} if seed % 2 else None
    raw = factory.build(
        items,
        now=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seed),
        marketplace=marketplace,
        prime=prime,
        discounts=discounts,
    )
    order = order_from_api(raw)
    lines = sum((line.subtotal.amount - line.discount.amount for line in order.lines), Decimal(0))
    expected = lines + order.shipping_price.amount - order.shipping_discount.amount
    if not order.taxes_included:
        expected += sum((line.tax.amount for line in order.lines), Decimal(0))
        expected += order.shipping_tax.amount
    assert order.total.amount == expected
    assert order.quantities_by_sku() == items
