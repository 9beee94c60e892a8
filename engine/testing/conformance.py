"""Conformance suites every connector should pass, shipped for plugin authors.

Subclass :class:`ShopConformance` or :class:`MarketplaceConformance` in your
tests and provide a ``harness`` fixture: your connector wired to your
simulator, plus a few admin actions the suite needs to set the scene.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import pytest
from pydantic import ValidationError

from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.models import (
    Address,
    Buyer,
    CancelRequest,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentLine,
    ShopOrderRef,
    StockLevel,
)

T = TypeVar("T")


def sample_order(
    order_id: str,
    skus: Mapping[str, int],
    *,
    currency: str = "EUR",
    taxes_included: bool = True,
    unit_price: str = "19.99",
    tax_rate: str = "0.19",
    marketplace_id: str = "A1PA6795UKMFR9",
) -> Order:
    """A realistic paid order whose totals add up exactly."""
    price = Decimal(unit_price)
    rate = Decimal(tax_rate)
    lines = []
    for i, (sku, qty) in enumerate(skus.items()):
        gross = price * qty
        tax = (gross - gross / (1 + rate) if taxes_included else gross * rate).quantize(
            Decimal("0.01")
        )
        lines.append(
            OrderLine(
                line_id=f"{order_id}-L{i}",
                sku=sku,
                title=f"Product {sku}",
                quantity=qty,
                unit_price=Money(amount=price, currency=currency),
                tax=Money(amount=tax, currency=currency),
                discount=Money.zero(currency),
            )
        )
    shipping = Decimal("4.90")
    shipping_tax = (
        shipping - shipping / (1 + rate) if taxes_included else shipping * rate
    ).quantize(Decimal("0.01"))
    subtotal = sum((line.unit_price.amount * line.quantity for line in lines), Decimal(0))
    total = subtotal + shipping
    if not taxes_included:
        total += sum((line.tax.amount for line in lines), Decimal(0)) + shipping_tax
    now = datetime.now(UTC)
    return Order(
        marketplace_order_id=order_id,
        marketplace_id=marketplace_id,
        status=OrderStatus.UNSHIPPED,
        purchased_at=now - timedelta(hours=1),
        updated_at=now - timedelta(minutes=30),
        currency=currency,
        buyer=Buyer(name="Erika Mustermann", email="erika@marketplace.example"),
        shipping_address=Address(
            name="Erika Mustermann",
            line1="Hauptstr. 1",
            city="Berlin",
            postal_code="10115",
            country_code="DE",
            phone="+49 30 123456",
        ),
        lines=tuple(lines),
        shipping_price=Money(amount=shipping, currency=currency),
        shipping_tax=Money(amount=shipping_tax, currency=currency),
        shipping_discount=Money.zero(currency),
        total=Money(amount=total, currency=currency),
        taxes_included=taxes_included,
    )


class ShopHarness(Protocol):
    """What the shop suite needs besides the connector."""

    connector: ShopConnector
    attribute: str
    """The identification attribute to test with (e.g. ``"sku"``)."""

    def add_product(self, sku: str, quantity: int) -> None: ...
    def set_stock(self, sku: str, quantity: int) -> None: ...
    def ship(
        self, ref: ShopOrderRef, lines: Mapping[str, int], carrier: str, tracking: str
    ) -> None: ...
    def cancel(self, ref: ShopOrderRef) -> None: ...
    def count_orders(self, marketplace_order_id: str) -> int: ...
    def order_total(self, ref: ShopOrderRef) -> Decimal: ...

    # Optional: ``advance(seconds)`` lets shop time pass (the simulator's clock; a
    # harness with a ``sim`` that has ``advance`` needs nothing more). Without it,
    # the suite relies on the time the harness's own admin actions let pass.


def let_time_pass(harness: object, seconds: float) -> None:
    """Move the harness's shop clock forward, if it has one (see :class:`ShopHarness`)."""
    advance = getattr(harness, "advance", None) or getattr(
        getattr(harness, "sim", None), "advance", None
    )
    if advance is not None:
        advance(seconds)


LATER = 15 * 60
"""Shop time between the merchant's changes in the stock test: more than any
connector's re-read (lookback) window."""


class MarketplaceHarness(Protocol):
    """What the marketplace suite needs besides the connector."""

    connector: MarketplaceConnector
    sample_settings: dict[str, Any]

    def add_order(self, order_id: str, skus: Mapping[str, int]) -> None:
        """An unshipped order, last updated at least 5 minutes ago."""

    def is_cancelled(self, order_id: str) -> bool: ...
    def quantity(self, sku: str) -> int | None: ...
    def shipments(self, order_id: str) -> int: ...


async def _drain_changes(
    connector: ShopConnector, cursor: str | None
) -> tuple[list[Any], list[Any], str | None]:
    shipments: list[Shipment] = []
    cancellations: list[Any] = []
    for _ in range(100):
        page = await connector.changes_since(cursor)
        shipments.extend(page.shipments)
        cancellations.extend(page.cancellations)
        cursor = page.cursor
        if not page.has_more:
            break
    return shipments, cancellations, cursor


async def _drain_stock(
    connector: ShopConnector, attribute: str, cursor: str | None
) -> tuple[dict[str, int], str | None]:
    levels: dict[str, int] = {}
    for _ in range(1000):
        page = await connector.stock_levels(attribute, cursor)
        levels.update({lvl.sku: lvl.quantity for lvl in page.levels})
        cursor = page.cursor
        if not page.has_more:
            break
    return levels, cursor


def _async_tests_marked(cls: type[T]) -> type[T]:
    """Mark the suite's coroutine tests ``asyncio``: they run under pytest-asyncio's
    default (strict) mode too, not only with ``asyncio_mode = "auto"``."""
    for name, value in list(vars(cls).items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            setattr(cls, name, pytest.mark.asyncio(value))
    return cls


@_async_tests_marked
class ShopConformance:
    """Standard tests for a :class:`ShopConnector` against its simulator."""

    currency = "EUR"
    taxes_included = True

    @pytest.fixture
    def harness(self) -> ShopHarness:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `harness` fixture")

    def order(self, order_id: str, skus: Mapping[str, int]) -> Order:
        return sample_order(
            order_id, skus, currency=self.currency, taxes_included=self.taxes_included
        )

    async def _create(self, harness: ShopHarness, order: Order) -> ShopOrderRef:
        products = await harness.connector.resolve_products(
            harness.attribute, list(order.quantities_by_sku())
        )
        return await harness.connector.create_order(order, products)

    def test_settings_model_rejects_unknown_keys(self, harness: ShopHarness) -> None:
        with pytest.raises(ValidationError):
            type(harness.connector).settings_model.model_validate({"no_such_setting_xyz": 1})

    async def test_check_succeeds(self, harness: ShopHarness) -> None:
        result = await harness.connector.check()
        assert result.ok, result.message

    async def test_resolve_products_leaves_unknown_skus_out(self, harness: ShopHarness) -> None:
        harness.add_product("CONF-A", 5)
        harness.add_product("CONF-B", 5)
        found = await harness.connector.resolve_products(
            harness.attribute, ["CONF-A", "CONF-B", "CONF-NONE"]
        )
        assert set(found) == {"CONF-A", "CONF-B"}
        assert found["CONF-A"].sku == "CONF-A"

    async def test_create_then_find_is_idempotent(self, harness: ShopHarness) -> None:
        harness.add_product("CONF-C", 5)
        assert await harness.connector.find_order("CONF-ORDER-1") is None
        order = self.order("CONF-ORDER-1", {"CONF-C": 2})
        ref = await self._create(harness, order)
        found = await harness.connector.find_order("CONF-ORDER-1")
        assert found is not None and found.id == ref.id
        assert harness.count_orders("CONF-ORDER-1") == 1

    async def test_batch_create_and_lookup(self, harness: ShopHarness) -> None:
        """``create_orders`` and ``find_order_refs``, overridden or not, keep the contract:
        one result per item in order, a bad order failing alone."""
        harness.add_product("CONF-J", 9)
        good = [self.order(f"CONF-BATCH-{n}", {"CONF-J": 1}) for n in range(3)]
        bad = self.order("CONF-BATCH-X", {"CONF-NONE": 1})
        products = await harness.connector.resolve_products(harness.attribute, ["CONF-J"])
        ids = [o.marketplace_order_id for o in [*good, bad]]
        assert await harness.connector.find_order_refs(ids) == {}
        results = await harness.connector.create_orders(
            [(good[0], products), (bad, products), (good[1], products), (good[2], products)]
        )
        assert len(results) == 4
        assert isinstance(results[1], Exception)
        refs = [results[0], results[2], results[3]]
        assert all(isinstance(r, ShopOrderRef) for r in refs), refs
        found = await harness.connector.find_order_refs(ids)
        assert set(found) == {o.marketplace_order_id for o in good}
        assert {r.id for r in found.values()} == {r.id for r in refs if isinstance(r, ShopOrderRef)}
        for order in good:
            assert harness.count_orders(order.marketplace_order_id) == 1
        assert harness.count_orders("CONF-BATCH-X") == 0

    async def test_created_order_total_matches_to_the_cent(self, harness: ShopHarness) -> None:
        harness.add_product("CONF-D", 5)
        harness.add_product("CONF-E", 5)
        order = self.order("CONF-ORDER-2", {"CONF-D": 3, "CONF-E": 1})
        ref = await self._create(harness, order)
        assert harness.order_total(ref) == order.total.amount

    async def test_cancel_is_idempotent(self, harness: ShopHarness) -> None:
        harness.add_product("CONF-F", 5)
        order = self.order("CONF-ORDER-3", {"CONF-F": 1})
        ref = await self._create(harness, order)
        await harness.connector.cancel_order(ref, order)
        again = await harness.connector.find_order("CONF-ORDER-3")
        assert again is not None and again.cancelled
        await harness.connector.cancel_order(again, order)

    async def test_changes_start_from_now_and_report_shipments_and_cancellations(
        self, harness: ShopHarness
    ) -> None:
        harness.add_product("CONF-G", 9)
        first = await self._create(harness, self.order("CONF-ORDER-4", {"CONF-G": 4}))
        harness.ship(first, {"CONF-G": 1}, "DHL", "OLD-1")
        _, _, cursor = await _drain_changes(harness.connector, None)
        shipments, _, cursor = await _drain_changes(harness.connector, cursor)
        assert [s for s in shipments if s.tracking_number == "OLD-1"] == []
        harness.ship(first, {"CONF-G": 1}, "DHL", "TRK-1")
        harness.ship(first, {"CONF-G": 2}, "UPS", "TRK-2")
        second_order = self.order("CONF-ORDER-5", {"CONF-G": 1})
        second = await self._create(harness, second_order)
        harness.cancel(second)
        shipments, cancellations, cursor = await _drain_changes(harness.connector, cursor)
        mine = sorted(
            (s for s in shipments if s.marketplace_order_id == "CONF-ORDER-4"),
            key=lambda s: s.tracking_number or "",
        )
        assert [(s.tracking_number, s.lines[0].quantity) for s in mine] == [
            ("TRK-1", 1),
            ("TRK-2", 2),
        ]
        assert len({s.shipment_id for s in mine}) == 2
        # Cancellations name the shop order by the id its create returned: the engine
        # tells the order it tracks from a duplicate that way.
        assert second.id in {
            c.shop_order_id for c in cancellations if c.marketplace_order_id == "CONF-ORDER-5"
        }
        # Reading again from the returned cursor repeats nothing already seen.
        again, _, _ = await _drain_changes(harness.connector, cursor)
        assert {s.shipment_id for s in again} & {s.shipment_id for s in mine} == set()

    async def test_stock_full_read_then_changes_only(self, harness: ShopHarness) -> None:
        harness.add_product("CONF-STILL", 3)
        harness.add_product("CONF-H", 4)
        harness.add_product("CONF-I", 6)
        levels, cursor = await _drain_stock(harness.connector, harness.attribute, None)
        assert levels["CONF-STILL"] == 3 and levels["CONF-H"] == 4 and levels["CONF-I"] == 6
        let_time_pass(harness, LATER)
        harness.set_stock("CONF-I", 2)
        changed, cursor = await _drain_stock(harness.connector, harness.attribute, cursor)
        assert changed.get("CONF-I") == 2
        # A boundary item may be read again (timestamps are coarse), never a stale value.
        assert changed.get("CONF-H", 4) == 4 and changed.get("CONF-STILL", 3) == 3
        let_time_pass(harness, LATER)
        harness.set_stock("CONF-H", 1)
        changed, _ = await _drain_stock(harness.connector, harness.attribute, cursor)
        assert changed.get("CONF-H") == 1
        # Changes only: untouched since before the previous read, it is not read again.
        assert "CONF-STILL" not in changed, (
            "a changes read returned a SKU that did not change (if the connector re-reads "
            "a window of recent changes, give the harness advance(seconds))"
        )


@_async_tests_marked
class MarketplaceConformance:
    """Standard tests for a :class:`MarketplaceConnector` against its simulator."""

    @pytest.fixture
    def harness(self) -> MarketplaceHarness:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `harness` fixture")

    def test_settings_model_validates_the_sample_and_rejects_unknown_keys(
        self, harness: MarketplaceHarness
    ) -> None:
        model = type(harness.connector).settings_model
        model.model_validate(harness.sample_settings)
        with pytest.raises(ValidationError):
            model.model_validate({**harness.sample_settings, "no_such_setting_xyz": 1})

    async def test_check_succeeds(self, harness: MarketplaceHarness) -> None:
        result = await harness.connector.check()
        assert result.ok, result.message

    async def test_orders_in_window_are_all_returned_once(
        self, harness: MarketplaceHarness
    ) -> None:
        for i in range(5):
            harness.add_order(f"CONF-M-{i}", {"CONF-SKU": 1})
        now = datetime.now(UTC)
        seen = [
            o.marketplace_order_id
            async for o in harness.connector.orders_updated(now - timedelta(days=1), now)
        ]
        mine = [s for s in seen if s.startswith("CONF-M-")]
        assert sorted(mine) == [f"CONF-M-{i}" for i in range(5)]

    async def test_get_order(self, harness: MarketplaceHarness) -> None:
        harness.add_order("CONF-G-1", {"CONF-SKU": 2})
        order = await harness.connector.get_order("CONF-G-1")
        assert isinstance(order, Order)
        assert order.lines[0].quantity == 2
        assert await harness.connector.get_order("CONF-NO-SUCH-ORDER") is None

    async def test_confirm_shipment_is_visible_for_reconciliation(
        self, harness: MarketplaceHarness
    ) -> None:
        harness.add_order("CONF-S-1", {"CONF-SKU": 1})
        order = await harness.connector.get_order("CONF-S-1")
        assert isinstance(order, Order)
        carriers = await harness.connector.allowed_carriers()
        assert carriers
        shipment = Shipment(
            shipment_id="CONF-SHIP-1",
            marketplace_order_id="CONF-S-1",
            shop_order_id="1",
            lines=tuple(
                ShipmentLine(sku=line.sku, quantity=line.quantity, line_id=line.line_id)
                for line in order.lines
            ),
            carrier="DHL",
            tracking_number="CONF-TRACK-1",
            shipped_at=datetime.now(UTC),
        )
        assert not await harness.connector.shipment_confirmed(order, shipment)
        await harness.connector.confirm_shipment(order, shipment, sorted(carriers)[0])
        assert await harness.connector.shipment_confirmed(order, shipment)
        assert harness.shipments("CONF-S-1") == 1

    async def test_cancel_orders_reports_each_order(self, harness: MarketplaceHarness) -> None:
        harness.add_order("CONF-C-1", {"CONF-SKU": 1})
        harness.add_order("CONF-C-2", {"CONF-SKU": 1})
        reasons = type(harness.connector).cancellation_reasons
        reason = sorted(reasons)[0] if reasons else "NoInventory"
        results = await harness.connector.cancel_orders(
            [CancelRequest(marketplace_order_id=o, reason=reason) for o in ("CONF-C-1", "CONF-C-2")]
        )
        assert {r.key: r.ok for r in results} == {"CONF-C-1": True, "CONF-C-2": True}
        assert harness.is_cancelled("CONF-C-1") and harness.is_cancelled("CONF-C-2")

    async def test_push_stock_sets_absolute_quantities(self, harness: MarketplaceHarness) -> None:
        levels = [StockLevel(sku=f"CONF-Q-{i}", quantity=i * 3) for i in range(4)]
        results = await harness.connector.push_stock(levels)
        assert sorted(r.key for r in results if r.ok) == [f"CONF-Q-{i}" for i in range(4)]
        assert [harness.quantity(f"CONF-Q-{i}") for i in range(4)] == [0, 3, 6, 9]
