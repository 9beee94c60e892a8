"""Chaos run: the real ``ordersync run`` daemon, SIGKILLed at random, under injected faults.

``python -m bench.chaos --orders 2000 [--seed N] [--quick]``

The Amazon and Shopify simulators are served on loopback (uvicorn, threads of
this process). The daemon is a subprocess started from a generated config
(short schedule intervals, ``time_scale``). While Amazon orders, releases,
buyer and Amazon cancellations, shop shipments (some partial), shop
cancellations and stock changes are added over time through the simulators'
admin APIs, fault rules are POSTed to ``/_faults`` on both simulators (429,
5xx, resets and timeouts before and after the server commits) and the daemon
is killed with SIGKILL at random moments and restarted. Duplicates are checked
all along; at the end faults heal, the daemon runs until quiet and the
convergence check runs. The seed, the counts and every invariant's result are
printed; the exit status is 1 if any invariant failed.

The invariant checks (:func:`duplicate_problems`, :func:`convergence_problems`,
:func:`state_problems`) work on plain snapshots of both simulators and are
shared with ``tests/reliability``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from plugins.amazon.connector import package_reference_id

# ---------------------------------------------------------------------------
# Snapshots and invariants (shared with tests/reliability)
# ---------------------------------------------------------------------------

SHIPPED_STATUSES = ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED")
OPEN_ORDER_STATES = (
    "queued",
    "held",
    "import_intended",
    "cancel_in_shop_intended",
    "cancel_on_marketplace_intended",
)


@dataclass
class Snapshot:
    """What both simulators hold, as plain data.

    :param amazon_orders: order id → the simulator's v2026 order JSON.
    :param amazon_cancellations: ``{"orderId", "by", "reason"}`` in order of arrival.
    :param amazon_confirmations: applied ``confirmShipment`` calls (``orderId``, ``request``).
    :param amazon_quantities: SKU → listed quantity.
    :param shop_orders: the Shopify simulator's order summaries.
    :param shop_stock: SKU → ``available`` at the stock location.
    """

    amazon_orders: dict[str, dict[str, Any]]
    amazon_cancellations: list[dict[str, Any]]
    amazon_confirmations: list[dict[str, Any]]
    amazon_quantities: dict[str, int]
    shop_orders: list[dict[str, Any]]
    shop_stock: dict[str, int]

    @classmethod
    def of_harnesses(cls, amazon: Any, shop: Any, skus: Iterable[str]) -> Snapshot:
        """Read in-process harnesses (``AmazonSimHarness``, ``ShopifySimHarness``)."""
        sim = amazon.sim
        return cls(
            amazon_orders={oid: json.loads(json.dumps(o.data)) for oid, o in sim.orders.items()},
            amazon_cancellations=[dict(c) for c in sim.cancellations],
            amazon_confirmations=[
                {"orderId": c["orderId"], "request": c["request"]} for c in sim.confirmations
            ],
            amazon_quantities=dict(sim.quantities),
            shop_orders=shop.sim.list_orders(),
            shop_stock={sku: shop.stock(sku) for sku in skus},
        )

    def shop_by_source(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for order in self.shop_orders:
            source = order.get("source_identifier")
            if source:
                found.setdefault(source, []).append(order)
        return found

    def amazon_status(self, order_id: str) -> str:
        order = self.amazon_orders[order_id]
        return str((order.get("fulfillment") or {}).get("fulfillmentStatus"))


@dataclass
class Expectations:
    """What the driver did that the simulators alone cannot tell apart."""

    shop_cancelled: set[str] = field(default_factory=set)
    """Orders the merchant cancelled in the shop (must be cancelled on Amazon once)."""
    amazon_cancelled: set[str] = field(default_factory=set)
    """Orders Amazon cancelled (must be cancelled in the shop if they reached it)."""


def _amazon_item_skus(order: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(i["orderItemId"]): str(i["product"]["sellerSku"]) for i in order.get("orderItems") or ()
    }


def _fulfillment_skus(
    shop_order: Mapping[str, Any], fulfillment: Mapping[str, Any]
) -> Counter[str]:
    line_skus = {line["id"]: line["sku"] for line in shop_order["lines"]}
    out: Counter[str] = Counter()
    for line in fulfillment["lines"]:
        out[line_skus[line["line_item_id"]]] += int(line["quantity"])
    return out


def duplicate_problems(snap: Snapshot) -> list[str]:
    """Must hold at every moment, whatever failed: nothing was done twice.

    - no Amazon order is in the shop twice, and every shop order of ours is an Amazon order;
    - no shop shipment became two Amazon packages, no Amazon package is unknown to the
      shop, and a re-sent confirmation (same ``packageReferenceId``, which Amazon treats
      as an edit) carried the same content;
    - no order was cancelled on Amazon twice.
    """
    problems = []
    by_source = snap.shop_by_source()
    for source, orders in sorted(by_source.items()):
        if len(orders) > 1:
            names = ", ".join(o["name"] for o in orders)
            problems.append(f"order {source} is in the shop {len(orders)} times ({names})")
        if source not in snap.amazon_orders:
            problems.append(f"shop order {orders[0]['name']} names unknown Amazon order {source}")
    for oid, order in sorted(snap.amazon_orders.items()):
        packages = [p for p in order.get("packages") or () if isinstance(p, dict)]
        refs = Counter(p["packageReferenceId"] for p in packages)
        for ref, n in refs.items():
            if n > 1:
                problems.append(f"order {oid}: package {ref} confirmed {n} times")
        shop_orders = by_source.get(oid, [])
        known = {package_reference_id(f["id"]): f for so in shop_orders for f in so["fulfillments"]}
        for ref in refs:
            if ref not in known:
                problems.append(f"order {oid}: Amazon has package {ref} that no shop shipment made")
        tracking = Counter(p.get("trackingNumber") for p in packages)
        for number, n in tracking.items():
            if n > 1:
                problems.append(f"order {oid}: tracking {number} confirmed in {n} packages")
    sent: dict[tuple[str, str], dict[str, Any]] = {}
    for confirmation in snap.amazon_confirmations:
        package = confirmation["request"]
        key = (confirmation["orderId"], str(package["packageReferenceId"]))
        content = {
            "trackingNumber": package.get("trackingNumber"),
            "orderItems": sorted(
                (str(i["orderItemId"]), int(i["quantity"])) for i in package["orderItems"]
            ),
        }
        if key in sent and sent[key] != content:
            problems.append(
                f"order {key[0]}: package {key[1]} confirmed again with other content "
                f"({sent[key]} then {content})"
            )
        sent.setdefault(key, content)
    cancels = Counter((c["orderId"], c["by"]) for c in snap.amazon_cancellations)
    for (oid, by), n in sorted(cancels.items()):
        if n > 1:
            problems.append(f"order {oid} cancelled on Amazon {n} times by {by}")
    return problems


def reserved_by_pending(snap: Snapshot) -> Counter[str]:
    """Units that Amazon orders not yet importable (Pending) take from the shop's stock."""
    reserved: Counter[str] = Counter()
    for order in snap.amazon_orders.values():
        status = (order.get("fulfillment") or {}).get("fulfillmentStatus")
        if status in ("PENDING", "PENDING_AVAILABILITY"):
            for item in order.get("orderItems") or ():
                reserved[str(item["product"]["sellerSku"])] += int(item["quantityOrdered"])
    return reserved


def convergence_problems(snap: Snapshot, expected: Expectations) -> list[str]:
    """Once faults heal and the sync runs quiet: everything arrived exactly once.

    - every importable Amazon order is in the shop exactly once, no Pending order is;
    - Amazon cancellations reached the shop, shop cancellations reached Amazon once,
      and nothing else was cancelled on either side;
    - every shop shipment is exactly one Amazon package with the same SKUs, quantities
      and tracking, and Amazon's order status matches what the shop shipped;
    - Amazon's quantity of every SKU is the shop's stock minus what Pending Amazon
      orders reserve (never below zero).
    """
    problems = duplicate_problems(snap)
    by_source = snap.shop_by_source()
    merchant_cancels = Counter(
        c["orderId"] for c in snap.amazon_cancellations if c["by"] == "MERCHANT"
    )
    for oid, order in sorted(snap.amazon_orders.items()):
        status = snap.amazon_status(oid)
        in_shop = by_source.get(oid, [])
        if status in SHIPPED_STATUSES and len(in_shop) != 1:
            problems.append(f"order {oid} ({status} on Amazon) is in the shop {len(in_shop)} times")
        if status in ("PENDING", "PENDING_AVAILABILITY") and in_shop:
            problems.append(f"order {oid} is still Pending on Amazon but in the shop")
        shop_order = in_shop[0] if len(in_shop) == 1 else None
        shop_cancelled = shop_order is not None and shop_order.get("cancelled_at") is not None
        if oid in expected.shop_cancelled:
            if status != "CANCELLED" or merchant_cancels[oid] != 1:
                problems.append(
                    f"order {oid} was cancelled in the shop: Amazon shows {status} with "
                    f"{merchant_cancels[oid]} seller cancellation(s), expected CANCELLED once"
                )
        elif merchant_cancels[oid]:
            problems.append(
                f"order {oid} was cancelled on Amazon by ordersync, but not in the shop"
            )
        if status == "CANCELLED" and oid in expected.amazon_cancelled:
            if shop_order is not None and not shop_cancelled:
                problems.append(f"order {oid}: cancelled by Amazon, still open in the shop")
        elif shop_cancelled and oid not in expected.shop_cancelled:
            problems.append(f"order {oid} was cancelled in the shop though nobody cancelled it")
        if shop_order is None:
            if order.get("packages"):
                problems.append(f"order {oid} has Amazon packages but no shop order")
            continue
        packages = {p["packageReferenceId"]: p for p in order.get("packages") or ()}
        item_skus = _amazon_item_skus(order)
        for fulfillment in shop_order["fulfillments"]:
            if fulfillment.get("status", "SUCCESS") != "SUCCESS":
                continue
            ref = package_reference_id(fulfillment["id"])
            package = packages.get(ref)
            if package is None:
                problems.append(
                    f"order {oid}: shop shipment {fulfillment['id']} "
                    f"({fulfillment.get('tracking_number')}) never reached Amazon"
                )
                continue
            shipped: Counter[str] = Counter()
            for item in package.get("packageItems") or ():
                shipped[item_skus[str(item["orderItemId"])]] += int(item["quantity"])
            wanted = _fulfillment_skus(shop_order, fulfillment)
            if shipped != wanted:
                problems.append(
                    f"order {oid}: package {ref} ships {dict(shipped)}, the shop shipped {dict(wanted)}"
                )
            if package.get("trackingNumber") != fulfillment.get("tracking_number"):
                problems.append(
                    f"order {oid}: package {ref} has tracking {package.get('trackingNumber')}, "
                    f"the shop {fulfillment.get('tracking_number')}"
                )
        if not shop_cancelled and status != "CANCELLED":
            ordered = sum(line["quantity"] for line in shop_order["lines"])
            fulfilled = sum(line["fulfilled"] for line in shop_order["lines"])
            want = (
                "UNSHIPPED"
                if fulfilled == 0
                else ("SHIPPED" if fulfilled >= ordered else "PARTIALLY_SHIPPED")
            )
            if status != want:
                problems.append(
                    f"order {oid}: the shop shipped {fulfilled}/{ordered} units, Amazon shows {status}"
                )
    reserved = reserved_by_pending(snap)
    for sku, available in sorted(snap.shop_stock.items()):
        want_qty = max(0, available - reserved[sku])
        have = snap.amazon_quantities.get(sku)
        if have != want_qty:
            problems.append(
                f"SKU {sku}: Amazon lists {have}, the shop has {available} with "
                f"{reserved[sku]} reserved by Pending orders: expected {want_qty}"
            )
    return problems


def state_problems(db_path: str | Path, connection_id: str | None = None) -> list[str]:
    """The state database is at rest: no open intent, no order in flight, no failure."""
    problems = []
    where, args = ("", []) if connection_id is None else (" AND connection_id = ?", [connection_id])
    with sqlite3.connect(db_path, timeout=30) as db:
        for kind, key, state, attempts, error in db.execute(
            f"SELECT kind, key, state, attempts, last_error FROM outbox WHERE state != 'done'{where}",
            args,
        ):
            problems.append(
                f"intent {kind} {key} is {state} after {attempts} attempt(s): {error or ''}".strip()
            )
        marks = ",".join("?" for _ in OPEN_ORDER_STATES)
        for oid, state in db.execute(
            f"SELECT order_id, state FROM orders WHERE state IN ({marks}){where}",
            [*OPEN_ORDER_STATES, *args],
        ):
            problems.append(f"order {oid} is still {state}")
        for oid, reason, message in db.execute(
            f"SELECT order_id, failure_reason, failure_message FROM orders "
            f"WHERE state = 'failed'{where}",
            args,
        ):
            problems.append(f"order {oid} failed: {reason}: {message}")
        for kind, key, reason, message in db.execute(
            f"SELECT kind, key, reason, message FROM failures WHERE 1 = 1{where}", args
        ):
            problems.append(f"{kind} {key} recorded as failed: {reason}: {message}")
    return problems


# ---------------------------------------------------------------------------
# The simulators' process: Amazon and Shopify on loopback, plus shop stock
# ---------------------------------------------------------------------------

STOCK_PATH = "/_chaos/stock"


def _with_stock_route(shop: Any) -> Any:
    """The Shopify simulator's app plus ``GET /_chaos/stock?sku=A&sku=B`` (available units)."""
    from urllib.parse import parse_qs

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == STOCK_PATH:
            query = parse_qs(scope.get("query_string", b"").decode())
            stock = {sku: shop.stock(sku) for sku in query.get("sku", [])}
            body = json.dumps(stock).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await shop.app(scope, receive, send)

    return app


def serve_simulators(amazon_port: int, shop_port: int, time_scale: float, seed: int) -> None:
    """Serve both simulators until SIGTERM (``--serve``; run as a child process)."""
    from engine.testing.server import serve_in_thread
    from plugins.amazon.harness import AmazonSimHarness
    from plugins.shopify.harness import ShopifySimHarness

    amazon = AmazonSimHarness(time_scale=time_scale, seed=seed)
    shop = ShopifySimHarness(time_scale=time_scale, seed=seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ExitStack() as stack:
        stack.enter_context(serve_in_thread(amazon.app, port=amazon_port))
        stack.enter_context(serve_in_thread(_with_stock_route(shop), port=shop_port))
        print("simulators ready", flush=True)
        stop.wait()


# ---------------------------------------------------------------------------
# The chaos run
# ---------------------------------------------------------------------------

FAULTS = (
    "429",
    "500",
    "503",
    "reset_before",
    "reset_after",
    "timeout_before",
    "timeout_after",
    "truncated",
)
CARRIERS = ("DHL Paket", "DHL", "Hermes Kurier", "UPS", "Deutsche Post")
CONNECTION = "chaos"
HANG_SECONDS = 3.0
"""A ``timeout_*`` fault holds the connection this long; the clients give up after 2 s."""
CLIENT_TIMEOUT = 2.0
UPDATE_AGE = 125
"""Amazon updates are stamped this many seconds in the past: Amazon shows only updates
older than two minutes, and the daemon cannot be given a shifted clock."""


@dataclass
class Profile:
    """How hard and how long: ``--quick`` for the test suite, the default for ``make chaos``."""

    orders_per_second: float
    kill_after: tuple[float, float]
    """Seconds of daemon uptime before the next SIGKILL (uniform)."""
    fault_period: tuple[float, float]
    skus: int
    settle_timeout: float
    time_scale: float = 100.0


FULL = Profile(
    orders_per_second=9.0, kill_after=(1.5, 7.0), fault_period=(3, 10), skus=40, settle_timeout=240
)
QUICK = Profile(
    orders_per_second=7.0, kill_after=(1.5, 5.0), fault_period=(2, 6), skus=12, settle_timeout=45
)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _parse_iso(value: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))


def _free_port() -> int:
    from engine.testing.server import free_port

    return free_port()


def toml_value(value: Any) -> str:
    """A value as TOML (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"cannot write {value!r} as TOML")


@dataclass
class Stats:
    orders: int = 0
    pending: int = 0
    released: int = 0
    buyer_requests: int = 0
    amazon_cancels: int = 0
    shipments: int = 0
    partial_shipments: int = 0
    shop_cancels: int = 0
    stock_changes: int = 0
    kills: int = 0
    starts: int = 0
    unexpected_exits: int = 0
    fault_profiles: int = 0
    duplicate_checks: int = 0


class ChaosRun:
    def __init__(self, orders: int, seed: int, profile: Profile, workdir: Path) -> None:
        self.total_orders = orders
        self.seed = seed
        self.profile = profile
        self.workdir = workdir
        self.random = random.Random(seed)
        self.stats = Stats()
        self.expected = Expectations()
        self.problems: list[str] = []
        self.duplicates: list[str] = []
        self.amazon_status: dict[str, str] = {}
        self.pending: list[str] = []
        self.skus = [f"CH-{n:03d}" for n in range(profile.skus)]
        self.daemon: subprocess.Popen[bytes] | None = None
        self.daemon_started = 0.0
        self.next_kill = 0.0
        self.tracking = 0
        self.log = (workdir / "daemon.log").open("ab")

    # -- plumbing -------------------------------------------------------------------

    def start_simulators(self, stack: ExitStack) -> None:
        from plugins.amazon.harness import AmazonSimHarness
        from plugins.shopify.harness import ShopifySimHarness

        amazon_port, shop_port = _free_port(), _free_port()
        command = [
            sys.executable,
            "-m",
            "bench.chaos",
            "--serve",
            str(amazon_port),
            str(shop_port),
            "--time-scale",
            str(self.profile.time_scale),
            "--seed",
            str(self.seed),
        ]
        sims = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log)
        stack.callback(self._stop_process, sims)
        assert sims.stdout is not None
        line = sims.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError(f"the simulators did not start (see {self.workdir / 'daemon.log'})")
        self.amazon_url = f"http://127.0.0.1:{amazon_port}"
        self.shop_url = f"http://127.0.0.1:{shop_port}"
        self.http = stack.enter_context(httpx.Client(timeout=60))
        # Same defaults as the served harnesses: only for settings and credentials.
        amazon, shop = AmazonSimHarness(), ShopifySimHarness()
        self.env = {**os.environ, **amazon.env(), **shop.env()}
        self.env.pop("ORDERSYNC_LOAD_PLUGINS", None)
        self.amazon_settings = amazon.settings(self.amazon_url)
        self.shop_settings = shop.settings(self.shop_url)

    @staticmethod
    def _stop_process(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def write_config(self) -> Path:
        market = {**self.amazon_settings, "request_timeout": CLIENT_TIMEOUT}
        shop = {**self.shop_settings, "timeout": CLIENT_TIMEOUT}
        lines = [
            'state_path = "state.db"',
            'log_level = "WARNING"',
            f"time_scale = {self.profile.time_scale}",
            "lease_seconds = 120",
            "",
            "[[connections]]",
            f'id = "{CONNECTION}"',
            'default_shipping_service = "Other"',
            'cancellation_reason = "NoInventory"',
            'carrier_map = { "DHL Paket" = "DHL", "Deutsche Post" = "Deutsche Post" }',
            # Changed-only stock reads after the first: what they miss shows at the end.
            "schedule = { orders = 1, shipments = 1, stock = 1, full_stock_every = 100000 }",
            "",
            "[connections.marketplace]",
            'type = "amazon"',
            f"settings = {toml_value(market)}",
            "",
            "[connections.shop]",
            'type = "shopify"',
            f"settings = {toml_value(shop)}",
            "",
        ]
        path = self.workdir / "ordersync.toml"
        path.write_text("\n".join(lines))
        return path

    def amazon(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.amazon_url + path, **kwargs)
        response.raise_for_status()
        return response.json()

    def shop(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.shop_url + path, **kwargs)
        response.raise_for_status()
        return response.json()

    # -- the daemon -----------------------------------------------------------------

    def start_daemon(self) -> None:
        command = [sys.executable, "-m", "engine", "run", "-c", str(self.config)]
        self.log.write(f"--- start {self.stats.starts + 1} at {time.time():.3f}\n".encode())
        self.log.flush()
        self.daemon = subprocess.Popen(
            command, env=self.env, stdout=self.log, stderr=self.log, cwd=self.workdir
        )
        self.stats.starts += 1
        self.daemon_started = time.monotonic()
        self.next_kill = self.daemon_started + self.random.uniform(*self.profile.kill_after)

    def check_daemon(self, *, kill: bool) -> None:
        assert self.daemon is not None
        if self.daemon.poll() is not None:
            self.stats.unexpected_exits += 1
            self.problems.append(
                f"the daemon exited by itself with status {self.daemon.returncode}"
            )
            self.start_daemon()
        elif kill and time.monotonic() >= self.next_kill:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait()
            self.stats.kills += 1
            self.log.write(f"--- SIGKILL at {time.time():.3f}\n".encode())
            self.start_daemon()

    def stop_daemon(self) -> int:
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGTERM)
        try:
            return self.daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            return -9

    # -- faults -----------------------------------------------------------------------

    def new_fault_profile(self) -> None:
        """New rules on both simulators (sometimes none: a calm spell)."""
        for call in (self.amazon, self.shop):
            call("DELETE", "/_faults")
            if self.random.random() < 0.25:
                continue
            kinds = self.random.sample(FAULTS, self.random.randint(1, 4))
            rules = []
            for kind in kinds:
                scale = 0.3 if kind.startswith("timeout") else 1.0
                rules.append(
                    {
                        "kind": kind,
                        "match": self.random.choice([".*", ".*", "^POST", "^GET", "^PATCH"]),
                        "probability": round(self.random.uniform(0.03, 0.15) * scale, 3),
                    }
                )
            call("POST", "/_faults", json={"rules": rules, "hang_seconds": HANG_SECONDS})
        self.stats.fault_profiles += 1

    def heal(self) -> None:
        self.amazon("DELETE", "/_faults")
        self.shop("DELETE", "/_faults")

    def injected(self) -> dict[str, dict[str, int]]:
        return {
            "amazon": self.amazon("GET", "/_faults")["injected"],
            "shopify": self.shop("GET", "/_faults")["injected"],
        }

    # -- the world --------------------------------------------------------------------

    def seed_catalogue(self) -> None:
        for sku in self.skus:
            self.shop(
                "POST",
                "/_admin/products",
                json={"sku": sku, "quantity": self.random.randint(20, 200), "price": "19.99"},
            )

    def add_order(self) -> None:
        items = {
            sku: self.random.randint(1, 3)
            for sku in self.random.sample(self.skus, self.random.choice([1, 1, 1, 2, 3]))
        }
        pending = self.random.random() < 0.15
        order = self.amazon(
            "POST",
            "/_admin/orders",
            json={
                "items": items,
                "marketplace": self.random.choice(["Amazon.de", "Amazon.de", "Amazon.fr"]),
                "status": "PENDING" if pending else "UNSHIPPED",
                "createdAt": _iso(time.time() - UPDATE_AGE - 30),
            },
        )
        oid = order["orderId"]
        self.amazon_status[oid] = "PENDING" if pending else "UNSHIPPED"
        self.stats.orders += 1
        if pending:
            self.stats.pending += 1
            self.pending.append(oid)

    def update_amazon_order(self, oid: str, change: Any) -> None:
        """Change an order as Amazon would, stamped two minutes ago (see ``UPDATE_AGE``)."""
        data = self.amazon("GET", f"/_admin/orders/{oid}")
        change(data)
        previous = _parse_iso(data["lastUpdatedTime"])
        data["lastUpdatedTime"] = _iso(max(previous + 1, time.time() - UPDATE_AGE))
        self.amazon("POST", "/_admin/orders", json={"order": data})

    def release(self, oid: str) -> None:
        def change(data: dict[str, Any]) -> None:
            data["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"

        self.update_amazon_order(oid, change)
        self.amazon_status[oid] = "UNSHIPPED"
        self.stats.released += 1

    def buyer_requests_cancellation(self, oid: str) -> None:
        def change(data: dict[str, Any]) -> None:
            for item in data["orderItems"]:
                item.setdefault("cancellation", {})["cancellationRequest"] = {
                    "requester": "BUYER",
                    "cancelReason": "Ordered by mistake",
                }

        self.update_amazon_order(oid, change)
        self.stats.buyer_requests += 1

    def amazon_cancels(self, oid: str) -> None:
        def change(data: dict[str, Any]) -> None:
            data["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
            for item in data["orderItems"]:
                item.setdefault("cancellation", {})["cancellationExecution"] = {
                    "cancelledBy": "AMAZON",
                    "cancelReason": "Cancelled by Amazon",
                }

        self.update_amazon_order(oid, change)
        self.amazon_status[oid] = "CANCELLED"
        self.expected.amazon_cancelled.add(oid)
        if oid in self.pending:
            self.pending.remove(oid)
        self.stats.amazon_cancels += 1

    def shop_orders(self) -> dict[str, dict[str, Any]]:
        return {
            o["source_identifier"]: o
            for o in self.shop("GET", "/_admin/orders")
            if o["source_identifier"]
        }

    def untouched_by_daemon(self, oid: str, shop_order: dict[str, Any] | None) -> bool:
        """Amazon-side changes only where the daemon cannot be writing to Amazon at once."""
        return (
            self.amazon_status.get(oid) in ("PENDING", "UNSHIPPED")
            and oid not in self.expected.shop_cancelled
            and (shop_order is None or not shop_order["fulfillments"])
        )

    def act(self, shop_orders: dict[str, dict[str, Any]], budget: float) -> None:
        """What merchants, buyers and Amazon do in one tick (``budget``: orders due)."""
        r = self.random
        for _ in range(int(budget)):
            if self.stats.orders < self.total_orders:
                self.add_order()
        ready = [o for o in self.pending if o in self.amazon_status]
        for oid in ready[: max(0, int(len(ready) * 0.3))]:
            if r.random() < 0.5:
                self.pending.remove(oid)
                self.release(oid)
        recent = list(self.amazon_status)[-200:]
        candidates = [o for o in recent if self.untouched_by_daemon(o, shop_orders.get(o))]
        for _ in range(int(budget * 0.08 + r.random())):
            if not candidates:
                break
            oid = candidates.pop(r.randrange(len(candidates)))
            if r.random() < 0.5:
                self.amazon_cancels(oid)
            else:
                self.buyer_requests_cancellation(oid)
        open_orders = [
            (oid, o)
            for oid, o in shop_orders.items()
            if o["cancelled_at"] is None and self.amazon_status.get(oid) != "CANCELLED"
        ]
        r.shuffle(open_orders)
        ships = int(budget * 0.8 + r.random())
        cancels = int(budget * 0.06 + r.random())
        for oid, order in open_orders:
            left = {li["sku"]: li["quantity"] - li["fulfilled"] for li in order["lines"]}
            left = {sku: n for sku, n in left.items() if n > 0}
            if cancels and not order["fulfillments"] and oid not in self.expected.amazon_cancelled:
                self.shop("POST", f"/_admin/orders/{order['legacy_id']}/cancel", json={})
                self.expected.shop_cancelled.add(oid)
                self.stats.shop_cancels += 1
                cancels -= 1
            elif ships and left:
                body: dict[str, Any] = {
                    "tracking_company": r.choice(CARRIERS),
                    "tracking_number": f"CH{self.seed % 1000:03d}{self.tracking:07d}",
                }
                self.tracking += 1
                if r.random() < 0.3:
                    sku = r.choice(sorted(left))
                    body["lines"] = [{"sku": sku, "quantity": r.randint(1, left[sku])}]
                    self.stats.partial_shipments += 1
                self.shop("POST", f"/_admin/orders/{order['legacy_id']}/fulfillments", json=body)
                self.stats.shipments += 1
                ships -= 1
            if not ships and not cancels:
                break
        for _ in range(int(budget * 0.5 + r.random())):
            sku = r.choice(self.skus)
            self.shop("POST", "/_admin/stock", json={"sku": sku, "quantity": r.randint(0, 150)})
            self.stats.stock_changes += 1

    # -- checks -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        shop_orders = self.shop("GET", "/_admin/orders")
        state = self.amazon("GET", "/_admin/state")
        orders = {o["orderId"]: o for o in self.amazon("GET", "/_admin/orders")["orders"]}
        stock = self.shop("GET", STOCK_PATH, params=[("sku", s) for s in self.skus])
        return Snapshot(
            amazon_orders=orders,
            amazon_cancellations=state["cancellations"],
            amazon_confirmations=[
                {"orderId": c["orderId"], "request": c["request"]}
                for c in self.amazon("GET", "/_admin/confirmations")["confirmations"]
            ],
            amazon_quantities=state["quantities"],
            shop_orders=shop_orders,
            shop_stock=stock,
        )

    def check_duplicates(self) -> None:
        self.stats.duplicate_checks += 1
        for problem in duplicate_problems(self.snapshot()):
            if problem not in self.duplicates:
                self.duplicates.append(problem)
                print(f"  DUPLICATE: {problem}", flush=True)

    def settle(self) -> tuple[list[str], list[str], float]:
        """Wait until both sides converged and the state database is at rest."""
        started = time.monotonic()
        deadline = started + self.profile.settle_timeout
        quiet = 0
        while True:
            time.sleep(2)
            self.check_daemon(kill=False)
            converged = convergence_problems(self.snapshot(), self.expected)
            at_rest = state_problems(self.workdir / "state.db", CONNECTION)
            quiet = quiet + 1 if not converged and not at_rest else 0
            if quiet >= 2 or time.monotonic() > deadline:
                return converged, at_rest, time.monotonic() - started

    # -- the run ------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        print(f"chaos seed: {self.seed}", flush=True)
        print(
            f"orders: {self.total_orders}, workdir: {self.workdir}, time scale: "
            f"{self.profile.time_scale}",
            flush=True,
        )
        with ExitStack() as stack:
            self.start_simulators(stack)
            self.config = self.write_config()
            self.seed_catalogue()
            self.start_daemon()
            stack.callback(lambda: self.daemon and self._stop_process(self.daemon))
            next_faults = time.monotonic()
            next_check = time.monotonic() + 3
            last = time.monotonic()
            due = 0.0
            shop_orders: dict[str, dict[str, Any]] = {}
            while self.stats.orders < self.total_orders:
                now = time.monotonic()
                due += (now - last) * self.profile.orders_per_second
                last = now
                if now >= next_faults:
                    self.new_fault_profile()
                    next_faults = now + self.random.uniform(*self.profile.fault_period)
                self.check_daemon(kill=True)
                shop_orders = self.shop_orders()
                self.act(shop_orders, due)
                due -= int(due)
                if now >= next_check:
                    self.check_duplicates()
                    next_check = now + 3
                time.sleep(0.25)
            workload = time.monotonic() - started
            print(
                f"workload done in {workload:.0f} s; healing faults and letting the daemon settle",
                flush=True,
            )
            self.heal()
            self.check_duplicates()
            converged, at_rest, settle_time = self.settle()
            injected = self.injected()
            status = self.stop_daemon()
            self.daemon = None
            if status != 0:
                self.problems.append(
                    f"the daemon did not stop cleanly on SIGTERM (status {status})"
                )
            at_rest = state_problems(self.workdir / "state.db", CONNECTION)
            final = self.snapshot()
            (self.workdir / "final-snapshot.json").write_text(json.dumps(final.__dict__, indent=1))
        return self.report(
            final, converged, at_rest, injected, time.monotonic() - started, settle_time
        )

    def report(
        self,
        final: Snapshot,
        converged: list[str],
        at_rest: list[str],
        injected: dict[str, dict[str, int]],
        elapsed: float,
        settle_time: float,
    ) -> int:
        s = self.stats
        by_source = final.shop_by_source()
        imported = sum(1 for oid in final.amazon_orders if oid in by_source)
        faults_total = sum(sum(kinds.values()) for kinds in injected.values())
        print(f"seed: {self.seed}")
        print(
            f"orders: {s.orders} created ({s.pending} Pending, {s.released} released), "
            f"{imported} in the shop, {s.amazon_cancels} cancelled by Amazon, "
            f"{s.buyer_requests} buyer cancellation requests"
        )
        print(
            f"shop: {s.shipments} shipments ({s.partial_shipments} partial), "
            f"{s.shop_cancels} cancellations, {s.stock_changes} stock changes"
        )
        print(
            f"kills: {s.kills} SIGKILLs, {s.starts} daemon starts, "
            f"{s.unexpected_exits} unexpected exits"
        )
        print(f"faults: {faults_total} injected in {s.fault_profiles} profiles")
        for side, kinds in injected.items():
            print(f"  {side}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        checks = {
            "no duplicates at any check": self.duplicates,
            "every importable order in the shop exactly once; shipments, cancellations "
            "mirrored exactly once; stock converged": converged,
            "state database at rest (no open intent, no failure)": at_rest,
            "daemon ran without unexpected exits": self.problems,
        }
        print(f"invariants (duplicates checked {s.duplicate_checks} times):")
        for name, problems in checks.items():
            print(f"  {'OK  ' if not problems else 'FAIL'} {name}")
            for problem in problems[:20]:
                print(f"         {problem}")
            if len(problems) > 20:
                print(f"         ... and {len(problems) - 20} more")
        ok = not any(checks.values())
        print(f"time: {elapsed:.0f} s (settled in {settle_time:.0f} s)")
        print(f"RESULT: {'PASS' if ok else 'FAIL'}")
        summary = {
            "seed": self.seed,
            "ok": ok,
            "orders": s.orders,
            "imported": imported,
            "shipments": s.shipments,
            "shop_cancels": s.shop_cancels,
            "amazon_cancels": s.amazon_cancels,
            "kills": s.kills,
            "faults": faults_total,
            "faults_by_kind": injected,
            "duplicate_checks": s.duplicate_checks,
            "failed_checks": [name for name, problems in checks.items() if problems],
            "seconds": round(elapsed, 1),
        }
        print("CHAOS-SUMMARY " + json.dumps(summary, sort_keys=True), flush=True)
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--quick", action="store_true", help="short kill and fault periods")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the state and logs here")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("AMAZON_PORT", "SHOP_PORT"))
    parser.add_argument("--time-scale", type=float, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    profile = QUICK if args.quick else FULL
    if args.time_scale:
        profile = Profile(**{**profile.__dict__, "time_scale": args.time_scale})
    if args.serve:
        serve_simulators(args.serve[0], args.serve[1], profile.time_scale, seed)
        return 0
    if args.workdir is not None:
        shutil.rmtree(args.workdir, ignore_errors=True)  # a stale state database would lie
        args.workdir.mkdir(parents=True)
        return ChaosRun(args.orders, seed, profile, args.workdir).run()
    with tempfile.TemporaryDirectory(prefix="ordersync-chaos-") as tmp:
        return ChaosRun(args.orders, seed, profile, Path(tmp)).run()


if __name__ == "__main__":
    sys.exit(main())
