"""The chaos run, short: ``python -m bench.chaos --orders 200 --quick`` must pass.

The real daemon is SIGKILLed at random and restarted under injected faults while
200 orders arrive (see :mod:`bench.chaos`). The seed is random unless
``ORDERSYNC_CHAOS_SEED`` is set; it is printed, so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_run_keeps_every_effect_exactly_once(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.chaos", "--orders", "200", "--quick"]
    command += ["--workdir", str(tmp_path / "chaos")]
    if os.environ.get("ORDERSYNC_CHAOS_SEED"):
        command += ["--seed", os.environ["ORDERSYNC_CHAOS_SEED"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_")}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    print(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("CHAOS-SUMMARY ")]
    assert lines, f"no summary (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    summary = json.loads(lines[-1].removeprefix("CHAOS-SUMMARY "))
    assert result.returncode == 0, f"seed {summary['seed']}: {summary['failed_checks']}"
    assert summary["ok"] and summary["failed_checks"] == []
    assert summary["orders"] == 200
    assert summary["imported"] >= 150  # some stay Pending or are cancelled before import
    assert summary["kills"] >= 3
    assert summary["faults"] >= 10
    assert summary["shipments"] >= 50
    assert summary["duplicate_checks"] >= 3
