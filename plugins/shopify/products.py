"""Product lookup: marketplace SKUs → Shopify variants, by sku, barcode, id or metafield."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from engine.models import ProductRef
from plugins.shopify import queries as q
from plugins.shopify.bulk import BulkBusy, BulkRunner
from plugins.shopify.client import ShopifyClient
from plugins.shopify.mapping import any_of, gid, legacy_id
from plugins.shopify.settings import Attribute, ShopifySettings

PAGE = 250


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def variant_key(attribute: Attribute, variant: Mapping[str, Any]) -> str | None:
    """The attribute's value on a variant (``id`` is the numeric variant id)."""
    if attribute.kind == "id":
        return str(variant.get("legacyResourceId") or legacy_id(variant["id"]))
    if attribute.kind == "metafield":
        value = (variant.get("metafield") or {}).get("value")
    else:
        value = variant.get(attribute.kind)
    return value.strip() if isinstance(value, str) and value.strip() else None


def product_ref(key: str, variant: Mapping[str, Any]) -> ProductRef:
    product = variant.get("product") or {}
    title = product.get("title")
    if variant.get("title") and variant["title"] != "Default Title":
        title = f"{title} - {variant['title']}" if title else variant["title"]
    return ProductRef(
        sku=key, product_id=product.get("id", ""), variant_id=variant["id"], title=title
    )


class ProductResolver:
    """Resolves batches of marketplace SKUs; metafield lookups use a cached index."""

    def __init__(
        self,
        client: ShopifyClient,
        settings: ShopifySettings,
        logger: logging.Logger,
        time_scale: float = 1.0,
    ) -> None:
        self.client = client
        self.settings = settings
        self.log = logger
        self.bulk = BulkRunner(client, settings, time_scale, logger)
        self._index: dict[tuple[str, str], tuple[float, dict[str, list[dict[str, Any]]]]] = {}

    async def resolve(self, attribute: Attribute, skus: Sequence[str]) -> dict[str, ProductRef]:
        wanted = list(dict.fromkeys(s.strip() for s in skus if s and s.strip()))
        found: dict[str, list[dict[str, Any]]] = {}
        if attribute.kind in ("sku", "barcode"):
            for batch in _chunks(wanted, self.settings.product_batch_size):
                async for variant in self._search(any_of(attribute.kind, batch)):
                    key = variant_key(attribute, variant)
                    if key is not None and key in batch:
                        found.setdefault(key, []).append(variant)
        elif attribute.kind == "id":
            found = await self._by_id(wanted)
        else:
            index = await self.metafield_index(attribute)
            found = {k: index[k] for k in wanted if k in index}
        result: dict[str, ProductRef] = {}
        for key in wanted:
            variants = {v["id"]: v for v in found.get(key, [])}
            if len(variants) > 1:
                self.log.warning(
                    "shopify: %s %r matches %d variants (%s); left out until it is unique",
                    attribute.kind,
                    key,
                    len(variants),
                    ", ".join(sorted(variants)),
                )
            elif variants:
                result[key] = product_ref(key, next(iter(variants.values())))
        return result

    async def _search(self, query: str) -> AsyncIterator[dict[str, Any]]:
        after = None
        while True:
            data = await self.client.execute(
                q.VARIANTS_SEARCH, {"first": PAGE, "after": after, "query": query}
            )
            page = data["productVariants"]
            for variant in page["nodes"]:
                yield variant
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    async def _by_id(self, wanted: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        ids: dict[str, str] = {}
        for value in wanted:
            try:
                ids[gid("ProductVariant", value)] = value
            except ValueError:
                self.log.info("shopify: %r is not a variant id; left out", value)
        found: dict[str, list[dict[str, Any]]] = {}
        for batch in _chunks(list(ids), self.settings.product_batch_size):
            data = await self.client.execute(q.VARIANTS_BY_ID, {"ids": list(batch)})
            for node in data["nodes"]:
                if node and node.get("id") in ids:
                    found.setdefault(ids[node["id"]], []).append(node)
        return found

    async def metafield_index(self, attribute: Attribute) -> dict[str, list[dict[str, Any]]]:
        """Value → variants for one metafield, built by reading every variant.

        Shopify's search only filters on metafields whose definition is
        admin-filterable (and returns *unfiltered* results otherwise), so the
        index is built by reading every variant's metafield and cached for
        ``metafield_cache_seconds``: with a bulk operation when the catalog has
        more than ``bulk_threshold`` variants (one query instead of one per 250),
        page by page otherwise or while another bulk operation is running.
        """
        cache_key = (attribute.namespace, attribute.key)
        cached = self._index.get(cache_key)
        if cached and time.monotonic() - cached[0] < self.settings.metafield_cache_seconds:
            return cached[1]
        variants = await self._bulk_variants(attribute)
        if variants is None:
            variants = [v async for v in self._metafield_pages(attribute)]
        index: dict[str, list[dict[str, Any]]] = {}
        for variant in variants:
            key = variant_key(attribute, variant)
            if key:
                index.setdefault(key, []).append(variant)
        self._index[cache_key] = (time.monotonic(), index)
        return index

    async def _bulk_variants(self, attribute: Attribute) -> list[dict[str, Any]] | None:
        """Every variant with the metafield, by a bulk operation; ``None`` when not worth it
        (a small catalog) or not possible now (another bulk operation runs)."""
        threshold = self.settings.bulk_threshold
        if not threshold:
            return None
        count = (await self.client.execute(q.VARIANTS_COUNT)).get("productVariantsCount") or {}
        if int(count.get("count") or 0) <= threshold:
            return None
        try:
            rows = await self.bulk.run(q.bulk_variants_query(attribute))
        except BulkBusy:
            self.log.info("shopify: a bulk operation is running; reading variants page by page")
            return None
        return [row for row in rows if "__parentId" not in row]

    async def _metafield_pages(self, attribute: Attribute) -> AsyncIterator[dict[str, Any]]:
        after = None
        while True:
            data = await self.client.execute(
                q.VARIANTS_METAFIELD,
                {
                    "first": PAGE,
                    "after": after,
                    "namespace": attribute.namespace,
                    "key": attribute.key,
                },
            )
            page = data["productVariants"]
            for variant in page["nodes"]:
                yield variant
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]
