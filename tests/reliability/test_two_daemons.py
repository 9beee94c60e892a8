"""Two ``ordersync run`` daemons on one config and state never sync one connection at once.

Both daemons run against the Amazon and Shopify simulators on loopback while
orders arrive and the merchant ships. A test plugin (``tests/reliability/leaselog.py``)
logs when each process took and gave back the connection's lease; those
intervals may never overlap. Then the daemon holding the lease is killed with
SIGKILL in the middle of a request: the other one takes the connection over at
once (the holder's process is gone), imports what arrives afterwards, and every
order is in the shop exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.chaos import Expectations, Snapshot, convergence_problems, state_problems, toml_value
from engine.testing.server import serve_in_thread
from plugins.amazon.harness import AmazonSimHarness
from plugins.shopify.harness import ShopifySimHarness

ROOT = Path(__file__).resolve().parents[2]
SKUS = ("TWO-A", "TWO-B", "TWO-C")
CONNECTION = "shared"
TIME_SCALE = 100.0


class Sims:
    """Both simulators on loopback; Amazon is changed through its HTTP admin API only
    (its server thread owns its state)."""

    def __init__(self, stack: ExitStack) -> None:
        self.amazon = AmazonSimHarness(time_scale=TIME_SCALE)
        self.shop = ShopifySimHarness(time_scale=TIME_SCALE)
        self.amazon_url = stack.enter_context(serve_in_thread(self.amazon.app))
        self.shop_url = stack.enter_context(serve_in_thread(self.shop.app))
        self.http = stack.enter_context(httpx.Client(base_url=self.amazon_url, timeout=30))
        self.orders: list[str] = []
        for sku in SKUS:
            self.shop.add_product(sku, 500)

    def add_order(self) -> str:
        sku = SKUS[len(self.orders) % len(SKUS)]
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 180))
        response = self.http.post("/_admin/orders", json={"items": {sku: 1}, "createdAt": created})
        response.raise_for_status()
        self.orders.append(response.json()["orderId"])
        return self.orders[-1]

    def ship_open_orders(self) -> None:
        with self.shop.sim.state.lock:
            open_ = [
                o.source_identifier
                for o in self.shop.sim.state.orders.values()
                if o.source_identifier and not o.fulfillment_ids and o.cancelled_at is None
            ]
        for oid in open_[::2]:
            self.shop.ship(oid, None, "DHL Paket", f"TRK-{oid}")

    def snapshot(self) -> Snapshot:
        state = self.http.get("/_admin/state").json()
        confirmations = self.http.get("/_admin/confirmations").json()["confirmations"]
        return Snapshot(
            amazon_orders={
                o["orderId"]: o for o in self.http.get("/_admin/orders").json()["orders"]
            },
            amazon_cancellations=state["cancellations"],
            amazon_confirmations=[
                {"orderId": c["orderId"], "request": c["request"]} for c in confirmations
            ],
            amazon_quantities=state["quantities"],
            shop_orders=self.shop.sim.list_orders(),
            shop_stock={sku: self.shop.stock(sku) for sku in SKUS},
        )


def write_config(path: Path, sims: Sims) -> None:
    market = {**sims.amazon.settings(sims.amazon_url), "request_timeout": 10.0}
    shop = {**sims.shop.settings(sims.shop_url), "timeout": 10.0}
    path.write_text(
        "\n".join(
            [
                'state_path = "state.db"',
                'log_level = "INFO"',
                f"time_scale = {TIME_SCALE}",
                "lease_seconds = 60",
                "[[connections]]",
                f'id = "{CONNECTION}"',
                'default_shipping_service = "Other"',
                'cancellation_reason = "NoInventory"',
                "schedule = { orders = 0.2, shipments = 0.2, stock = 0.2, full_stock_every = 2 }",
                "[connections.marketplace]",
                'type = "amazon"',
                f"settings = {toml_value(market)}",
                "[connections.shop]",
                'type = "shopify"',
                f"settings = {toml_value(shop)}",
                "",
            ]
        )
    )


@pytest.fixture
def daemon_env(tmp_path: Path) -> dict[str, str]:
    """The lease log plugin installed as a third-party distribution for the daemons."""
    info = tmp_path / "site" / "ordersync_leaselog-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ordersync-leaselog\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[ordersync.plugins]\nleaselog = tests.reliability.leaselog\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_")}
    env.update(AmazonSimHarness().env())
    env.update(ShopifySimHarness().env())
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path / "site")])
    env["ORDERSYNC_LOAD_PLUGINS"] = "amazon,shopify,leaselog"
    env["ORDERSYNC_LEASELOG"] = str(tmp_path / "leases.jsonl")
    return env


@pytest.fixture
def sims() -> Iterator[Sims]:
    with ExitStack() as stack:
        yield Sims(stack)


def start(config: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    with (config.parent / f"{name}.log").open("wb") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "-c", str(config)],
            env=env,
            cwd=config.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def holding_intervals(
    events: list[dict[str, Any]], killed: dict[int, float], end: float
) -> list[tuple[float, float, int, int]]:
    """``(taken, given back, pid, epoch)`` per lease; a killed holder held it until its death."""
    taken: dict[tuple[int, int], float] = {}
    intervals = []
    for event in events:
        if event["event"] not in ("acquired", "released"):
            continue
        key = (event["pid"], event["epoch"])
        if event["event"] == "acquired":
            taken[key] = event["t"]
        elif event["event"] == "released" and key in taken:
            intervals.append((taken.pop(key), event["t"], *key))
    for (pid, epoch), at in taken.items():
        intervals.append((at, killed.get(pid, end), pid, epoch))
    return sorted(intervals)


def overlaps(intervals: list[tuple[float, float, int, int]]) -> list[str]:
    found = []
    for before, after in zip(intervals, intervals[1:], strict=False):
        if after[0] < before[1]:
            found.append(
                f"pid {after[2]} took the lease (epoch {after[3]}) {before[1] - after[0]:.3f} s "
                f"before pid {before[2]} gave it back (epoch {before[3]})"
            )
    return found


def test_overlap_check_sees_overlaps() -> None:
    """The checker below is able to fail."""
    assert overlaps([(0.0, 1.0, 1, 1), (0.5, 2.0, 2, 2)])
    assert not overlaps([(0.0, 1.0, 1, 1), (1.0, 2.0, 2, 2)])
    events = [
        {"event": "acquired", "pid": 1, "epoch": 1, "t": 0.0},
        {"event": "acquired", "pid": 2, "epoch": 2, "t": 0.5},
        {"event": "released", "pid": 2, "epoch": 2, "t": 0.7},
    ]
    assert overlaps(holding_intervals(events, {1: 0.9}, end=5.0))


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def lease_holder(db: Path) -> int | None:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute(
                "SELECT pid FROM leases WHERE connection_id = ? AND expires_at > ?",
                [CONNECTION, time.time()],
            ).fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0]) if row else None


def test_two_daemons_never_sync_one_connection_at_once(
    tmp_path: Path, sims: Sims, daemon_env: dict[str, str]
) -> None:
    config = tmp_path / "ordersync.toml"
    write_config(config, sims)
    leaselog = Path(daemon_env["ORDERSYNC_LEASELOG"])
    for _ in range(20):
        sims.add_order()
    daemons = {name: start(config, daemon_env, name) for name in ("first", "second")}
    killed: dict[int, float] = {}
    try:
        # Both daemons contend for the connection while orders arrive and ship.
        def both_synced() -> bool:
            pids = {e["pid"] for e in read_events(leaselog) if e["event"] == "acquired"}
            return {d.pid for d in daemons.values()} <= pids

        wait_for(both_synced, 90, "both daemons to sync at least once")
        for _ in range(12):
            sims.add_order()
            sims.ship_open_orders()
            time.sleep(0.25)
        for name, daemon in daemons.items():
            assert daemon.poll() is None, (
                f"daemon {name} exited: {(tmp_path / f'{name}.log').read_text()}"
            )

        # Kill the holder in the middle of a request: the shop hangs its next call.
        sims.shop.faults.hang_seconds = 2.5
        sims.shop.faults.add("timeout_before", match="^POST", count=1)
        for _ in range(5):
            sims.add_order()
        wait_for(lambda: sims.shop.faults.injected.get("timeout_before") == 1, 20, "the hang")
        holder = lease_holder(tmp_path / "state.db")
        victim = next(d for d in daemons.values() if d.pid == holder)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed[victim.pid] = time.time()
        survivor = next(d for d in daemons.values() if d is not victim)

        # The survivor takes over at once (not after lease_seconds) and imports the rest.
        taken_over = lambda: any(  # noqa: E731
            e["event"] == "acquired" and e["pid"] == survivor.pid and e["t"] > killed[victim.pid]
            for e in read_events(leaselog)
        )
        wait_for(taken_over, 15, "the survivor to take the connection over")
        late = [sims.add_order() for _ in range(5)]
        sims.ship_open_orders()
        wait_for(
            lambda: all(sims.shop.count_orders(oid) == 1 for oid in sims.orders),
            60,
            "every order to reach the shop",
        )
        sims.ship_open_orders()
        time.sleep(2)  # a few more cycles: shipments confirmed, a full stock read
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0
    finally:
        for daemon in daemons.values():
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    end = time.time()

    events = read_events(leaselog)
    intervals = holding_intervals(events, killed, end)
    assert len({pid for _, _, pid, _ in intervals}) == 2
    assert sum(1 for i in intervals if i[2] == victim.pid) >= 3  # they really contended
    assert sum(1 for i in intervals if i[2] == survivor.pid) >= 3
    assert overlaps(intervals) == []
    # The victim died holding the lease; the survivor took it within seconds, not 60.
    victim_last = max(i for i in intervals if i[2] == victim.pid)
    assert victim_last[1] == killed[victim.pid]
    first_after = min(i for i in intervals if i[0] > killed[victim.pid])
    assert first_after[2] == survivor.pid and first_after[0] - killed[victim.pid] < 10
    skipped = sum(
        (tmp_path / f"{name}.log").read_text().count("another process holds this connection")
        for name in daemons
    )
    assert skipped > 0  # both tried at the same moment, and one stood back
    print(
        f"{len(intervals)} lease holdings, {sum(1 for i in intervals if i[2] == victim.pid)} "
        f"by the killed daemon; {skipped} runs skipped because the other held the lease; "
        f"taken over {first_after[0] - killed[victim.pid]:.2f} s after the SIGKILL"
    )
    imported = [e for e in events if e["event"] == "imported"]
    assert len(imported) == len({e["order"] for e in imported})  # none imported twice
    assert {e["order"] for e in imported if e["pid"] == survivor.pid} >= set(late)
    snapshot = sims.snapshot()
    problems = convergence_problems(snapshot, Expectations())
    problems += state_problems(tmp_path / "state.db")
    assert problems == []
    assert sorted(o["source_identifier"] for o in snapshot.shop_orders) == sorted(sims.orders)
