"""Transient failures: 5xx, 429 (simulator limit and injected), resets, timeouts."""

from __future__ import annotations

import pytest

from engine.errors import BadResponseError, RateLimited, RetriableAPIError
from engine.http import RetryPolicy
from engine.interfaces import ConnectorContext
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import MagentoSimulator
from tests.plugins.magento.conftest import ConnectorFactory, connector_for, settings_for


@pytest.mark.parametrize("kind", ["500", "503", "429", "reset_before", "timeout_before"])
async def test_reads_are_retried(
    sim: MagentoSimulator, make_connector: ConnectorFactory, kind: str
) -> None:
    sim.faults.add(kind, match=r"GET .*/V1/products", count=2)
    found = await make_connector().resolve_products("sku", ["SKU-1"])
    assert list(found) == ["SKU-1"]
    assert sim.faults.injected == {kind: 2}


async def test_html_error_page_is_a_bad_response_and_retried(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("html_200", match=r"GET .*/V1/orders", count=1)
    assert await make_connector().find_order("302-1111111-1111111") is None


async def test_gives_up_after_max_tries(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("503", match=r"GET .*/V1/orders")
    with pytest.raises(RetriableAPIError) as failed:
        await make_connector().find_order("302-1111111-1111111")
    assert failed.value.status == 503
    assert sim.faults.injected == {"503": 4}


async def test_persistent_garbage_surfaces_as_bad_response(
    sim: MagentoSimulator, make_connector: ConnectorFactory
) -> None:
    sim.faults.add("malformed_json", match=r"GET .*/V1/orders")
    with pytest.raises(BadResponseError):
        await make_connector().find_order("302-1111111-1111111")


async def test_simulator_rate_limit_answers_429_with_retry_after() -> None:
    sim = MagentoSimulator(rate=1, burst=2)
    sim.create_product("SKU-1", "1.00", 1)
    connector = connector_for(sim)
    try:
        for _ in range(2):
            await connector.find_order("x")
        connector.client.api.retry.max_tries = 1
        with pytest.raises(RateLimited) as limited:
            await connector.find_order("x")
    finally:
        await connector.aclose()
    assert limited.value.status == 429
    assert limited.value.retry_after == 1.0
    assert sim.limiter.throttled == {"rest": 1}


async def test_rate_limited_requests_succeed_after_waiting() -> None:
    sim = MagentoSimulator(rate=20, burst=1)
    context = ConnectorContext(connection_id="mg", transport=sim.transport())
    patient = RetryPolicy(max_tries=10, initial=1.0, max_wait=0.1)
    connector = MagentoConnector(settings_for(sim), context, retry=patient)
    try:
        for _ in range(3):
            assert await connector.find_order("x") is None
    finally:
        await connector.aclose()
    assert sim.limiter.throttled["rest"] >= 1
    assert sim.limiter.allowed["rest"] == 3
