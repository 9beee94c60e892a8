"""Usage plans: the published table, the simulator's 429s and the connector's limiter."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import httpx
import pytest

from engine.interfaces import ConnectorContext
from engine.models import Order, StockLevel
from plugins.amazon.client import (
    OPERATIONS,
    RATE_LIMITS,
    SpApiClient,
    client_limits,
    sp_error_parser,
)
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import (
    ConnectorFactory,
    hours_ago,
    read_orders,
    settings_for,
    token_headers,
)
from tests.plugins.amazon.contract import Models
from tests.plugins.amazon.virtual_time import run_virtual

USAGE_PLAN = re.compile(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|")


def test_rate_table_matches_the_models() -> None:
    """Every rate and burst is the one printed in the operation's description."""
    models = Models()
    for op in OPERATIONS:
        model_op = models.find(op.method, op.path.replace("{", "").replace("}", ""))
        assert model_op is not None and model_op.operation_id == op.name
        rate, burst = USAGE_PLAN.findall(model_op.spec["description"])[0]
        assert (op.rate, op.burst) == (float(rate), int(burst)), op.name


async def test_simulator_answers_429_beyond_the_burst() -> None:
    sim = AmazonSimulator(time_scale=1.0)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        headers = await token_headers(client, sim)
        answers = [
            await client.get("/orders/2026-01-01/orders/1", headers=headers) for _ in range(31)
        ]
    assert [a.status_code for a in answers[:30]] == [404] * 30  # burst 30, then empty
    throttled = answers[30]
    assert throttled.status_code == 429
    assert throttled.json() == {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
            }
        ]
    }
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "0.5"
    assert sim.limiter.throttled == {"getOrder": 1}


async def test_connector_limiter_keeps_below_the_limit(
    make_connector: ConnectorFactory,
) -> None:
    sim = AmazonSimulator(time_scale=100.0)  # getOrder: 50 requests/s, burst 30
    connector = make_connector(transport=sim.transport(), time_scale=100.0)
    started = time.monotonic()
    for _ in range(40):
        await connector.get_order("000-0000000-0000000")
    elapsed = time.monotonic() - started

    assert sim.limiter.throttled == {}
    assert sim.calls["getOrder"] == 40
    assert elapsed >= 9 / 50  # the 10 calls past the burst waited for tokens
    assert connector.client.api.stats["throttled"] == 0


def test_client_keeps_a_tenth_of_a_second_of_refill_unused_but_at_most_three_tokens() -> None:
    real = client_limits(time_scale=1.0)
    assert real["patchListingsItem"].burst == pytest.approx(5 - 5 * 0.1)
    assert real["confirmShipment"].burst == pytest.approx(10 - 2 * 0.1)
    fast = client_limits(time_scale=100.0)  # 0.1 s refills 50 patch tokens at 100x
    assert fast["patchListingsItem"].burst == 5 - 3
    assert fast["confirmShipment"].burst == 10 - 3
    assert fast["searchOrders"].burst == pytest.approx(20 - 0.0056 * 100 * 0.1)
    assert all(fast[name].rate == limit.rate for name, limit in RATE_LIMITS.items())


async def test_patches_at_100x_stay_below_the_limit_with_the_capped_headroom(
    make_connector: ConnectorFactory,
) -> None:
    sim = AmazonSimulator(time_scale=100.0)  # patchListingsItem: 500 requests/s, burst 5
    connector = make_connector(
        transport=sim.transport(), time_scale=100.0, stock_batch_threshold=100
    )

    results = await connector.push_stock(
        [StockLevel(sku=f"SKU-{i}", quantity=i) for i in range(60)]
    )

    assert all(r.ok for r in results) and len(results) == 60
    assert sim.calls["patchListingsItem"] == 60
    assert sim.limiter.throttled == {}
    assert connector.client.api.stats["throttled"] == 0


async def test_throttled_without_retry_after_waits_one_token_and_succeeds(
    make_connector: ConnectorFactory,
) -> None:
    """Another client of the same seller drained the bucket: 429, wait 1/rate, retry."""
    sim = AmazonSimulator(time_scale=10.0)  # getOrder: 5 requests/s
    connector = make_connector(transport=sim.transport(), time_scale=10.0)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as other:
        headers = await token_headers(other, sim)
        while (await other.get("/orders/2026-01-01/orders/1", headers=headers)).status_code != 429:
            pass

    assert await connector.get_order("000-0000000-0000000") is None

    assert sim.limiter.throttled["getOrder"] >= 1
    assert connector.client.api.stats["throttled"] >= 1
    assert connector.client.api.stats["retries"] >= 1


def _response(
    status: int, headers: dict[str, str], path: str = "/orders/2026-01-01/orders/1"
) -> httpx.Response:
    request = httpx.Request("GET", "https://sellingpartnerapi-eu.amazon.com" + path)
    return httpx.Response(status, headers=headers, request=request)


def test_backoff_time(make_connector: ConnectorFactory) -> None:
    client: SpApiClient = make_connector(time_scale=1.0).client
    assert client.backoff_time(_response(429, {"x-amzn-RateLimit-Limit": "0.5"})) == 2.0
    assert client.backoff_time(_response(429, {})) == 2.0  # getOrder's published rate
    search = "/orders/2026-01-01/orders"
    assert client.backoff_time(_response(429, {}, search)) == pytest.approx(1 / 0.0056)
    assert client.backoff_time(_response(429, {"retry-after": "3"})) is None
    assert client.backoff_time(_response(503, {"x-amzn-RateLimit-Limit": "0.5"})) is None


def test_announced_rate_is_adopted(make_connector: ConnectorFactory) -> None:
    client: SpApiClient = make_connector(time_scale=10.0).client
    client.on_response("getOrder", _response(200, {"x-amzn-RateLimit-Limit": "20"}))
    assert client.limiter.limits["getOrder"].rate == pytest.approx(2.0)  # 20 at 10x speed
    # headroom: one token or 0.1 s of refill, whichever is less (0.5 tokens at 5/s)
    assert client.limiter.limits["getOrder"].burst == RATE_LIMITS["getOrder"].burst - 0.5
    client.on_response("getFeed", _response(200, {"x-amzn-RateLimit-Limit": "garbage"}))
    assert client.limiter.limits["getFeed"].rate == RATE_LIMITS["getFeed"].rate


async def test_simulator_announces_its_scaled_rate_which_changes_nothing(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    await connector.get_order("000-0000000-0000000")
    assert connector.client.limiter.limits["getOrder"].rate == RATE_LIMITS["getOrder"].rate


def test_error_parser_reads_amazons_error_list() -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Invalid Input", "details": "shipDate"}]}
    response = httpx.Response(400, json=body)
    assert sp_error_parser(response) == ("InvalidInput", "Invalid Input (shipDate)")
    same = {
        "errors": [{"code": "InvalidInput", "message": "Invalid Input", "details": "Invalid Input"}]
    }
    assert sp_error_parser(httpx.Response(400, json=same)) == ("InvalidInput", "Invalid Input")
    assert sp_error_parser(httpx.Response(502, text="<html>Bad Gateway</html>")) == (
        None,
        "<html>Bad Gateway</html>",
    )


def test_429_at_real_speed_waits_one_token_and_empties_the_local_bucket() -> None:
    """time_scale 1 on a virtual clock: searchOrders refills one token in 178.6 s.

    Another client of the seller emptied Amazon's bucket while ours is full. The
    first page meets a 429 and waits 1/rate (jittered, not cut to 30 s); the 429
    empties our bucket, so the second page waits for a token instead of meeting
    a second 429.
    """
    sim = AmazonSimulator(time_scale=1.0, seed=3)
    start = hours_ago(3)
    for n in range(3):
        sim.create_order({"SKU": 1}, created_at=start + timedelta(minutes=n))
    waits: list[float] = []

    async def scenario() -> list[Order]:
        async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as other:
            headers = await token_headers(other, sim)
            query = {"lastUpdatedAfter": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
            while (
                await other.get("/orders/2026-01-01/orders", params=query, headers=headers)
            ).status_code != 429:
                pass
        context = ConnectorContext("amazon-test", transport=sim.transport(), time_scale=1.0)
        connector = AmazonConnector(settings_for(sim, page_size=2), context)
        connector.now = sim.now

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(seconds)

        connector.client.api.sleep = sleep
        try:
            return await read_orders(connector, start, sim.now())
        finally:
            await connector.aclose()

    orders, elapsed = run_virtual(scenario(), on_advance=sim.advance)

    assert len(orders) == 3
    one_token = 1 / 0.0056
    assert len(waits) == 1 and one_token <= waits[0] <= one_token * 1.1
    assert sim.limiter.throttled == {"searchOrders": 2}  # the other client's and ours
    assert elapsed >= 2 * one_token - 0.01  # page 2 waited for a token too


def _paced_reads(sim: AmazonSimulator, calls: int) -> tuple[AmazonConnector, float]:
    """``calls`` getOrder reads at time_scale 1 on a virtual clock; the connector and
    the virtual seconds they took."""
    context = ConnectorContext("amazon-test", transport=sim.transport(), time_scale=1.0)
    connector = AmazonConnector(settings_for(sim), context)
    connector.now = sim.now

    async def scenario() -> None:
        try:
            for _ in range(calls):
                assert await connector.get_order("000-0000000-0000000") is None
        finally:
            await connector.aclose()

    _, elapsed = run_virtual(scenario(), on_advance=sim.advance)
    return connector, elapsed


def test_connector_paces_to_a_higher_rate_announced_for_this_seller() -> None:
    """getOrder at 5/s instead of the published 0.5/s: 60 calls past the burst take
    12 s, not 120 s, and none is throttled."""
    sim = AmazonSimulator(time_scale=1.0, usage_plans={"getOrder": (5.0, 30)})
    connector, elapsed = _paced_reads(sim, 90)
    assert connector.client.limiter.limits["getOrder"].rate == 5.0
    assert sim.limiter.throttled == {}
    assert 11.0 <= elapsed <= 13.0


def test_connector_paces_to_a_lower_rate_announced_for_this_seller() -> None:
    """getOrder at 0.1/s with a burst of 2: Amazon announces no burst, so one 429 is
    met when its bucket runs dry; it empties ours and the rest keep to 0.1/s."""
    sim = AmazonSimulator(time_scale=1.0, usage_plans={"getOrder": (0.1, 2)})
    connector, elapsed = _paced_reads(sim, 12)
    assert connector.client.limiter.limits["getOrder"].rate == 0.1
    assert sim.limiter.throttled == {"getOrder": 1}
    assert elapsed >= (12 - 2) / 0.1 - 0.01
