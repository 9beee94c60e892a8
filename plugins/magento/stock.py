"""What one MSI source can still sell, keyed by the identification attribute.

The level is the source item's quantity minus the units of open orders that have not
shipped yet, which is what MSI's reservations should hold. Magento's own salable
quantity is not used: ``/V1/orders/create`` orders get no reservation, but their
shipment and cancellation are compensated anyway (magento2#26575, inventory#3419),
so it over-counts for every such order. The source quantity is the shelf: MSI lowers
it at shipment, for every order.

A full read pages ``/V1/inventory/source-items`` sorted by SKU; the open orders are
read once per pass. Source items carry no timestamp, so an incremental read takes the
SKUs of products and orders updated since the cursor (orders are placed, shipped and
cancelled) and reads their source items; above ``max_changed_skus`` it becomes a full
read. A source item written only through the API (not the product form, no order)
waits for the engine's next full read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from engine.models import StockLevel, StockPage
from plugins.magento import mapping
from plugins.magento.client import Filter, Group, MagentoClient
from plugins.magento.mapping import JSON
from plugins.magento.products import PRODUCTS, chunks, in_groups, products_by
from plugins.magento.settings import MagentoSettings

SOURCE_ITEMS = "/V1/inventory/source-items"
ORDERS = "/V1/orders"
OPEN_STATES = ("new", "pending_payment", "processing", "holded", "payment_review")
"""Order states whose unshipped items hold stock (not complete, closed or canceled)."""


@dataclass
class StockCursor:
    """``full``: page ``page`` of a full read started at ``since``; ``since``: changes."""

    mode: str
    since: str
    page: int = 1

    def encode(self) -> str:
        return json.dumps({"stock": asdict(self)}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> StockCursor:
        return cls(**json.loads(raw)["stock"])


async def source_items(
    client: MagentoClient, settings: MagentoSettings, skus: Sequence[str]
) -> dict[str, JSON]:
    """Source items of ``skus`` at the configured source, by SKU."""
    out: dict[str, JSON] = {}
    source = [Filter("source_code", settings.source_code)]
    for batch in chunks(list(skus), settings.page_size):
        groups = [*in_groups("sku", batch), source]
        for item in await client.search_all(SOURCE_ITEMS, "source_items_search", groups):
            out[item["sku"]] = item
    return out


async def open_quantities(
    client: MagentoClient, settings: MagentoSettings, now: datetime
) -> dict[str, int]:
    """Units not shipped yet in open orders of the last ``open_order_days``, by SKU
    (case-folded, as Magento compares SKUs)."""
    since = now - timedelta(days=settings.open_order_days)
    groups: list[Group] = [
        [Filter("state", ",".join(OPEN_STATES), "in")],
        [Filter("created_at", mapping.to_magento_time(since), "gteq")],
    ]
    out: dict[str, int] = {}
    orders = await client.search_all(ORDERS, "orders_search", groups, sort=[("entity_id", "ASC")])
    for order in orders:
        for item in order.get("items") or []:
            sku = item.get("sku")
            if sku and not item.get("parent_item_id"):
                key = str(sku).casefold()
                out[key] = out.get(key, 0) + mapping.unshipped_quantity(item)
    return out


class StockReader:
    """Reads levels; keeps the open orders of the running full pass between its pages."""

    def __init__(
        self, client: MagentoClient, settings: MagentoSettings, now: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.settings = settings
        self.now = now
        self._open: tuple[str, dict[str, int]] | None = None

    async def _open_for_pass(self, c: StockCursor) -> dict[str, int]:
        """Read at a pass's first page, reused by its later pages (read again after a
        restart)."""
        if c.page == 1 or self._open is None or self._open[0] != c.since:
            self._open = (c.since, await open_quantities(self.client, self.settings, self.now()))
        return self._open[1]

    def _now(self) -> str:
        return mapping.to_magento_time(self.now())

    async def read(self, attribute: str, cursor: str | None) -> StockPage:
        if cursor is None:
            return await self._full(attribute, StockCursor("full", self._now()))
        c = StockCursor.decode(cursor)
        if c.mode == "since":
            return await self._changed(attribute, c)
        return await self._full(attribute, c)

    async def _full(self, attribute: str, c: StockCursor) -> StockPage:
        page = await self.client.search(
            SOURCE_ITEMS,
            "source_items_search",
            [[Filter("source_code", self.settings.source_code)]],
            page=c.page,
            sort=[("sku", "ASC")],
        )
        held = await self._open_for_pass(c)
        levels = await self._levels(attribute, page.items, {}, held)
        if page.has_more:
            cursor = replace(c, page=c.page + 1).encode()
            return StockPage(levels=levels, cursor=cursor, has_more=True)
        return StockPage(levels=levels, cursor=self._since_cursor(c.since))

    def _since_cursor(self, started: str) -> str:
        start = mapping.parse_magento_time(started)
        since = start - timedelta(seconds=self.settings.lookback_seconds)
        return StockCursor("since", since=mapping.to_magento_time(since)).encode()

    async def _changed(self, attribute: str, c: StockCursor) -> StockPage:
        started = self._now()
        limit = self.settings.max_changed_skus
        updated: list[Group] = [[Filter("updated_at", c.since, "gteq")]]
        products = await self._search_capped(PRODUCTS, "products_search", updated, limit)
        orders = await self._search_capped(ORDERS, "orders_search", updated, limit)
        if products is None or orders is None:
            return await self._full(attribute, StockCursor("full", started))
        skus = {p["sku"] for p in products}
        for order in orders:
            skus.update(i["sku"] for i in order.get("items") or [] if i.get("sku"))
        if len(skus) > limit:
            return await self._full(attribute, StockCursor("full", started))
        items = list((await source_items(self.client, self.settings, sorted(skus))).values())
        held = await open_quantities(self.client, self.settings, self.now()) if items else {}
        levels = await self._levels(attribute, items, {p["sku"]: p for p in products}, held)
        return StockPage(levels=levels, cursor=self._since_cursor(started))

    async def _search_capped(
        self, path: str, operation: str, groups: list[Group], limit: int
    ) -> list[JSON] | None:
        """All matches, or ``None`` when there are more than ``limit``."""
        first = await self.client.search(path, operation, groups)
        if first.total_count > limit:
            return None
        if not first.has_more:
            return first.items
        return await self.client.search_all(path, operation, groups)

    async def _levels(
        self,
        attribute: str,
        items: Sequence[JSON],
        known: Mapping[str, JSON],
        held: Mapping[str, int],
    ) -> tuple[StockLevel, ...]:
        """Source items less the units ``held`` by open orders → levels keyed by the
        identification attribute."""
        keys: dict[str, str | None]
        if attribute == "sku":
            keys = {item["sku"]: item["sku"] for item in items}
        else:
            products = dict(known)
            missing = sorted({i["sku"] for i in items} - set(products))
            products.update(await products_by(self.client, self.settings, "sku", missing))
            ean = self.settings.ean_attribute
            keys = {sku: mapping.attribute_value(p, attribute, ean) for sku, p in products.items()}
        levels = []
        for item in items:
            key = keys.get(item["sku"])
            if key:
                left = mapping.available_quantity(item) - held.get(item["sku"].casefold(), 0)
                levels.append(StockLevel(sku=key, quantity=max(0, left)))
        return tuple(levels)
