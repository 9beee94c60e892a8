from __future__ import annotations

import subprocess
import sys
import time

import pytest

from engine.errors import LeaseLost
from engine.state import StateStore


@pytest.fixture
def two_stores(tmp_path):
    a = StateStore(tmp_path / "s.db")
    b = StateStore(tmp_path / "s.db")
    yield a, b
    a.close()
    b.close()


def test_only_one_holder_at_a_time(two_stores):
    a, b = two_stores
    lease = a.acquire_lease("c1", ttl=60)
    assert lease is not None
    assert b.acquire_lease("c1", ttl=60) is None
    assert b.acquire_lease("other", ttl=60) is not None  # per connection
    a.release_lease(lease)
    assert b.acquire_lease("c1", ttl=60) is not None


def test_expired_lease_is_taken_over_and_the_old_holder_is_fenced(two_stores):
    a, b = two_stores
    old = a.acquire_lease("c1", ttl=0.05)
    time.sleep(0.1)
    new = b.acquire_lease("c1", ttl=60)
    assert new is not None and new.epoch == old.epoch + 1
    with pytest.raises(LeaseLost):
        a.check_lease(old)
    b.check_lease(new)  # the current holder passes


def test_intent_attempt_is_fenced(two_stores):
    from engine.state import IntentKind

    a, b = two_stores
    old = a.acquire_lease("c1", ttl=0.01)
    a.add_intent("c1", IntentKind.IMPORT, "A-1", "A-1", {})
    intent = a.intents("c1")[0]
    time.sleep(0.05)
    b.acquire_lease("c1", ttl=60)
    with pytest.raises(LeaseLost):
        a.begin_attempt(intent, old)
    assert a.intents("c1")[0].attempts == 0  # nothing was committed by the fenced writer


def test_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    script = (
        "import sys; from engine.state import StateStore; "
        f"s = StateStore({str(tmp_path / 's.db')!r}); assert s.acquire_lease('c1', ttl=3600)"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    store = StateStore(tmp_path / "s.db")
    try:
        assert store.acquire_lease("c1", ttl=60) is not None
    finally:
        store.close()


async def test_engine_skips_a_connection_another_process_holds(make_engine, world, tmp_path):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    other = StateStore(tmp_path / "state.db")
    try:
        lease = other.acquire_lease("c1", ttl=60)
        assert await engine.run_flow("c1", "orders") is None
        assert world.shop_orders == []
        other.release_lease(lease)
        assert (await engine.run_flow("c1", "orders")).counts["imported"] == 1
    finally:
        other.close()


def test_a_process_turned_away_gets_the_next_turn(two_stores, monkeypatch):
    """Flows queued one after another in one process must not starve another process."""
    import engine.state

    a, b = two_stores
    first = a.acquire_lease("c1", ttl=60)
    assert first is not None
    assert b.acquire_lease("c1", ttl=60) is None  # b is now waiting
    a.release_lease(first)
    assert a.acquire_lease("c1", ttl=60) is None  # a's next flow: b asked first
    second = b.acquire_lease("c1", ttl=60)
    assert second is not None and second.epoch > first.epoch
    assert a.acquire_lease("c1", ttl=60) is None  # held by b; a waits in turn
    b.release_lease(second)
    assert b.acquire_lease("c1", ttl=60) is None  # a's turn
    third = a.acquire_lease("c1", ttl=60)
    assert third is not None

    # A claim is kept only so long: a process that asked once and went away blocks nobody.
    assert b.acquire_lease("c1", ttl=60) is None  # b waits again ...
    a.release_lease(third)
    monkeypatch.setattr(engine.state, "LEASE_WAIT_SECONDS", 0.0)  # ... and its claim lapses
    assert a.acquire_lease("c1", ttl=60) is not None
