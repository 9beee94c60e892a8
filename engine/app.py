"""Assembling the pieces for a command: plugins, config, state, engine."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.config import LoadedConfig, load_config
from engine.logs import setup_logging
from engine.plugins import Plugins, load_plugins
from engine.runner import Engine
from engine.scheduler import run_until_stopped
from engine.state import StateStore, default_state_path

DEFAULT_CONFIG = "ordersync.toml"


def config_path(value: str | None) -> Path:
    return Path(value or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_CONFIG)


@dataclass
class App:
    plugins: Plugins
    loaded: LoadedConfig
    store: StateStore

    def engine(self) -> Engine:
        return Engine(self.loaded, self.plugins.registry, self.store, hooks=self.plugins.pm.hook)


def state_path(loaded: LoadedConfig) -> Path:
    path = loaded.config.state_path
    if path is None:
        return default_state_path()
    if not path.is_absolute() and loaded.path is not None:
        return loaded.path.parent / path
    return path


@contextmanager
def open_app(path: Path, *, plugins: Plugins | None = None) -> Iterator[App]:
    plugins = plugins or load_plugins()
    loaded = load_config(path, plugins.registry)
    setup_logging(loaded.config.log_level)
    store = StateStore(state_path(loaded))
    try:
        yield App(plugins=plugins, loaded=loaded, store=store)
    finally:
        store.close()


def run_daemon(app: App, *, cycles: int | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT (or ``cycles``), then exit cleanly."""

    async def main() -> None:
        engine = app.engine()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, engine.stop.set)
        await run_until_stopped(
            engine, cycles=cycles, grace=app.loaded.config.shutdown_grace_seconds
        )

    asyncio.run(main())
