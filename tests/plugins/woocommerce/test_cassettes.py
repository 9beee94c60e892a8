"""The main calls replayed from cassettes recorded against the simulator on loopback.

Replay is the default (``record_mode="none"``: no network). To record again::

    WOO_RECORD_CASSETTES=1 .venv/bin/pytest tests/plugins/woocommerce/test_cassettes.py
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import vcr

from engine.testing.server import serve_in_thread
from plugins.woocommerce.connector import encode_cursor
from plugins.woocommerce.simulator import DEFAULT_KEY, DEFAULT_SECRET, WooCommerceSimulator
from tests.plugins.woocommerce.conftest import connector, make_order

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "woocommerce"
RECORD = os.environ.get("WOO_RECORD_CASSETTES") == "1"
REPLAY_URL = "http://127.0.0.1:8103"  # any loopback URL: host and port are not matched
SINCE_2000 = encode_cursor({"since": "2000-01-01T00:00:00"})  # a fixed window for replay

VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    match_on=["method", "path", "query", "body"],
    filter_headers=["authorization"],
    filter_query_parameters=["consumer_key", "consumer_secret"],
    decode_compressed_response=True,
)


def _seeded() -> WooCommerceSimulator:
    sim = WooCommerceSimulator(rate_limits=False)
    sim.create_product("MUG-1", "9.99", 20, ean="4006381333931", name="Mug")
    sim.create_product("CAP-2", "19.99", 5, name="Cap")
    shirt = sim.create_product("SHIRT", type="variable", name="Shirt")
    sim.create_variation(shirt["id"], "SHIRT-M", "14.99", 7, ean="4006381333948")
    sim.create_variation(shirt["id"], "SHIRT-L", "14.99", 3)
    return sim


@contextmanager
def cassette(name: str) -> Iterator[tuple[str, WooCommerceSimulator | None]]:
    """Record from a loopback simulator, or replay with no simulator at all."""
    with VCR.use_cassette(f"{name}.yaml") as recorded:
        if not RECORD:
            yield REPLAY_URL, None
            assert recorded.all_played, f"{name}: the connector skipped recorded calls"
            return
        sim = _seeded()
        with serve_in_thread(sim.app) as url:
            yield url, sim


async def test_check_and_product_lookup() -> None:
    with cassette("check_and_lookup") as (url, _):
        woo = connector(None, store_url=url)
        try:
            assert (await woo.check()).ok
            found = await woo.resolve_products("sku", ["MUG-1", "SHIRT-M", "NOPE"])
            by_id = await woo.resolve_products("id", ["101", "104", "999"])
        finally:
            await woo.aclose()
    assert set(found) == {"MUG-1", "SHIRT-M"}
    assert (found["SHIRT-M"].product_id, found["SHIRT-M"].variant_id) == ("103", "104")
    assert set(by_id) == {"101", "104"}


async def test_order_lifecycle() -> None:
    order = make_order("303-1111111-1111111", [("MUG-1", 3, "9.99", "4.79")])
    with cassette("order_lifecycle") as (url, sim):
        woo = connector(None, store_url=url)
        try:
            assert await woo.find_order(order.marketplace_order_id) is None
            products = await woo.resolve_products("sku", ["MUG-1"])
            ref = await woo.create_order(order, products)
            assert await woo.find_order(order.marketplace_order_id) == ref
            if sim is not None:
                sim.ship_order(
                    int(ref.id),
                    [
                        {
                            "provider": "dhl",
                            "number": "JJD0001",
                            "items": [{"sku": "MUG-1", "qty": 1}],
                        }
                    ],
                    complete=False,
                )
            changes = await woo.changes_since(SINCE_2000)
            await woo.cancel_order(ref, order)
            after = await woo.changes_since(SINCE_2000)
        finally:
            await woo.aclose()
    [shipment] = changes.shipments
    assert (shipment.tracking_number, shipment.lines[0].quantity) == ("JJD0001", 1)
    assert after.cancellations == ()  # our own cancellation is not echoed back


async def test_stock_read_all_pages() -> None:
    with cassette("stock_all_pages") as (url, _):
        woo = connector(None, store_url=url, page_size=2)
        try:
            pages = [await woo.stock_levels("sku", None)]
            while pages[-1].has_more:
                pages.append(await woo.stock_levels("sku", pages[-1].cursor))
        finally:
            await woo.aclose()
    levels = {lvl.sku: lvl.quantity for page in pages for lvl in page.levels}
    assert levels == {"MUG-1": 20, "CAP-2": 5, "SHIRT-M": 7, "SHIRT-L": 3}
    assert len(pages) == 2


async def test_query_string_auth() -> None:
    with cassette("query_string_auth") as (url, _):
        woo = connector(None, store_url=url, query_string_auth=True)
        try:
            assert (await woo.check()).ok
        finally:
            await woo.aclose()


@pytest.mark.parametrize("path", sorted(CASSETTES.glob("*.yaml")), ids=lambda p: p.name)
def test_no_secret_in_cassettes(path: Path) -> None:
    text = path.read_text()
    basic = base64.b64encode(f"{DEFAULT_KEY}:{DEFAULT_SECRET}".encode()).decode()
    for secret in (DEFAULT_KEY, DEFAULT_SECRET, basic, "consumer_key", "consumer_secret"):
        assert secret not in text, f"{secret!r} in {path.name}"
    assert "authorization" not in text.lower()


def test_all_cassettes_are_committed() -> None:
    names = {p.stem for p in CASSETTES.glob("*.yaml")}
    assert names == {"check_and_lookup", "order_lifecycle", "stock_all_pages", "query_string_auth"}
