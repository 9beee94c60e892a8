"""The benchmarks run end to end at their smallest sizes and report every figure.

Only the shape of ``results.json`` is checked (keys and types), never timings:
figures from a shared machine are not assertions.
"""

from __future__ import annotations

import io
import json
from numbers import Real

import pytest
from rich.console import Console

bench_main = pytest.importorskip("bench.__main__")

REQUIRED = {
    "throughput": ("orders_per_s", "cpu_ms_per_order", "peak_rss_mb"),
    "connections": ("lateness_p50_s", "lateness_p99_s", "rss_mb_per_connection"),
    "stock": ("cycle_s", "changed", "pushed", "api_calls"),
    "peer": ("wall_ratio", "ordersync_429", "peer_429"),
}


def _number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value >= 0


def test_smoke_run_reports_every_figure(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ORDERSYNC_BENCH_INLINE", "1")
    out = io.StringIO()
    results = bench_main.run("smoke", console=Console(file=out))
    text = json.dumps(results, default=str)  # what results.json holds
    assert json.loads(text)["meta"]["mode"] == "smoke"

    for section in ("throughput", "rate_limit", "connections", "stock", "peer"):
        assert "error" not in results[section], results[section].get("error")
    for section, keys in REQUIRED.items():
        for key in keys:
            value = results[section][key]
            if section == "peer" and key in ("wall_ratio", "peer_429") and value is None:
                assert "not installed" in results["peer"]["peer"]["error"]
                continue
            assert _number(value), f"{section}.{key} = {value!r}"
    for step in ("orders", "shipments", "stock"):
        figures = results["rate_limit"][step]
        assert _number(figures["throttled_429"])
        ratio = figures["ratio_to_minimum"]
        assert ratio is None or _number(ratio)  # None: the minimum is 0 (all within the burst)
        assert figures["done"] == figures["n"], step
    assert results["throughput"]["imported"] == results["throughput"]["orders"]
    samples = results["throughput"]["samples"]
    assert len(samples) == 2  # the smoke size repeats the import twice
    rates = sorted(s["orders_per_s"] for s in samples)
    assert results["throughput"]["orders_per_s"] == pytest.approx(sum(rates) / 2)
    assert results["throughput"]["peak_rss_mb"] == max(s["peak_rss_mb"] for s in samples)
    assert results["stock"]["pushed"] == results["stock"]["changed"]
    assert set(results["targets"]) == set(bench_main.TARGETS)
    assert "throughput" in out.getvalue()
