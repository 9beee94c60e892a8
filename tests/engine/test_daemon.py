"""`ordersync run` as a real subprocess: runs flows, exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import hookimpl
from engine.registry import PlatformSpec
from tests.fakes import WORLDS, FakeSettings, FakeShop, World

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
state_path = "state.db"
log_level = "INFO"

[[connections]]
id = "de"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
schedule = { orders = 0.2, shipments = 0.2, stock = 0.2 }
marketplace = { type = "fakemarket" }
shop = { type = "fakeshop" }

[[connections]]
id = "off"
active = false
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
marketplace = { type = "fakemarket" }
shop = { type = "fakeshop" }
"""


SLOW_ORDERS = 6
SLOW_CREATE_SECONDS = 1.0


def _event(line: str) -> None:
    with open(os.environ["SLOW_EVENTS"], "a") as events:
        events.write(line + "\n")


class SlowShop(FakeShop):
    """A fake shop whose order creation takes a while, and that logs what it does."""

    async def create_order(self, order, products):  # noqa: ANN001, ANN201
        _event(f"create-start {order.marketplace_order_id}")
        await asyncio.sleep(float(os.environ.get("SLOW_CREATE_SECONDS", SLOW_CREATE_SECONDS)))
        ref = await super().create_order(order, products)
        _event(f"create-done {order.marketplace_order_id}")
        return ref

    async def stock_levels(self, attribute, cursor):  # noqa: ANN001, ANN201
        _event("stock-read")
        return await super().stock_levels(attribute, cursor)


class SlowCreatePlugin:
    """Loaded by the daemon subprocess (entry point ``slow``): the ``slowshop``
    platform, and a world with orders waiting to be imported."""

    @staticmethod
    @hookimpl
    def register_platforms(register):  # noqa: ANN001, ANN205
        world = WORLDS.setdefault("slow", World(now=datetime.now(UTC)))
        world.add_product("SKU-1", 100)
        for n in range(SLOW_ORDERS):
            world.add_order(f"SLOW-{n}")
        register(
            PlatformSpec(
                name="slowshop", role="shop", connector=SlowShop, settings_model=FakeSettings
            )
        )


@pytest.fixture
def fake_dist(tmp_path: Path) -> dict[str, str]:
    """Install the in-test plugins as a 'third-party' distribution for the subprocess."""
    info = tmp_path / "site" / "ordersync_fakes-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ordersync-fakes\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(
        "[ordersync.plugins]\nfakes = tests.fakes\n"
        "slow = tests.engine.test_daemon:SlowCreatePlugin\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path / "site")])
    env["ORDERSYNC_LOAD_PLUGINS"] = "fakes"
    return env


def runs_recorded(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM connection_runtime WHERE last_run_at IS NOT NULL"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_exits_gracefully_on_signal(tmp_path, fake_dist, sig):
    config = tmp_path / "ordersync.toml"
    config.write_text(textwrap.dedent(CONFIG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "-c", str(config)],
        env=fake_dist,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while runs_recorded(tmp_path / "state.db") < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "daemon never ran a flow"
            time.sleep(0.1)
        time.sleep(0.5)  # let several cycles run
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with sqlite3.connect(tmp_path / "state.db") as conn:
        rows = dict(conn.execute("SELECT connection_id, status FROM connection_runtime").fetchall())
    assert rows == {"de": "ok"}  # the disabled connection never ran
    with sqlite3.connect(tmp_path / "state.db") as conn:
        open_leases = conn.execute(
            "SELECT COUNT(*) FROM leases WHERE expires_at > ?", [time.time()]
        ).fetchone()[0]
    assert open_leases == 0  # released on the way out


def test_run_with_cycles_stops_by_itself(tmp_path, fake_dist):
    config = tmp_path / "ordersync.toml"
    config.write_text(textwrap.dedent(CONFIG))
    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "-c", str(config), "--cycles", "2"],
        env=fake_dist,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert runs_recorded(tmp_path / "state.db") == 1


SLOW_CONFIG = """
state_path = "state.db"
log_level = "INFO"

[[connections]]
id = "slow"
default_shipping_service = "Other"
cancellation_reason = "NoInventory"
schedule = { orders = 0.2, shipments = 0.2, stock = 0.2 }
marketplace = { type = "fakemarket", settings = { world = "slow" } }
shop = { type = "slowshop", settings = { world = "slow" } }
"""


def test_sigterm_lets_the_running_step_finish(tmp_path, fake_dist):
    """SIGTERM while orders are being created: they are created and recorded, the
    flows waiting for the connection do not start, and the daemon exits 0."""
    config = tmp_path / "ordersync.toml"
    config.write_text(SLOW_CONFIG)
    events = tmp_path / "events.log"
    events.touch()
    env = {**fake_dist, "ORDERSYNC_LOAD_PLUGINS": "fakes,slow", "SLOW_EVENTS": str(events)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while "create-start" not in events.read_text():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the daemon never started creating orders"
            time.sleep(0.05)
        with events.open("a") as log:
            log.write("SIGTERM\n")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = events.read_text().splitlines()
    started = {line.split()[1] for line in lines if line.startswith("create-start")}
    done = {line.split()[1] for line in lines if line.startswith("create-done")}
    assert started and started == done  # nothing was cut off mid-create
    after = lines[lines.index("SIGTERM") + 1 :]
    assert "stock-read" not in after  # the flow waiting for the connection never started
    with sqlite3.connect(tmp_path / "state.db") as conn:
        states = dict(
            conn.execute("SELECT order_id, state FROM orders WHERE connection_id = 'slow'")
        )
        open_leases = conn.execute(
            "SELECT COUNT(*) FROM leases WHERE expires_at > ?", [time.time()]
        ).fetchone()[0]
    assert states == {f"SLOW-{n}": "imported" for n in range(SLOW_ORDERS)}
    assert open_leases == 0
    assert "every running flow has checkpointed" in err


def test_shutdown_grace_seconds_bounds_the_wait(tmp_path, fake_dist):
    """A step still running after ``shutdown_grace_seconds`` is cut off (its intents are
    committed, so the next start reconciles them) and the daemon still exits 0."""
    config = tmp_path / "ordersync.toml"
    config.write_text("shutdown_grace_seconds = 0.5\n" + SLOW_CONFIG)
    events = tmp_path / "events.log"
    events.touch()
    env = {
        **fake_dist,
        "ORDERSYNC_LOAD_PLUGINS": "fakes,slow",
        "SLOW_EVENTS": str(events),
        "SLOW_CREATE_SECONDS": "60",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while "create-start" not in events.read_text():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the daemon never started creating orders"
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 20  # not the 60 s the create would take
    assert "create-done" not in events.read_text()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        states = set(
            state
            for (state,) in conn.execute("SELECT state FROM orders WHERE connection_id = 'slow'")
        )
    assert states == {"import_intended"}
