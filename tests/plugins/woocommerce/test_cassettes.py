"""The main calls replayed from cassettes recorded against the simulator.

Recorded in process (the simulator's ASGI app at the store URL), replayed with no
simulator and no network (``record_mode="none"``). To record again::

    WOO_RECORD_CASSETTES=1 .venv/bin/pytest tests/plugins/woocommerce/test_cassettes.py

Secrets are replaced by placeholders, not removed, so replay still matches on how a
request authenticates: the Basic header's presence, ``consumer_key``/``consumer_secret``
in the query, or the ``oauth_*`` signature parameters of a plain-HTTP store. Requests
match on method, scheme, host, path, query, body and that authentication; every recorded
call must be played.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from plugins.woocommerce.client import WooClient
from plugins.woocommerce.connector import encode_cursor
from plugins.woocommerce.simulator import DEFAULT_KEY, DEFAULT_SECRET, WooCommerceSimulator
from tests.plugins.woocommerce.conftest import connector, make_order

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "woocommerce"
RECORD = os.environ.get("WOO_RECORD_CASSETTES") == "1"
STORE = "https://shop.example.com"
PLAIN_STORE = "http://shop.example.com"  # OAuth 1.0a signed, as WooCommerce wants over HTTP
SINCE_2000 = encode_cursor({"since": "2000-01-01T00:00:00"})  # a fixed window for replay
PLACEHOLDERS = {
    "consumer_key": "<CONSUMER_KEY>",
    "consumer_secret": "<CONSUMER_SECRET>",
    "oauth_consumer_key": "<CONSUMER_KEY>",
    "oauth_nonce": "<NONCE>",
    "oauth_timestamp": "<TIMESTAMP>",
    "oauth_signature": "<SIGNATURE>",
}
AUTH_QUERY = {*PLACEHOLDERS, "oauth_signature_method"}


def _authorization(key: str, value: str, request: Any) -> str:
    """``Basic <redacted>``: the scheme stays, the credentials go."""
    return f"{value.split(' ', 1)[0]} <redacted>"


def _same_authorization(r1: Any, r2: Any) -> None:
    assert r1.headers.get("authorization") == r2.headers.get("authorization")


VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    match_on=["method", "scheme", "host", "path", "query", "body", "authorization"],
    filter_headers=[("authorization", _authorization)],
    filter_query_parameters=list(PLACEHOLDERS.items()),
    decode_compressed_response=True,
)
VCR.register_matcher("authorization", _same_authorization)


def _seeded(base_url: str) -> WooCommerceSimulator:
    sim = WooCommerceSimulator(rate_limits=False, base_url=base_url)
    sim.create_product("MUG-1", "9.99", 20, ean="4006381333931", name="Mug")
    sim.create_product("CAP-2", "19.99", 5, name="Cap")
    shirt = sim.create_product("SHIRT", type="variable", name="Shirt")
    sim.create_variation(shirt["id"], "SHIRT-M", "14.99", 7, ean="4006381333948")
    sim.create_variation(shirt["id"], "SHIRT-L", "14.99", 3)
    return sim


@contextmanager
def cassette(
    name: str, base_url: str = STORE
) -> Iterator[tuple[httpx.AsyncBaseTransport | None, WooCommerceSimulator | None]]:
    """Record through the simulator's app, or replay with no simulator at all."""
    if RECORD:  # "all" would append to what is there
        (CASSETTES / f"{name}.yaml").unlink(missing_ok=True)
    with VCR.use_cassette(f"{name}.yaml") as recorded:
        if not RECORD:
            yield None, None
            assert recorded.all_played, f"{name}: the connector skipped recorded calls"
            return
        sim = _seeded(base_url)
        yield sim.transport(), sim


async def test_check_and_product_lookup() -> None:
    with cassette("check_and_lookup") as (transport, _):
        woo = connector(transport)
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
    with cassette("order_lifecycle") as (transport, sim):
        woo = connector(transport)
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
    with cassette("stock_all_pages") as (transport, _):
        woo = connector(transport, page_size=2)
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
    with cassette("query_string_auth") as (transport, _):
        woo = connector(transport, query_string_auth=True)
        try:
            assert (await woo.check()).ok
        finally:
            await woo.aclose()


async def test_oauth_signed_over_plain_http() -> None:
    """The signature's parameters are matched by name (their values change per request);
    at recording time the simulator verified each signature."""
    with cassette("oauth_over_http", PLAIN_STORE) as (transport, _):
        woo = connector(transport, store_url=PLAIN_STORE, allow_insecure_http=True)
        try:
            assert (await woo.check()).ok
            found = await woo.resolve_products("sku", ["MUG-1"])
        finally:
            await woo.aclose()
    assert found["MUG-1"].product_id == "101"


def _recorded_auth(name: str) -> set[tuple[str, ...]]:
    """How each recorded request authenticates: header scheme and auth query names."""
    with VCR.use_cassette(f"{name}.yaml", record_mode="none") as recorded:
        requests = list(recorded.requests)
    out = set()
    for request in requests:
        header = request.headers.get("authorization")
        names = sorted(k for k, _ in request.query if k in AUTH_QUERY)
        out.add((header or "-", request.uri.split(":", 1)[0], *names))
    return out


def test_the_cassettes_show_how_each_store_authenticates() -> None:
    assert _recorded_auth("check_and_lookup") == {("Basic <redacted>", "https")}
    assert _recorded_auth("query_string_auth") == {
        ("-", "https", "consumer_key", "consumer_secret")
    }
    assert _recorded_auth("oauth_over_http") == {
        (
            "-",
            "http",
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
        )
    }


async def test_replay_refuses_a_request_that_authenticates_differently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Basic where the cassette holds query auth, or no header where it holds Basic:
    neither replays (the placeholders and the matcher keep the difference)."""
    basic = connector(None)
    monkeypatch.setattr(WooClient, "_auth_headers", _no_headers)
    bare = connector(None)
    try:
        with (
            VCR.use_cassette("query_string_auth.yaml"),
            pytest.raises(CannotOverwriteExistingCassetteException, match="query differs"),
        ):
            await basic.check()
        with (
            VCR.use_cassette("check_and_lookup.yaml"),
            pytest.raises(CannotOverwriteExistingCassetteException, match="_same_authorization"),
        ):
            await bare.check()
    finally:
        await basic.aclose()
        await bare.aclose()


async def _no_headers(self: WooClient) -> dict[str, str]:
    return {}


@pytest.mark.parametrize("path", sorted(CASSETTES.glob("*.yaml")), ids=lambda p: p.name)
def test_no_secret_in_cassettes(path: Path) -> None:
    text = path.read_text()
    basic = base64.b64encode(f"{DEFAULT_KEY}:{DEFAULT_SECRET}".encode()).decode()
    for secret in (DEFAULT_KEY, DEFAULT_SECRET, basic):
        assert secret not in text, f"{secret!r} in {path.name}"


def test_all_cassettes_are_committed() -> None:
    names = {p.stem for p in CASSETTES.glob("*.yaml")}
    assert names == {
        "check_and_lookup",
        "order_lifecycle",
        "stock_all_pages",
        "query_string_auth",
        "oauth_over_http",
    }
