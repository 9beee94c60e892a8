"""Wiring: config + registry → connectors per connection, and running one flow.

A flow run takes the connection's lease (so two processes never sync the same
connection), runs, records the connection's status and last message, and
never raises: one bad connection must not stop the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from engine.config import FLOWS, ConnectionConfig, LoadedConfig
from engine.errors import AuthError, LeaseLost, OrdersyncError
from engine.interfaces import (
    Connector,
    ConnectorContext,
    MarketplaceConnector,
    ShopConnector,
)
from engine.models import CheckResult
from engine.redact import GLOBAL_REDACTOR
from engine.registry import PlatformRegistry
from engine.state import StateStore, utcnow
from engine.sync.context import FlowReport, NoHooks, SyncContext
from engine.sync.orders import run_orders
from engine.sync.shipments import run_shipments
from engine.sync.stock import run_stock

log = logging.getLogger("ordersync.runner")

FLOW_FUNCTIONS = {"orders": run_orders, "shipments": run_shipments, "stock": run_stock}


@dataclass
class Connectors:
    marketplace: MarketplaceConnector
    shop: ShopConnector

    async def aclose(self) -> None:
        await self.marketplace.aclose()
        await self.shop.aclose()


class ConnectorSetupError(OrdersyncError):
    """A plugin's connector could not be built from its settings."""

    def __init__(self, connection_id: str, role: str, platform: str, exc: Exception) -> None:
        super().__init__(
            f"connection {connection_id}: the {role} connector ({platform}) could not be "
            f"set up: {type(exc).__name__}: {exc}"
        )
        self.role = role


class Engine:
    """Runs flows for the connections of one config against one state database.

    :param transports: platform type → httpx transport (in-process simulators).
    :param wrap: wraps each connection's connectors (``--dry-run`` records writes).
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        registry: PlatformRegistry,
        store: StateStore,
        *,
        hooks: Any = None,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        stop: asyncio.Event | None = None,
        now: Callable[[], datetime] = utcnow,
        wrap: Callable[[Connectors], Connectors] | None = None,
    ) -> None:
        self.loaded = loaded
        self.registry = registry
        self.store = store
        self.hooks = hooks if hooks is not None else NoHooks()
        self.transports = transports or {}
        self.stop = stop or asyncio.Event()
        self.now = now
        self.wrap = wrap
        self._built: dict[tuple[str, str], Connector] = {}
        self._connectors: dict[str, Connectors] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        """Tasks inside :meth:`run_flow` (waiting for their turn or running)."""

    def connection(self, connection_id: str) -> ConnectionConfig:
        return self.loaded.config.connection(connection_id)

    def connector(self, connection_id: str, role: str) -> Connector:
        """The connection's marketplace or shop connector, built once.

        :raises ConnectorSetupError: the plugin's connector class raised.
        """
        found = self._built.get((connection_id, role))
        if found is None:
            found = self._build(self.connection(connection_id), role)
            self._built[(connection_id, role)] = found
        return found

    def connectors(self, connection_id: str) -> Connectors:
        found = self._connectors.get(connection_id)
        if found is None:
            found = Connectors(
                marketplace=self.connector(connection_id, "marketplace"),  # type: ignore[arg-type]
                shop=self.connector(connection_id, "shop"),  # type: ignore[arg-type]
            )
            if self.wrap is not None:
                found = self.wrap(found)
            self._connectors[connection_id] = found
        return found

    def _build(self, conn: ConnectionConfig, role: str) -> Any:
        platform = getattr(conn, role)
        context = ConnectorContext(
            connection_id=conn.id,
            transport=self.transports.get(platform.type),
            time_scale=self.loaded.config.time_scale,
            logger=logging.getLogger(f"ordersync.{platform.type}"),
        )
        try:
            spec = self.registry.get(platform.type, role)  # type: ignore[arg-type]
            return spec.connector(self.loaded.plugin_settings(conn.id, role), context)
        except Exception as exc:  # noqa: BLE001 - a plugin's constructor may raise anything
            raise ConnectorSetupError(conn.id, role, platform.type, exc) from exc

    def context(self, connection_id: str) -> SyncContext:
        pair = self.connectors(connection_id)
        return SyncContext(
            connection=self.connection(connection_id),
            marketplace=pair.marketplace,
            shop=pair.shop,
            store=self.store,
            hooks=self.hooks,
            stop=self.stop,
            now=self.now,
        )

    async def run_flow(self, connection_id: str, flow: str) -> FlowReport | None:
        """Run one flow of one connection.

        ``None`` when the flow is not enabled, another process holds the
        connection, or the engine is stopping (nothing new starts then).
        """
        conn = self.connection(connection_id)
        if flow not in conn.flows() or self.stop.is_set():
            return None
        # Registered before waiting for the lock: a stopping daemon waits for it too.
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            async with self._locks.setdefault(connection_id, asyncio.Lock()):
                if self.stop.is_set():
                    log.info("%s %s: stopping; not started", connection_id, flow)
                    return None
                return await self._run_leased(connection_id, flow)
        finally:
            if task is not None:
                self.tasks.discard(task)

    async def _run_leased(self, connection_id: str, flow: str) -> FlowReport | None:
        lease = self.store.acquire_lease(connection_id, ttl=self.loaded.config.lease_seconds)
        if lease is None:
            log.info("%s %s: another process holds this connection; skipped", connection_id, flow)
            return None
        try:
            ctx = self.context(connection_id)
            ctx.lease = lease
            report = await FLOW_FUNCTIONS[flow](ctx)
        except ConnectorSetupError as exc:
            log.error("%s %s: %s", connection_id, flow, exc)
            self._status(connection_id, "error", f"{flow}: {exc}", success=False)
            return FlowReport(flow, errors=[str(exc)])
        except LeaseLost as exc:
            self._status(connection_id, "lease_lost", str(exc), success=False)
            return None
        except AuthError as exc:
            self._status(connection_id, "auth_error", f"{flow}: {exc}", success=False)
            return FlowReport(flow, errors=[str(exc)])
        except Exception as exc:  # noqa: BLE001 - one connection's failure must not stop the daemon
            log.exception("%s %s failed", connection_id, flow)
            self._status(
                connection_id, "error", f"{flow}: {type(exc).__name__}: {exc}", success=False
            )
            return FlowReport(flow, errors=[str(exc)])
        finally:
            try:
                self.store.release_lease(lease)
            except Exception:  # noqa: BLE001, S110 - release is best effort; the lease expires anyway
                pass
        self._status(
            connection_id, "ok" if report.ok else "warning", report.summary(), success=report.ok
        )
        return report

    def _status(self, connection_id: str, status: str, message: str, *, success: bool) -> None:
        self.store.set_status(
            connection_id, status, GLOBAL_REDACTOR(message)[:500], success=success
        )

    async def sync(
        self, connection_id: str | None = None, flow: str | None = None
    ) -> list[FlowReport]:
        """The "sync now" button: run the chosen flows once, in order.

        A flow another process is running for the connection comes back as a
        report with ``skipped`` set.
        """
        conns = [self.connection(connection_id)] if connection_id else self.loaded.connections
        reports = []
        for conn in conns:
            for name in FLOWS:
                if (flow is not None and name != flow) or name not in conn.flows():
                    continue
                report = await self.run_flow(conn.id, name)
                if report is None and not self.stop.is_set():
                    report = FlowReport(
                        name,
                        skipped=f"connection {conn.id} is being synced by another process",
                    )
                if report is not None:
                    reports.append(report)
        return reports

    async def test_connection(self, connection_id: str) -> dict[str, CheckResult]:
        """Check both sides; a connector that cannot be built is a failed check."""
        out = {}
        for role in ("marketplace", "shop"):
            try:
                out[role] = await self.connector(connection_id, role).check()
            except ConnectorSetupError as exc:
                out[role] = CheckResult(ok=False, message=GLOBAL_REDACTOR(str(exc)))
            except Exception as exc:  # noqa: BLE001
                out[role] = CheckResult(
                    ok=False, message=GLOBAL_REDACTOR(f"{type(exc).__name__}: {exc}")
                )
        return out

    async def aclose(self) -> None:
        for pair in self._connectors.values():
            await pair.aclose()
        for (connection_id, _), connector in self._built.items():
            if connection_id not in self._connectors:  # built alone (a check, a failed pair)
                await connector.aclose()
        self._connectors.clear()
        self._built.clear()
