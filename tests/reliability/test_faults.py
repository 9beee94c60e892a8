"""Every fault kind on each simulator, during one reference cycle: still exactly once.

The state machine draws fault profiles at random and rarely reaches some kinds;
here each (side, kind) pair is injected into a third of that side's requests
during the cycle of :mod:`tests.reliability.story`. Nothing may exist twice
after any flow; once the fault heals and the sync settles, everything has
arrived exactly once and nothing is left open or failed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.chaos import convergence_problems, duplicate_problems
from engine.plugins import Plugins
from tests.reliability.story import CYCLE, prepare
from tests.reliability.world import SimWorld

KINDS = (
    "429",
    "500",
    "503",
    "timeout_before",
    "timeout_after",
    "reset_before",
    "reset_after",
    "truncated",
)


@pytest.fixture
def world(plugins: Plugins, sim_setup: None) -> Iterator[SimWorld]:
    made = SimWorld(plugins, full_stock_every=1000)
    yield made
    made.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("side", ["amazon", "shopify"])
def test_a_fault_on_one_side_loses_and_doubles_nothing(
    world: SimWorld, side: str, kind: str
) -> None:
    expected = prepare(world)
    faults = (world.amazon if side == "amazon" else world.shop).faults
    faults.add(kind, match=".*", probability=0.5)
    for flow in CYCLE:
        world.sync(flow)
        assert duplicate_problems(world.snapshot()) == [], f"after {flow}"
    assert faults.injected.get(kind, 0) >= 2, faults.injected  # the fault was really met
    world.settle()
    problems = convergence_problems(world.snapshot(), expected) + world.state_problems()
    assert problems == []
