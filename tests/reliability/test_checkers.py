"""The shared invariant checks can fail: each sees the loss or duplicate it is for.

:func:`bench.chaos.duplicate_problems`, :func:`convergence_problems` and
:func:`state_problems` decide the state machine, the chaos run and the
two-daemon test. Here they judge a converged world (nothing to report), then
copies of its snapshot with one thing broken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from bench.chaos import (
    Expectations,
    Snapshot,
    convergence_problems,
    duplicate_problems,
    state_problems,
)
from engine.state import IntentKind
from tests.reliability.world import CID, VISIBLE, SimWorld

SHIPPED, OPEN, PENDING = "302-0000001-0000001", "302-0000002-0000001", "302-0000003-0000001"


@pytest.fixture
def converged(sim_world: SimWorld) -> tuple[SimWorld, Snapshot]:
    """One order shipped, one open, one Pending (it holds two units of REL-C back)."""
    sim_world.amazon.add_order(SHIPPED, {"REL-A": 1}, age_minutes=0)
    sim_world.amazon.add_order(OPEN, {"REL-B": 2}, age_minutes=0)
    sim_world.amazon.add_order(PENDING, {"REL-C": 2}, status="PENDING", age_minutes=0)
    sim_world.tick(VISIBLE)
    sim_world.sync("orders")
    sim_world.shop.ship(SHIPPED, None, "DHL Paket", "TRK-1")
    sim_world.settle()
    snap = sim_world.snapshot()
    assert duplicate_problems(snap) == []
    assert convergence_problems(snap, Expectations()) == []
    assert sim_world.state_problems() == []
    assert snap.amazon_quantities["REL-C"] == snap.shop_stock["REL-C"] - 2
    return sim_world, snap


def broken(snap: Snapshot, change: Callable[[Snapshot], object]) -> Snapshot:
    copied = copy.deepcopy(snap)
    change(copied)
    return copied


def test_a_duplicate_shop_order_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged
    twice = broken(snap, lambda s: s.shop_orders.append(copy.deepcopy(s.shop_orders[0])))
    source = twice.shop_orders[-1]["source_identifier"]
    expected = f"order {source} is in the shop 2 times"
    assert any(p.startswith(expected) for p in duplicate_problems(twice))
    assert any(p.startswith(expected) for p in convergence_problems(twice, Expectations()))


def test_a_twice_confirmed_package_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged

    def confirm_again(s: Snapshot) -> None:
        packages = s.amazon_orders[SHIPPED]["packages"]
        packages.append(copy.deepcopy(packages[0]))

    problems = duplicate_problems(broken(snap, confirm_again))
    assert any(f"order {SHIPPED}: package" in p and "confirmed 2 times" in p for p in problems)


def test_stock_drift_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged
    over = broken(snap, lambda s: s.amazon_quantities.__setitem__("REL-C", s.shop_stock["REL-C"]))
    problems = convergence_problems(over, Expectations())
    assert [p for p in problems if p.startswith("SKU ")] == [
        f"SKU REL-C: Amazon lists {snap.shop_stock['REL-C']}, the shop has "
        f"{snap.shop_stock['REL-C']} with 2 reserved by Pending orders: "
        f"expected {snap.shop_stock['REL-C'] - 2}"
    ]


def test_a_lost_shipment_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged

    def lose(s: Snapshot) -> None:
        s.amazon_orders[SHIPPED]["packages"] = []

    problems = convergence_problems(broken(snap, lose), Expectations())
    assert any(
        f"order {SHIPPED}: shop shipment" in p and "never reached Amazon" in p for p in problems
    )


def test_a_lost_order_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged

    def lose(s: Snapshot) -> None:
        s.shop_orders = [o for o in s.shop_orders if o["source_identifier"] != OPEN]

    problems = convergence_problems(broken(snap, lose), Expectations())
    assert f"order {OPEN} (UNSHIPPED on Amazon) is in the shop 0 times" in problems


def test_a_lost_cancellation_is_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    _, snap = converged
    problems = convergence_problems(snap, Expectations(shop_cancelled={OPEN}))
    assert any(p.startswith(f"order {OPEN} was cancelled in the shop") for p in problems)


def test_an_open_intent_and_a_failure_are_seen(converged: tuple[SimWorld, Snapshot]) -> None:
    world, _ = converged
    world.store.add_intent(CID, IntentKind.CONFIRM_SHIPMENT, "F-LOST", OPEN, {})
    world.store.record_failure(CID, "stock", "REL-D", "marketplace_rejected", "8541")
    problems = world.state_problems()
    assert "intent confirm_shipment F-LOST is pending after 0 attempt(s):" in problems
    assert "stock REL-D recorded as failed: marketplace_rejected: 8541" in problems
    assert state_problems(world.db_path, "another-connection") == []
