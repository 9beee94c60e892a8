"""The real engine, the Amazon and Shopify plugins and their simulators, in process.

:class:`SimWorld` owns both simulators (their clocks move together with the
engine's), a state database, and the current engine "process". A
:class:`CrashPlan` kills that process at the N-th checkpoint of a kind: before
or after a state-database write, before a request leaves or after the server
handled it. A dead process raises :class:`Crash` from every checkpoint (its
lease is never released, nothing is cleaned up); :meth:`SimWorld.restart`
builds a new engine on the same database, as a restarted daemon with a new pid.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

import engine.http
from bench.chaos import Snapshot, state_problems
from engine.config import LoadedConfig, load_config
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.state import StateStore, utcnow
from engine.sync.context import FlowReport
from plugins.amazon.harness import AmazonSimHarness
from plugins.shopify.harness import ShopifySimHarness

CID = "eu"
SKUS = ("REL-A", "REL-B", "REL-C", "REL-D")
TIME_SCALE = 1_000_000.0
"""Client-side rate limiters and feed polls never wait: the world's time is virtual."""
FLOWS = ("orders", "shipments", "stock")
VISIBLE = 150
"""Seconds until the Amazon connector reads an order update: Amazon shows updates older
than two minutes, and the connector keeps ten seconds more for clock skew."""
FAKE_PID_BASE = 1 << 22
"""Above any ``pid_max``: every engine generation is a distinct process, dead once replaced."""
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
    "begin_attempts",
    "finish_intent",
    "note_intent_error",
    "record_failure",
    "clear_failure",
    "record_pushed",
    "consume_quota",
)


SHOPIFY_VERSION = re.compile(r"/admin/api/[^/]+/")
SHOPIFY_GRAPHQL = "shopify POST /admin/api/{version}/graphql.json"
"""How a checkpoint names a Shopify GraphQL request (then its operation name)."""


class Crash(BaseException):
    """The process dies here (``kill -9``): no ``except Exception`` sees it."""


class CrashPlan:
    """Counts checkpoints; the N-th one whose name starts with ``site`` (or is ``site``,
    with ``exact``) kills the process. ``seen`` lists every checkpoint passed."""

    def __init__(self) -> None:
        self.site: str | None = None
        self.exact = False
        self.countdown = 0
        self.dead = False
        self.fired: str | None = None
        self.seen: list[str] = []

    def arm(self, site: str, countdown: int, *, exact: bool = False) -> None:
        self.site, self.countdown, self.exact = site, countdown, exact

    def disarm(self) -> None:
        self.site = None

    def point(self, name: str) -> None:
        if self.dead:
            raise Crash(f"dead process reached {name}")
        self.seen.append(name)
        if self.site is None or not (
            name == self.site if self.exact else name.startswith(self.site)
        ):
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self.dead, self.fired, self.site = True, name, None
            raise Crash(name)


class CrashTransport(httpx.AsyncBaseTransport):
    """Checkpoints ``http.before <side> <METHOD> <path> [<GraphQL operation>]`` and
    ``http.after ...``; Shopify's API version in the path is ``{version}``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, plan: CrashPlan, side: str) -> None:
        self.inner, self.plan, self.side = inner, plan, side

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = SHOPIFY_VERSION.sub("/admin/api/{version}/", request.url.path)
        target = f"{self.side} {request.method} {path}"
        if request.url.path.endswith("/graphql.json"):  # name the operation: a crash target
            target += " " + str(json.loads(request.content).get("operationName"))
        self.plan.point(f"http.before {target}")
        response = await self.inner.handle_async_request(request)
        self.plan.point(f"http.after {target}")  # the server committed; the answer is lost
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def crashing_store(path: Path, plan: CrashPlan, generation: int) -> StateStore:
    """A state store whose writes are checkpoints ``store.before <method>`` / ``store.after ...``."""
    store = StateStore(path)
    store.pid = FAKE_PID_BASE + generation
    for name in STORE_WRITES:
        original = getattr(store, name, None)
        if original is None:
            continue

        def checkpointed(
            *args: Any, __name: str = name, __original: Any = original, **kw: Any
        ) -> Any:
            plan.point(f"store.before {__name}")
            result = __original(*args, **kw)
            plan.point(f"store.after {__name}")
            return result

        setattr(store, name, checkpointed)
    return store


class FastRetrying(engine.http.AsyncRetrying):
    """Retries without real back-off sleeps (the world's time is virtual)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["sleep"] = lambda seconds: asyncio.sleep(0)
        super().__init__(*args, **kwargs)


def builtin_plugins() -> Plugins:
    return load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", "plugins.shopify")
    )


def sim_env() -> dict[str, str]:
    """The simulators' credentials (the same for every harness)."""
    return {**AmazonSimHarness().env(), **ShopifySimHarness().env()}


class SimWorld:
    """Both simulators, one state database, the current engine process."""

    def __init__(self, plugins: Plugins, *, full_stock_every: int = 3) -> None:
        self.plugins = plugins
        self.tmp = Path(tempfile.mkdtemp(prefix="ordersync-reliability-"))
        self.db_path = self.tmp / "state.db"
        self.loop = asyncio.new_event_loop()
        self.offset = 0.0
        self.amazon = AmazonSimHarness(time_scale=TIME_SCALE, rate_limits=False)
        self.shop = ShopifySimHarness(time_scale=TIME_SCALE, rate_limits=False)
        for n, sku in enumerate(SKUS):
            self.shop.add_product(sku, 5 + 3 * n)
        self.generation = 0
        self.loaded = self.config(full_stock_every)
        self.engine, self.store, self.plan = self._start()

    # -- wiring ---------------------------------------------------------------------

    def config(self, full_stock_every: int) -> LoadedConfig:
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
                    "schedule": {"full_stock_every": full_stock_every},
                    "marketplace": {"type": "amazon", "settings": market},
                    "shop": {"type": "shopify", "settings": shop},
                }
            ],
        }
        return load_config(None, self.plugins.registry, data=data)

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.offset)

    def _start(self) -> tuple[Engine, StateStore, CrashPlan]:
        self.generation += 1
        plan = CrashPlan()
        store = crashing_store(self.db_path, plan, self.generation)
        transports = {
            "amazon": CrashTransport(self.amazon.transport(), plan, "amazon"),
            "shopify": CrashTransport(self.shop.transport(), plan, "shopify"),
        }
        engine = Engine(
            self.loaded,
            self.plugins.registry,
            store,
            hooks=self.plugins.pm.hook,
            transports=transports,  # type: ignore[arg-type]
            now=self.now,
        )
        engine.connectors(CID).marketplace.now = self.now  # type: ignore[attr-defined]
        return engine, store, plan

    def restart(self, *, full_stock_every: int | None = None) -> None:
        """Bury the current process and start a new one on the same database, optionally
        with a changed config.

        The old process stays dead: its crash plan raises at every checkpoint, and the
        tasks it left running (a sibling request of a ``gather``) are cancelled first, so
        nothing it started is sent after the "kill". Then its sockets and database
        handle are closed, nothing else (its lease is never released).
        """
        self.plan.dead, self.plan.site = True, None
        self._bury_tasks()
        self.run(self.engine.aclose())
        self.store.close()
        if full_stock_every is not None:
            self.loaded = self.config(full_stock_every)
        self.engine, self.store, self.plan = self._start()

    def _bury_tasks(self) -> None:
        left = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in left:
            task.cancel()
        if left:
            self.run(asyncio.gather(*left, return_exceptions=True))

    def close(self) -> None:
        try:
            self._bury_tasks()
            self.run(self.engine.aclose())
            self.store.close()
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    # -- driving ----------------------------------------------------------------------

    def sync(self, flow: str) -> FlowReport:
        report = self.run(self.engine.run_flow(CID, flow))
        assert report is not None, f"{flow}: the engine could not take its own lease"
        return report

    def crash_during(self, flow: str, site: str, countdown: int = 1) -> str | None:
        """Run ``flow`` with a crash armed; restart; the checkpoint that fired, if any."""
        self.plan.arm(site, countdown)
        fired = None
        try:
            self.sync(flow)
        except Crash:
            fired = self.plan.fired
        self.plan.disarm()
        self.restart()
        return fired

    def tick(self, seconds: float) -> None:
        """Time passes for everyone (an Amazon update is read :data:`VISIBLE` s later)."""
        self.offset += seconds
        self.amazon.sim.advance(seconds)
        self.shop.sim.advance(seconds)

    def snapshot(self) -> Snapshot:
        return Snapshot.of_harnesses(self.amazon, self.shop, SKUS)

    def state_problems(self) -> list[str]:
        return state_problems(self.db_path)

    def shop_order(self, oid: str) -> Any:
        with self.shop.sim.state.lock:
            found = [o for o in self.shop.sim.state.orders.values() if o.source_identifier == oid]
        return found[0] if len(found) == 1 else None

    def amazon_status(self, oid: str) -> str:
        return str(self.amazon.sim.orders[oid].status)

    def settle(self) -> None:
        """Faults heal, a clean restart, then the daemon's cycle until nothing changes."""
        for harness in (self.amazon, self.shop):
            harness.faults.clear()
        self.restart()
        self.tick(180)
        previous = None
        for _ in range(8):
            for flow in ("orders", "shipments", "orders", "stock"):
                self.sync(flow)
            self.tick(180)
            current = repr((self.snapshot(), self.state_problems()))
            if current == previous:
                break
            previous = current

    def full_stock_read(self) -> None:
        """A stock run that reads everything (``full_stock_every = 1``): it repairs what
        changed-only reads cannot see, the reservations of Pending orders."""
        self.restart(full_stock_every=1)
        self.sync("stock")
