"""``python -m bench --quick|--full``: run every measurement, print a table, write results.json.

Each measurement runs in its own process with its simulators in further
processes (see ``bench/README.md``). Figures are from one run: medians where a
measurement repeats, otherwise single values; the machine is shared, so they are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import connections, peer, rate_limit, stock, throughput
from bench.wiring import INLINE_ENV

RESULTS = Path(__file__).with_name("results.json")

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "throughput": {"orders": 10_000, "repeats": 3},
        "rate_limit": {"orders": 10_000, "shipments": 2000, "skus": 2500},
        "connections": {"connections": 1000, "speedup": 1.0, "duration": 330.0},
        "stock": {"skus": 100_000, "cycles": 3},
        "peer": {"orders": 2000},
    },
    "quick": {
        "throughput": {"orders": 1000, "repeats": 3},
        "rate_limit": {"orders": 2500, "shipments": 300, "skus": 500},
        "connections": {"connections": 100, "speedup": 10.0, "duration": 40.0},
        "stock": {"skus": 10_000, "cycles": 3},
        "peer": {"orders": 500},
    },
    "smoke": {
        "throughput": {"orders": 30, "repeats": 2},
        "rate_limit": {"orders": 120, "shipments": 12, "skus": 21},
        "connections": {"connections": 3, "speedup": 100.0, "duration": 3.0},
        "stock": {"skus": 300, "cycles": 1},
        "peer": {"orders": 50},
    },
}

TARGETS = {
    "throughput.orders_per_s": (">=", 500.0),
    "throughput.cpu_ms_per_order": ("<=", 1.0),
    "rate_limit.orders.ratio_to_minimum": ("<=", 1.05),
    "rate_limit.orders.throttled_429": ("==", 0),
    "rate_limit.shipments.ratio_to_minimum": ("<=", 1.05),
    "rate_limit.shipments.throttled_429": ("==", 0),
    "rate_limit.stock.ratio_to_minimum": ("<=", 1.05),
    "rate_limit.stock.throttled_429": ("==", 0),
    "connections.lateness_p99_s": ("<=", 1.0),
    "connections.rss_mb_per_connection": ("<=", 0.3),
    "stock.cycle_s": ("<=", 10.0),
    "stock.pushed_equals_changed": ("==", True),
    "peer.wall_ratio": ("<", 1.0),
    "peer.ordersync_429_vs_peer": ("<=", 0),
}


def _get(results: dict[str, Any], path: str) -> Any:
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def evaluate(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with the measured value and whether it was met (``None``: not measured)."""
    out = {}
    for path, (op, bound) in TARGETS.items():
        if path == "peer.ordersync_429_vs_peer":
            ours, theirs = _get(results, "peer.ordersync_429"), _get(results, "peer.peer_429")
            value = None if ours is None or theirs is None else ours - theirs
        else:
            value = _get(results, path)
        met = None
        if value is not None:
            met = {
                ">=": lambda v, b: v >= b,
                "<=": lambda v, b: v <= b,
                "<": lambda v, b: v < b,
                "==": lambda v, b: v == b,
            }[op](value, bound)
        out[path] = {"value": value, "target": f"{op} {bound}", "met": met}
    return out


def _section(name: str, fn: Any, console: Console, **kwargs: Any) -> Any:
    console.print(f"[bold]{name}[/bold] {kwargs} ...", highlight=False)
    start = time.perf_counter()
    try:
        result = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not hide the others
        console.print(f"[red]{name} failed: {exc}[/red]")
        return {"error": str(exc)[-2000:]}
    console.print(f"  done in {time.perf_counter() - start:.1f} s")
    return result


def run(mode: str, only: list[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    sizes = SIZES[mode]
    if mode == "smoke":
        os.environ[INLINE_ENV] = "1"
    started = time.perf_counter()
    results: dict[str, Any] = {}
    steps = {
        "throughput": throughput.run,
        "rate_limit": rate_limit.run,
        "connections": connections.run,
        "stock": stock.run,
        "peer": peer.run,
    }
    for name, fn in steps.items():
        if only and name not in only:
            continue
        results[name] = _section(name, fn, console, **sizes[name])
    results["targets"] = evaluate(results)
    results["meta"] = {
        "mode": mode,
        "sizes": sizes,
        "seconds": round(time.perf_counter() - started, 1),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "note": "one run on a shared machine: figures are noisy",
    }
    return results


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(results: dict[str, Any]) -> Table:
    t = Table(title=f"ordersync benchmarks ({results['meta']['mode']})")
    for column in ("measurement", "figure", "value", "target", "met"):
        t.add_column(column)
    targets = results.get("targets", {})
    rows = [
        ("1 throughput", "orders/s", "throughput.orders_per_s"),
        ("", "engine CPU ms/order", "throughput.cpu_ms_per_order"),
        ("", "engine peak RSS MB", "throughput.peak_rss_mb"),
        ("2 rate limits", "orders: time / minimum", "rate_limit.orders.ratio_to_minimum"),
        ("", "orders: 429s", "rate_limit.orders.throttled_429"),
        ("", "shipments: time / minimum", "rate_limit.shipments.ratio_to_minimum"),
        ("", "shipments: 429s", "rate_limit.shipments.throttled_429"),
        ("", "stock: time / minimum", "rate_limit.stock.ratio_to_minimum"),
        ("", "stock: 429s", "rate_limit.stock.throttled_429"),
        ("3 connections", "lateness p50 s", "connections.lateness_p50_s"),
        ("", "lateness p99 s", "connections.lateness_p99_s"),
        ("", "flow runs/s", "connections.flow_runs_per_s"),
        ("", "RSS MB/connection", "connections.rss_mb_per_connection"),
        ("4 stock", "cycle s", "stock.cycle_s"),
        ("", "changed / pushed", None),
        ("", "API calls per cycle", "stock.api_calls"),
        ("5 peer", "wall ordersync / peer", "peer.wall_ratio"),
        ("", "429s ordersync / peer", None),
    ]
    for section, label, path in rows:
        if path is None and label.startswith("changed"):
            value = (
                f"{_fmt(_get(results, 'stock.changed'))} / {_fmt(_get(results, 'stock.pushed'))}"
            )
            target = targets.get("stock.pushed_equals_changed", {})
        elif path is None:
            value = f"{_fmt(_get(results, 'peer.ordersync_429'))} / {_fmt(_get(results, 'peer.peer_429'))}"
            target = targets.get("peer.ordersync_429_vs_peer", {})
        else:
            value = _fmt(_get(results, path))
            target = targets.get(path, {})
        met = target.get("met")
        mark = "" if not target else ("-" if met is None else ("yes" if met else "[red]no[/red]"))
        t.add_row(section, label, value, target.get("target", ""), mark)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument(
        "--smoke", action="store_const", dest="mode", const="smoke", help="tiny sizes (tests)"
    )
    parser.add_argument("--only", action="append", help="run only this measurement (repeatable)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.mode or "quick", args.only)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    Console().print(table(results))
    print(f"written to {args.output}", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
