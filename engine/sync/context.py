"""What every flow step receives: the connection, both connectors, the state."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.config import ConnectionConfig
from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.redact import GLOBAL_REDACTOR
from engine.state import Lease, StateStore, utcnow

hook_log = logging.getLogger("ordersync.plugins")


class NoHooks:
    """Stands in for ``pm.hook`` when no plugin manager is wired (tests)."""

    def __getattr__(self, name: str) -> Callable[..., list[Any]]:
        return lambda **kwargs: []


def notify(hooks: Any, name: str, **kwargs: Any) -> None:
    """Call every implementation of the event hook ``name``; none of them can raise.

    A notifier that fails is logged with its plugin's name and skipped: an alert
    that cannot be sent must never stop (or roll back) a sync.
    """
    caller = getattr(hooks, name)
    impls = caller.get_hookimpls() if hasattr(caller, "get_hookimpls") else None
    if impls is None or any(i.hookwrapper or i.wrapper for i in impls):
        # No plugin manager, or wrappers (which only pluggy can run): one guarded call.
        _guarded("?", name, lambda: caller(**kwargs))
        return
    for impl in reversed(impls):  # pluggy's order: last registered first
        args = [kwargs[arg] for arg in impl.argnames]
        _guarded(impl.plugin_name, name, functools.partial(impl.function, *args))


def _guarded(plugin: str, hook: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - a notifier must not break the sync
        hook_log.error(
            "plugin %r failed in hook %s (ignored): %s",
            plugin,
            hook,
            GLOBAL_REDACTOR(f"{type(exc).__name__}: {exc}"),
        )


class GuardedHooks:
    """``pm.hook`` as the flows see it: event hooks through :func:`notify`.

    A call made inside a state transaction is delivered once it commits, and
    dropped if it rolls back: a notifier hears only of committed changes and
    cannot hold the write lock.
    """

    def __init__(self, hooks: Any, store: StateStore | None = None) -> None:
        self.hooks = hooks
        self.store = store

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(**kwargs: Any) -> None:
            deliver = functools.partial(notify, self.hooks, name, **kwargs)
            if self.store is None:
                deliver()
            else:
                self.store.after_commit(deliver)

        return call


@dataclass
class SyncContext:
    connection: ConnectionConfig
    marketplace: MarketplaceConnector
    shop: ShopConnector
    store: StateStore
    hooks: Any = field(default_factory=NoHooks)
    lease: Lease | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    now: Callable[[], datetime] = utcnow
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ordersync.sync"))

    def __post_init__(self) -> None:
        if not isinstance(self.hooks, GuardedHooks):
            self.hooks = GuardedHooks(self.hooks, self.store)

    @property
    def cid(self) -> str:
        return self.connection.id

    def fence(self) -> None:
        """Raise :class:`engine.errors.LeaseLost` if another process took this connection."""
        if self.lease is not None:
            self.store.check_lease(self.lease)


@dataclass
class FlowReport:
    """Counts from one flow run; ``summary()`` becomes the connection's last message."""

    flow: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None
    """Why the flow did not run (e.g. another process holds the connection)."""

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.skipped:
            return f"{self.flow}: skipped: {self.skipped}"
        parts = [f"{n} {k}" for k, n in self.counts.items() if n]
        text = f"{self.flow}: " + (", ".join(parts) if parts else "nothing to do")
        if self.errors:
            text += f"; {len(self.errors)} error(s): {self.errors[-1]}"
        return text
