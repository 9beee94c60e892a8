"""The daemon's schedule (one job per connection and flow) and how it stops."""

from __future__ import annotations

import asyncio
import time

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from engine.scheduler import MISFIRE_GRACE_SECONDS, build_scheduler, run_until_stopped
from engine.state import OrderState
from tests.conftest import connection_data
from tests.fakes import WORLDS, FakeShop, World


def _world(name: str) -> dict[str, dict]:
    return {
        "marketplace": {"type": "fakemarket", "settings": {"world": name}},
        "shop": {"type": "fakeshop", "settings": {"world": name}},
    }


@pytest.fixture
def three(make_engine):
    """An active connection, a stock-only one and a disabled one, each in its own world."""
    return make_engine(
        connection_data(id="a", schedule={"orders": 1.5, "shipments": 3, "stock": 1}),
        connection_data(id="s", level="stock_only", schedule={"stock": 1}, **_world("s")),
        connection_data(id="off", active=False, **_world("off")),
    )


async def test_one_job_per_connection_and_flow_with_safe_options(three):
    scheduler = build_scheduler(three)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {"a:orders", "a:shipments", "a:stock", "s:stock"}
    for job in jobs.values():
        assert job.max_instances == 1, job.id  # a slow run never overlaps the next
        assert job.coalesce is True, job.id  # missed runs collapse into one
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS >= 600, job.id
        assert isinstance(job.trigger, IntervalTrigger)
    assert jobs["a:orders"].trigger.interval.total_seconds() == 1.5
    assert jobs["a:shipments"].trigger.interval.total_seconds() == 3
    assert jobs["a:stock"].trigger.interval.total_seconds() == 1


async def test_stock_only_runs_only_stock_and_disabled_runs_nothing(three, world):
    for name in ("s", "off"):
        other = WORLDS[name] = World()
        other.add_product("SKU-1")
        other.add_order(f"{name}-1")
    world.add_product("SKU-1")
    world.add_order("a-1")
    await asyncio.wait_for(run_until_stopped(three, cycles=1), timeout=30)
    assert set(WORLDS["s"].calls) == {"shop.stock", "mkt.stock.before"}
    assert WORLDS["off"].calls == []
    assert {"mkt.page", "shop.changes", "shop.stock"} <= set(world.calls)
    assert len(world.shop_orders) == 1 and WORLDS["s"].shop_orders == []


@pytest.fixture
def slow_create(monkeypatch):
    """FakeShop.create_order takes ``delay`` seconds; ``started`` is set at the first."""
    started = asyncio.Event()
    original = FakeShop.create_order
    state = {"delay": 0.3}

    async def slow(self, order, products):  # noqa: ANN001, ANN202
        started.set()
        await asyncio.sleep(state["delay"])
        return await original(self, order, products)

    monkeypatch.setattr(FakeShop, "create_order", slow)
    return started, state


async def _stop_when(event: asyncio.Event, engine) -> None:  # noqa: ANN001
    await event.wait()
    engine.stop.set()


async def test_stop_lets_the_running_step_finish(make_engine, world, slow_create):
    started, _ = slow_create
    world.add_product("SKU-1")
    for n in range(10):
        world.add_order(f"A-{n}")
    engine = make_engine()
    stopper = asyncio.ensure_future(_stop_when(started, engine))
    await asyncio.wait_for(run_until_stopped(engine), timeout=30)
    await stopper
    assert engine.store.counts_by_state("c1") == {"imported": 10}
    assert len(world.shop_orders) == 10
    assert engine.tasks == set()
    assert engine.store.acquire_lease("c1") is not None  # released


async def test_a_step_longer_than_the_grace_time_is_cancelled(make_engine, world, slow_create):
    started, state = slow_create
    state["delay"] = 30
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    stopper = asyncio.ensure_future(_stop_when(started, engine))
    began = time.monotonic()
    await asyncio.wait_for(run_until_stopped(engine, grace=0.2), timeout=10)
    await stopper
    assert time.monotonic() - began < 8
    # Cut off after its intent was committed: the next start reconciles it.
    assert engine.store.order_state("c1", "A-1") is OrderState.IMPORT_INTENDED
    assert world.shop_orders == []


async def test_cycles_with_nothing_to_run_stops_at_once(make_engine):
    engine = make_engine(connection_data(active=False))
    build_scheduler(engine, cycles=1)
    assert engine.stop.is_set()
