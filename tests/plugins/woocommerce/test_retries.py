"""Transient failures from the simulator are retried; limits are respected."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.errors import RetriableAPIError
from engine.http import RetryPolicy
from engine.testing.ratelimit import Limit
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.simulator import WooCommerceSimulator

PRODUCTS = r"^GET /wp-json/wc/v3/products$"
FAST = RetryPolicy(max_tries=5, max_time=10, initial=0.01, max_wait=0.05)


@pytest.mark.parametrize(
    "kind", ["500", "503", "timeout_before", "reset_before", "malformed_json", "truncated"]
)
async def test_transient_failures_on_reads_are_retried(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, kind: str
) -> None:
    woo.client.api.retry = FAST
    sim.faults.add(kind, match=PRODUCTS, count=2)
    found = await woo.resolve_products("sku", ["MUG-1"])
    assert set(found) == {"MUG-1"}
    assert sim.faults.injected == {kind: 2}
    assert woo.client.api.stats["retries"] == 2


async def test_429_honours_retry_after(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    sim.faults.add("429", match=PRODUCTS, count=1)  # answers Retry-After: 1
    found = await woo.resolve_products("sku", ["CAP-2"])
    assert set(found) == {"CAP-2"}
    assert woo.client.api.stats["throttled"] == 1


async def test_retries_end_with_a_retriable_error(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    woo.client.api.retry = RetryPolicy(max_tries=3, max_time=5, initial=0.01, max_wait=0.02)
    sim.faults.add("500", match=PRODUCTS)
    with pytest.raises(RetriableAPIError) as err:
        await woo.resolve_products("sku", ["MUG-1"])
    assert err.value.status == 500
    assert sim.faults.injected["500"] == 3


async def test_idempotent_writes_are_retried(
    woo: WooCommerceConnector, sim: WooCommerceSimulator
) -> None:
    from tests.plugins.woocommerce.conftest import make_order

    woo.client.api.retry = FAST
    order = make_order("303-9000001-9000001", [("MUG-1", 1, "9.99", "1.60")])
    ref = await woo.create_order(order, await woo.resolve_products("sku", ["MUG-1"]))
    sim.faults.add("reset_after", match=rf"^PUT /wp-json/wc/v3/orders/{ref.id}$", count=1)
    await woo.cancel_order(ref, order)  # the PUT landed, the answer was lost, PUT again
    assert sim.get_order(int(ref.id))["status"] == "cancelled"


async def test_client_side_limit_keeps_under_the_hosts_limit(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(time_scale=100.0, rate_limit=Limit(rate=2.0, burst=2))
    sim.create_product("MUG-1", "9.99", 3)
    # The same published limit, a margin below, on the same (scaled) clock.
    woo = make_connector(sim.transport(), time_scale=100.0, requests_per_second=1.8, burst=1)
    for _ in range(12):
        await woo.resolve_products("sku", ["MUG-1"])
    assert sim.limiter.throttled == {}
    assert sim.limiter.allowed["rest"] == 12


async def test_the_hosts_429_is_retried(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(time_scale=20.0, rate_limit=Limit(rate=1.0, burst=1))
    sim.create_product("MUG-1", "9.99", 3)
    woo = make_connector(sim.transport())  # its own limit is far above the host's
    for _ in range(2):
        assert set(await woo.resolve_products("sku", ["MUG-1"])) == {"MUG-1"}
    assert sim.limiter.throttled["rest"] >= 1
    assert woo.client.api.stats["throttled"] >= 1
