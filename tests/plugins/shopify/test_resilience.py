"""Faults on the wire: retried queries, never-resent mutations, bad bodies."""

from __future__ import annotations

import pytest

from engine.errors import BadResponseError, RetriableAPIError
from engine.http import RetryPolicy
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .factories import eur_order

# engine/http.py passes tenacity's deprecated ``initial=`` (reported to the engine owner).


async def test_queries_are_retried_after_5xx_and_resets(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    connector.client.api.retry = RetryPolicy(max_tries=4, initial=0.001, max_wait=0.01)
    sim.faults.add("503", match="graphql", count=1)
    sim.faults.add("reset_before", match="graphql", count=1)

    refs = await connector.resolve_products("sku", ["SKU-1"])

    assert list(refs) == ["SKU-1"]
    assert sim.faults.injected == {"503": 1, "reset_before": 1}
    assert connector.client.api.stats["retries"] == 2


async def test_order_create_is_never_resent(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    """Shopify committed, the answer was lost: the engine's retry finds the order."""
    order = eur_order()
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    sim.faults.add("reset_after", match="graphql", count=1)

    with pytest.raises(RetriableAPIError):
        await connector.create_order(order, refs)

    assert sim.count_orders(order.marketplace_order_id) == 1
    again = await connector.find_order(order.marketplace_order_id)  # what the engine does next
    assert again is not None
    assert sim.count_orders(order.marketplace_order_id) == 1


@pytest.mark.parametrize("kind", ["html_200", "malformed_json", "truncated"])
async def test_bodies_that_are_not_the_api_are_bad_responses(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, kind: str
) -> None:
    sim.faults.add(kind, match="graphql", count=1)
    with pytest.raises(BadResponseError):
        await connector.resolve_products("sku", ["SKU-1"])
    assert list(await connector.resolve_products("sku", ["SKU-1"])) == ["SKU-1"]
