"""The ``ordersync`` command line (click for parsing, rich for tables)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from click_default_group import DefaultGroup
from rich.console import Console
from rich.table import Table

from engine import __version__
from engine.app import App, config_path, open_app, run_daemon
from engine.config import FLOWS, load_config
from engine.errors import ConfigError, OrdersyncError, PluginLoadError
from engine.plugins import Plugins, load_plugins, register_commands
from engine.redact import GLOBAL_REDACTOR

T = TypeVar("T")

console = Console()
CONFIG_HELP = "Config file (default: $ORDERSYNC_CONFIG or ./ordersync.toml)."


def config_option(fn: Any) -> Any:
    return click.option("-c", "--config", "config", default=None, help=CONFIG_HELP)(fn)


def json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        fn
    )


def _plugins(ctx: click.Context) -> Plugins:
    obj = ctx.ensure_object(dict)
    if "plugins" not in obj:
        obj["plugins"] = load_plugins()
    return obj["plugins"]  # type: ignore[no-any-return]


def _open(ctx: click.Context, config: str | None) -> Any:
    try:
        return open_app(config_path(config), plugins=_plugins(ctx))
    except ConfigError as exc:  # pragma: no cover - raised lazily by the context manager
        _config_failed(exc)


def _config_failed(exc: ConfigError) -> None:
    click.echo("Configuration errors:", err=True)
    for path, message in exc.errors:
        click.echo(f"  {path}: {GLOBAL_REDACTOR(message)}", err=True)
    sys.exit(1)


class _App:
    """``with _App(ctx, config) as app`` that turns config errors into exit 1."""

    def __init__(self, ctx: click.Context, config: str | None) -> None:
        self._cm = open_app(config_path(config), plugins=_plugins(ctx))

    def __enter__(self) -> App:
        try:
            return self._cm.__enter__()
        except ConfigError as exc:
            _config_failed(exc)
            raise  # pragma: no cover

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)  # type: ignore[arg-type]


def _run(go: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(go())``; an unknown id or an ordersync error becomes a clean exit 1."""
    try:
        return asyncio.run(go())
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    except OrdersyncError as exc:
        raise click.ClickException(GLOBAL_REDACTOR(str(exc))) from None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=click.Group)
@click.version_option(__version__, prog_name="ordersync")
def cli() -> None:
    """Keep Amazon seller accounts and web shops in step."""


@cli.command()
@config_option
@click.option("--cycles", type=int, default=None, help="Stop after every job ran N times.")
@click.pass_context
def run(ctx: click.Context, config: str | None, cycles: int | None) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    with _App(ctx, config) as app:
        run_daemon(app, cycles=cycles)


@cli.command()
@config_option
@click.option("--connection", "connection_id", default=None, help="Only this connection.")
@click.option("--flow", type=click.Choice(FLOWS), default=None, help="Only this flow.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@json_option
@click.pass_context
def sync(
    ctx: click.Context,
    config: str | None,
    connection_id: str | None,
    flow: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Synchronize now (the "Synchronize Orders" button).

    Exits 2 if something failed, 3 if another process was syncing a connection
    (its flows were skipped).
    """
    with _App(ctx, config) as app:
        if dry_run:
            _dry_run(app, connection_id, flow, as_json)
            return

        async def go() -> list[Any]:
            engine = app.engine()
            try:
                return await engine.sync(connection_id, flow)
            finally:
                await engine.aclose()

        reports = _run(go)
        rows = [
            {"flow": r.flow, "counts": r.counts, "errors": r.errors, "skipped": r.skipped}
            for r in reports
        ]
        if as_json:
            _echo_json(rows)
        else:
            for report in reports:
                click.echo(GLOBAL_REDACTOR(report.summary()), err=report.skipped is not None)
        if any(r.errors for r in reports):
            sys.exit(2)
        if any(r.skipped for r in reports):
            sys.exit(3)


def _dry_run(app: App, connection_id: str | None, flow: str | None, as_json: bool) -> None:
    from engine.dryrun import dry_run_engine

    with dry_run_engine(app.loaded, app.plugins.registry, app.store.path) as (engine, log):

        async def go() -> None:
            try:
                await engine.sync(connection_id, flow)
            finally:
                await engine.aclose()

        _run(go)
    if as_json:
        _echo_json([w.__dict__ for w in log.writes])
        return
    table = Table(title=f"Dry run: {len(log.writes)} write(s) would be made; nothing was written")
    for column in ("side", "action", "order / SKU", "detail"):
        table.add_column(column, overflow="fold")
    for w in log.writes:
        table.add_row(w.side, w.action, w.key, GLOBAL_REDACTOR(w.detail))
    console.print(table)


@cli.group(cls=DefaultGroup, default="list", default_if_no_args=True)
def connections() -> None:
    """The connections table, and the test-connection check."""


@connections.command("list")
@config_option
@json_option
@click.pass_context
def connections_list(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """Status, last message and quota use of every connection."""
    with _App(ctx, config) as app:
        month = datetime.now(UTC).strftime("%Y-%m")
        rows: list[dict[str, Any]] = []
        for conn in app.loaded.connections:
            runtime = app.store.runtime(conn.id)
            rows.append(
                {
                    "id": conn.id,
                    "label": conn.label,
                    "marketplace": conn.marketplace.type,
                    "shop": conn.shop.type,
                    "level": conn.level,
                    "active": conn.active,
                    "status": runtime.get("status")
                    or ("disabled" if not conn.active else "never run"),
                    "last_message": runtime.get("last_message") or "",
                    "last_sync": runtime.get("last_run_at"),
                    "orders_this_month": app.store.quota_used(conn.id, month),
                    "orders_per_month": conn.orders_per_month,
                    "orders_by_state": app.store.counts_by_state(conn.id),
                }
            )
        if as_json:
            _echo_json(rows)
            return
        table = Table(title="Connections")
        for column in (
            "id",
            "marketplace",
            "shop",
            "level",
            "active",
            "status",
            "last message",
            "last sync",
            "orders",
        ):
            table.add_column(column, overflow="fold")
        for row in rows:
            quota = f"{row['orders_this_month']}/{row['orders_per_month'] or '∞'}"
            table.add_row(
                row["id"],
                row["marketplace"],
                row["shop"],
                row["level"],
                "yes" if row["active"] else "no",
                row["status"],
                row["last_message"],
                (row["last_sync"] or "")[:19],
                quota,
            )
        console.print(table)


@connections.command("test")
@config_option
@click.argument("connection_id")
@json_option
@click.pass_context
def connections_test(
    ctx: click.Context, config: str | None, connection_id: str, as_json: bool
) -> None:
    """Test a connection's credentials and settings on both sides."""
    with _App(ctx, config) as app:

        async def go() -> dict[str, Any]:
            engine = app.engine()
            try:
                return await engine.test_connection(connection_id)
            finally:
                await engine.aclose()

        results = _run(go)
        if as_json:
            _echo_json({role: r.model_dump() for role, r in results.items()})
        else:
            for role, result in results.items():
                mark = "[green]OK[/green]" if result.ok else "[red]FAILED[/red]"
                console.print(f"{role:12} {mark}  {GLOBAL_REDACTOR(result.message)}")
        if not all(r.ok for r in results.values()):
            sys.exit(1)


@cli.group()
def orders() -> None:
    """Orders known to ordersync."""


@orders.command("list")
@config_option
@click.option("--connection", "connection_id", default=None)
@click.option("--state", default=None, help="e.g. imported, failed, held, pending.")
@click.option("--limit", type=int, default=None)
@json_option
@click.pass_context
def orders_list(
    ctx: click.Context,
    config: str | None,
    connection_id: str | None,
    state: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List orders with their state and shop reference."""
    with _App(ctx, config) as app:
        rows = app.store.list_orders(connection_id, state, limit)
        if as_json:
            _echo_json(rows)
            return
        table = Table(title=f"Orders ({len(rows)})")
        for column in (
            "connection",
            "order",
            "state",
            "amazon status",
            "purchased",
            "total",
            "shop order",
            "problem",
        ):
            table.add_column(column, overflow="fold")
        for row in rows:
            problem = (
                f"{row['failure_reason']}: {row['failure_message']}"
                if row["failure_reason"]
                else ""
            )
            table.add_row(
                row["connection_id"],
                row["order_id"],
                row["state"],
                row["marketplace_status"],
                row["purchased_at"][:16],
                f"{row['total']} {row['currency']}",
                row["shop_order_number"] or row["shop_order_id"] or "",
                problem,
            )
        console.print(table)


@orders.command("show")
@config_option
@click.argument("order_id")
@click.option("--connection", "connection_id", default=None)
@json_option
@click.pass_context
def orders_show(
    ctx: click.Context, config: str | None, order_id: str, connection_id: str | None, as_json: bool
) -> None:
    """Order details plus its log of every action, with direction."""
    with _App(ctx, config) as app:
        ids = [connection_id] if connection_id else [c.id for c in app.loaded.connections]
        record = next(
            (r for cid in ids if (r := app.store.get_order(cid, order_id)) is not None), None
        )
        if record is None:
            raise click.ClickException(f"order {order_id} is not known to ordersync")
        log_rows = app.store.order_log(record.connection_id, order_id)
        order = record.order
        data = {
            "connection_id": record.connection_id,
            "order_id": order_id,
            "state": record.state.value,
            "shop_order_id": record.shop_order_id,
            "shop_order_number": record.shop_order_number,
            "failure_reason": record.failure_reason,
            "failure_message": record.failure_message,
            "order": order.model_dump(mode="json", exclude={"raw"}),
            "log": log_rows,
        }
        if as_json:
            _echo_json(data)
            return
        console.print(
            f"[bold]{order_id}[/bold]  {record.connection_id}  state [bold]{record.state.value}[/bold]"
        )
        console.print(
            f"marketplace {order.marketplace_id}  status {order.status.value}  "
            f"purchased {order.purchased_at:%Y-%m-%d %H:%M}  total {order.total.amount} {order.currency}"
            + ("  PRIME" if order.is_prime else "")
            + ("  BUSINESS" if order.is_business else "")
        )
        if record.shop_order_id:
            console.print(f"shop order {record.shop_order_number or ''} ({record.shop_order_id})")
        if record.failure_reason:
            console.print(f"[red]{record.failure_reason}[/red]: {record.failure_message}")
        lines = Table(title="Lines")
        for column in ("sku", "qty", "unit price", "tax", "discount"):
            lines.add_column(column)
        for line in order.lines:
            lines.add_row(
                line.sku,
                str(line.quantity),
                str(line.unit_price.amount),
                str(line.tax.amount),
                str(line.discount.amount),
            )
        console.print(lines)
        history = Table(title="Log")
        for column in ("at", "direction", "action", "detail"):
            history.add_column(column, overflow="fold")
        for row in log_rows:
            history.add_row(row["at"][:19], row["direction"], row["action"], row["detail"])
        console.print(history)


@cli.command()
@config_option
@click.option("--connection", "connection_id", default=None, help="Only this connection.")
@click.option(
    "--since", type=click.DateTime(), default=None, help="Orders updated since (default: 7 days)."
)
@click.option("--no-stock", is_flag=True, help="Skip the stock drift check.")
@json_option
@click.pass_context
def check(
    ctx: click.Context,
    config: str | None,
    connection_id: str | None,
    since: datetime | None,
    no_stock: bool,
    as_json: bool,
) -> None:
    """Reconcile Amazon, the state DB and the shop; exit 1 if anything is off."""
    from engine.reconcile import check_connection

    start = since.replace(tzinfo=UTC) if since else datetime.now(UTC) - timedelta(days=7)
    with _App(ctx, config) as app:

        async def go() -> list[Any]:
            engine = app.engine()
            try:
                ids = (
                    [connection_id]
                    if connection_id
                    else [c.id for c in app.loaded.connections if c.active]
                )
                found = []
                for cid in ids:
                    found.extend(
                        await check_connection(engine.context(cid), start, stock=not no_stock)
                    )
                return found
            finally:
                await engine.aclose()

        findings = _run(go)
        if as_json:
            _echo_json([f.__dict__ for f in findings])
        elif findings:
            table = Table(title=f"{len(findings)} finding(s)")
            for column in ("connection", "kind", "order / SKU", "detail", "fix"):
                table.add_column(column, overflow="fold")
            for f in findings:
                table.add_row(f.connection_id, f.kind, f.key, GLOBAL_REDACTOR(f.detail), f.fix)
            console.print(table)
        else:
            click.echo(f"no findings since {start:%Y-%m-%d %H:%M} UTC")
        if findings:
            sys.exit(1)


@cli.command()
@config_option
@click.option("--connection", "connection_id", default=None)
@click.pass_context
def retry(ctx: click.Context, config: str | None, connection_id: str | None) -> None:
    """Retry failed orders, shipments, cancellations and SKUs at the next run."""
    with _App(ctx, config) as app:
        counts = app.store.retry_failed(connection_id)
        click.echo(
            f"re-queued {counts['orders']} order(s) and {counts['intents']} action(s); "
            f"cleared {counts['failures']} failure record(s). They run at the next sync."
        )


@cli.command()
@config_option
@click.pass_context
def plugins(ctx: click.Context, config: str | None) -> None:
    """Installed plugins as JSON: name, version, platforms, hooks, load errors.

    ``-c`` is accepted for symmetry; plugins do not depend on the config.
    """
    loaded = _plugins(ctx)
    data: dict[str, Any] = {
        "plugins": loaded.describe(),
        "errors": [e.__dict__ for e in loaded.errors],
    }
    _echo_json(data)


@cli.command()
@click.option(
    "-c",
    "--config",
    "config",
    default=None,
    help="Not used: the demo writes its own config (WORKDIR/ordersync.toml) for the simulators.",
)
@click.option("--shop", default="shopify", show_default=True, help="Shop platform to simulate.")
@click.option("--workdir", default=".demo", show_default=True, help="Where config and state go.")
@click.pass_context
def demo(ctx: click.Context, config: str | None, shop: str, workdir: str) -> None:
    """Run the real daemon end to end against the bundled simulators."""
    from engine.demo import run_demo

    if config is not None:
        raise click.UsageError(
            "demo does not read a config: it writes its own (WORKDIR/ordersync.toml) pointing at "
            "the simulators it starts, and wipes WORKDIR first. "
            "Run your own config with `ordersync run -c FILE`."
        )

    sys.exit(run_demo(_plugins(ctx), shop, Path(workdir)))


@cli.group("config")
def config_group() -> None:
    """Configuration tools."""


@config_group.command("check")
@config_option
@click.pass_context
def config_check(ctx: click.Context, config: str | None) -> None:
    """Validate a config file; exit 1 listing every error with its dotted path."""
    path = config_path(config)
    try:
        loaded = load_config(path, _plugins(ctx).registry)
    except ConfigError as exc:
        _config_failed(exc)
        return
    n = len(loaded.connections)
    click.echo(f"{path}: OK ({n} connection{'s' if n != 1 else ''})")


def main() -> None:
    """Entry point: load plugins once, let them add commands, run the CLI."""
    try:
        loaded = load_plugins()
        register_commands(loaded, cli)
    except PluginLoadError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    cli(obj={"plugins": loaded})


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["cli", "main"]
