"""Magento 2 / Adobe Commerce shop plugin (REST V1, integration token or OAuth 1.0a)."""

from __future__ import annotations

from collections.abc import Callable

from engine.hookspecs import hookimpl
from engine.registry import PlatformSpec
from plugins.magento.connector import MagentoConnector
from plugins.magento.settings import MagentoSettings

__all__ = ["MagentoConnector", "MagentoSettings", "register_platforms"]


@hookimpl
def register_platforms(register: Callable[[PlatformSpec], None]) -> None:
    register(
        PlatformSpec(
            name="magento",
            role="shop",
            connector=MagentoConnector,
            settings_model=MagentoSettings,
            simulator="plugins.magento.harness:MagentoSim",
            description=(
                "Magento 2.4 / Adobe Commerce via REST V1: orders by /V1/orders/create or the "
                "guest-cart checkout, MSI source items, shipments with tracks, cancellations."
            ),
        )
    )
