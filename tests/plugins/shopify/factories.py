"""Marketplace orders as the engine hands them to a shop connector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.models import Address, Buyer, Money, Order, OrderLine, OrderStatus


def money(amount: str, currency: str) -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def eur_order(
    order_id: str = "028-1111111-1111111", email: str | None = "buyer@marketplace.amazon.de"
) -> Order:
    """Amazon.de: prices include 19 % VAT (``taxes_included``).

    2 × Mug 19.99 (VAT 6.38) + 1 × Spoon 5.00 (VAT 0.80) + shipping 4.99 (VAT 0.80) = 49.97.
    """
    moment = datetime.now(UTC) - timedelta(hours=1)
    return Order(
        marketplace_order_id=order_id,
        marketplace_id="A1PA6795UKMFR9",
        status=OrderStatus.UNSHIPPED,
        purchased_at=moment,
        updated_at=moment,
        currency="EUR",
        buyer=Buyer(name="Erika Mustermann", email=email),
        shipping_address=Address(
            name="Erika Mustermann",
            line1="Hauptstr. 1",
            line2="2. OG",
            city="Berlin",
            postal_code="10115",
            country_code="DE",
            phone="+49 30 1234567",
        ),
        lines=(
            OrderLine(
                line_id="11111111111111",
                sku="SKU-1",
                title="Mug",
                quantity=2,
                unit_price=money("19.99", "EUR"),
                tax=money("6.38", "EUR"),
                discount=money("0", "EUR"),
            ),
            OrderLine(
                line_id="22222222222222",
                sku="SKU-2",
                title="Spoon",
                quantity=1,
                unit_price=money("5.00", "EUR"),
                tax=money("0.80", "EUR"),
                discount=money("0", "EUR"),
            ),
        ),
        shipping_price=money("4.99", "EUR"),
        shipping_tax=money("0.80", "EUR"),
        shipping_discount=money("0", "EUR"),
        total=money("49.97", "EUR"),
        taxes_included=True,
        shipping_service="Standard",
    )


def usd_order(order_id: str = "113-2222222-2222222") -> Order:
    """Amazon.com: tax on top of prices, with a promotion.

    3 × Mug 10.00 − 2.00 promotion = 28.00, tax 2.31; shipping 5.99 − 1.00 = 4.99, tax 0.41;
    total 28.00 + 4.99 + 2.31 + 0.41 = 35.71.
    """
    moment = datetime.now(UTC) - timedelta(hours=2)
    return Order(
        marketplace_order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        status=OrderStatus.UNSHIPPED,
        purchased_at=moment,
        updated_at=moment,
        currency="USD",
        buyer=Buyer(name="John Doe"),
        shipping_address=Address(
            name="John Doe",
            line1="1 Main St",
            city="Seattle",
            state_or_region="WA",
            postal_code="98101",
            country_code="US",
            phone="(206) 555-0100 ext 1",
        ),
        lines=(
            OrderLine(
                line_id="33333333333333",
                sku="SKU-1",
                quantity=3,
                unit_price=money("10.00", "USD"),
                tax=money("2.31", "USD"),
                discount=money("2.00", "USD"),
            ),
        ),
        shipping_price=money("5.99", "USD"),
        shipping_tax=money("0.41", "USD"),
        shipping_discount=money("1.00", "USD"),
        total=money("35.71", "USD"),
        taxes_included=False,
    )
