"""Shipments and cancellations made in the shop since a cursor.

The window ``[since, until)`` ends ``settle_seconds`` before now (commit lag) and is
read per stream by keyset on ``entity_id``, so records changing during the read do
not shift pages. Shipments and cancelled orders are selected by ``updated_at`` (the
admin's "Add Tracking Number" saves the shipment); only orders with an
``ext_order_id`` count.

A shipment without tracking waits up to ``untracked_shipment_delay_seconds``: shops
often ship first and add the track minutes later. Its id stays in the cursor and is
read again by id every poll (a track added through ``POST /V1/shipment/track`` does
not touch the shipment) until a track comes or the delay is over.

A record that cannot be read goes into :attr:`ShopChanges.rejected`; the rest of the
page is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from engine.models import Cancellation, RejectedChange, Shipment, ShopChanges
from plugins.magento import mapping
from plugins.magento.client import Filter, Group, MagentoClient
from plugins.magento.mapping import JSON, Unreadable
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
    held: list[int] = field(default_factory=list)
    """Shipments waiting for a track, read again by id."""

    def encode(self) -> str:
        return json.dumps({"changes": asdict(self)}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> ChangeCursor:
        return cls(**json.loads(raw)["changes"])


@dataclass
class Found:
    """What one read turned up."""

    shipments: list[Shipment] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)
    rejected: list[RejectedChange] = field(default_factory=list)


def _key(raw: JSON) -> str:
    return str(raw.get("entity_id") or "?")


class ChangeReader:
    def __init__(
        self, client: MagentoClient, settings: MagentoSettings, now: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.settings = settings
        self.now = now

    @property
    def delay(self) -> timedelta:
        return timedelta(seconds=self.settings.untracked_shipment_delay_seconds)

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
        found = Found()
        if not c.ship_done and await self._shipments(c, found):
            await self._held(c, found)
        if not c.cancel_done:
            await self._cancellations(c, found)
        done = c.ship_done and c.cancel_done
        if done:
            until = mapping.parse_magento_time(c.until)
            since = until - timedelta(seconds=s.lookback_seconds)
            c = ChangeCursor(since=mapping.to_magento_time(since), held=c.held)
        return ShopChanges(
            shipments=tuple(found.shipments),
            cancellations=tuple(found.cancellations),
            rejected=tuple(found.rejected),
            cursor=c.encode(),
            has_more=not done,
        )

    async def _shipments(self, c: ChangeCursor, found: Found) -> bool:
        """One page of the window; ``True`` when it was the last."""
        assert c.until is not None
        groups: list[Group] = [
            [Filter("updated_at", c.since, "gteq")],
            [Filter("updated_at", c.until, "lt")],
            [Filter("entity_id", str(c.ship_after), "gt")],
        ]
        page = await self.client.search(
            SHIPMENTS, "shipments_search", groups, sort=[("entity_id", "ASC")]
        )
        await self._sort(page.items, c, found)
        ids = [int(r["entity_id"]) for r in page.items if str(r.get("entity_id", "")).isdigit()]
        c.ship_after = max([c.ship_after, *ids])
        c.ship_done = not page.has_more
        return c.ship_done

    async def _held(self, c: ChangeCursor, found: Found) -> None:
        """Shipments waiting for a track: reported once tracked or out of time."""
        waiting, c.held = c.held, []
        for batch in chunks([str(i) for i in waiting], self.settings.page_size):
            raws = await self.client.search_all(
                SHIPMENTS, "shipments_search", in_groups("entity_id", batch)
            )
            await self._sort(raws, c, found)

    async def _sort(self, raws: list[JSON], c: ChangeCursor, found: Found) -> None:
        """Report, hold or reject each shipment."""
        order_ids = {int(r["order_id"]) for r in raws if str(r.get("order_id", "")).isdigit()}
        orders = await self.orders_by_id(order_ids)
        now = self.now()
        for raw in raws:
            order = orders.get(int(raw["order_id"])) if str(raw.get("order_id")).isdigit() else None
            try:
                if order is None or not str(raw.get("entity_id", "")).isdigit():
                    raise Unreadable(f"no order {raw.get('order_id')!r} for this shipment")
                shipments = mapping.shipments_from(raw, order, now, self.delay)
            except Unreadable as exc:
                found.rejected.append(
                    RejectedChange(
                        kind="shipment",
                        key=_key(raw),
                        marketplace_order_id=(order or {}).get("ext_order_id") or None,
                        message=str(exc),
                    )
                )
                continue
            if shipments is None:
                if int(raw["entity_id"]) not in c.held:
                    c.held.append(int(raw["entity_id"]))
                continue
            if int(raw["entity_id"]) in c.held:
                c.held.remove(int(raw["entity_id"]))
            found.shipments += shipments

    async def _cancellations(self, c: ChangeCursor, found: Found) -> None:
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
        for raw in page.items:
            try:
                cancellation = mapping.cancellation_from(raw)
            except Unreadable as exc:
                found.rejected.append(
                    RejectedChange(
                        kind="cancellation",
                        key=_key(raw),
                        marketplace_order_id=str(raw["ext_order_id"]),
                        message=str(exc),
                    )
                )
                continue
            if cancellation is not None:
                found.cancellations.append(cancellation)
        ids = [int(r["entity_id"]) for r in page.items if str(r.get("entity_id", "")).isdigit()]
        c.cancel_after = max([c.cancel_after, *ids])
        c.cancel_done = not page.has_more

    async def orders_by_id(self, ids: Iterable[int]) -> dict[int, JSON]:
        out: dict[int, JSON] = {}
        for batch in chunks([str(i) for i in sorted(ids)], self.settings.page_size):
            groups = in_groups("entity_id", batch)
            for raw in await self.client.search_all(ORDERS, "orders_search", groups):
                out[int(raw["entity_id"])] = raw
        return out
