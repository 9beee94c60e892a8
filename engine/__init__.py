"""ordersync: keeps Amazon seller accounts and web shops in step."""

from engine.hookspecs import hookimpl
from engine.interfaces import ConnectorContext, MarketplaceConnector, ShopConnector
from engine.registry import PlatformSpec

__version__ = "0.1.0"

__all__ = [
    "ConnectorContext",
    "MarketplaceConnector",
    "PlatformSpec",
    "ShopConnector",
    "__version__",
    "hookimpl",
]
