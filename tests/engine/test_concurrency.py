from __future__ import annotations

import asyncio

import pytest

from engine.concurrency import map_bounded


async def test_results_come_back_in_item_order_with_failures_in_place() -> None:
    async def half(n: int) -> float:
        await asyncio.sleep(0.001 * (5 - n))  # later items finish first
        if n == 3:
            raise ValueError("three")
        return n / 2

    results = await map_bounded(half, range(5), limit=2)
    assert results[:3] == [0.0, 0.5, 1.0]
    assert isinstance(results[3], ValueError) and str(results[3]) == "three"
    assert results[4] == 2.0


async def test_never_more_than_limit_calls_or_tasks_at_once() -> None:
    running = peak = 0
    peak_tasks = 0
    before = len(asyncio.all_tasks())

    async def one(n: int) -> int:
        nonlocal running, peak, peak_tasks
        running += 1
        peak = max(peak, running)
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()) - before)
        await asyncio.sleep(0)
        running -= 1
        return n

    assert await map_bounded(one, range(200), limit=4) == list(range(200))
    assert peak == 4
    assert peak_tasks == 4  # four workers, not a task per item


async def test_every_item_runs_once_even_after_a_failure() -> None:
    seen: list[int] = []

    async def one(n: int) -> int:
        seen.append(n)
        if n == 0:
            raise RuntimeError("first fails")
        return n

    results = await map_bounded(one, range(10), limit=3)
    assert sorted(seen) == list(range(10))
    assert results[1:] == list(range(1, 10))


async def test_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def forever(_: int) -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(map_bounded(forever, range(3), limit=2))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_items_and_a_bad_limit() -> None:
    async def one(n: int) -> int:
        return n

    assert await map_bounded(one, [], limit=4) == []
    with pytest.raises(ValueError, match="at least 1"):
        await map_bounded(one, [1], limit=0)
