"""What every flow step receives: the connection, both connectors, the state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.config import ConnectionConfig
from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.state import Lease, StateStore, utcnow


class NoHooks:
    """Stands in for ``pm.hook`` when no plugin manager is wired (tests)."""

    def __getattr__(self, name: str) -> Callable[..., list[Any]]:
        return lambda **kwargs: []


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

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = [f"{n} {k}" for k, n in self.counts.items() if n]
        text = f"{self.flow}: " + (", ".join(parts) if parts else "nothing to do")
        if self.errors:
            text += f"; {len(self.errors)} error(s): {self.errors[-1]}"
        return text
