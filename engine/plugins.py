"""The one plugin manager: entry-point loading that a broken plugin cannot kill.

Environment controls:

- ``ORDERSYNC_LOAD_PLUGINS``: comma-separated allow-list of entry-point names
  (``""`` loads none).
- ``ORDERSYNC_DISABLED_PLUGINS``: comma-separated names to block.
- ``ORDERSYNC_STRICT_PLUGINS=1``: a plugin that fails to load is fatal.
- ``ORDERSYNC_TRACE_PLUGINS=1``: log every hook call.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from engine import hookspecs
from engine.errors import PluginLoadError
from engine.registry import PlatformRegistry, PlatformSpec

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = "ordersync.plugins"
BUILTIN_PLUGINS = ("plugins.amazon", "plugins.shopify", "plugins.woocommerce", "plugins.magento")

log = logging.getLogger("ordersync.plugins")


@dataclass
class LoadError:
    name: str
    distribution: str | None
    error: str


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    distribution: str | None = None


@dataclass
class Plugins:
    """The loaded plugin manager, the platform registry and what went wrong."""

    pm: pluggy.PluginManager
    registry: PlatformRegistry
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready rows for ``ordersync plugins``."""
        rows = []
        for name, info in sorted(self.infos.items()):
            plugin = self.pm.get_plugin(name)
            hooks = (
                sorted(h.name for h in (self.pm.get_hookcallers(plugin) or [])) if plugin else []
            )
            platforms = [
                {"name": p, "role": self.registry.get(p).role}
                for p in self.registry.names()
                if self.registry.owner(p) == name
            ]
            rows.append(
                {
                    "name": name,
                    "version": info.version,
                    "module": info.module,
                    "hooks": hooks,
                    "platforms": platforms,
                }
            )
        return rows


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _strict() -> bool:
    return os.environ.get("ORDERSYNC_STRICT_PLUGINS", "") not in ("", "0", "false")


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("ORDERSYNC_TRACE_PLUGINS", "") not in ("", "0"):
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm


def _fail(
    plugins: Plugins, name: str, dist: str | None, exc: BaseException, *, step: str = ""
) -> None:
    message = f"{step}{': ' if step else ''}{type(exc).__name__}: {exc}"
    log.error('Error loading plugin "%s" (%s): %s', name, dist or "unknown distribution", message)
    plugins.errors.append(LoadError(name=name, distribution=dist, error=message))
    if _strict():
        raise PluginLoadError(f'Error loading plugin "{name}": {message}') from exc


def _register_module(
    plugins: Plugins, name: str, module: ModuleType, version: str | None, dist: str | None = None
) -> None:
    if plugins.pm.is_blocked(name) or plugins.pm.get_plugin(name) is not None:
        return
    plugins.pm.register(module, name=name)
    plugins.infos[name] = PluginInfo(
        name=name, version=version, module=module.__name__, distribution=dist
    )


def register_commands(plugins: Plugins, cli: click.Group) -> None:
    """Let each plugin add its commands to ``cli``, one plugin at a time.

    A plugin whose ``register_commands`` raises is reported (``ordersync plugins``
    lists it) and its commands are left out; the rest of the CLI works.
    ``ORDERSYNC_STRICT_PLUGINS=1`` makes it fatal (:class:`PluginLoadError`).
    """
    for impl in reversed(plugins.pm.hook.register_commands.get_hookimpls()):
        before = dict(cli.commands)
        try:
            impl.function(*[{"cli": cli}[arg] for arg in impl.argnames])
        except Exception as exc:  # noqa: BLE001 - one bad plugin must not break the CLI
            cli.commands.clear()
            cli.commands.update(before)  # nothing half-registered stays
            info = plugins.infos.get(impl.plugin_name)
            _fail(
                plugins,
                impl.plugin_name,
                info.distribution if info else None,
                exc,
                step="register_commands",
            )


def load_plugins(
    *,
    entry_points_group: str | None = ENTRY_POINT_GROUP,
    extra_modules: tuple[ModuleType | str, ...] = (),
) -> Plugins:
    """Load plugins one entry point at a time, then collect their platforms.

    :param entry_points_group: the group to scan; ``None`` skips entry points
        (tests register modules explicitly through ``extra_modules``).
    :param extra_modules: modules (or dotted names) to register as plugins too.
    """
    plugins = Plugins(pm=new_plugin_manager(), registry=PlatformRegistry())
    for blocked in _env_list("ORDERSYNC_DISABLED_PLUGINS") or []:
        plugins.pm.set_blocked(blocked)
    allow = _env_list("ORDERSYNC_LOAD_PLUGINS")

    if entry_points_group:
        for ep in _sorted_entry_points(entry_points_group):
            if allow is not None and ep.name not in allow:
                continue
            if plugins.pm.is_blocked(ep.name):
                continue
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            try:
                module = ep.load()
                _register_module(plugins, ep.name, module, version, dist)
            except Exception as exc:  # noqa: BLE001 - one bad plugin must not stop the rest
                _fail(plugins, ep.name, dist, exc)

    for item in extra_modules:
        name = item if isinstance(item, str) else item.__name__
        try:
            module = importlib.import_module(item) if isinstance(item, str) else item
            _register_module(plugins, name.rsplit(".", 1)[-1], module, None)
        except Exception as exc:  # noqa: BLE001
            _fail(plugins, name, None, exc)

    _drop_unknown_hooks(plugins)
    _collect_platforms(plugins)
    return plugins


def _drop(plugins: Plugins, name: str, exc: BaseException, *, step: str = "") -> None:
    """Unregister a plugin that failed, with everything it registered, and report it."""
    info = plugins.infos.pop(name, None)
    plugins.registry.unregister_plugin(name)
    if plugins.pm.get_plugin(name) is not None:
        plugins.pm.unregister(name=name)
    _fail(plugins, name, info.distribution if info else None, exc, step=step)


def _drop_unknown_hooks(plugins: Plugins) -> None:
    """Every plugin implementing a hook that does not exist (a typo) is dropped."""
    while True:
        try:
            plugins.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = plugins.pm.get_name(exc.plugin)
            if name is None:  # pragma: no cover - pluggy reports registered plugins only
                raise
            _drop(plugins, name, exc)


def _sorted_entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _collect_platforms(plugins: Plugins) -> None:
    """Call each plugin's ``register_platforms`` hook, one plugin at a time.

    A plugin that raises halfway leaves none of its platforms behind.
    """
    for impl in plugins.pm.hook.register_platforms.get_hookimpls():
        name = impl.plugin_name

        def register(spec: PlatformSpec, _name: str = name) -> None:
            plugins.registry.register(spec, plugin=_name)

        try:
            impl.function(*[{"register": register}[arg] for arg in impl.argnames])
        except Exception as exc:  # noqa: BLE001
            _drop(plugins, name, exc, step="register_platforms")
