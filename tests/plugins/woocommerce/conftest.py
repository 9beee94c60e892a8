"""Fixtures: a seeded simulator, settings and connectors routed to it, order builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from engine.interfaces import ConnectorContext
from engine.models import Address, Buyer, Money, Order, OrderLine, OrderStatus
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.settings import WooCommerceSettings
from plugins.woocommerce.simulator import DEFAULT_KEY, DEFAULT_SECRET, WooCommerceSimulator

STORE = "https://shop.example.com"


def settings(**overrides: Any) -> WooCommerceSettings:
    values: dict[str, Any] = {
        "store_url": STORE,
        "consumer_key": DEFAULT_KEY,
        "consumer_secret": DEFAULT_SECRET,
        "requests_per_second": 1000.0,  # the client-side limit has its own test
        "burst": 1000,
    }
    values.update(overrides)
    return WooCommerceSettings(**values)


def connector(
    transport: httpx.AsyncBaseTransport | None, *, time_scale: float = 1.0, **overrides: Any
) -> WooCommerceConnector:
    context = ConnectorContext(connection_id="woo-test", transport=transport, time_scale=time_scale)
    return WooCommerceConnector(settings(**overrides), context)


def money(amount: str, currency: str) -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def make_order(
    order_id: str,
    lines: list[tuple[str, int, str, str]],
    *,
    currency: str = "EUR",
    taxes_included: bool = True,
    shipping: str = "0.00",
    shipping_tax: str = "0.00",
    discounts: dict[str, str] | None = None,
    country: str = "DE",
    total: str | None = None,
) -> Order:
    """``lines``: ``(sku, quantity, unit price, line tax)``; the total is Amazon's."""
    discounts = discounts or {}
    built = []
    expected = Decimal(shipping) + (Decimal(0) if taxes_included else Decimal(shipping_tax))
    for n, (sku, qty, unit, tax) in enumerate(lines, start=1):
        discount = discounts.get(sku, "0.00")
        built.append(
            OrderLine(
                line_id=f"{order_id}-L{n}",
                sku=sku,
                title=f"Item {sku}",
                quantity=qty,
                unit_price=money(unit, currency),
                tax=money(tax, currency),
                discount=money(discount, currency),
            )
        )
        expected += Decimal(unit) * qty - Decimal(discount)
        if not taxes_included:
            expected += Decimal(tax)
    now = datetime.now(UTC)
    address = Address(
        name="Erika Mustermann",
        line1="Heidestr. 17",
        line2="2. OG",
        city="Köln",
        postal_code="51147",
        country_code=country,
        phone="+49 221 123456",
    )
    return Order(
        marketplace_order_id=order_id,
        marketplace_id="A1PA6795UKMFR9" if currency == "EUR" else "ATVPDKIKX0DER",
        status=OrderStatus.UNSHIPPED,
        purchased_at=now,
        updated_at=now,
        currency=currency,
        buyer=Buyer(name="Erika Mustermann", email="abc123@marketplace.amazon.de"),
        shipping_address=address,
        lines=tuple(built),
        shipping_price=money(shipping, currency),
        shipping_tax=money(shipping_tax, currency),
        shipping_discount=money("0.00", currency),
        total=money(total or str(expected), currency),
        taxes_included=taxes_included,
        shipping_service="Standard",
    )


@pytest.fixture
def sim() -> WooCommerceSimulator:
    """A store with two simple products, a variable product with two variations
    (EANs on three of them) and one product without managed stock."""
    store = WooCommerceSimulator(rate_limits=False)
    store.create_product("MUG-1", "9.99", 20, ean="4006381333931", name="Mug")
    store.create_product("CAP-2", "19.99", 5, name="Cap")
    shirt = store.create_product("SHIRT", type="variable", name="Shirt")
    store.create_variation(shirt["id"], "SHIRT-M", "14.99", 7, ean="4006381333948")
    store.create_variation(shirt["id"], "SHIRT-L", "14.99", 3, ean="4006381333955")
    store.create_product("EBOOK-3", "4.99", None, name="E-book")
    return store


@pytest.fixture
def ids(sim: WooCommerceSimulator) -> dict[str, int]:
    """SKU → product or variation id in the seeded store."""
    out = {p["sku"]: pid for pid, p in sim.products.items()}
    out.update({v["sku"]: vid for vid, v in sim.variations.items()})
    return out


@pytest.fixture
async def woo(sim: WooCommerceSimulator) -> AsyncIterator[WooCommerceConnector]:
    conn = connector(sim.transport())
    yield conn
    await conn.aclose()


@pytest.fixture
async def make_connector() -> AsyncIterator[Callable[..., WooCommerceConnector]]:
    made: list[WooCommerceConnector] = []

    def factory(
        transport: httpx.AsyncBaseTransport | None, **overrides: Any
    ) -> WooCommerceConnector:
        conn = connector(transport, **overrides)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        await conn.aclose()
