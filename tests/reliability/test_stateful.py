"""Exactly-once under faults and crashes: a Hypothesis state machine over the real plugins.

The real engine runs the Amazon and Shopify plugins against their simulators in
process. Hypothesis interleaves what merchants, buyers and Amazon do (new and
Pending orders, releases, buyer and Amazon cancellations, full and partial
shipments, shop cancellations, stock changes) with fault profiles on both
simulators, sync steps of each flow, the passing of time, and crashes: a
:class:`Crash` (a ``BaseException``, so no ``except Exception`` of the engine
sees it) raised at the N-th checkpoint, before or after a state-database write
or before or after the server handled an HTTP request. From then on the crashed
"process" is dead: its state store and transports raise too (no lease release,
no clean-up), and a new engine is built on the same state database, like a
restarted daemon with a new pid.

After every step nothing may exist twice (:func:`bench.chaos.duplicate_problems`).
At the end faults heal, the sync runs until quiet, and everything must have
arrived exactly once, stock must have converged and no intent may be left open.

``ORDERSYNC_HYPOTHESIS_EXAMPLES`` (default 12) and ``ORDERSYNC_HYPOTHESIS_STEPS``
(default 35) raise the search; ``ORDERSYNC_HYPOTHESIS_SEED`` replays one seed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

import engine.http
from bench.chaos import (
    Expectations,
    Snapshot,
    convergence_problems,
    duplicate_problems,
    state_problems,
)
from engine.config import LoadedConfig, load_config
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.state import StateStore, utcnow
from plugins.amazon.harness import AmazonSimHarness
from plugins.shopify.harness import ShopifySimHarness

CID = "eu"
SKUS = ("REL-A", "REL-B", "REL-C", "REL-D")
TIME_SCALE = 500.0
FLOWS = ("orders", "shipments", "stock")
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "reset_before",
    "reset_after",
    "timeout_before",
    "timeout_after",
    "truncated",
)
FAKE_PID_BASE = 1 << 22
"""Above any ``pid_max``: every engine generation is a distinct, dead 'process'."""
STORE_WRITES = (
    "acquire_lease",
    "check_lease",
    "release_lease",
    "set_status",
    "set_cursor",
    "save_order",
    "set_order_state",
    "log",
    "add_intent",
    "upsert_intent",
    "begin_attempt",
    "finish_intent",
    "note_intent_error",
    "record_failure",
    "clear_failure",
    "record_pushed",
    "consume_quota",
)
CRASH_SITES = (
    "",  # any checkpoint
    "store.",
    "store.before",
    "store.after",
    "http.",
    "http.before",
    "http.after",
    "http.after shopify POST",  # Shopify committed a mutation (orderCreate, orderCancel)
    "http.after amazon POST",  # Amazon committed confirmShipment, a feed
    "store.after begin_attempt",  # an attempt is committed, nothing sent yet
)

EXAMPLES = int(os.environ.get("ORDERSYNC_HYPOTHESIS_EXAMPLES", "12"))
STEPS = int(os.environ.get("ORDERSYNC_HYPOTHESIS_STEPS", "35"))


class Crash(BaseException):
    """The process dies here (``kill -9``): nothing after it runs."""


class CrashPlan:
    """Counts checkpoints; the N-th one matching ``site`` kills the process."""

    def __init__(self) -> None:
        self.site: str | None = None
        self.countdown = 0
        self.dead = False
        self.fired: str | None = None

    def arm(self, site: str, countdown: int) -> None:
        self.site, self.countdown = site, countdown

    def disarm(self) -> None:
        self.site = None

    def point(self, name: str) -> None:
        if self.dead:
            raise Crash(f"dead process reached {name}")
        if self.site is None or not name.startswith(self.site):
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self.dead, self.fired, self.site = True, name, None
            raise Crash(name)


class CrashTransport(httpx.AsyncBaseTransport):
    """Checkpoints before a request leaves and after the server handled it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, plan: CrashPlan, side: str) -> None:
        self.inner, self.plan, self.side = inner, plan, side

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = f"{self.side} {request.method} {request.url.path}"
        self.plan.point(f"http.before {target}")
        response = await self.inner.handle_async_request(request)
        self.plan.point(f"http.after {target}")  # the server committed; the answer is lost
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def crashing_store(path: Path, plan: CrashPlan, generation: int) -> StateStore:
    store = StateStore(path)
    store.pid = FAKE_PID_BASE + generation
    for name in STORE_WRITES:
        original = getattr(store, name)

        def checkpointed(
            *args: Any, __name: str = name, __original: Any = original, **kw: Any
        ) -> Any:
            plan.point(f"store.before {__name}")
            result = __original(*args, **kw)
            plan.point(f"store.after {__name}")
            return result

        setattr(store, name, checkpointed)
    return store


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", "plugins.shopify")
    )


class FastRetrying(engine.http.AsyncRetrying):
    """Retries without real back-off sleeps (the state machine's time is virtual)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["sleep"] = lambda seconds: asyncio.sleep(0)
        super().__init__(*args, **kwargs)


def make_machine(plugins: Plugins) -> type[RuleBasedStateMachine]:
    class OrderSyncMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = Path(tempfile.mkdtemp(prefix="ordersync-stateful-"))
            self.loop = asyncio.new_event_loop()
            self.offset = 0.0
            self.amazon = AmazonSimHarness(time_scale=TIME_SCALE, rate_limits=False)
            self.shop = ShopifySimHarness(time_scale=TIME_SCALE, rate_limits=False)
            self.expected = Expectations()
            self.order_seq = 0
            self.order_ids: list[str] = []
            self.tracking_seq = 0
            self.generation = 0
            self.crashes: list[str] = []
            for n, sku in enumerate(SKUS):
                self.shop.add_product(sku, 5 + 3 * n)
            self.loaded = self._config()
            self.engine, self.store, self.plan = self._start()
            # The shipments cursor starts at the first run: before anything ships.
            self._sync("shipments")
            self._sync("stock")

        # -- wiring ---------------------------------------------------------------

        def _config(self) -> LoadedConfig:
            market = self.amazon.settings("https://amazon.test")
            market.update(page_size=3, stock_batch_threshold=2, feed_poll_interval=5.0)
            shop = self.shop.settings("https://shopify.test")
            shop.update(orders_page_size=3, stock_page_size=2, lookback_seconds=120)
            data = {
                "time_scale": TIME_SCALE,
                "lease_seconds": 3600,
                "connections": [
                    {
                        "id": CID,
                        "default_shipping_service": "Other",
                        "cancellation_reason": "NoInventory",
                        "carrier_map": {"DHL Paket": "DHL"},
                        "schedule": {"full_stock_every": 3},
                        "marketplace": {"type": "amazon", "settings": market},
                        "shop": {"type": "shopify", "settings": shop},
                    }
                ],
            }
            return load_config(None, plugins.registry, data=data)

        def now(self) -> datetime:
            return utcnow() + timedelta(seconds=self.offset)

        def _start(self) -> tuple[Engine, StateStore, CrashPlan]:
            """A new daemon process on the same state database."""
            self.generation += 1
            plan = CrashPlan()
            store = crashing_store(self.tmp / "state.db", plan, self.generation)
            transports = {
                "amazon": CrashTransport(self.amazon.transport(), plan, "amazon"),
                "shopify": CrashTransport(self.shop.transport(), plan, "shopify"),
            }
            engine = Engine(
                self.loaded,
                plugins.registry,
                store,
                hooks=plugins.pm.hook,
                transports=transports,  # type: ignore[arg-type]
                now=self.now,
            )
            engine.connectors(CID).marketplace.now = self.now  # type: ignore[attr-defined]
            return engine, store, plan

        def _bury(self) -> None:
            """Drop the dead process: close its sockets and its database handle, nothing else."""
            self.plan.dead = False
            self.plan.site = None
            self._run(self.engine.aclose())
            self.store.close()

        def _restart(self) -> None:
            self._bury()
            self.engine, self.store, self.plan = self._start()

        def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
            return self.loop.run_until_complete(coro)

        def _sync(self, flow: str) -> None:
            report = self._run(self.engine.run_flow(CID, flow))
            assert report is not None, f"{flow}: the engine could not take its own lease"

        def _tick(self, seconds: float) -> None:
            self.offset += seconds
            self.amazon.sim.advance(seconds)
            self.shop.sim.advance(seconds)

        def _shop_order(self, oid: str) -> Any:
            with self.shop.sim.state.lock:
                found = [
                    o for o in self.shop.sim.state.orders.values() if o.source_identifier == oid
                ]
            return found[0] if len(found) == 1 else None

        def _amazon_status(self, oid: str) -> str:
            return self.amazon.sim.orders[oid].status

        # -- the world ---------------------------------------------------------------

        def _pick(self, data: st.DataObject, candidates: list[str], label: str) -> str | None:
            return data.draw(st.sampled_from(candidates), label=label) if candidates else None

        @rule(
            batch=st.lists(
                st.tuples(
                    st.dictionaries(
                        st.sampled_from(SKUS), st.integers(1, 3), min_size=1, max_size=3
                    ),
                    st.booleans(),
                    st.sampled_from(["Amazon.de", "Amazon.fr"]),
                ),
                min_size=1,
                max_size=3,
            )
        )
        def amazon_orders(self, batch: list[tuple[dict[str, int], bool, str]]) -> None:
            """New Amazon orders; Pending ones wait for payment before they are importable."""
            for skus, pending, marketplace in batch:
                self.order_seq += 1
                oid = f"302-{self.order_seq:07d}-0000001"
                status = "PENDING" if pending else "UNSHIPPED"
                self.amazon.add_order(
                    oid, skus, marketplace=marketplace, status=status, age_minutes=0
                )
                self.order_ids.append(oid)

        @rule(data=st.data())
        def amazon_releases_pending(self, data: st.DataObject) -> None:
            pending = [o for o in self.order_ids if self._amazon_status(o) == "PENDING"]
            oid = self._pick(data, pending, "pending order")
            if oid is not None:
                self.amazon.set_status(oid, "UNSHIPPED")

        @rule(data=st.data())
        def buyer_requests_cancellation(self, data: st.DataObject) -> None:
            open_ = [
                o for o in self.order_ids if self._amazon_status(o) in ("PENDING", "UNSHIPPED")
            ]
            oid = self._pick(data, open_, "order")
            if oid is not None:
                self.amazon.buyer_cancel(oid)

        @rule(data=st.data())
        def amazon_cancels(self, data: st.DataObject) -> None:
            """Amazon cancels an order nobody shipped or cancelled in the shop."""

            def cancellable(oid: str) -> bool:
                shop_order = self._shop_order(oid)
                return (
                    self._amazon_status(oid) in ("PENDING", "UNSHIPPED")
                    and oid not in self.expected.shop_cancelled
                    and (shop_order is None or not shop_order.fulfillment_ids)
                )

            oid = self._pick(data, [o for o in self.order_ids if cancellable(o)], "order")
            if oid is not None:
                self.amazon.marketplace_cancel(oid)
                self.expected.amazon_cancelled.add(oid)

        def _open_in_shop(self) -> dict[str, Any]:
            found = {}
            for oid in self.order_ids:
                order = self._shop_order(oid)
                if (
                    order is not None
                    and order.cancelled_at is None
                    and self._amazon_status(oid) != "CANCELLED"
                ):
                    found[oid] = order
            return found

        @rule(
            partial=st.booleans(),
            carrier=st.sampled_from(["DHL Paket", "DHL", "Hermes Kurier", "UPS"]),
            data=st.data(),
        )
        def shop_ships(self, partial: bool, carrier: str, data: st.DataObject) -> None:
            """The merchant ships all that is left of an order, or part of one line."""
            candidates = {
                oid: order
                for oid, order in self._open_in_shop().items()
                if any(li.quantity > li.fulfilled for li in order.line_items)
            }
            oid = self._pick(data, sorted(candidates), "order")
            if oid is None:
                return
            left = {li.sku: li.quantity - li.fulfilled for li in candidates[oid].line_items}
            left = {sku: n for sku, n in left.items() if n > 0}
            lines = None
            if partial:
                sku = data.draw(st.sampled_from(sorted(left)), label="sku")
                lines = {sku: data.draw(st.integers(1, left[sku]), label="units")}
            self.tracking_seq += 1
            self.shop.ship(oid, lines, carrier, f"TRK{self.tracking_seq:08d}")

        @rule(data=st.data())
        def shop_cancels(self, data: st.DataObject) -> None:
            """The merchant cancels an order nothing of which has shipped."""
            candidates = [
                oid
                for oid, order in self._open_in_shop().items()
                if not order.fulfillment_ids and oid not in self.expected.amazon_cancelled
            ]
            oid = self._pick(data, sorted(candidates), "order")
            if oid is not None:
                self.shop.cancel(oid)
                self.expected.shop_cancelled.add(oid)

        @rule(sku=st.sampled_from(SKUS), quantity=st.integers(0, 30))
        def shop_stock_changes(self, sku: str, quantity: int) -> None:
            self.shop.set_stock(sku, quantity)

        @rule(
            side=st.sampled_from(["amazon", "shopify", "both"]),
            kinds=st.lists(st.sampled_from(FAULT_KINDS), max_size=3, unique=True),
            match=st.sampled_from([".*", "^POST", "^GET", "^PATCH"]),
            probability=st.sampled_from([0.1, 0.3, 0.6]),
        )
        def faults(self, side: str, kinds: list[str], match: str, probability: float) -> None:
            """A new fault profile (no kinds: faults heal)."""
            for name, harness in (("amazon", self.amazon), ("shopify", self.shop)):
                if side in (name, "both"):
                    harness.faults.clear()
                    for kind in kinds:
                        harness.faults.add(kind, match=match, probability=probability)

        @rule(seconds=st.sampled_from([30, 130, 600, 4000]))
        def time_passes(self, seconds: int) -> None:
            self._tick(seconds)

        # -- the daemon ---------------------------------------------------------------

        @rule(flow=st.sampled_from(FLOWS), advance=st.sampled_from([0, 0, 130, 300]))
        def sync(self, flow: str, advance: int) -> None:
            self._tick(advance)
            self._sync(flow)

        @rule(advance=st.sampled_from([0, 130, 300]))
        def sync_all(self, advance: int) -> None:
            """One cycle of the daemon's schedule."""
            self._tick(advance)
            for flow in FLOWS:
                self._sync(flow)

        @rule(
            flow=st.sampled_from(FLOWS),
            site=st.sampled_from(CRASH_SITES),
            countdown=st.integers(1, 30),
        )
        def crash_and_restart(self, flow: str, site: str, countdown: int) -> None:
            """Kill the daemon at the N-th checkpoint of ``site`` during a flow, then restart it."""
            self.plan.arm(site, countdown)
            try:
                self._sync(flow)
            except Crash:
                assert self.plan.fired is not None
                self.crashes.append(self.plan.fired)
            self.plan.disarm()
            self._restart()

        # -- checks ---------------------------------------------------------------------

        def snapshot(self) -> Snapshot:
            return Snapshot.of_harnesses(self.amazon, self.shop, SKUS)

        @invariant()
        def nothing_twice(self) -> None:
            problems = duplicate_problems(self.snapshot())
            assert not problems, "\n".join(problems)

        def settle(self) -> None:
            """Faults heal, a clean restart, then the daemon's flows until nothing changes."""
            for harness in (self.amazon, self.shop):
                harness.faults.clear()
            self._restart()
            self._tick(180)
            previous = None
            for _ in range(8):
                for flow in ("orders", "shipments", "orders", "stock"):
                    self._sync(flow)
                self._tick(180)
                current = (self.snapshot(), state_problems(self.tmp / "state.db"))
                if previous is not None and repr(current) == repr(previous):
                    break
                previous = current
            for _ in range(3):  # a full stock read repairs what changed-only reads cannot see
                self._sync("stock")

        def teardown(self) -> None:
            try:
                if sys.exc_info()[0] is None:  # a step failed already: report that one
                    self.settle()
                    problems = convergence_problems(self.snapshot(), self.expected)
                    problems += state_problems(self.tmp / "state.db")
                    assert not problems, f"after crashes at {self.crashes}:\n" + "\n".join(problems)
            finally:
                try:
                    self._run(self.engine.aclose())
                    self.store.close()
                finally:
                    self.loop.close()
                    shutil.rmtree(self.tmp, ignore_errors=True)

    return OrderSyncMachine


def test_exactly_once_under_faults_and_crashes(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    amazon, shop = AmazonSimHarness(), ShopifySimHarness()
    for name, value in {**amazon.env(), **shop.env()}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine.http, "AsyncRetrying", FastRetrying)
    logging.getLogger("ordersync").setLevel(logging.CRITICAL)
    machine = make_machine(plugins)
    config = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        derandomize="ORDERSYNC_HYPOTHESIS_SEED" not in os.environ,
        database=None,
        print_blob=True,
    )
    if "ORDERSYNC_HYPOTHESIS_SEED" in os.environ:
        machine = seed(int(os.environ["ORDERSYNC_HYPOTHESIS_SEED"]))(machine)
    run_state_machine_as_test(machine, settings=config)
