"""Stock at the configured location, keyed by the identification attribute.

Paginated reads use ``location.inventoryLevels`` (``updated_at:>=`` for
changed-since reads). A full read of a catalog with more than
``bulk_threshold`` variants runs a bulk operation instead and pages through
its JSONL result. Cursors are JSON:

- ``{"v": 1, "since": <time or null>, "after": <page cursor>, "max": <time>}`` while paging;
- ``{"v": 1, "bulk": <BulkOperation GID>, "offset": n, "max": <time>}`` in a bulk result;
- ``{"v": 1, "since": <time>}`` after the last page (changed-since from then on).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from engine.errors import FatalAPIError
from engine.models import StockLevel, StockPage
from plugins.shopify import queries as q
from plugins.shopify.bulk import BulkRunner
from plugins.shopify.client import PLATFORM, ShopifyClient
from plugins.shopify.mapping import decode_cursor, encode_cursor, format_time, parse_time
from plugins.shopify.products import variant_key
from plugins.shopify.settings import Attribute, ShopifySettings

CURSOR_VERSION = 1


def _available(quantities: list[dict[str, Any]] | None) -> int | None:
    for quantity in quantities or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    return None


def stock_level(
    attribute: Attribute, item: dict[str, Any], level: dict[str, Any] | None
) -> StockLevel | None:
    """A level for one inventory item, or ``None`` when it cannot be keyed or is untracked."""
    if not level or not item.get("tracked") or not item.get("variant"):
        return None
    key = variant_key(attribute, item["variant"])
    quantity = _available(level.get("quantities"))
    if key is None or quantity is None:
        return None
    updated = level.get("updatedAt")
    return StockLevel(
        sku=key, quantity=quantity, updated_at=parse_time(updated) if updated else None
    )


class StockReader:
    def __init__(
        self,
        client: ShopifyClient,
        settings: ShopifySettings,
        time_scale: float,
        logger: logging.Logger,
    ) -> None:
        self.client = client
        self.settings = settings
        self.time_scale = time_scale
        self.log = logger
        self.bulk = BulkRunner(client, settings, time_scale, logger)
        self._bulk: dict[str, list[StockLevel]] = {}

    async def page(self, attribute: Attribute, location_id: str, cursor: str | None) -> StockPage:
        if cursor is None:
            state: dict[str, Any] = {"v": CURSOR_VERSION, "since": None}
            if (
                self.settings.bulk_threshold
                and await self._variant_count() > self.settings.bulk_threshold
            ):
                operation = await self._run_bulk(attribute, location_id)
                state = {"v": CURSOR_VERSION, "bulk": operation, "offset": 0}
        else:
            state = decode_cursor(cursor, "v")
        if state.get("bulk"):
            return await self._bulk_page(attribute, state)
        return await self._levels_page(attribute, location_id, state)

    def _final_cursor(self, since: datetime | None, newest: datetime | None) -> str:
        if newest is not None:
            moved = newest - timedelta(seconds=self.settings.lookback_seconds)
            since = max(since, moved) if since else moved
        return encode_cursor({"v": CURSOR_VERSION, "since": format_time(since) if since else None})

    async def _levels_page(
        self, attribute: Attribute, location_id: str, state: dict[str, Any]
    ) -> StockPage:
        since = parse_time(state["since"]) if state.get("since") else None
        data = await self.client.execute(
            q.STOCK_LEVELS,
            {
                "locationId": location_id,
                "first": self.settings.stock_page_size,
                "after": state.get("after"),
                "query": f"updated_at:>={format_time(since)}" if since else None,
                "namespace": attribute.namespace or "-",
                "key": attribute.key or "-",
                "withMetafield": attribute.kind == "metafield",
            },
        )
        if data["location"] is None:
            raise FatalAPIError(f"location {location_id} not found", platform=PLATFORM)
        connection = data["location"]["inventoryLevels"]
        levels = [stock_level(attribute, node["item"], node) for node in connection["nodes"]]
        stamps = [parse_time(n["updatedAt"]) for n in connection["nodes"] if n.get("updatedAt")]
        if state.get("max"):
            stamps.append(parse_time(state["max"]))
        newest = max(stamps, default=None)
        found = tuple(level for level in levels if level is not None)
        if connection["pageInfo"]["hasNextPage"]:
            cursor = encode_cursor(
                {
                    "v": CURSOR_VERSION,
                    "since": state.get("since"),
                    "after": connection["pageInfo"]["endCursor"],
                    "max": format_time(newest) if newest else None,
                }
            )
            return StockPage(levels=found, cursor=cursor, has_more=True)
        return StockPage(levels=found, cursor=self._final_cursor(since, newest), has_more=False)

    async def _variant_count(self) -> int:
        data = await self.client.execute(q.VARIANTS_COUNT)
        return int((data.get("productVariantsCount") or {}).get("count") or 0)

    # --- bulk operations ------------------------------------------------------------------

    async def _run_bulk(self, attribute: Attribute, location_id: str) -> str:
        operation = await self.bulk.start(q.bulk_stock_query(location_id, attribute))
        self._bulk[operation] = await self._bulk_levels(attribute, operation)
        return operation

    async def _bulk_levels(self, attribute: Attribute, operation: str) -> list[StockLevel]:
        levels = []
        for item in await self.bulk.rows(operation):
            if "__parentId" in item:
                continue
            level = stock_level(attribute, item, item.get("inventoryLevel"))
            if level is not None:
                levels.append(level)
        self.log.info("shopify: bulk operation %s returned %d stock levels", operation, len(levels))
        return levels

    async def _bulk_page(self, attribute: Attribute, state: dict[str, Any]) -> StockPage:
        operation = state["bulk"]
        levels = self._bulk.get(operation)
        if levels is None:
            levels = self._bulk[operation] = await self._bulk_levels(attribute, operation)
        offset = int(state.get("offset") or 0)
        size = self.settings.bulk_page_size
        page = tuple(levels[offset : offset + size])
        if offset + size < len(levels):
            cursor = encode_cursor(
                {"v": CURSOR_VERSION, "bulk": operation, "offset": offset + size}
            )
            return StockPage(levels=page, cursor=cursor, has_more=True)
        self._bulk.pop(operation, None)
        newest = max((lv.updated_at for lv in levels if lv.updated_at), default=None)
        return StockPage(levels=page, cursor=self._final_cursor(None, newest), has_more=False)
