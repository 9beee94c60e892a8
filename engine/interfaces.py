"""The connector contract every platform plugin implements.

A marketplace (Amazon) and a shop (Shopify, WooCommerce, ...) each get one
connector instance per connection. Connectors are async, know nothing about
the scheduler or the state database, and speak only :mod:`engine.models`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import httpx
from pydantic import BaseModel

from engine.concurrency import map_bounded
from engine.models import (
    CancelRequest,
    CheckResult,
    ItemResult,
    Order,
    ProductRef,
    RejectedOrder,
    Shipment,
    ShopChanges,
    ShopOrderRef,
    StockLevel,
    StockPage,
)


@dataclass
class ConnectorContext:
    """What the engine hands a connector besides its settings.

    ``transport`` lets tests, the demo and benchmarks route a connector's HTTP
    to an in-process simulator (``httpx.ASGITransport``); ``None`` means the
    network. ``time_scale`` speeds up client-side rate limiting to match a
    simulator running with the same scale.
    """

    connection_id: str
    transport: httpx.AsyncBaseTransport | None = None
    time_scale: float = 1.0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("ordersync"))


class Connector(ABC):
    """Behaviour shared by both roles."""

    settings_model: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    @abstractmethod
    async def check(self) -> CheckResult:
        """Test the connection: credentials, reachability, configured scope."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release HTTP clients and other resources."""


class MarketplaceConnector(Connector):
    """Amazon-like side: the source of orders and the target of stock."""

    safety_margin: ClassVar[timedelta] = timedelta(minutes=2)
    """How far behind "now" an order window must end (indexing lag)."""
    default_lookback: ClassVar[timedelta] = timedelta(minutes=30)
    """How much of the previous window is read again to catch late updates."""
    carrier_codes: ClassVar[frozenset[str]] = frozenset()
    """Carrier codes known up front (checked by ``config check``; empty: unchecked)."""
    cancellation_reasons: ClassVar[frozenset[str]] = frozenset()
    """Cancellation reason codes (checked by ``config check``; empty: unchecked)."""

    @abstractmethod
    def orders_updated(
        self, since: datetime, until: datetime
    ) -> AsyncIterator[Order | RejectedOrder]:
        """Yield every order last updated in ``[since, until)``, any status, all pages.

        An order that cannot be mapped is yielded as :class:`RejectedOrder`
        (never skipped, never raised), so the rest of the window goes on.
        """

    @abstractmethod
    async def get_order(self, marketplace_order_id: str) -> Order | RejectedOrder | None:
        """Fetch one order again; ``None`` when it does not exist."""

    async def allowed_carriers(self) -> frozenset[str]:
        """Carrier codes the marketplace accepts in a shipment confirmation."""
        return self.carrier_codes

    @abstractmethod
    async def confirm_shipment(self, order: Order, shipment: Shipment, carrier_code: str) -> None:
        """Confirm one shipment (one package) with an allowed carrier code."""

    @abstractmethod
    async def shipment_confirmed(self, order: Order, shipment: Shipment) -> bool:
        """Whether this shipment is already confirmed (used to reconcile after a crash)."""

    @abstractmethod
    async def cancel_orders(self, requests: Sequence[CancelRequest]) -> list[ItemResult]:
        """Cancel orders as the seller, batched; one result per order id."""

    @abstractmethod
    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemResult]:
        """Set absolute quantities; one result per SKU, failures do not stop the rest."""

    async def listed_quantities(self, skus: Sequence[str]) -> Mapping[str, int] | None:
        """The quantities the marketplace offers now, for ``ordersync check``.

        SKUs the marketplace does not list are left out. The default returns
        ``None``: this marketplace cannot tell, and ``check`` compares the shop
        with what ordersync last pushed instead.
        """
        return None


CREATE_CONCURRENCY = 4
"""Orders :meth:`ShopConnector.create_orders` creates at once by default."""


class ShopConnector(Connector):
    """Web-shop side: the target of orders, the source of shipments and stock."""

    identification_attributes: ClassVar[frozenset[str]] = frozenset({"sku"})
    """Values accepted for ``product_identification_attribute``; an entry ending
    in ``:`` accepts any value with that prefix (e.g. ``metafield:``)."""

    @classmethod
    def accepts_attribute(cls, attribute: str) -> bool:
        return any(
            attribute == known
            or (known.endswith(":") and attribute.startswith(known) and len(attribute) > len(known))
            for known in cls.identification_attributes
        )

    @abstractmethod
    async def resolve_products(
        self, attribute: str, skus: Sequence[str]
    ) -> Mapping[str, ProductRef]:
        """Map marketplace SKUs to shop products; unknown SKUs are left out."""

    @abstractmethod
    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        """Find the shop order created for a marketplace order (idempotency lookup)."""

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        """Every shop order carrying this reference (``ordersync check`` finds duplicates).

        The default wraps :meth:`find_order`; override it when the shop can list all.
        """
        found = await self.find_order(marketplace_order_id)
        return [found] if found is not None else []

    async def find_order_refs(
        self, marketplace_order_ids: Sequence[str], *, attempted: bool = False
    ) -> dict[str, ShopOrderRef]:
        """The idempotency lookup for several orders: id → the shop order found.

        Ids with no shop order are left out. ``attempted``: an earlier attempt to
        create some of them may have reached the shop a moment ago (its answer was
        lost, or the process died), so a shop whose search lags behind its writes
        must also look where a new order is visible at once. Without it, no
        attempt was made for any of them. The default calls :meth:`find_order` for
        each; override it when the shop can search for many in one request.
        """
        found = {}
        for oid in marketplace_order_ids:
            ref = await self.find_order(oid)
            if ref is not None:
                found[oid] = ref
        return found

    @abstractmethod
    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        """Create a paid order that carries ``order.marketplace_order_id`` as reference.

        A line whose SKU is not in ``products`` raises ``ItemError(UNKNOWN_SKU)``:
        never create a partial order.
        """

    async def create_orders(
        self, items: Sequence[tuple[Order, Mapping[str, ProductRef]]]
    ) -> list[ShopOrderRef | Exception]:
        """Create several orders; one result per item, in order: its ref, or the
        exception that order failed with.

        The engine has looked every one up first. The default calls
        :meth:`create_order` for each, a few at a time; override it when the shop
        can create several in one request.
        """

        async def one(item: tuple[Order, Mapping[str, ProductRef]]) -> ShopOrderRef:
            return await self.create_order(*item)

        return await map_bounded(one, items, limit=CREATE_CONCURRENCY)

    async def complete_order(self, order: Order, ref: ShopOrderRef) -> ShopOrderRef:
        """Finish an order that :meth:`find_order` found instead of creating it.

        Called when an earlier attempt may have stopped between the create and the
        steps after it (e.g. a total adjustment). The default does nothing.
        """
        return ref

    @abstractmethod
    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        """Cancel a shop order because the marketplace cancelled it (idempotent)."""

    async def cancel_orders(
        self, items: Sequence[tuple[ShopOrderRef, Order]]
    ) -> list[Exception | None]:
        """Cancel several shop orders; one result per item, in order: ``None`` when
        it is cancelled (or was already), or the exception that order failed with.

        The default calls :meth:`cancel_order` for each, a few at a time; override it
        when the shop can cancel several in one request.
        """

        async def one(item: tuple[ShopOrderRef, Order]) -> None:
            await self.cancel_order(*item)

        return await map_bounded(one, items, limit=CREATE_CONCURRENCY)

    @abstractmethod
    async def changes_since(self, cursor: str | None) -> ShopChanges:
        """One page of shipments and cancellations made since ``cursor``.

        ``cursor=None`` starts from "now": history is not replayed. A record that
        cannot be read goes into ``rejected`` (never skipped silently, never raised).
        """

    @abstractmethod
    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        """One page of stock keyed by the identification attribute.

        ``cursor=None`` reads everything; the cursor returned with the last page
        (``has_more=False``) resumes with only what changed since.
        """
