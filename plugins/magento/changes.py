"""Shipments and cancellations made in the shop since a cursor.

The window ``[since, until)`` ends ``settle_seconds`` before now (commit lag) and is
read per stream by keyset on ``entity_id``, so records changing during the read do
not shift pages. Shipments are selected by ``created_at``, cancelled orders by
``updated_at``; only orders with an ``ext_order_id`` count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from engine.models import Cancellation, Shipment, ShopChanges
from plugins.magento import mapping
from plugins.magento.client import Filter, Group, MagentoClient
from plugins.magento.mapping import JSON
from plugins.magento.products import chunks, in_groups
from plugins.magento.settings import MagentoSettings

ORDERS = "/V1/orders"
SHIPMENTS = "/V1/shipments"


@dataclass
class ChangeCursor:
    since: str
    until: str | None = None
    ship_after: int = 0
    cancel_after: int = 0
    ship_done: bool = False
    cancel_done: bool = False

    def encode(self) -> str:
        return json.dumps({"changes": asdict(self)}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> ChangeCursor:
        return cls(**json.loads(raw)["changes"])


class ChangeReader:
    def __init__(
        self, client: MagentoClient, settings: MagentoSettings, now: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.settings = settings
        self.now = now

    async def read(self, cursor: str | None) -> ShopChanges:
        s = self.settings
        now = self.now()
        if cursor is None:
            return ShopChanges(cursor=ChangeCursor(since=mapping.to_magento_time(now)).encode())
        c = ChangeCursor.decode(cursor)
        if c.until is None:
            c.until = mapping.to_magento_time(now - timedelta(seconds=s.settle_seconds))
            if c.until <= c.since:
                return ShopChanges(cursor=cursor)
        shipments = [] if c.ship_done else await self._shipments(c)
        cancellations = [] if c.cancel_done else await self._cancellations(c)
        done = c.ship_done and c.cancel_done
        if done:
            until = mapping.parse_magento_time(c.until)
            since = until - timedelta(seconds=s.lookback_seconds)
            c = ChangeCursor(since=mapping.to_magento_time(since))
        return ShopChanges(
            shipments=tuple(shipments),
            cancellations=tuple(cancellations),
            cursor=c.encode(),
            has_more=not done,
        )

    async def _shipments(self, c: ChangeCursor) -> list[Shipment]:
        assert c.until is not None
        groups: list[Group] = [
            [Filter("created_at", c.since, "gteq")],
            [Filter("created_at", c.until, "lt")],
            [Filter("entity_id", str(c.ship_after), "gt")],
        ]
        page = await self.client.search(
            SHIPMENTS, "shipments_search", groups, sort=[("entity_id", "ASC")]
        )
        orders = await self.orders_by_id({int(r["order_id"]) for r in page.items})
        found = []
        for raw in page.items:
            shipment = mapping.shipment_from(raw, orders.get(int(raw["order_id"]), {}))
            if shipment is not None:
                found.append(shipment)
        c.ship_after = max([c.ship_after, *(int(r["entity_id"]) for r in page.items)])
        c.ship_done = not page.has_more
        return found

    async def _cancellations(self, c: ChangeCursor) -> list[Cancellation]:
        assert c.until is not None
        groups: list[Group] = [
            [Filter("state", "canceled")],
            [Filter("ext_order_id", "1", "notnull")],
            [Filter("updated_at", c.since, "gteq")],
            [Filter("updated_at", c.until, "lt")],
            [Filter("entity_id", str(c.cancel_after), "gt")],
        ]
        page = await self.client.search(
            ORDERS, "orders_search", groups, sort=[("entity_id", "ASC")]
        )
        found = [x for x in map(mapping.cancellation_from, page.items) if x is not None]
        c.cancel_after = max([c.cancel_after, *(int(r["entity_id"]) for r in page.items)])
        c.cancel_done = not page.has_more
        return found

    async def orders_by_id(self, ids: Iterable[int]) -> dict[int, JSON]:
        out: dict[int, JSON] = {}
        for batch in chunks([str(i) for i in sorted(ids)], self.settings.page_size):
            groups = in_groups("entity_id", batch)
            for raw in await self.client.search_all(ORDERS, "orders_search", groups):
                out[int(raw["entity_id"])] = raw
        return out
