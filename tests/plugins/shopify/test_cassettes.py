"""Recorded HTTP exchanges (vcrpy), replayed offline with ``record_mode="none"``.

The cassettes in ``tests/cassettes/shopify/`` were recorded from the simulator
served on loopback. To record them again:

- from the simulator: ``SHOPIFY_RECORD=sim pytest tests/plugins/shopify/test_cassettes.py``
- from a development store: ``SHOPIFY_RECORD=live SHOPIFY_SHOP=<store>.myshopify.com``
  plus ``SHOPIFY_CLIENT_ID`` / ``SHOPIFY_CLIENT_SECRET`` (an app of your own
  organization; client credentials grant) or ``SHOPIFY_ACCESS_TOKEN``, and
  ``SHOPIFY_LOCATION`` (name or id) and ``SHOPIFY_TEST_SKUS`` (two tracked SKUs,
  default ``SKU-1,SKU-2``). Live recording creates one order tagged ``ordersync``;
  the changes cassette needs a fulfilment made in the admin and is only recorded
  from the simulator.

Access tokens, client ids and secrets are filtered before anything is written;
``test_cassettes_hold_no_secret`` checks the files.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import vcr
from vcr.request import Request as VcrRequest

from engine.interfaces import ConnectorContext
from engine.models import ShopOrderRef
from engine.testing.server import serve_in_thread
from plugins.shopify import ShopifyConnector, ShopifySettings
from plugins.shopify.simulator import ShopifySimulator

from .factories import eur_order

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "shopify"
MODE = os.environ.get("SHOPIFY_RECORD", "")
PLACEHOLDER_URL = "http://127.0.0.1:8102"
SECRET_MARKERS = (
    "test-access-token",
    "test-client-secret",
    "test-client-id",
    "sim-cc-",
    "shpat_",
    "shpss_",
    "shpca_",
)


def _operation(request: VcrRequest) -> str | None:
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return None
    return body.get("operationName") if isinstance(body, dict) else None


def _same_operation(r1: VcrRequest, r2: VcrRequest) -> None:
    assert _operation(r1) == _operation(r2)


_FILE_URL = re.compile(r'"(url|partialDataUrl)": ?"https?://[^/"]+([^"?]*)(\?[^"]*)?"')
"""A bulk result's address: a loopback port, or a signed (secret) storage URL."""


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response["body"].get("string", b"")
    text = body.decode() if isinstance(body, bytes) else body
    if '"access_token"' in text:
        data = json.loads(text)
        data["access_token"] = "<ACCESS_TOKEN>"
        text = json.dumps(data)
    text = _FILE_URL.sub(r'"\1": "https://shop.example\2"', text)
    response["body"]["string"] = text.encode()
    return response


def _scrub_request(request: VcrRequest) -> VcrRequest:
    """Hide the shop's address (a random loopback port, or a real store's domain) and the
    signature of a bulk result's URL."""
    parts = urlsplit(request.uri)
    query = parts.query if parts.path.startswith("/admin/") else ""
    request.uri = urlunsplit(("https", "shop.example", parts.path, query, ""))
    return request


def _recorder(mode: str) -> vcr.VCR:
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if mode else "none",
        match_on=["method", "path", "operation"],
        filter_headers=[
            ("x-shopify-access-token", "<ACCESS_TOKEN>"),
            ("authorization", "<AUTH>"),
            ("host", "shop.example"),
        ],
        filter_post_data_parameters=[
            ("client_id", "<CLIENT_ID>"),
            ("client_secret", "<CLIENT_SECRET>"),
        ],
        before_record_request=_scrub_request,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("operation", _same_operation)
    return recorder


@dataclass
class Recording:
    """Where a cassette test talks to, and how to make the shop do things."""

    mode: str
    settings: dict[str, Any]
    skus: list[str]
    sim: ShopifySimulator | None = None
    connectors: list[ShopifyConnector] = field(default_factory=list)

    def connector(self, time_scale: float = 1.0, **settings: Any) -> ShopifyConnector:
        connector = ShopifyConnector(
            ShopifySettings(**{**self.settings, **settings}),
            ConnectorContext(connection_id="cassette", time_scale=time_scale),
        )
        self.connectors.append(connector)
        return connector

    def order_id(self, fixed: str) -> str:
        """A fixed id for the simulator, a fresh one for a live store."""
        return fixed if self.mode != "live" else f"OS-TEST-{int(time.time())}-{fixed[-3:]}"


def _live_settings() -> dict[str, Any]:
    settings: dict[str, Any] = {
        "shop_domain": os.environ["SHOPIFY_SHOP"],
        "location": os.environ.get("SHOPIFY_LOCATION"),
    }
    if os.environ.get("SHOPIFY_ACCESS_TOKEN"):
        settings["access_token"] = os.environ["SHOPIFY_ACCESS_TOKEN"]
    else:
        settings["client_id"] = os.environ["SHOPIFY_CLIENT_ID"]
        settings["client_secret"] = os.environ["SHOPIFY_CLIENT_SECRET"]
    return settings


@pytest.fixture
async def recording() -> Any:
    sim_settings = {
        "shop_domain": "ordersync-sim.myshopify.com",
        "client_id": "test-client-id",
        "client_secret": "test-client-secret",
        "location": "Warehouse",
        "lookback_seconds": 0,
    }
    with ExitStack() as stack:
        if MODE == "live":
            skus = os.environ.get("SHOPIFY_TEST_SKUS", "SKU-1,SKU-2").split(",")
            rec = Recording(mode=MODE, settings=_live_settings(), skus=skus)
        elif MODE == "sim":
            sim = ShopifySimulator()
            sim.add_product("SKU-1", barcode="4006381333931", price="19.99", quantity=10)
            sim.add_product("SKU-2", barcode="4006381333948", price="5.00", quantity=5)
            url = stack.enter_context(serve_in_thread(sim.app))
            rec = Recording(
                mode=MODE,
                settings={**sim_settings, "endpoint": url},
                skus=["SKU-1", "SKU-2"],
                sim=sim,
            )
        else:
            rec = Recording(
                mode="",
                settings={**sim_settings, "endpoint": PLACEHOLDER_URL},
                skus=["SKU-1", "SKU-2"],
            )
        yield rec
        for connector in rec.connectors:
            await connector.aclose()


@contextmanager
def cassette(rec: Recording, name: str) -> Iterator[Any]:
    with _recorder(rec.mode).use_cassette(f"{name}.yaml") as tape:
        yield tape
    if not rec.mode:
        assert tape.all_played, f"{name}: not every recorded request was replayed"


async def test_resolve_products(recording: Recording) -> None:
    with cassette(recording, "resolve_products"):
        refs = await recording.connector().resolve_products("sku", [*recording.skus, "NO-SUCH-SKU"])
    assert set(refs) == set(recording.skus)
    assert all(
        r.variant_id and r.variant_id.startswith("gid://shopify/ProductVariant/")
        for r in refs.values()
    )


async def test_find_and_create_order(recording: Recording) -> None:
    order = eur_order(recording.order_id("028-5555555-5555555"))
    order = order.model_copy(
        update={
            "lines": tuple(
                ln.model_copy(update={"sku": s})
                for ln, s in zip(order.lines, recording.skus, strict=True)
            )
        }
    )
    with cassette(recording, "find_and_create_order"):
        connector = recording.connector()
        assert await connector.find_order(order.marketplace_order_id) is None
        refs = await connector.resolve_products("sku", recording.skus)
        ref = await connector.create_order(order, refs)
        found = await connector.find_order(order.marketplace_order_id)
    assert found == ref
    assert ref.id.startswith("gid://shopify/Order/") and ref.number and ref.number.startswith("#")


async def test_changes(recording: Recording) -> None:
    if recording.mode == "live":
        pytest.skip("needs a fulfilment made in the shop; recorded from the simulator only")
    order = eur_order("028-6666666-6666666")
    with cassette(recording, "changes"):
        connector = recording.connector()
        ref = await connector.create_order(
            order, await connector.resolve_products("sku", recording.skus)
        )
        start = await connector.changes_since(None)
        if recording.sim is not None:
            recording.sim.advance(2)
            recording.sim.fulfil(
                ref.id, {"SKU-1": 1}, tracking_company="DHL", tracking_number="00340434161094042557"
            )
        page = await connector.changes_since(start.cursor)
    assert [(s.shop_order_id, s.carrier, s.tracking_number) for s in page.shipments] == [
        (ref.id, "DHL", "00340434161094042557")
    ]
    assert [(ln.sku, ln.quantity) for ln in page.shipments[0].lines] == [("SKU-1", 1)]


async def test_stock_levels(recording: Recording) -> None:
    with cassette(recording, "stock_levels"):
        connector = recording.connector()
        full = await connector.stock_levels("sku", None)
        if recording.sim is not None:
            recording.sim.advance(2)
            recording.sim.set_stock("SKU-2", 42)
        changed = await connector.stock_levels("sku", full.cursor)
    levels = {lv.sku: lv.quantity for lv in full.levels}
    assert set(recording.skus) <= set(levels)
    if recording.mode != "live":
        assert levels == {"SKU-1": 10, "SKU-2": 5}
        assert {lv.sku: lv.quantity for lv in changed.levels}["SKU-2"] == 42


def _with_skus(order_id: str, skus: list[str]):  # noqa: ANN202
    order = eur_order(order_id)
    lines = tuple(ln.model_copy(update={"sku": s}) for ln, s in zip(order.lines, skus, strict=True))
    return order.model_copy(update={"lines": lines})


async def test_create_orders_batch(recording: Recording) -> None:
    """The engine's import: one lookup for the batch, then one batched orderCreate."""
    orders = [
        _with_skus(recording.order_id(f"028-5555556-000000{n}"), recording.skus) for n in range(3)
    ]
    ids = [o.marketplace_order_id for o in orders]
    with cassette(recording, "create_orders_batch"):
        connector = recording.connector()
        assert await connector.find_order_refs(ids) == {}
        refs = await connector.resolve_products("sku", recording.skus)
        created = await connector.create_orders([(o, refs) for o in orders])
        found = await connector.find_order_refs(ids)
    assert all(isinstance(r, ShopOrderRef) for r in created)
    assert found == dict(zip(ids, created, strict=True))


async def test_cancel_order(recording: Recording) -> None:
    """Status check, orderCancel, then the background job polled until done."""
    order = _with_skus(recording.order_id("028-5555557-5555557"), recording.skus)
    if recording.sim is not None:
        recording.sim.api.job_seconds = 0.05
    with cassette(recording, "cancel_order"):
        connector = recording.connector(time_scale=10.0)
        ref = await connector.create_order(
            order, await connector.resolve_products("sku", recording.skus)
        )
        await connector.cancel_order(ref, order)
        found = await connector.find_order(order.marketplace_order_id)
    assert found is not None and found.id == ref.id and found.cancelled


async def test_bulk_stock(recording: Recording) -> None:
    """A full stock read as a bulk operation: run, poll, download the JSONL."""
    if recording.sim is not None:
        recording.sim.api.bulk_seconds = 0.2
    with cassette(recording, "bulk_stock"):
        connector = recording.connector(bulk_threshold=1, bulk_poll_interval=0.1)
        page = await connector.stock_levels("sku", None)
    levels = {lv.sku: lv.quantity for lv in page.levels}
    assert set(recording.skus) <= set(levels) and not page.has_more
    if recording.mode != "live":
        assert levels == {"SKU-1": 10, "SKU-2": 5}


def test_cassettes_hold_no_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "resolve_products",
        "find_and_create_order",
        "create_orders_batch",
        "cancel_order",
        "changes",
        "stock_levels",
        "bulk_stock",
    }
    live = [
        os.environ.get(k)
        for k in ("SHOPIFY_ACCESS_TOKEN", "SHOPIFY_CLIENT_SECRET", "SHOPIFY_CLIENT_ID")
    ]
    for path in files:
        text = path.read_text()
        for marker in (*SECRET_MARKERS, *(v for v in live if v)):
            assert marker not in text, f"{path.name} contains {marker!r}"
        assert "<ACCESS_TOKEN>" in text and "<CLIENT_SECRET>" in text
        assert "127.0.0.1" not in text and "X-Goog-Signature" not in text, path.name
