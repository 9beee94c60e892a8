"""Plugin loading, broken-plugin tolerance, controls, and one test per hook."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner

from engine import hookimpl, hookspecs
from engine.cli import cli
from engine.errors import PluginLoadError
from engine.plugins import load_plugins, register_commands
from engine.registry import PlatformRegistry, PlatformSpec
from engine.state import OrderState
from tests.fakes import FakeMarketplace, FakeSettings, FakeShop

ROOT = Path(__file__).resolve().parents[2]

GOOD_PLUGIN = """
from engine import hookimpl
from engine.registry import PlatformSpec
from tests.fakes import FakeShop, FakeSettings

class ThirdPartyShop(FakeShop):
    pass

@hookimpl
def register_platforms(register):
    register(PlatformSpec(name="thirdshop", role="shop", connector=ThirdPartyShop, settings_model=FakeSettings))
"""


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Two installed third-party distributions: one fine, one that fails to import."""
    (tmp_path / "goodplug_mod.py").write_text(GOOD_PLUGIN)
    (tmp_path / "brokenplug_mod.py").write_text(
        "raise RuntimeError('missing dependency frobnicate')\n"
    )
    for dist, name, module in (
        ("goodplug", "good", "goodplug_mod"),
        ("brokenplug", "broken", "brokenplug_mod"),
    ):
        info = tmp_path / f"{dist}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[ordersync.plugins]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for module in ("goodplug_mod", "brokenplug_mod"):
        sys.modules.pop(module, None)


def test_broken_plugin_is_skipped_and_reported(third_party, monkeypatch):
    monkeypatch.setenv("ORDERSYNC_LOAD_PLUGINS", "good,broken")
    plugins = load_plugins()
    assert "thirdshop" in plugins.registry
    assert [(e.name, e.distribution) for e in plugins.errors] == [("broken", "brokenplug")]
    assert "missing dependency frobnicate" in plugins.errors[0].error
    assert plugins.infos["good"].version == "1.2.3"


def test_strict_mode_makes_a_broken_plugin_fatal(third_party, monkeypatch):
    monkeypatch.setenv("ORDERSYNC_LOAD_PLUGINS", "good,broken")
    monkeypatch.setenv("ORDERSYNC_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match='Error loading plugin "broken"'):
        load_plugins()


def test_allow_list_and_block_list(third_party, monkeypatch):
    monkeypatch.setenv("ORDERSYNC_LOAD_PLUGINS", "")
    assert load_plugins().infos == {}
    monkeypatch.setenv("ORDERSYNC_LOAD_PLUGINS", "good,broken")
    monkeypatch.setenv("ORDERSYNC_DISABLED_PLUGINS", "broken")
    plugins = load_plugins()
    assert list(plugins.infos) == ["good"] and plugins.errors == []


def test_builtin_plugins_come_through_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="ordersync.plugins")}
    assert names["amazon"] == "plugins.amazon"
    assert names["shopify"] == "plugins.shopify"


def test_plugins_command_prints_json(third_party, monkeypatch):
    monkeypatch.setenv("ORDERSYNC_LOAD_PLUGINS", "good,broken")
    result = CliRunner().invoke(cli, ["plugins"], obj={"plugins": load_plugins()})
    assert result.exit_code == 0
    data = json.loads(result.output)
    good = next(p for p in data["plugins"] if p["name"] == "good")
    assert good["version"] == "1.2.3"
    assert good["hooks"] == ["register_platforms"]
    assert good["platforms"] == [{"name": "thirdshop", "role": "shop"}]
    assert data["errors"][0]["name"] == "broken"


def test_misspelled_hook_is_rejected():
    module = type(sys)("typo_plugin")

    @hookimpl
    def register_platfroms(register):  # noqa: ANN001, ANN202
        pass

    module.register_platfroms = register_platfroms
    plugins = load_plugins(entry_points_group=None, extra_modules=(module,))
    assert plugins.errors and "register_platfroms" in plugins.errors[0].error
    assert "typo_plugin" not in plugins.infos


def test_registry_rejects_duplicates_and_wrong_shapes():
    registry = PlatformRegistry()
    registry.register(PlatformSpec("x", "shop", FakeShop, FakeSettings), plugin="a")
    with pytest.raises(ValueError, match="already registered by plugin 'a'"):
        registry.register(PlatformSpec("x", "shop", FakeShop, FakeSettings), plugin="b")
    with pytest.raises(TypeError, match="must subclass ShopConnector"):
        registry.register(PlatformSpec("y", "shop", FakeMarketplace, FakeSettings))
    with pytest.raises(ValueError, match="unknown role"):
        registry.register(PlatformSpec("z", "warehouse", FakeShop, FakeSettings))  # type: ignore[arg-type]


# -- one test per hook (tests/engine/test_docs.py checks that each exists) ------


def test_hook_register_platforms(fake_plugins):
    assert fake_plugins.registry.get("fakemarket", "marketplace").connector is FakeMarketplace
    assert fake_plugins.registry.names("shop") == ["fakeshop"]


def test_hook_register_commands(fake_plugins):
    module = type(sys)("cmd_plugin")

    @hookimpl
    def register_commands(cli):  # noqa: ANN001, ANN202
        @cli.command(name="hello-plugin")
        def hello() -> None:
            click.echo("hello from a plugin")

    module.register_commands = register_commands
    plugins = load_plugins(entry_points_group=None, extra_modules=(module,))
    group = click.Group(commands=dict(cli.commands))
    plugins.pm.hook.register_commands(cli=group)
    result = CliRunner().invoke(group, ["hello-plugin"])
    assert result.output == "hello from a plugin\n"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def order_imported(self, connection_id, order, shop_ref):  # noqa: ANN001, ANN201
        self.calls.append(
            (
                "order_imported",
                {
                    "connection_id": connection_id,
                    "order": order.marketplace_order_id,
                    "shop": shop_ref.id,
                },
            )
        )

    @hookimpl
    def shipment_confirmed(self, connection_id, order_id, shipment):  # noqa: ANN001, ANN201
        self.calls.append(
            ("shipment_confirmed", {"order": order_id, "shipment": shipment.shipment_id})
        )

    @hookimpl
    def item_failed(self, connection_id, kind, key, reason, message):  # noqa: ANN001, ANN201
        self.calls.append(("item_failed", {"kind": kind, "key": key, "reason": reason}))


@pytest.fixture
def recorder(fake_plugins):
    rec = Recorder()
    fake_plugins.pm.register(rec, name="recorder")
    return rec


async def test_hook_order_imported(recorder, make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    await make_engine().run_flow("c1", "orders")
    assert recorder.calls == [
        ("order_imported", {"connection_id": "c1", "order": "A-1", "shop": "S1"})
    ]


async def test_hook_shipment_confirmed(recorder, make_engine, world):
    world.add_product("SKU-1")
    world.add_order("A-1")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    await engine.run_flow("c1", "shipments")
    world.ship("A-1")
    await engine.run_flow("c1", "shipments")
    assert ("shipment_confirmed", {"order": "A-1", "shipment": "F-1"}) in recorder.calls


async def test_hook_item_failed(recorder, make_engine, world):
    world.add_order("A-1", {"GHOST": 1})
    await make_engine().run_flow("c1", "orders")
    assert recorder.calls == [
        ("item_failed", {"kind": "order", "key": "A-1", "reason": "unknown_sku"})
    ]


def test_every_hook_has_a_test():
    names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "ordersync_spec")]
    assert names, "no hookspecs found"
    missing = [n for n in names if f"test_hook_{n}" not in globals()]
    assert missing == []


def test_hook_docstrings_say_when_they_are_called():
    for name in dir(hookspecs):
        fn = getattr(hookspecs, name)
        if hasattr(fn, "ordersync_spec"):
            assert "Called" in textwrap.dedent(fn.__doc__ or ""), name


# -- hooks cannot stall or kill the engine ---------------------------------------


class Raising:
    """A notifier plugin whose alerts always fail (say, the chat service is down)."""

    @hookimpl
    def order_imported(self, connection_id, order, shop_ref):  # noqa: ANN001, ANN201
        raise RuntimeError("slack is down")

    @hookimpl
    def item_failed(self, connection_id, kind, key, reason, message):  # noqa: ANN001, ANN201
        raise RuntimeError("pager is down")


async def test_a_raising_notifier_never_stalls_the_flow(fake_plugins, make_engine, world, caplog):
    fake_plugins.pm.register(Raising(), name="raising")
    recorder = Recorder()
    fake_plugins.pm.register(recorder, name="recorder")
    world.add_product("SKU-1")
    for n in range(6):
        world.add_order(f"A-{n}")
    engine = make_engine()
    report = await engine.run_flow("c1", "orders")
    assert report is not None and report.errors == []
    assert engine.store.counts_by_state("c1") == {"imported": 6}
    assert engine.store.runtime("c1")["status"] == "ok"
    assert len([c for c in recorder.calls if c[0] == "order_imported"]) == 6  # others still hear
    failed = [r.getMessage() for r in caplog.records if "failed in hook" in r.getMessage()]
    assert len(failed) == 6
    assert (
        "'raising'" in failed[0] and "order_imported" in failed[0] and "slack is down" in failed[0]
    )


async def test_a_raising_item_failed_hook_does_not_undo_the_failure(
    fake_plugins, make_engine, world
):
    """An unreadable order is recorded inside the window's own transaction; a hook
    that raised there used to roll it back and stop the window for good."""
    fake_plugins.pm.register(Raising(), name="raising")
    world.add_product("SKU-1")
    world.add_order("A-1")
    world.add_order("UNREADABLE")
    world.unreadable.add("UNREADABLE")
    engine = make_engine()
    await engine.run_flow("c1", "orders")
    assert [f["key"] for f in engine.store.failures("c1")] == ["UNREADABLE"]
    assert engine.store.order_state("c1", "A-1") is OrderState.IMPORTED
    assert engine.store.get_cursor("c1", "orders") is not None  # the window completed


async def test_item_failed_fires_after_the_failure_is_committed(
    fake_plugins, make_engine, world, tmp_path
):
    seen: list[list[str]] = []

    class Observer:
        @hookimpl
        def item_failed(self, connection_id, kind, key, reason, message):  # noqa: ANN001, ANN201
            # Another connection sees only committed data.
            with sqlite3.connect(tmp_path / "state.db") as other:
                seen.append([row[0] for row in other.execute("SELECT key FROM failures")])

    fake_plugins.pm.register(Observer(), name="observer")
    world.add_order("UNREADABLE")
    world.unreadable.add("UNREADABLE")
    await make_engine().run_flow("c1", "orders")
    assert seen == [["UNREADABLE"]]


def _commands_plugin(fail: bool) -> ModuleType:
    module = ModuleType("commands_plugin")

    @hookimpl
    def register_commands(cli):  # noqa: ANN001, ANN202
        @cli.command(name="half-registered")
        def half() -> None:
            pass

        if fail:
            raise RuntimeError("needs frobnicate")

    module.register_commands = register_commands  # type: ignore[attr-defined]
    return module


def test_a_raising_register_commands_is_reported_and_skipped():
    plugins = load_plugins(entry_points_group=None, extra_modules=(_commands_plugin(True),))
    group = click.Group(commands=dict(cli.commands))
    register_commands(plugins, group)
    assert "half-registered" not in group.commands  # nothing half-done stays
    assert set(group.commands) == set(cli.commands)
    assert [(e.name, e.error) for e in plugins.errors] == [
        ("commands_plugin", "register_commands: RuntimeError: needs frobnicate")
    ]
    fine = load_plugins(entry_points_group=None, extra_modules=(_commands_plugin(False),))
    register_commands(fine, group)
    assert "half-registered" in group.commands and fine.errors == []


def test_a_raising_register_commands_is_fatal_in_strict_mode(monkeypatch):
    plugins = load_plugins(entry_points_group=None, extra_modules=(_commands_plugin(True),))
    monkeypatch.setenv("ORDERSYNC_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="register_commands: RuntimeError: needs frobnicate"):
        register_commands(plugins, click.Group(commands=dict(cli.commands)))


BAD_COMMANDS_PLUGIN = """
from engine import hookimpl

@hookimpl
def register_commands(cli):
    raise RuntimeError("needs frobnicate")
"""


@pytest.mark.parametrize(("strict", "code"), [("", 0), ("1", 1)])
def test_ordersync_survives_a_plugin_whose_commands_fail(tmp_path, strict, code):
    """Through the real entry point: every command still works (strict: exit 1)."""
    (tmp_path / "badcmds_mod.py").write_text(BAD_COMMANDS_PLUGIN)
    info = tmp_path / "badcmds-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badcmds\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ordersync.plugins]\nbadcmds = badcmds_mod\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSYNC_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]),
        ORDERSYNC_LOAD_PLUGINS="badcmds",
        ORDERSYNC_STRICT_PLUGINS=strict,
    )
    result = subprocess.run(
        [sys.executable, "-m", "engine", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert 'plugin "badcmds"' in result.stderr and "needs frobnicate" in result.stderr
    if not strict:
        errors = json.loads(result.stdout)["errors"]
        assert [(e["name"], e["distribution"]) for e in errors] == [("badcmds", "badcmds")]


# -- what a failing plugin leaves behind -----------------------------------------


def _module(name: str, **functions: object) -> ModuleType:
    module = ModuleType(name)
    for attr, fn in functions.items():
        setattr(module, attr, fn)
    return module


def test_every_plugin_with_a_misspelled_hook_is_dropped():
    @hookimpl
    def register_platfroms(register):  # noqa: ANN001, ANN202
        pass

    @hookimpl
    def order_imporetd(connection_id, order, shop_ref):  # noqa: ANN001, ANN202
        pass

    plugins = load_plugins(
        entry_points_group=None,
        extra_modules=(
            _module("typo_one", register_platfroms=register_platfroms),
            _module("typo_two", order_imporetd=order_imporetd),
            "tests.fakes",
        ),
    )
    assert sorted(e.name for e in plugins.errors) == ["typo_one", "typo_two"]
    assert list(plugins.infos) == ["fakes"]
    assert plugins.pm.get_plugin("typo_two") is None


def test_a_plugin_failing_halfway_through_registration_leaves_no_platform():
    @hookimpl
    def register_platforms(register):  # noqa: ANN001, ANN202
        register(PlatformSpec("halfshop", "shop", FakeShop, FakeSettings))
        raise RuntimeError("second platform needs frobnicate")

    plugins = load_plugins(
        entry_points_group=None,
        extra_modules=(_module("half", register_platforms=register_platforms), "tests.fakes"),
    )
    assert "halfshop" not in plugins.registry
    assert plugins.registry.names() == ["fakemarket", "fakeshop"]
    assert [(e.name, e.error) for e in plugins.errors] == [
        ("half", "register_platforms: RuntimeError: second platform needs frobnicate")
    ]
    assert "half" not in plugins.infos and plugins.pm.get_plugin("half") is None


def test_only_marked_register_platforms_functions_are_hooks():
    def register_platforms(register):  # noqa: ANN001, ANN202 - no @hookimpl
        register(PlatformSpec("unmarked", "shop", FakeShop, FakeSettings))

    plugins = load_plugins(
        entry_points_group=None,
        extra_modules=(_module("plain", register_platforms=register_platforms),),
    )
    assert "unmarked" not in plugins.registry and plugins.errors == []
