"""The plugin guide documents every hook and every connector method."""

from __future__ import annotations

import inspect
from pathlib import Path

from engine import hookspecs
from engine.config import Config, ConnectionConfig, Schedule
from engine.interfaces import Connector, MarketplaceConnector, ShopConnector

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_names() -> list[str]:
    return [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "ordersync_spec")]


def test_every_hook_is_documented_with_its_signature():
    text = (DOCS / "plugins.md").read_text()
    for name in hook_names():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in text, name


def test_every_connector_method_is_documented():
    """Abstract or optional: every public method a plugin may implement."""
    text = (DOCS / "plugins.md").read_text()
    checked = []
    for cls in (Connector, MarketplaceConnector, ShopConnector):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                checked.append(name)
                assert f"def {name}(" in text, f"{cls.__name__}.{name}"
    assert {"create_orders", "find_order_refs", "orders_updated", "aclose"} <= set(checked)


def test_every_hook_is_checked():
    assert {"register_platforms", "register_commands", "order_imported"} <= set(hook_names())


def test_every_config_key_is_documented():
    text = (DOCS / "configuration.md").read_text()
    for model in (Config, ConnectionConfig):
        for name in model.model_fields:
            assert f"`{name}`" in text, name
    for name in Schedule.model_fields:
        assert f"`schedule.{name}`" in text or f".{name}`" in text, name


BUILTIN = ("plugins.amazon", "plugins.shopify", "plugins.woocommerce", "plugins.magento")


def builtin_registry():
    from engine.plugins import load_plugins

    return load_plugins(entry_points_group=None, extra_modules=BUILTIN).registry


def test_platform_settings_reference_is_generated_from_the_models():
    """Regenerate with ``python -m engine.settings_doc docs/configuration.md``."""
    from engine.settings_doc import BEGIN, rewrite

    text = (DOCS / "configuration.md").read_text()
    assert BEGIN in text
    assert rewrite(text, builtin_registry()) == text, "docs/configuration.md is stale"


def test_every_builtin_platform_setting_says_what_it_means():
    registry = builtin_registry()
    silent = [
        f"{name}.{key}"
        for name in registry.names()
        for key, field in registry.get(name).settings_model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert silent == []


def test_settings_table_marks_secrets_and_defaults():
    from pydantic import BaseModel, ConfigDict, Field, SecretStr

    from engine.settings_doc import settings_table

    class Example(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)
        token: SecretStr
        """The ``token``."""
        size: int | None = Field(default=3, description="How | many.")

    assert settings_table(Example).splitlines()[2:] == [
        "| `token` 🔒 | required | The `token`. |",
        "| `size` | 3 | How \\| many. |",
    ]
