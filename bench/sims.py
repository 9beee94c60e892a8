"""Simulators on loopback, each platform in its own process.

:class:`SimProcess` starts one child process (``spawn``) that builds simulator
harnesses, seeds them, serves them under uvicorn on 127.0.0.1 and then answers
admin commands sent over a pipe (seed, change stock, ship, read counters). The
benchmark's engine process therefore pays for none of the simulators' CPU.

``count`` simulators of a platform (Amazon sellers, Shopify shops) are served
by one server, each under ``/s/<i>``; the connections benchmark gives every
connection its own seller and its own shop.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

UNLIMITED_SCALE = 1_000_000.0
"""Time scale of both sides when rate limits are "off": the client-side buckets never wait."""


@dataclass(frozen=True)
class SimSpec:
    platform: str
    """``amazon`` or ``shopify``."""
    time_scale: float = 1.0
    rate_limits: bool = True
    count: int = 1
    """Number of independent simulators (Amazon sellers or Shopify shops)."""
    seed: int = 0


def sku(n: int) -> str:
    return f"BENCH-{n:06d}"


def order_id(connection: int, n: int) -> str:
    return f"302-{connection:07d}-{n:07d}"


class _Prefixed:
    """ASGI router: ``/s/<i>/rest`` goes to ``apps[i]`` with ``root_path`` set."""

    def __init__(self, apps: list[Any]) -> None:
        self.apps = apps

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        parts = scope["path"].split("/", 3)  # "", "s", "<i>", rest
        if len(parts) < 3 or parts[1] != "s" or not parts[2].isdigit():
            await _not_found(send)
            return
        index = int(parts[2])
        if index >= len(self.apps):
            await _not_found(send)
            return
        prefix = f"/s/{index}"
        inner = dict(scope)
        inner["path"] = "/" + (parts[3] if len(parts) > 3 else "")
        inner["raw_path"] = inner["path"].encode()
        inner["root_path"] = scope.get("root_path", "") + prefix
        await self.apps[index](inner, receive, send)


async def _not_found(send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not found"})


# --- the child process ------------------------------------------------------------------------


def freeze_seeded_state() -> None:
    """Move what a simulator holds now out of its process's cyclic garbage collector.

    A simulator stands in for Amazon's or Shopify's servers, which do not stop to
    collect garbage. With 10,000 seeded orders a full collection stopped the Amazon
    simulator for 290 ms (29 simulated seconds at 100x), and the engine's rate-limit
    figures were charged for that outage.
    """
    gc.collect()
    gc.freeze()


class _World:
    def __init__(self, spec: SimSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        if spec.platform == "amazon":
            from plugins.amazon.harness import AmazonSimHarness

            self.harnesses: list[Any] = [
                AmazonSimHarness(
                    time_scale=spec.time_scale, rate_limits=spec.rate_limits, seed=spec.seed + i
                )
                for i in range(spec.count)
            ]
            self.app = (
                self.harnesses[0].app
                if spec.count == 1
                else _Prefixed([h.app for h in self.harnesses])
            )
        elif spec.platform == "shopify":
            from plugins.shopify.harness import ShopifySimHarness

            self.harnesses = [
                ShopifySimHarness(
                    time_scale=spec.time_scale, rate_limits=spec.rate_limits, seed=spec.seed + i
                )
                for i in range(spec.count)
            ]
            self.app = (
                self.harnesses[0].app
                if spec.count == 1
                else _Prefixed([h.app for h in self.harnesses])
            )
        else:
            raise ValueError(f"unknown platform {spec.platform!r}")
        self.base_url = ""

    def url(self, index: int = 0) -> str:
        return self.base_url if self.spec.count == 1 else f"{self.base_url}/s/{index}"

    # commands (first argument: self) --------------------------------------------------------

    def info(self) -> dict[str, Any]:
        h = self.harnesses[0]
        return {
            "base_url": self.base_url,
            "settings": [h.settings(self.url(i)) for i, h in enumerate(self.harnesses)],
            "env": h.env(),
        }

    def counters(self) -> dict[str, Any]:
        """Requests and 429s served, over every simulator of this process."""
        total = {"requests": 0, "throttled": 0}
        per_operation: dict[str, dict[str, int]] = {}
        for h in self.harnesses:
            for key, value in h.counters().items():
                total[key] = total.get(key, 0) + value
            limiter = getattr(h.sim, "limiter", None)
            for kind in ("allowed", "throttled"):
                values = getattr(limiter, kind, None)
                if isinstance(values, dict):
                    for op, n in values.items():
                        slot = per_operation.setdefault(op, {"allowed": 0, "throttled": 0})
                        slot[kind] += n
        total["operations"] = per_operation  # type: ignore[assignment]
        return total

    # Amazon ----------------------------------------------------------------------------------

    def seed_orders(
        self,
        per_seller: int,
        skus: int,
        *,
        lines: tuple[int, int] = (1, 3),
        age_minutes: float = 10.0,
        sellers: list[int] | None = None,
    ) -> int:
        """``per_seller`` UNSHIPPED orders of ``lines`` distinct SKUs (1 to 3 units each)."""
        made = 0
        for index in sellers if sellers is not None else range(len(self.harnesses)):
            sim = self.harnesses[index].sim
            created = sim.now() - timedelta(minutes=age_minutes)
            start = len(sim.orders)
            for n in range(start, start + per_seller):
                count = self.rng.randint(*lines)
                items = {
                    sku(k): self.rng.randint(1, 3) for k in self.rng.sample(range(skus), count)
                }
                sim.create_order(
                    items,
                    order_id=order_id(index, n),
                    created_at=created,
                    prices={s: Decimal("19.99") for s in items},
                    shipping=Decimal("4.99"),
                )
                made += 1
        freeze_seeded_state()
        return made

    def amazon_state(self, index: int = 0) -> dict[str, Any]:
        sim = self.harnesses[index].sim
        return {
            "orders": len(sim.orders),
            "confirmations": len(sim.confirmations),
            "quantities": len(sim.quantities),
            "listing_updates": len(sim.listing_updates),
            "calls": dict(sim.calls),
        }

    def quantities(self, index: int = 0) -> dict[str, int]:
        return dict(self.harnesses[index].sim.quantities)

    # Shopify ---------------------------------------------------------------------------------

    def seed_products(self, count: int, quantity: int = 1000) -> int:
        """The same catalogue of ``count`` SKUs in every shop."""
        for shop in self.harnesses:
            for n in range(count):
                shop.sim.add_product(
                    sku(n), quantity=quantity, price=Decimal("19.99"), title=f"Product {n}"
                )
        freeze_seeded_state()
        return count

    def change_stock(self, count: int, catalogue: int) -> list[str]:
        """Change the stock of ``count`` random SKUs (each to a new value)."""
        shop = self.harnesses[0]
        chosen = self.rng.sample(range(catalogue), count)
        for n in chosen:
            current = shop.stock(sku(n))
            shop.set_stock(sku(n), current + 1 + self.rng.randint(0, 5))
        return [sku(n) for n in chosen]

    def ship_all(self, limit: int | None = None) -> int:
        """Fulfil (all units, a known carrier) up to ``limit`` unfulfilled ordersync orders."""
        shop = self.harnesses[0]
        with shop.sim.state.lock:
            ids = [
                o.source_identifier
                for o in shop.sim.state.orders.values()
                if o.source_identifier
                and o.cancelled_at is None
                and any(li.fulfilled < li.quantity for li in o.line_items)
            ]
        shipped = 0
        for n, marketplace_order_id in enumerate(ids[:limit]):
            shop.ship(marketplace_order_id, None, "DHL Paket", f"0034043416{n:010d}")
            shipped += 1
        return shipped

    def advance(self, seconds: float) -> None:
        """Move every simulator's clock forward (timestamps, buckets)."""
        for h in self.harnesses:
            h.sim.advance(seconds)

    def shop_orders(self) -> int:
        return int(self.harnesses[0].sim.count_orders())


def _child(spec: SimSpec, conn: Connection, port: int | None) -> None:
    from engine.testing.server import serve_in_thread

    try:
        world = _World(spec)
        with serve_in_thread(world.app, port=port) as base_url:
            world.base_url = base_url
            conn.send(("ok", world.info()))
            while True:
                try:
                    name, kwargs = conn.recv()
                except EOFError:
                    return
                if name == "stop":
                    conn.send(("ok", None))
                    return
                try:
                    method: Callable[..., Any] = getattr(world, name)
                    conn.send(("ok", method(**kwargs)))
                except Exception:  # noqa: BLE001 - sent back to the parent
                    conn.send(("error", traceback.format_exc()))
    except Exception:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))


class SimProcess:
    """A simulator (or several Amazon sellers) on loopback in a child process."""

    def __init__(self, spec: SimSpec, port: int | None = None, *, wait: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self.spec = spec
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_child, args=(spec, child, port), name=f"sim-{spec.platform}", daemon=True
        )
        self.process.start()
        child.close()
        self.base_url = ""
        self.settings: list[dict[str, Any]] = []
        self.env: dict[str, str] = {}
        if wait:
            self.ready()

    def ready(self) -> SimProcess:
        """Wait until the simulator serves (started with ``wait=False``)."""
        if not self.base_url:
            info = self._answer(timeout=300)
            self.base_url = info["base_url"]
            self.settings = info["settings"]
            self.env = info["env"]
        return self

    def _answer(self, timeout: float = 600) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"{self.spec.platform} simulator did not answer in {timeout} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self.spec.platform} simulator failed:\n{value}")
        return value

    def call(self, name: str, **kwargs: Any) -> Any:
        self._conn.send((name, kwargs))
        return self._answer()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU the simulator process has used so far (Linux ``/proc``)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self._conn.send(("stop", {}))
                self._answer(timeout=15)
            except (OSError, TimeoutError, RuntimeError, EOFError):
                pass
            self.process.join(timeout=15)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=5)
        self._conn.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
