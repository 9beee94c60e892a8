"""The engine side of a benchmark: config, state, the real :class:`engine.runner.Engine`.

Each measurement runs in a fresh process (:func:`isolated`) so that its CPU time
and peak RSS belong to the engine alone; the simulators run in their own
processes (:mod:`bench.sims`) and talk to the engine over loopback HTTP (no
in-process transports).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import resource
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from engine.app import frozen_startup_heap
from engine.config import load_config
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.state import StateStore

T = TypeVar("T")


def builtin_plugins() -> Plugins:
    return load_plugins(
        entry_points_group=None, extra_modules=("plugins.amazon", "plugins.shopify")
    )


def connection(
    cid: str,
    amazon: dict[str, Any],
    shopify: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """One connection's config (Amazon.de only, SKU identification)."""
    market = dict(amazon)
    market["marketplaces"] = ["Amazon.de"]
    market.update(extra.pop("marketplace_settings", {}))
    shop = dict(shopify)
    shop.update(extra.pop("shop_settings", {}))
    return {
        "id": cid,
        "default_shipping_service": "Other",
        "cancellation_reason": "NoInventory",
        "carrier_map": {"DHL Paket": "DHL"},
        "marketplace": {"type": "amazon", "settings": market},
        "shop": {"type": "shopify", "settings": shop},
        **extra,
    }


@dataclass
class EngineSetup:
    engine: Engine
    store: StateStore
    plugins: Plugins

    async def close(self) -> None:
        await self.engine.aclose()
        self.store.close()


def build_engine(
    connections: list[dict[str, Any]],
    *,
    env: dict[str, str],
    workdir: Path,
    time_scale: float = 1.0,
    engine_class: type[Engine] = Engine,
) -> EngineSetup:
    """The engine as ``ordersync run`` builds it, with real HTTP to the simulators."""
    os.environ.update(env)
    logging.getLogger("ordersync").setLevel(logging.WARNING)
    plugins = builtin_plugins()
    loaded = load_config(
        None, plugins.registry, data={"time_scale": time_scale, "connections": connections}
    )
    workdir.mkdir(parents=True, exist_ok=True)
    store = StateStore(workdir / "state.db")
    engine = engine_class(loaded, plugins.registry, store, hooks=plugins.pm.hook)
    return EngineSetup(engine=engine, store=store, plugins=plugins)


def run_engine(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with the startup heap frozen, as ``ordersync run`` runs the daemon."""
    with frozen_startup_heap():
        return asyncio.run(main)


# --- measuring the process --------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak RSS of this process: ``ru_maxrss`` (kilobytes on Linux; the kernel updates
    it lazily, so the current RSS is taken too)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current_rss_mb())


def current_rss_mb() -> float:
    """Resident set size now, from ``/proc/self/statm``."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


class Stopwatch:
    """Wall time and process CPU between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._wall0 = self._cpu0 = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = cpu_seconds() - self._cpu0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- one measurement per process --------------------------------------------------------------


def _run_child(
    conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
) -> None:
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException:  # noqa: BLE001 - reported to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


INLINE_ENV = "ORDERSYNC_BENCH_INLINE"
"""Set (by ``--smoke``) to run measurements in this process: faster, figures meaningless."""


def isolated(fn: Callable[..., Any], *args: Any, timeout: float = 3600, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in a fresh (spawned) process and return its result."""
    if os.environ.get(INLINE_ENV):
        return fn(*args, **kwargs)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run_child, args=(child, fn, args, kwargs), name=fn.__name__)
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{fn.__name__} took more than {timeout} s")
        status, value = parent.recv()
    except EOFError:
        raise RuntimeError(f"{fn.__name__} died (exit code {process.exitcode})") from None
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    if status != "ok":
        raise RuntimeError(f"{fn.__name__} failed:\n{value}")
    return value


# --- a world: simulators + engine -------------------------------------------------------------


class World:
    """Amazon and Shopify simulators (child processes) and the engine (this process).

    :param sellers: Amazon sellers, one simulator each; connection ``c<i>`` uses seller ``i``.
    :param connections: how many connections to configure (default one per seller).
    :param shop_per_connection: one Shopify shop per seller too (else one shared shop).
    """

    def __init__(
        self,
        *,
        time_scale: float,
        rate_limits: bool,
        sellers: int = 1,
        connections: int | None = None,
        catalogue: int = 0,
        stock: int = 1000,
        amazon_settings: dict[str, Any] | None = None,
        shop_settings: dict[str, Any] | None = None,
        connection_options: dict[str, Any] | None = None,
        engine_class: type[Engine] = Engine,
        workdir: Path | None = None,
        shop_per_connection: bool = False,
    ) -> None:
        import tempfile

        from bench.sims import SimProcess, SimSpec

        client_scale = time_scale
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ordersync-bench-")
            workdir = Path(self._tmp.name)
        self.amazon = SimProcess(
            SimSpec("amazon", time_scale=time_scale, rate_limits=rate_limits, count=sellers),
            wait=False,
        )
        # The shop's clock stays real: its time scale only speeds its cost bucket, which is
        # off (or, with limits on, matched by the engine's time scale below).
        shops = sellers if shop_per_connection else 1
        self.shop = SimProcess(
            SimSpec(
                "shopify",
                time_scale=time_scale if rate_limits else 1.0,
                rate_limits=rate_limits,
                count=shops,
            ),
            wait=False,
        )
        self.amazon.ready()
        self.shop.ready()
        if catalogue:
            self.shop.call("seed_products", count=catalogue, quantity=stock)
        count = sellers if connections is None else connections
        conns = [
            connection(
                f"c{i}",
                self.amazon.settings[i % sellers],
                self.shop.settings[i % shops],
                marketplace_settings=dict(amazon_settings or {}),
                shop_settings=dict(shop_settings or {}),
                **dict(connection_options or {}),
            )
            for i in range(count)
        ]
        self.setup = build_engine(
            conns,
            env={**self.amazon.env, **self.shop.env},
            workdir=workdir,
            time_scale=client_scale,
            engine_class=engine_class,
        )
        self.engine = self.setup.engine
        self.store = self.setup.store

    def counters(self) -> dict[str, Any]:
        return {"amazon": self.amazon.call("counters"), "shopify": self.shop.call("counters")}

    async def aclose(self) -> None:
        await self.setup.close()

    def close(self) -> None:
        self.amazon.close()
        self.shop.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` for the numeric leaves of two counter dicts."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict):
            out[key] = delta(value, old if isinstance(old, dict) else {})
        elif isinstance(value, int | float):
            out[key] = value - (old if isinstance(old, int | float) else 0)
    return out
