"""Deterministic replays of what the state machine and the chaos run found.

Each test is the shortest story that lost or doubled an effect before its fix,
run against the real plugins and simulators in process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import engine.http
from bench.chaos import Expectations, convergence_problems
from engine.plugins import Plugins
from engine.state import IntentKind, IntentState, OrderState
from tests.reliability.world import (
    CID,
    SHOPIFY_GRAPHQL,
    VISIBLE,
    FastRetrying,
    SimWorld,
    builtin_plugins,
    sim_env,
)


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return builtin_plugins()


@pytest.fixture
def world(plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimWorld]:
    for name, value in sim_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine.http, "AsyncRetrying", FastRetrying)
    monkeypatch.setattr(__import__("logging").getLogger("ordersync"), "disabled", True)
    made = SimWorld(plugins)
    yield made
    made.close()


def converged(world: SimWorld, expected: Expectations) -> list[str]:
    world.settle()
    world.full_stock_read()
    return convergence_problems(world.snapshot(), expected) + world.state_problems()


def test_shop_changes_before_the_first_shipments_run_reach_amazon(world: SimWorld) -> None:
    """The shop-changes cursor used to start at the first shipments run ("no history"):
    a shipment or cancellation of an order imported before it was never sent to Amazon."""
    world.amazon.add_order("302-0000001-0000001", {"REL-A": 1}, age_minutes=0)
    world.amazon.add_order("302-0000002-0000001", {"REL-B": 2}, age_minutes=0)
    world.tick(VISIBLE)
    world.sync("orders")  # imports both; the shipments flow has not run yet
    world.shop.ship("302-0000001-0000001", None, "DHL Paket", "TRK-1")
    world.shop.cancel("302-0000002-0000001")
    world.sync("shipments")
    assert [c["tracking"] for c in world.amazon.confirmations()] == ["TRK-1"]
    assert world.amazon.cancellations() == [("302-0000002-0000001", "NoInventory")]
    expected = Expectations(shop_cancelled={"302-0000002-0000001"})
    assert converged(world, expected) == []


def test_an_unreadable_feed_report_is_retried_not_failed(world: SimWorld) -> None:
    """A cut processing report (the feed was applied) used to fail the cancellation for good
    (``internal: ParseError``); now it is retried, reconciled and done once."""
    oid = "302-0000001-0000001"
    world.amazon.add_order(oid, {"REL-A": 1}, age_minutes=0)
    world.tick(VISIBLE)
    world.sync("orders")
    world.shop.cancel(oid)
    world.amazon.faults.add("truncated", match="^GET /feed-documents/", count=1)
    world.sync("shipments")
    assert world.amazon.faults.injected == {"truncated": 1}
    assert world.amazon.cancellations() == [(oid, "NoInventory")]  # applied, report lost
    intent = world.store.intent(CID, IntentKind.CANCEL_ON_MARKETPLACE, oid)
    assert intent is not None and intent.state is IntentState.PENDING
    assert world.store.failures(CID) == []
    world.sync("shipments")  # reconciles: Amazon shows it cancelled
    assert world.store.get_order(CID, oid).state is OrderState.CANCELLED
    assert world.amazon.cancellations() == [(oid, "NoInventory")]
    assert converged(world, Expectations(shop_cancelled={oid})) == []


@pytest.mark.parametrize("merchant", ["ships", "cancels"])
def test_shop_change_while_the_import_is_unconfirmed(world: SimWorld, merchant: str) -> None:
    """The daemon dies after Shopify created the order, before it recorded that. The
    merchant ships (or cancels) that order, and the shipments flow runs before the orders
    flow has confirmed the import: the shop change must still reach Amazon."""
    oid = "302-0000001-0000001"
    world.amazon.add_order(oid, {"REL-A": 2}, age_minutes=0)
    world.tick(VISIBLE)
    fired = world.crash_during("orders", f"http.after {SHOPIFY_GRAPHQL} OrdersyncOrderCreate")
    assert fired is not None and world.shop.count_orders(oid) == 1
    assert world.store.get_order(CID, oid).state is OrderState.IMPORT_INTENDED
    expected = Expectations()
    if merchant == "ships":
        world.shop.ship(oid, None, "DHL Paket", "TRK-1")
    else:
        world.shop.cancel(oid)
        expected.shop_cancelled.add(oid)
    world.sync("shipments")
    world.sync("orders")  # finds the order in the shop: imported
    world.sync("shipments")
    assert converged(world, expected) == []
    if merchant == "ships":
        assert [c["tracking"] for c in world.amazon.confirmations()] == ["TRK-1"]
    else:
        assert world.amazon.cancellations() == [(oid, "NoInventory")]


def test_a_transient_stock_push_failure_is_retried(world: SimWorld) -> None:
    """A listing update that kept failing with 503 used to be recorded as "rejected by
    Amazon" while the changed-since cursor moved past it (a newer change of another SKU
    was read in the same run): Amazon kept the old quantity until a full stock read."""
    world.restart(full_stock_every=1000)  # changed-only reads after the first
    world.sync("stock")
    world.tick(600)
    world.shop.set_stock("REL-A", 17)
    world.tick(600)
    world.shop.set_stock("REL-B", 3)
    world.amazon.faults.add("503", match="^PATCH /listings/.*/REL-A$", count=5)  # > retries
    world.sync("stock")
    assert world.amazon.faults.injected == {"503": 5}
    world.sync("stock")
    assert (world.amazon.quantity("REL-A"), world.amazon.quantity("REL-B")) == (17, 3)
    assert world.state_problems() == []


@pytest.mark.parametrize("kind", ["html_200", "malformed_json"])
def test_a_200_that_is_not_amazons_answer_is_not_a_confirmation(world: SimWorld, kind: str) -> None:
    """``confirmShipment`` answers 204 with no body, and an S3 upload 200 with no body.
    A 200 with an HTML page or garbage (a proxy's answer; nothing reached Amazon) was taken
    for success: the shipment was marked confirmed, the cancellation feed went out empty."""
    shipped, cancelled = "302-0000001-0000001", "302-0000002-0000001"
    world.amazon.add_order(shipped, {"REL-A": 1}, age_minutes=0)
    world.amazon.add_order(cancelled, {"REL-B": 1}, age_minutes=0)
    world.tick(VISIBLE)
    world.sync("orders")
    world.shop.ship(shipped, None, "DHL Paket", "TRK-1")
    world.shop.cancel(cancelled)
    world.amazon.faults.add(kind, match=f"^POST /orders/v0/orders/{shipped}/", count=1)
    world.amazon.faults.add(kind, match="^PUT /feed-documents/", count=1)
    world.sync("shipments")
    assert world.amazon.faults.injected == {kind: 2}
    world.sync("shipments")
    assert [c["tracking"] for c in world.amazon.confirmations()] == ["TRK-1"]
    assert world.amazon.cancellations() == [(cancelled, "NoInventory")]
    assert converged(world, Expectations(shop_cancelled={cancelled})) == []


def test_a_10_mb_tracking_number_never_reaches_amazon(world: SimWorld) -> None:
    """Shopify accepted a 10 MB tracking number and the engine sent it to Amazon as it
    was (the simulator took it), storing it in the intent and the order log: a 50 MB
    state database. Now it is a typed failure and the other shipment goes on."""
    huge, fine = "302-0000001-0000001", "302-0000002-0000001"
    world.amazon.add_order(huge, {"REL-A": 1}, age_minutes=0)
    world.amazon.add_order(fine, {"REL-B": 1}, age_minutes=0)
    world.tick(VISIBLE)
    world.sync("orders")
    world.shop.ship(huge, None, "DHL Paket", "T" * 10_000_000)
    world.shop.ship(fine, None, "DHL Paket", "TRK-OK")
    world.sync("shipments")
    assert [c["tracking"] for c in world.amazon.confirmations()] == ["TRK-OK"]
    [failure] = world.store.failures(CID)
    assert (failure["kind"], failure["reason"]) == ("shipment", "invalid_shop_data")
    assert huge in failure["message"] and len(failure["message"]) < 2000
    size = sum(path.stat().st_size for path in world.tmp.glob("state.db*"))
    assert size < 2_000_000
