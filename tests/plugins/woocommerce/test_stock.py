"""Stock read: all pages keyed by the identification attribute, then only changes."""

from __future__ import annotations

from collections.abc import Callable

from engine.models import StockPage
from plugins.woocommerce.connector import WooCommerceConnector, decode_cursor
from plugins.woocommerce.simulator import WooCommerceSimulator
from tests.plugins.woocommerce.conftest import make_order


async def _read(woo: WooCommerceConnector, attribute: str, cursor: str | None) -> list[StockPage]:
    pages = [await woo.stock_levels(attribute, cursor)]
    while pages[-1].has_more:
        pages.append(await woo.stock_levels(attribute, pages[-1].cursor))
    return pages


def _levels(pages: list[StockPage]) -> dict[str, int]:
    return {level.sku: level.quantity for page in pages for level in page.levels}


async def test_full_read_is_paginated_and_includes_variations(
    sim: WooCommerceSimulator, make_connector: Callable[..., WooCommerceConnector]
) -> None:
    woo = make_connector(sim.transport(), page_size=2)
    pages = await _read(woo, "sku", None)

    assert [p.has_more for p in pages] == [True, False]
    assert _levels(pages) == {"MUG-1": 20, "CAP-2": 5, "SHIRT-M": 7, "SHIRT-L": 3}  # no EBOOK-3
    assert decode_cursor(pages[0].cursor or "")["mode"] == "full"
    assert set(decode_cursor(pages[-1].cursor or "")) == {"since"}


async def test_keyed_by_ean_or_id(
    woo: WooCommerceConnector, sim: WooCommerceSimulator, ids: dict[str, int]
) -> None:
    assert _levels(await _read(woo, "ean", None)) == {
        "4006381333931": 20,
        "4006381333948": 7,
        "4006381333955": 3,
    }
    assert _levels(await _read(woo, "id", None)) == {
        str(ids["MUG-1"]): 20,
        str(ids["CAP-2"]): 5,
        str(ids["SHIRT-M"]): 7,
        str(ids["SHIRT-L"]): 3,
    }


async def test_changed_since_returns_only_what_changed(
    sim: WooCommerceSimulator,
    ids: dict[str, int],
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    woo = make_connector(sim.transport(), page_size=2)
    sim.advance(600)  # the catalogue was written well before the first read
    full = await _read(woo, "sku", None)
    sim.advance(600)
    sim.set_stock(ids["CAP-2"], 9)
    sim.set_stock(ids["SHIRT-L"], 0)
    sim.requests.clear()

    delta = await _read(woo, "sku", full[-1].cursor)

    assert _levels(delta) == {"CAP-2": 9, "SHIRT-L": 0}
    paths = [path for _, path in sim.requests]
    assert paths.count("/wp-json/wc/v3/products") == 1  # CAP-2 and SHIRT (its variation saved)
    assert paths.count(f"/wp-json/wc/v3/products/{ids['SHIRT']}/variations") == 1

    sim.advance(600)
    overlap = await _read(woo, "sku", delta[-1].cursor)  # the lookback re-reads them once
    assert _levels(overlap) == {"CAP-2": 9, "SHIRT-L": 0}
    assert _levels(await _read(woo, "sku", overlap[-1].cursor)) == {}


async def test_an_order_moves_stock_into_the_next_changes(
    sim: WooCommerceSimulator, woo: WooCommerceConnector
) -> None:
    sim.advance(600)
    full = await _read(woo, "sku", None)
    sim.advance(600)
    order = make_order(
        "303-8000001-8000001", [("MUG-1", 4, "9.99", "6.38"), ("SHIRT-M", 2, "14.99", "4.79")]
    )
    await woo.create_order(order, await woo.resolve_products("sku", ["MUG-1", "SHIRT-M"]))

    assert _levels(await _read(woo, "sku", full[-1].cursor)) == {"MUG-1": 16, "SHIRT-M": 5}


async def test_changes_read_the_variations_of_changed_variable_products_only(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    """A big catalogue: a changes-only pass costs the changed products, not one call per
    variable product."""
    sim = WooCommerceSimulator(rate_limits=False)
    variations = {}
    for n in range(12):
        parent = sim.create_product(f"TEE-{n}", type="variable", name=f"Tee {n}")
        variations[n] = [
            sim.create_variation(parent["id"], f"TEE-{n}-{size}", "9.99", 5)["id"]
            for size in ("S", "M")
        ]
    woo = make_connector(sim.transport(), page_size=5)
    sim.advance(600)
    full = await _read(woo, "sku", None)
    assert len(_levels(full)) == 24
    sim.advance(600)
    sim.set_stock(variations[7][1], 0)
    sim.requests.clear()

    delta = await _read(woo, "sku", full[-1].cursor)

    assert _levels(delta) == {"TEE-7-M": 0}
    variation_calls = [p for _, p in sim.requests if p.endswith("/variations")]
    assert len(variation_calls) == 1 and len(sim.requests) == 2  # was 1 + 3 pages + 12


async def test_a_parent_managing_its_variations_stock_reports_them_all(
    make_connector: Callable[..., WooCommerceConnector],
) -> None:
    sim = WooCommerceSimulator(rate_limits=False)
    parent = sim.create_product("CAP", type="variable", name="Cap", manage_stock=True)
    sim.set_stock(parent["id"], 10)
    for size in ("S", "L"):
        vid = sim.create_variation(parent["id"], f"CAP-{size}", "9.99", None)["id"]
        sim.variations[vid]["manage_stock"] = "parent"  # as WooCommerce shows it
    woo = make_connector(sim.transport())
    sim.advance(600)
    full = await _read(woo, "sku", None)
    assert _levels(full) == {"CAP-S": 10, "CAP-L": 10}
    sim.advance(600)
    sim.set_stock(parent["id"], 4)  # the variations themselves did not change

    assert _levels(await _read(woo, "sku", full[-1].cursor)) == {"CAP-S": 4, "CAP-L": 4}
