"""Bulk operations: run a query over a whole catalog, wait for it, read its JSONL rows.

Shopify runs one bulk query operation per app and shop at a time
(``OPERATION_IN_PROGRESS`` otherwise). The result is a JSONL file, one row per
node of the query's connection, at a signed URL fetched without the API token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from engine.errors import FatalAPIError, RetriableAPIError
from plugins.shopify import queries as q
from plugins.shopify.client import PLATFORM, ShopifyClient, user_errors_message
from plugins.shopify.settings import ShopifySettings

FINISHED = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


class BulkBusy(RetriableAPIError):
    """Another bulk query operation of this app is still running in the shop."""


class BulkRunner:
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

    async def start(self, query: str) -> str:
        """Start a bulk query; its operation id. :class:`BulkBusy` when one is running."""
        data = await self.client.execute(q.BULK_RUN, {"query": query})
        result = data["bulkOperationRunQuery"]
        if result["userErrors"]:
            message = f"bulk operation refused: {user_errors_message(result['userErrors'])}"
            if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in result["userErrors"]):
                raise BulkBusy(message, platform=PLATFORM, operation="bulkOperationRunQuery")
            raise FatalAPIError(message, platform=PLATFORM, operation="bulkOperationRunQuery")
        return str(result["bulkOperation"]["id"])

    async def rows(self, operation: str) -> list[dict[str, Any]]:
        """Wait until the operation is done; its rows (``[]`` when it found nothing)."""
        deadline = time.monotonic() + self.settings.bulk_timeout / self.time_scale
        while True:
            status = (await self.client.execute(q.BULK_STATUS, {"id": operation}))["node"]
            if status is None:
                raise FatalAPIError(f"bulk operation {operation} not found", platform=PLATFORM)
            if status["status"] in FINISHED:
                break
            if time.monotonic() > deadline:
                raise RetriableAPIError(
                    f"bulk operation {operation} still {status['status']} after "
                    f"{self.settings.bulk_timeout:.0f}s",
                    platform=PLATFORM,
                )
            await asyncio.sleep(self.settings.bulk_poll_interval / self.time_scale)
        if status["status"] != "COMPLETED":
            raise RetriableAPIError(
                f"bulk operation {operation} ended {status['status']} ({status.get('errorCode')})",
                platform=PLATFORM,
            )
        if not status.get("url"):
            return []
        body = await self.client.download(status["url"])
        return [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]

    async def run(self, query: str) -> list[dict[str, Any]]:
        """Start a bulk query and return its rows."""
        return await self.rows(await self.start(query))
