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

A fulfilment or cancellation that cannot be passed on as it is (a quantity
below 1, an absurdly long or mistyped field, a field error in Shopify's answer)
is returned in ``ShopChanges.rejected`` with a message naming the order and the
field; the other records of the page come through. It is read again when it
changes in the shop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from engine.models import Cancellation, RejectedChange, Shipment, ShopChanges
from plugins.shopify import queries as q
from plugins.shopify.client import ShopifyClient
from plugins.shopify.mapping import (
    UnreadableChange,
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
MAX_PROBLEM = 200
UNREADABLE = (UnreadableChange, ValidationError, KeyError, TypeError, AttributeError, IndexError)
"""What mapping a record the shop sent in an unexpected shape can raise."""


def _problem(exc: Exception) -> str:
    """The reason a record is unreadable, without echoing (huge) values."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, KeyError):
        return f"field {exc} is missing"
    if isinstance(exc, UnreadableChange):
        return str(exc)
    return f"unexpected shape ({type(exc).__name__})"


def _safe_time(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except (TypeError, ValueError, AttributeError):
        return None


def _rejected(
    kind: Literal["shipment", "cancellation"], key: str, order: Mapping[str, Any], problem: str
) -> RejectedChange:
    source = order.get("sourceIdentifier")
    marketplace = source if isinstance(source, str) and len(source) <= 100 else None
    what = "fulfilment" if kind == "shipment" else "cancellation of"
    name = order.get("name") if isinstance(order.get("name"), str) else order.get("id")
    if len(problem) > MAX_PROBLEM:  # Shopify's own error text may quote the value
        problem = problem[: MAX_PROBLEM - 3] + "..."
    message = (
        f"Shopify order {name} (marketplace order {marketplace or '?'}): {what} {key}: {problem}"
    )
    return RejectedChange(kind=kind, key=key, marketplace_order_id=marketplace, message=message)


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
        stamps = [t for o in data["nodes"] if (t := _safe_time(o.get("updatedAt"))) is not None]
        if state.get("max"):
            stamps.append(parse_time(state["max"]))
        newest = max(stamps, default=None)
        cancellations: list[Cancellation] = []
        rejected: list[RejectedChange] = []
        for order in orders:
            stamp = order.get("cancelledAt")
            if not stamp or seen.get(order["id"]) == stamp:
                continue
            try:
                found = cancellation(order)
            except UNREADABLE as exc:
                rejected.append(_rejected("cancellation", order["id"], order, _problem(exc)))
                seen[order["id"]] = str(stamp)
                continue
            if found.cancelled_at >= since:
                cancellations.append(found)
                seen[order["id"]] = stamp
        shipments, unreadable = await self._shipments(orders, since, seen)
        rejected += unreadable
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
            kept = {k: v for k, v in seen.items() if (_safe_time(v) or EPOCH) >= next_since}
            next_state = {"since": format_time(next_since), "seen": kept or None}
        return ShopChanges(
            shipments=tuple(shipments),
            cancellations=tuple(cancellations),
            rejected=tuple(rejected),
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
        kept = {k: v for k, v in seen.items() if (_safe_time(v) or EPOCH) >= since}
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
    ) -> tuple[list[Shipment], list[RejectedChange]]:
        """Shipments for new or changed fulfillments (recorded in ``seen``), and the
        fulfillments that cannot be read."""
        wanted: dict[str, dict[str, Any]] = {}
        rejected: list[RejectedChange] = []
        for order in orders:
            for fulfillment in await self._fulfillments(order):
                if not isinstance(fulfillment, Mapping) or not isinstance(
                    fulfillment.get("id"), str
                ):
                    problem = "a fulfilment without an id"
                    rejected.append(_rejected("shipment", f"{order['id']}/?", order, problem))
                    continue
                key, stamp = fulfillment["id"], fulfillment.get("updatedAt")
                if fulfillment.get("status") != "SUCCESS" or seen.get(key) == stamp:
                    continue
                moment = _safe_time(stamp)
                if moment is None:
                    problem = _problem(UnreadableChange(f"updatedAt is not a time: {stamp!r:.60}"))
                    rejected.append(_rejected("shipment", key, order, problem))
                    seen[key] = str(stamp)
                elif moment >= since:
                    wanted[key] = order
                    seen[key] = stamp
        result: list[Shipment] = []
        ids = list(wanted)
        for start in range(0, len(ids), DETAILS_BATCH):
            batch = ids[start : start + DETAILS_BATCH]
            answer = await self.client.execute_full(
                q.FULFILLMENT_DETAILS, {"ids": batch}, partial=True
            )
            broken = self._broken_nodes(answer.errors, len(batch), "OrdersyncFulfillmentDetails")
            nodes = answer.data.get("nodes") or []
            for index, key in enumerate(batch):
                order = wanted[key]
                detail = nodes[index] if index < len(nodes) else None
                if index in broken:
                    rejected.append(_rejected("shipment", key, order, broken[index]))
                    continue
                if not detail:
                    continue  # deleted since the order was read
                try:
                    result.append(shipment(order, detail, await self._lines(detail)))
                except UNREADABLE as exc:
                    rejected.append(_rejected("shipment", key, order, _problem(exc)))
        return result, rejected

    def _broken_nodes(
        self, errors: list[dict[str, Any]], size: int, operation: str
    ) -> dict[int, str]:
        """Index → problem for field errors under ``nodes.<index>``; other errors raise."""
        broken: dict[int, str] = {}
        for error in errors:
            path = error["path"]
            if (
                len(path) < 2
                or path[0] != "nodes"
                or not isinstance(path[1], int)
                or path[1] >= size
            ):
                raise self.client.classify(errors, operation)
            where = ".".join(str(p) for p in path[2:]) or "the fulfilment"
            broken.setdefault(path[1], f"Shopify could not return {where}: {error.get('message')}")
        return broken

    async def _lines(self, detail: dict[str, Any]) -> list[dict[str, Any]]:
        connection = detail["fulfillmentLineItems"]
        lines = list(connection["nodes"])
        while connection["pageInfo"]["hasNextPage"]:
            answer = await self.client.execute_full(
                q.FULFILLMENT_LINES,
                {"id": detail["id"], "after": connection["pageInfo"]["endCursor"]},
                partial=True,
            )
            if answer.errors:
                first = answer.errors[0]
                where = ".".join(str(p) for p in first["path"])
                raise UnreadableChange(f"Shopify could not return {where}: {first.get('message')}")
            connection = answer.data["fulfillment"]["fulfillmentLineItems"]
            lines.extend(connection["nodes"])
        return lines
