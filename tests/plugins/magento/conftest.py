"""Fixtures for the Magento plugin: a simulator, connectors bound to it, Amazon orders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from engine.http import RetryPolicy
from engine.interfaces import ConnectorContext
from engine.models import Address, Buyer, Money, Order, OrderLine, OrderStatus
from plugins.magento import MagentoConnector, MagentoSettings
from plugins.magento.simulator import MagentoSimulator

FAST_RETRY = RetryPolicy(max_tries=4, max_time=5.0, initial=1.0, max_wait=0.01)
EAN_1 = "4006381333931"


def settings_for(sim: MagentoSimulator, **overrides: Any) -> MagentoSettings:
    c = sim.credentials
    data: dict[str, Any] = {
        "base_url": "https://magento.test",
        "auth_mode": "oauth",
        "access_token": c.access_token,
        "access_token_secret": c.access_token_secret,
        "consumer_key": c.consumer_key,
        "consumer_secret": c.consumer_secret,
        "requests_per_second": 1000,
    }
    data.update(overrides)
    return MagentoSettings(**data)


def connector_for(
    sim: MagentoSimulator,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> MagentoConnector:
    context = ConnectorContext(connection_id="mg", transport=transport or sim.transport())
    connector = MagentoConnector(settings_for(sim, **overrides), context, retry=FAST_RETRY)
    connector.now = sim.now
    return connector


ConnectorFactory = Callable[..., MagentoConnector]


@pytest.fixture
def sim() -> MagentoSimulator:
    simulator = MagentoSimulator(rate_limits=False)
    simulator.create_product("SKU-1", "20.00", 10, ean=EAN_1, name="Blue mug")
    simulator.create_product("SKU-2", "5.00", 3, name="Coaster")
    simulator.create_product("SKU-3", "7.00", 5, ean="5901234123457", name="Spoon")
    return simulator


@pytest.fixture
async def make_connector(sim: MagentoSimulator) -> AsyncIterator[ConnectorFactory]:
    made: list[MagentoConnector] = []

    def factory(**overrides: Any) -> MagentoConnector:
        connector = connector_for(sim, **overrides)
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


@pytest.fixture
async def connector(make_connector: ConnectorFactory) -> MagentoConnector:
    return make_connector()


def money(amount: str, currency: str = "EUR") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def eur_order(order_id: str = "302-1111111-1111111") -> Order:
    """Amazon.de, prices include 19 % VAT: 3 x 19.99 + 1 x 5.00 - 1.00 promo + 4.90 shipping."""
    return Order(
        marketplace_order_id=order_id,
        marketplace_id="A1PA6795UKMFR9",
        status=OrderStatus.UNSHIPPED,
        purchased_at=NOW,
        updated_at=NOW,
        currency="EUR",
        buyer=Buyer(name="Erika Mustermann", email="abc123@marketplace.amazon.de"),
        shipping_address=Address(
            name="Erika Mustermann",
            line1="Heidestr. 17",
            city="Köln",
            postal_code="51147",
            country_code="DE",
            phone="+49 221 123456",
        ),
        lines=(
            OrderLine(
                line_id="11111111111111",
                sku="SKU-1",
                quantity=3,
                unit_price=money("19.99"),
                tax=money("9.58"),
                discount=money("0"),
            ),
            OrderLine(
                line_id="22222222222222",
                sku="SKU-2",
                quantity=1,
                unit_price=money("5.00"),
                tax=money("0.80"),
                discount=money("1.00"),
            ),
        ),
        shipping_price=money("4.90"),
        shipping_tax=money("0.78"),
        shipping_discount=money("0"),
        total=money("68.87"),
        taxes_included=True,
        shipping_service="Std DE Dom",
    )


def usd_order(order_id: str = "113-2222222-2222222") -> Order:
    """Amazon.com, tax on top: 2 x 12.49 + 1 x 7.35 - 0.50 promo, shipping 3.99 - 3.99."""
    usd = "USD"
    return Order(
        marketplace_order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        status=OrderStatus.UNSHIPPED,
        purchased_at=NOW,
        updated_at=NOW,
        currency=usd,
        buyer=Buyer(name="John Smith"),
        shipping_address=Address(
            name="John Smith",
            line1="410 Terry Ave N",
            city="Seattle",
            state_or_region="WA",
            postal_code="98109",
            country_code="US",
        ),
        lines=(
            OrderLine(
                line_id="33333333333333",
                sku="SKU-1",
                quantity=2,
                unit_price=money("12.49", usd),
                tax=money("2.06", usd),
                discount=money("0", usd),
            ),
            OrderLine(
                line_id="44444444444444",
                sku="SKU-3",
                quantity=1,
                unit_price=money("7.35", usd),
                tax=money("0.61", usd),
                discount=money("0.50", usd),
            ),
        ),
        shipping_price=money("3.99", usd),
        shipping_tax=money("0", usd),
        shipping_discount=money("3.99", usd),
        total=money("34.50", usd),
        taxes_included=False,
    )


async def import_order(connector: MagentoConnector, order: Order) -> Any:
    products = await connector.resolve_products("sku", [line.sku for line in order.lines])
    return await connector.create_order(order, products)


async def levels(connector: MagentoConnector, attribute: str = "sku") -> dict[str, int]:
    """A full stock read: what would be reported to the marketplace now."""
    out: dict[str, int] = {}
    cursor = None
    while True:
        page = await connector.stock_levels(attribute, cursor)
        out.update({level.sku: level.quantity for level in page.levels})
        cursor = page.cursor
        if not page.has_more:
            return out
