"""The main calls replayed from cassettes recorded against the simulator on loopback.

Replay is the default (``record_mode="none"``; no server, no network). To record again:
``ORDERSYNC_RECORD_CASSETTES=1 .venv/bin/pytest tests/plugins/magento/test_cassettes.py``.
The ``Authorization`` header (bearer token or OAuth signature) is filtered out.
Requests match on their JSON body too, and every recorded call must be made again:
a changed payload or a call no longer sent fails the replay.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import vcr
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException

from engine.interfaces import ConnectorContext
from plugins.magento.changes import ChangeCursor
from plugins.magento.connector import MagentoConnector
from plugins.magento.simulator import Credentials, MagentoSimulator
from tests.plugins.magento.conftest import EAN_1, FAST_RETRY, eur_order, settings_for

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "magento"
RECORD = os.environ.get("ORDERSYNC_RECORD_CASSETTES") == "1"
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
REPLAY_URL = "http://127.0.0.1:8104"  # any port: cassettes match without it

VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    filter_headers=["authorization"],
    match_on=["method", "scheme", "host", "path", "query", "body"],
    decode_compressed_response=True,
    drop_unused_requests=RECORD,  # re-recorded: only what the test sends now (replay: no writes)
)


@pytest.fixture
def shop() -> MagentoSimulator:
    sim = MagentoSimulator(rate_limits=False, start_time=START)
    sim.create_product("SKU-1", "20.00", 10, ean=EAN_1, name="Blue mug")
    sim.create_product("SKU-2", "5.00", 3, name="Coaster")
    sim.create_product("SKU-3", "7.00", 5, ean="5901234123457", name="Spoon")
    return sim


@pytest.fixture
async def connect(shop: MagentoSimulator, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``connect(**settings)`` inside the test's cassette, served on loopback when recording."""
    stack = ExitStack()
    made: list[MagentoConnector] = []
    url = REPLAY_URL
    if RECORD:
        from engine.testing.server import serve_in_thread

        url = stack.enter_context(serve_in_thread(shop.app))
    cassette = stack.enter_context(VCR.use_cassette(f"{request.node.name}.yaml"))

    def factory(**overrides: Any) -> MagentoConnector:
        settings = settings_for(shop, base_url=url, **overrides)
        connector = MagentoConnector(
            settings, ConnectorContext(connection_id="mg"), retry=FAST_RETRY
        )
        connector.now = lambda: START + timedelta(hours=1)
        made.append(connector)
        return connector

    with stack:
        yield factory
        for connector in made:
            await connector.aclose()
        if not RECORD:
            assert unplayed(cassette) == [], "recorded calls the connector no longer makes"


def unplayed(cassette: Cassette) -> list[str]:
    """``METHOD path`` of each recorded interaction the test did not play."""
    return [
        f"{r.method} {r.path}"
        for n, r in enumerate(cassette.requests)
        if not cassette.play_counts[n]
    ]


async def test_check(connect: Any) -> None:
    result = await connect(auth_mode="bearer").check()
    assert result.ok
    assert result.details["base_currency"] == "EUR"


async def test_resolve_products(connect: Any) -> None:
    connector = connect()
    by_sku = await connector.resolve_products("sku", ["SKU-1", "SKU-2", "UNKNOWN"])
    assert sorted(by_sku) == ["SKU-1", "SKU-2"]
    by_ean = await connector.resolve_products("ean", [EAN_1])
    assert by_ean[EAN_1].shop_sku == "SKU-1"


async def test_create_and_find_order(connect: Any) -> None:
    connector = connect(auth_mode="bearer")
    order = eur_order()
    assert await connector.find_order(order.marketplace_order_id) is None
    products = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    ref = await connector.create_order(order, products)
    assert ref.number == "AMZ-302-1111111-1111111"
    assert await connector.find_order(order.marketplace_order_id) == ref


async def test_shipments_and_cancellations(connect: Any, shop: MagentoSimulator) -> None:
    connector = connect()
    products = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    shipped = await connector.create_order(eur_order(), products)
    cancelled = await connector.create_order(eur_order("302-2222222-2222222"), products)
    if RECORD:
        shop.ship_order(
            int(shipped.id), {"SKU-1": 2}, [{"carrier_code": "dhl", "track_number": "J1"}]
        )
        shop.cancel_order(int(cancelled.id))
    cursor = ChangeCursor(since="2026-11-20 09:59:00").encode()
    changes = await connector.changes_since(cursor)
    assert [(s.tracking_number, s.lines[0].quantity) for s in changes.shipments] == [("J1", 2)]
    assert [c.marketplace_order_id for c in changes.cancellations] == ["302-2222222-2222222"]
    assert not changes.has_more


async def test_stock_levels(connect: Any) -> None:
    connector = connect(page_size=2)
    first = await connector.stock_levels("sku", None)
    second = await connector.stock_levels("sku", first.cursor)
    assert [lv.sku for lv in first.levels + second.levels] == ["SKU-1", "SKU-2", "SKU-3"]
    assert (first.has_more, second.has_more) == (True, False)


async def test_a_changed_create_payload_does_not_replay(shop: MagentoSimulator) -> None:
    """Same URL, other body: an order payload that drifted is not answered from tape."""
    settings = settings_for(shop, base_url=REPLAY_URL, auth_mode="bearer")
    connector = MagentoConnector(settings, ConnectorContext(connection_id="mg"), retry=FAST_RETRY)
    connector.now = lambda: START + timedelta(hours=1)
    changed = eur_order().model_copy(update={"shipping_service": "Expedited"})
    try:
        with VCR.use_cassette("test_create_and_find_order.yaml") as cassette:
            assert await connector.find_order(changed.marketplace_order_id) is None
            products = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
            with pytest.raises(CannotOverwriteExistingCassetteException, match="body"):
                await connector.create_order(changed, products)
            assert "PUT /rest/default/V1/orders/create" in unplayed(cassette)
    finally:
        await connector.aclose()


def test_cassettes_hold_no_secrets() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) == 5
    secrets = list(vars(Credentials()).values())
    for path in files:
        text = path.read_text("utf-8")
        assert "Bearer" not in text and "oauth_signature" not in text, path.name
        assert not [s for s in secrets if s in text], path.name
        assert "authorization" not in text.lower(), path.name
