"""A crash at every kind of checkpoint of one reference cycle, with the real plugins.

The state machine reaches crash sites at random; this sweep reaches each one.
The reference cycle (orders, shipments, stock) imports new orders, cancels in
the shop an order Amazon cancelled, confirms a full and a partial shipment,
sends a shop cancellation to Amazon (a feed) and pushes stock after a full read
(a feed), with a Pending order reserving stock. Every checkpoint it passes is recorded. Then, for
each kind of checkpoint (its first occurrence in each flow), a fresh world runs
the same story and the process is killed right after that checkpoint: after a
state-database write committed, or after the server handled a request whose
answer is then lost. (A crash *before* a checkpoint leaves what a crash after
the previous one leaves: nothing external happens between two checkpoints. The
lease and status writes carry no sync data; a crash after them is the crash
after the data write before them, plus a lease the new process takes over at
once, which ``test_lease`` and ``test_two_daemons`` cover.) The restarted
process settles; nothing may exist twice, everything must arrive exactly once,
and no intent may be left open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bench.chaos import Expectations, convergence_problems, duplicate_problems
from engine.plugins import Plugins
from tests.reliability.story import prepare, run_cycle
from tests.reliability.world import SHOPIFY_GRAPHQL, Crash, SimWorld

MUST_REACH = (
    ("orders", "store.after begin_attempts"),  # an import attempt committed, nothing sent
    ("orders", f"http.after {SHOPIFY_GRAPHQL} OrdersyncOrderCreateBatch"),
    ("orders", f"http.after {SHOPIFY_GRAPHQL} OrdersyncOrderCancel"),
    ("shipments", "store.after begin_attempt"),
    ("shipments", "http.after amazon POST /orders/v0/orders/{order}/shipmentConfirmation"),
    ("shipments", "http.after amazon POST /feeds/2021-06-30/feeds"),
    ("stock", "http.after amazon POST /feeds/2021-06-30/feeds"),
    ("stock", "store.after record_pushed"),
)
"""Sites the reference cycle must pass (else the sweep no longer covers them)."""
BOOKKEEPING = ("acquire_lease", "check_lease", "release_lease", "set_status")


def site(checkpoint: str) -> str:
    """A checkpoint without its ids: the kind of site (feed ids differ from world to world)."""
    name = re.sub(r"\d{3}-\d{7}-\d{7}", "{order}", checkpoint)
    name = re.sub(r"amzn1\.[\w.]+", "{document}", name)
    return re.sub(r"(?<=/)\d{6,}(?=/|$)", "{id}", name)


def problems_after_settling(world: SimWorld, expected: Expectations) -> list[str]:
    world.settle()
    return convergence_problems(world.snapshot(), expected) + world.state_problems()


@pytest.fixture
def fresh(plugins: Plugins, sim_setup: None) -> Iterator[list[SimWorld]]:
    made: list[SimWorld] = []
    yield made
    for world in made:
        world.close()


def new_world(plugins: Plugins, made: list[SimWorld]) -> SimWorld:
    for old in made:
        old.close()
    made.clear()
    made.append(SimWorld(plugins, full_stock_every=1000))
    return made[0]


def test_a_crash_after_any_checkpoint_of_a_cycle_loses_and_doubles_nothing(
    plugins: Plugins, fresh: list[SimWorld]
) -> None:
    world = new_world(plugins, fresh)
    expected = prepare(world)
    start = len(world.plan.seen)
    reference = run_cycle(world)
    assert problems_after_settling(world, expected) == []
    # The index of the first ".after" checkpoint of each kind, per flow.
    first: dict[tuple[str, str], int] = {}
    for index, (flow, name) in enumerate(reference):
        if ".after " in name and name.split()[-1] not in BOOKKEEPING:
            first.setdefault((flow, site(name)), index)
    missing = [s for s in MUST_REACH if s not in first]
    assert not missing, f"the reference cycle no longer passes {missing}"
    assert len(first) >= 40, sorted(first)

    failures = []
    for (flow, name), index in first.items():
        world = new_world(plugins, fresh)
        expected = prepare(world)
        assert len(world.plan.seen) == start  # the same story up to the cycle
        world.plan.arm("", index + 1)  # every checkpoint counts: die at this one
        try:
            run_cycle(world)
        except Crash:
            pass
        fired = world.plan.fired
        assert fired is not None and site(fired) == name, (
            f"the cycle did not repeat itself: expected {name} in {flow}, crashed at {fired}"
        )
        world.restart()
        doubled = duplicate_problems(world.snapshot())
        found = doubled + problems_after_settling(world, expected)
        if found:
            failures.append(f"crash after {name} ({flow}): " + "; ".join(found))
    assert not failures, "\n".join(failures)
