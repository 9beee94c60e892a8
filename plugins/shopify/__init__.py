"""Shopify shop plugin: GraphQL Admin API connector plus a stateful simulator."""

from __future__ import annotations

from collections.abc import Callable

from engine.hookspecs import hookimpl
from engine.registry import PlatformSpec
from plugins.shopify.connector import ShopifyConnector
from plugins.shopify.settings import ShopifySettings

__all__ = ["ShopifyConnector", "ShopifySettings", "register_platforms"]


@hookimpl
def register_platforms(register: Callable[[PlatformSpec], None]) -> None:
    register(
        PlatformSpec(
            name="shopify",
            role="shop",
            connector=ShopifyConnector,
            settings_model=ShopifySettings,
            description="Shopify via the GraphQL Admin API (orderCreate, fulfillments, "
            "inventory levels, bulk operations).",
            simulator="plugins.shopify.harness:ShopifySimHarness",
        )
    )
