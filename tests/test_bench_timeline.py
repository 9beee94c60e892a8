"""The push timeline's reading of gaps between token grants (``bench/timeline.py``)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from engine.ratelimit import OperationLimiter, RateLimit

timeline_module = pytest.importorskip("bench.timeline")
Timeline = timeline_module.Timeline


def _grants(*at: float) -> list[tuple[str, float]]:
    events = []
    for t in at:
        events += [("enter", t - 0.0001), ("grant", t)]
    return events


def test_a_gap_during_an_engine_collection_is_blamed_on_it() -> None:
    timeline = Timeline(events=_grants(0.0, 0.002, 0.050, 0.052), collections=[(2, 0.003, 0.045)])
    (gap,) = timeline.gaps(longer_than=0.006)
    assert gap["at_s"] == pytest.approx(0.002)
    assert gap["gap_s"] == pytest.approx(0.048)
    assert gap["cause"] == "engine gc gen2 1x 45.0 ms"


def test_collections_in_one_gap_are_summed_per_generation() -> None:
    collections = [(0, 0.003, 0.001), (0, 0.005, 0.002), (1, 0.008, 0.009), (2, 0.5, 0.1)]
    (gap,) = Timeline(events=_grants(0.0, 0.002, 0.020), collections=collections).gaps(
        longer_than=0.006
    )
    assert gap["cause"] == "engine gc gen0 2x 3.0 ms, gen1 1x 9.0 ms"


def test_a_gap_with_every_call_in_flight_is_waiting_for_answers() -> None:
    # after the grant at 0.002 nobody waits; the next call enters at 0.040, with
    # the call granted at 0.002 still unanswered
    events = [("enter", 0.0), ("grant", 0.0), ("enter", 0.001), ("grant", 0.002)]
    events += [("done", 0.039), ("enter", 0.040), ("grant", 0.040)]
    (gap,) = Timeline(events=events).gaps(longer_than=0.006)
    assert gap["cause"] == "all in flight"


def test_a_gap_with_nothing_unanswered_and_nobody_waiting_had_nothing_to_send() -> None:
    events = [("enter", 0.0), ("grant", 0.0), ("done", 0.001), ("enter", 0.100)]
    events += [("grant", 0.100)]
    (gap,) = Timeline(events=events).gaps(longer_than=0.006)
    assert gap["cause"] == "nothing to send"


def test_a_small_collection_inside_a_long_gap_is_not_blamed() -> None:
    events = [("enter", 0.0), ("grant", 0.0), ("done", 0.001), ("enter", 0.100)]
    events += [("grant", 0.100)]
    timeline = Timeline(events=events, collections=[(0, 0.05, 0.0005)])
    (gap,) = timeline.gaps(longer_than=0.006)
    assert gap["cause"] == "nothing to send (engine gc gen0 1x 0.5 ms)"


def test_a_gap_with_a_call_waiting_and_no_collection_is_the_loop() -> None:
    events = [("enter", 0.0), ("enter", 0.0), ("grant", 0.0), ("grant", 0.030)]
    (gap,) = Timeline(events=events).gaps(longer_than=0.006)
    assert gap["cause"] == "loop"


def test_short_gaps_are_not_listed() -> None:
    assert Timeline(events=_grants(0.0, 0.002, 0.004, 0.007)).gaps(longer_than=0.006) == []


def test_recording_sees_a_real_limiter_and_restores_it() -> None:
    original = OperationLimiter.acquire
    limiter = OperationLimiter({"patchListingsItem": RateLimit(rate=500.0, burst=2.0)})

    async def five() -> None:
        for _ in range(5):
            await limiter.acquire("patchListingsItem")
        await limiter.acquire("getOrder")  # another operation: not recorded

    with timeline_module.recording("patchListingsItem") as timeline:
        asyncio.run(five())
        gc.collect()
    assert [kind for kind, _ in timeline.events] == ["enter", "grant"] * 5
    grants = timeline.grants()
    assert grants[-1] - grants[0] >= 3 * 0.002 * 0.9  # two from the burst, then paced
    assert any(gen == 2 for gen, _, _ in timeline.collections)
    assert OperationLimiter.acquire is original
    lines = timeline_module.report(timeline, "patchListingsItem", time_scale=100.0)
    assert lines[0].startswith("5 patchListingsItem grants in")


def test_the_report_reads_the_last_flow_run_and_how_long_it_ran_before_its_first_call() -> None:
    events = _grants(1.5, 10.2, 10.205, 10.210)  # the first grant: an earlier, preparing run
    timeline = Timeline(events=events, flows=[(1.0, 2.0), (10.0, 10.3)])
    lines = timeline_module.report(timeline, "confirmShipment", time_scale=100.0)
    assert lines[0] == "flow run 0.300 s: first grant after 0.200 s, 0.090 s after the last"
    assert lines[1].startswith("3 confirmShipment grants in 0.010 s; one every 5.0 ms")
    assert lines[-2:] == ["  none", "  together 0.000 s"]
