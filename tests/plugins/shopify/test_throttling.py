"""Cost-based throttling: wait before sending, survive THROTTLED, give up cleanly."""

from __future__ import annotations

import pytest

from engine.errors import RateLimited
from plugins.shopify import ShopifyConnector
from plugins.shopify.client import CostBucket
from plugins.shopify.simulator import ShopifySimulator

from .conftest import TIME_SCALE, ConnectorFactory


async def test_client_waits_for_cost_points_instead_of_being_throttled(
    make_connector: ConnectorFactory,
) -> None:
    sim = ShopifySimulator(time_scale=TIME_SCALE, bucket_size=1000, restore_rate=20)
    for n in range(100):
        sim.add_product(f"T-{n:03d}", quantity=n)
    connector = make_connector(transport=sim.transport(), bulk_threshold=0)

    for _ in range(6):  # each page requests 503 points and really costs ~400
        page = await connector.stock_levels("sku", None)
        assert len(page.levels) == 100

    assert connector.client.bucket.waits >= 2
    assert sim.limiter.throttled == 0
    assert connector.client.stats["throttled"] == 0


async def test_throttled_answer_is_waited_out_and_retried(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    assert (await connector.check()).ok
    sim.set_available_points(0)  # another app drained the bucket

    refs = await connector.resolve_products("sku", ["SKU-1"])

    assert list(refs) == ["SKU-1"]
    assert sim.limiter.throttled == 1
    assert connector.client.stats["throttled"] == 1
    assert connector.client.bucket.waits >= 1


async def test_gives_up_after_max_throttle_retries(make_connector: ConnectorFactory) -> None:
    sim = ShopifySimulator(time_scale=TIME_SCALE, restore_rate=0.001)
    connector = make_connector(transport=sim.transport(), max_throttle_retries=2)
    assert (await connector.check()).ok
    sim.set_available_points(0)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    connector.client.bucket.sleep = fake_sleep

    with pytest.raises(RateLimited) as caught:
        await connector.resolve_products("sku", ["SKU-1"])

    assert caught.value.code == "THROTTLED"
    assert connector.client.stats["throttled"] == 3
    assert len(slept) == 2 and all(s > 0 for s in slept)


async def test_cost_bucket_waits_for_the_deficit() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = CostBucket(time_scale=2.0, clock=lambda: now[0], sleep=sleep)
    await bucket.acquire(500)
    assert slept == []  # nothing known yet: send and learn

    bucket.update({"maximumAvailable": 2000.0, "currentlyAvailable": 100.0, "restoreRate": 100.0})
    await bucket.acquire(502)
    assert slept == [pytest.approx((502 - 100) / 100 / 2.0)]
    assert bucket.current() == pytest.approx(0.0, abs=1e-6)

    now[0] += 1.0  # 1 real second = 2 simulated seconds = 200 points
    assert bucket.current() == pytest.approx(200.0)
    assert bucket.wait_time(5000) == pytest.approx((2000 - 200) / 100 / 2.0)  # capped at maximum
