"""Shop → marketplace events: fulfillments (shipments) and cancelled orders.

Orders created by ordersync are read by ``updated_at:>=`` the cursor's time,
sorted by ``UPDATED_AT`` and paginated with Shopify's page cursor. The cursor
handed to the engine is JSON: ``{"since", "after", "max", "seen"}`` while
paging, ``{"since", "seen"}`` after the last page. ``since`` then moves to the
newest ``updatedAt`` seen minus ``lookback_seconds`` (search indexing lag), and
``seen`` (event id → its timestamp, for events at or after ``since``) keeps the
re-read window from reporting an event twice. The first read (``cursor=None``)
starts at the newest change to an ordersync order, in Shopify's clock, with
what existed then in ``seen``: no history is replayed and clock skew loses nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.models import Cancellation, Shipment, ShopChanges
from plugins.shopify import queries as q
from plugins.shopify.client import ShopifyClient
from plugins.shopify.mapping import (
    cancellation,
    decode_cursor,
    encode_cursor,
    format_time,
    parse_time,
    search_value,
    shipment,
)
from plugins.shopify.settings import ShopifySettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DETAILS_BATCH = 10
"""Fulfillments per ``nodes(ids:)`` call; keeps the requested cost under 1000."""


class ChangeReader:
    def __init__(
        self, client: ShopifyClient, settings: ShopifySettings, logger: logging.Logger
    ) -> None:
        self.client = client
        self.settings = settings
        self.log = logger

    async def page(self, cursor: str | None) -> ShopChanges:
        if cursor is None:
            return ShopChanges(cursor=encode_cursor(await self._start()))
        state = decode_cursor(cursor, "since")
        since = parse_time(state["since"])
        seen: dict[str, str] = dict(state.get("seen") or {})
        data = await self._orders(since, state.get("after"))
        orders = [o for o in data["nodes"] if self._ours(o)]
        stamps = [parse_time(o["updatedAt"]) for o in data["nodes"]]
        if state.get("max"):
            stamps.append(parse_time(state["max"]))
        newest = max(stamps, default=None)
        cancellations: list[Cancellation] = []
        for order in orders:
            stamp = order.get("cancelledAt")
            if stamp and parse_time(stamp) >= since and seen.get(order["id"]) != stamp:
                cancellations.append(cancellation(order))
                seen[order["id"]] = stamp
        shipments = await self._shipments(orders, since, seen)
        if data["pageInfo"]["hasNextPage"]:
            next_state: dict[str, Any] = {
                "since": state["since"],
                "after": data["pageInfo"]["endCursor"],
                "max": format_time(newest) if newest else None,
                "seen": seen or None,
            }
        else:
            next_since = since
            if newest is not None:
                next_since = max(since, newest - timedelta(seconds=self.settings.lookback_seconds))
            kept = {k: v for k, v in seen.items() if parse_time(v) >= next_since}
            next_state = {"since": format_time(next_since), "seen": kept or None}
        return ShopChanges(
            shipments=tuple(shipments),
            cancellations=tuple(cancellations),
            cursor=encode_cursor(next_state),
            has_more=bool(data["pageInfo"]["hasNextPage"]),
        )

    async def _orders(self, since: datetime, after: str | None) -> dict[str, Any]:
        query = f"updated_at:>={format_time(since)} tag:{search_value(self.settings.order_tag)}"
        data = await self.client.execute(
            q.CHANGED_ORDERS,
            {"first": self.settings.orders_page_size, "after": after, "query": query},
        )
        return dict(data["orders"])

    async def _start(self) -> dict[str, Any]:
        """The first cursor: "now" in Shopify's clock, with what already happened then.

        ``since`` is the newest ``updatedAt`` of an ordersync order (Shopify's own
        clock, so local clock skew cannot lose events); ``seen`` holds the
        fulfillments and cancellations that already exist at that second, so
        history is not replayed.
        """
        tag = f"tag:{search_value(self.settings.order_tag)}"
        nodes = (await self.client.execute(q.LATEST_ORDER, {"query": tag}))["orders"]["nodes"]
        if not nodes:
            return {"since": format_time(EPOCH)}
        since = parse_time(nodes[0]["updatedAt"])
        seen: dict[str, str] = {}
        after = None
        while True:
            data = await self._orders(since, after)
            for order in data["nodes"]:
                if order.get("cancelledAt"):
                    seen[order["id"]] = order["cancelledAt"]
                for fulfillment in await self._fulfillments(order):
                    seen[fulfillment["id"]] = fulfillment["updatedAt"]
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        kept = {k: v for k, v in seen.items() if parse_time(v) >= since}
        return {"since": format_time(since), "seen": kept or None}

    def _ours(self, order: dict[str, Any]) -> bool:
        """Only orders ordersync created: a marketplace id plus our tag or source name."""
        if not order.get("sourceIdentifier"):
            return False
        return self.settings.order_tag in (order.get("tags") or []) or (
            order.get("sourceName") == self.settings.source_name
        )

    async def _fulfillments(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """All fulfillments of an order (the page query lists the first five)."""
        fulfillments: list[dict[str, Any]] = order.get("fulfillments") or []
        if (order.get("fulfillmentsCount") or {}).get("count", 0) > len(fulfillments):
            data = await self.client.execute(q.ORDER_FULFILLMENTS, {"id": order["id"]})
            fulfillments = (data["order"] or {}).get("fulfillments") or []
        return fulfillments

    async def _shipments(
        self, orders: list[dict[str, Any]], since: datetime, seen: dict[str, str]
    ) -> list[Shipment]:
        """Shipments for new or changed fulfillments; records them in ``seen``."""
        wanted: dict[str, dict[str, Any]] = {}
        for order in orders:
            for fulfillment in await self._fulfillments(order):
                stamp = fulfillment["updatedAt"]
                if (
                    fulfillment["status"] == "SUCCESS"
                    and parse_time(stamp) >= since
                    and seen.get(fulfillment["id"]) != stamp
                ):
                    wanted[fulfillment["id"]] = order
                    seen[fulfillment["id"]] = stamp
        result: list[Shipment] = []
        ids = list(wanted)
        for start in range(0, len(ids), DETAILS_BATCH):
            data = await self.client.execute(
                q.FULFILLMENT_DETAILS, {"ids": ids[start : start + DETAILS_BATCH]}
            )
            for detail in data["nodes"]:
                if not detail:
                    continue
                lines = await self._lines(detail)
                found = shipment(wanted[detail["id"]], detail, lines)
                if found is not None:
                    result.append(found)
        return result

    async def _lines(self, detail: dict[str, Any]) -> list[dict[str, Any]]:
        connection = detail["fulfillmentLineItems"]
        lines = list(connection["nodes"])
        while connection["pageInfo"]["hasNextPage"]:
            data = await self.client.execute(
                q.FULFILLMENT_LINES,
                {"id": detail["id"], "after": connection["pageInfo"]["endCursor"]},
            )
            connection = data["fulfillment"]["fulfillmentLineItems"]
            lines.extend(connection["nodes"])
        return lines
