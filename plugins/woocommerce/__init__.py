"""WooCommerce shop plugin: REST API ``wc/v3`` (HTTP Basic with consumer key/secret)."""

from __future__ import annotations

from collections.abc import Callable

from engine.hookspecs import hookimpl
from engine.registry import PlatformSpec
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.settings import WooCommerceSettings

__all__ = ["WooCommerceConnector", "WooCommerceSettings", "register_platforms"]


@hookimpl
def register_platforms(register: Callable[[PlatformSpec], None]) -> None:
    register(
        PlatformSpec(
            name="woocommerce",
            role="shop",
            connector=WooCommerceConnector,
            settings_model=WooCommerceSettings,
            description="WooCommerce store via the REST API wc/v3 (consumer key and secret)",
            simulator="plugins.woocommerce.simulator:WooCommerceSimHarness",
        )
    )
