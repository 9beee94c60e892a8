"""Exactly-once under faults and crashes: a Hypothesis state machine over the real plugins.

The real engine runs the Amazon and Shopify plugins against their simulators in
process (:class:`tests.reliability.world.SimWorld`). Hypothesis interleaves what
Amazon, buyers and the merchant do (new and Pending orders, releases, buyer and
Amazon cancellations, full and partial shipments, shop cancellations, stock
changes) with fault profiles on both simulators (429, 5xx, resets and timeouts
before and after the server commits, cut bodies), sync steps of each flow, the
passing of time, and crashes at the N-th checkpoint of a kind followed by a
restart from the state database.

After every step nothing may exist twice (:func:`bench.chaos.duplicate_problems`).
At the end faults heal and the sync runs until quiet, with the changed-only stock
reads of every run: then nothing may have failed or be left open, every
importable order is in the shop exactly once, every shop shipment and
cancellation reached Amazon exactly once, and Amazon's quantities equal the
shop's stock minus what Pending orders reserve
(:func:`bench.chaos.convergence_problems`). Only then does a full stock read run,
and everything is checked again.

Each injected fault (side and kind) and each crash site is recorded with
``hypothesis.event()`` and counted; the test prints how often each was reached
(``pytest -s``), so a configuration that never reaches a fault or a crash site shows.

``ORDERSYNC_HYPOTHESIS_EXAMPLES`` (default 25) and ``ORDERSYNC_HYPOTHESIS_STEPS``
(default 40) widen the search; ``ORDERSYNC_HYPOTHESIS_SEED`` draws a new seed
(the default run is derandomized, so it is the same on every machine).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import engine.http
from bench.chaos import Expectations, convergence_problems, duplicate_problems
from engine.plugins import Plugins
from tests.reliability.world import (
    FLOWS,
    SHOPIFY_GRAPHQL,
    SKUS,
    VISIBLE,
    FastRetrying,
    SimWorld,
    builtin_plugins,
    sim_env,
)

EXAMPLES = int(os.environ.get("ORDERSYNC_HYPOTHESIS_EXAMPLES", "25"))
STEPS = int(os.environ.get("ORDERSYNC_HYPOTHESIS_STEPS", "40"))
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "reset_before",
    "reset_after",
    "timeout_before",
    "timeout_after",
    "truncated",
    "html_200",
    "malformed_json",
)
CRASH_SITES = (
    "",  # any checkpoint
    "store.",
    "store.before",
    "store.after",
    "store.after begin_attempt",  # an attempt is committed, nothing sent yet
    "http.",
    "http.before",
    "http.after",
    f"http.after {SHOPIFY_GRAPHQL} OrdersyncOrder",  # create, cancel
    "http.after amazon POST",  # Amazon committed confirmShipment or a feed
)
OrderSpec = tuple[dict[str, int], bool, str]


REACHED: Counter[str] = Counter()
"""Every event of the run (faults injected, crash sites), across examples."""


def reached(name: str) -> None:
    event(name)
    REACHED[name] += 1


def crash_site(checkpoint: str) -> str:
    """A checkpoint without its order ids, SKUs and numbers (one event per kind of site)."""
    site = re.sub(r"/(orders|listings|feed-documents)/\S+", r"/\1/...", checkpoint)
    return re.sub(r"\d+", "N", site)


def order_batches(low: int, high: int) -> st.SearchStrategy[list[OrderSpec]]:
    """``(skus, pending, marketplace)`` for a few new Amazon orders."""
    skus = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 3), min_size=1, max_size=3)
    one = st.tuples(skus, st.booleans(), st.sampled_from(["Amazon.de", "Amazon.fr"]))
    return st.lists(one, min_size=low, max_size=high)


def make_machine(plugins: Plugins) -> type[RuleBasedStateMachine]:
    class OrderSyncMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # Changed-only stock reads until the end: a lost stock update shows.
            self.world = SimWorld(plugins, full_stock_every=1000)
            self.expected = Expectations()
            self.order_ids: list[str] = []
            self.tracking = 0
            self.crashes: list[str] = []

        def _pick(self, data: st.DataObject, candidates: list[str]) -> str | None:
            return data.draw(st.sampled_from(candidates), label="order") if candidates else None

        def _add_orders(self, batch: list[OrderSpec]) -> None:
            for skus, pending, marketplace in batch:
                oid = f"302-{len(self.order_ids) + 1:07d}-0000001"
                status = "PENDING" if pending else "UNSHIPPED"
                self.world.amazon.add_order(
                    oid, skus, marketplace=marketplace, status=status, age_minutes=0
                )
                self.order_ids.append(oid)

        def _open_in_shop(self) -> dict[str, Any]:
            found = {}
            for oid in self.order_ids:
                order = self.world.shop_order(oid)
                if (
                    order is not None
                    and order.cancelled_at is None
                    and self.world.amazon_status(oid) != "CANCELLED"
                ):
                    found[oid] = order
            return found

        # -- Amazon, buyers, the merchant -----------------------------------------------

        @initialize(batch=order_batches(2, 6), flows=st.lists(st.sampled_from(FLOWS), unique=True))
        def opening(self, batch: list[OrderSpec], flows: list[str]) -> None:
            """Some orders, then the daemon's first runs (not necessarily of every flow)."""
            self._add_orders(batch)
            self.world.tick(VISIBLE)
            for flow in flows:
                self.world.sync(flow)

        @rule(batch=order_batches(1, 3))
        def amazon_orders(self, batch: list[OrderSpec]) -> None:
            """New Amazon orders; Pending ones wait for payment before they are importable."""
            self._add_orders(batch)

        @rule(data=st.data())
        def amazon_releases_pending(self, data: st.DataObject) -> None:
            pending = [o for o in self.order_ids if self.world.amazon_status(o) == "PENDING"]
            oid = self._pick(data, pending)
            if oid is not None:
                self.world.amazon.set_status(oid, "UNSHIPPED")

        @rule(data=st.data())
        def buyer_requests_cancellation(self, data: st.DataObject) -> None:
            open_ = [
                o for o in self.order_ids if self.world.amazon_status(o) in ("PENDING", "UNSHIPPED")
            ]
            oid = self._pick(data, open_)
            if oid is not None:
                self.world.amazon.buyer_cancel(oid)

        @rule(data=st.data())
        def amazon_cancels(self, data: st.DataObject) -> None:
            """Amazon cancels an order nobody shipped or cancelled in the shop."""

            def cancellable(oid: str) -> bool:
                shop_order = self.world.shop_order(oid)
                return (
                    self.world.amazon_status(oid) in ("PENDING", "UNSHIPPED")
                    and oid not in self.expected.shop_cancelled
                    and (shop_order is None or not shop_order.fulfillment_ids)
                )

            oid = self._pick(data, [o for o in self.order_ids if cancellable(o)])
            if oid is not None:
                self.world.amazon.marketplace_cancel(oid)
                self.expected.amazon_cancelled.add(oid)

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
            oid = self._pick(data, sorted(candidates))
            if oid is None:
                return
            left = {li.sku: li.quantity - li.fulfilled for li in candidates[oid].line_items}
            left = {sku: n for sku, n in left.items() if n > 0}
            lines = None
            if partial:
                sku = data.draw(st.sampled_from(sorted(left)), label="sku")
                lines = {sku: data.draw(st.integers(1, left[sku]), label="units")}
            self.tracking += 1
            self.world.shop.ship(oid, lines, carrier, f"TRK{self.tracking:08d}")

        @rule(data=st.data())
        def shop_cancels(self, data: st.DataObject) -> None:
            """The merchant cancels an order nothing of which has shipped."""
            candidates = [
                oid
                for oid, order in self._open_in_shop().items()
                if not order.fulfillment_ids and oid not in self.expected.amazon_cancelled
            ]
            oid = self._pick(data, sorted(candidates))
            if oid is not None:
                self.world.shop.cancel(oid)
                self.expected.shop_cancelled.add(oid)

        @rule(sku=st.sampled_from(SKUS), quantity=st.integers(0, 30))
        def shop_stock_changes(self, sku: str, quantity: int) -> None:
            self.world.shop.set_stock(sku, quantity)

        @rule(
            side=st.sampled_from(["amazon", "shopify", "both"]),
            kinds=st.lists(st.sampled_from(FAULT_KINDS), max_size=3, unique=True),
            match=st.sampled_from([".*", "^POST", "^GET", "^PATCH"]),
            probability=st.sampled_from([0.1, 0.3, 0.6]),
        )
        def faults(self, side: str, kinds: list[str], match: str, probability: float) -> None:
            """A new fault profile (no kinds: faults heal)."""
            for name, harness in (("amazon", self.world.amazon), ("shopify", self.world.shop)):
                if side in (name, "both"):
                    harness.faults.clear()
                    for kind in kinds:
                        harness.faults.add(kind, match=match, probability=probability)

        @rule(seconds=st.sampled_from([30, VISIBLE, 600, 4000]))
        def time_passes(self, seconds: int) -> None:
            self.world.tick(seconds)

        # -- the daemon ---------------------------------------------------------------

        @rule(flow=st.sampled_from(FLOWS), advance=st.sampled_from([0, 0, VISIBLE, 300]))
        def sync(self, flow: str, advance: int) -> None:
            self.world.tick(advance)
            self.world.sync(flow)

        @rule(advance=st.sampled_from([0, VISIBLE, 300]))
        def sync_all(self, advance: int) -> None:
            """One cycle of the daemon's schedule."""
            self.world.tick(advance)
            for flow in FLOWS:
                self.world.sync(flow)

        @rule(
            flow=st.sampled_from(FLOWS),
            site=st.sampled_from(CRASH_SITES),
            countdown=st.integers(1, 30),
        )
        def crash_and_restart(self, flow: str, site: str, countdown: int) -> None:
            """Kill the daemon at the N-th checkpoint of ``site`` during a flow; restart it."""
            fired = self.world.crash_during(flow, site, countdown)
            if fired is not None:
                self.crashes.append(fired)
                reached(f"crash at {crash_site(fired)}")

        # -- checks ---------------------------------------------------------------------

        @invariant()
        def nothing_twice(self) -> None:
            problems = duplicate_problems(self.world.snapshot())
            assert not problems, "\n".join(problems)

        def teardown(self) -> None:
            try:
                for side, harness in (("amazon", self.world.amazon), ("shopify", self.world.shop)):
                    for kind in sorted(harness.faults.injected):
                        reached(f"fault injected: {side} {kind}")
                if sys.exc_info()[0] is None:  # a step failed already: report that one
                    self.world.settle()
                    # Changed-only stock reads must have converged on their own.
                    problems = convergence_problems(self.world.snapshot(), self.expected)
                    problems += self.world.state_problems()
                    self.world.full_stock_read()
                    problems += convergence_problems(self.world.snapshot(), self.expected)
                    problems += self.world.state_problems()
                    assert not problems, f"crashed at {self.crashes}:\n" + "\n".join(
                        dict.fromkeys(problems)
                    )
            finally:
                self.world.close()

    return OrderSyncMachine


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return builtin_plugins()


def test_exactly_once_under_faults_and_crashes(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sim_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine.http, "AsyncRetrying", FastRetrying)
    quiet = logging.getLogger("ordersync")
    monkeypatch.setattr(quiet, "disabled", True)  # the faults make the engine log a lot
    machine = make_machine(plugins)
    chosen = os.environ.get("ORDERSYNC_HYPOTHESIS_SEED")
    if chosen:
        machine = seed(int(chosen))(machine)
    config = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not chosen,
        database=None,
    )
    REACHED.clear()
    try:
        run_state_machine_as_test(machine, settings=config)
    finally:
        print("reached (examples or crashes):")
        for name, n in sorted(REACHED.items()):
            print(f"  {n:4d}  {name}")
