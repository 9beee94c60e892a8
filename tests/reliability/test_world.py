"""The crash model itself: a killed engine process does nothing after the kill."""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability.world import Crash, SimWorld


def test_a_killed_process_sends_nothing_after_the_crash(sim_world: SimWorld) -> None:
    """A task the dead process left running (say the sibling request of a ``gather``)
    must neither reach a checkpoint nor send anything once the process is restarted."""
    dead_plan = sim_world.plan
    sent: list[str] = []
    left: list[asyncio.Task[None]] = []

    async def straggler() -> None:
        await asyncio.sleep(0.01)  # still on its way when the process dies
        dead_plan.point("http.before shopify POST straggler")
        sent.append("straggler")

    async def dying() -> None:
        left.append(asyncio.ensure_future(straggler()))
        dead_plan.arm("store.before", 1)
        dead_plan.point("store.before save_order")

    with pytest.raises(Crash):
        sim_world.run(dying())
    assert not left[0].done()
    sim_world.restart()
    sim_world.run(asyncio.sleep(0.05))  # the new process runs; the old one's timer is due
    assert sent == []
    assert left[0].cancelled()
    with pytest.raises(Crash):
        dead_plan.point("http.before shopify POST anything")  # and it stays dead
    sim_world.plan.point("http.before shopify POST anything")  # the new process lives


def test_an_exact_crash_site_is_not_a_prefix(sim_world: SimWorld) -> None:
    plan = sim_world.plan
    plan.arm("store.after begin_attempt", 1, exact=True)
    plan.point("store.after begin_attempts")
    assert not plan.dead
    with pytest.raises(Crash):
        plan.point("store.after begin_attempt")
    assert plan.fired == "store.after begin_attempt"
    assert plan.seen == ["store.after begin_attempts", "store.after begin_attempt"]
