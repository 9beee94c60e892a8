"""The bench's simulator processes: what seeding leaves for their garbage collector."""

from __future__ import annotations

import gc

import pytest

sims = pytest.importorskip("bench.sims")


def test_seeded_orders_are_moved_out_of_the_simulators_collector() -> None:
    """A full collection over 10,000 seeded orders stopped the Amazon simulator for
    290 ms; seeding freezes them so the engine's figures are not charged for it."""
    world = sims._World(sims.SimSpec("amazon", rate_limits=False))
    try:
        assert world.seed_orders(per_seller=3, skus=10) == 3
        seeded = list(world.harnesses[0].sim.orders.values())
        tracked = {id(o) for o in gc.get_objects()}  # the frozen generation is not listed
        assert len(seeded) == 3
        assert not any(id(order) in tracked for order in seeded)
    finally:
        gc.unfreeze()
