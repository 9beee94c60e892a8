"""Hook specifications: the whole plugin surface besides the connector classes.

The event hooks (``order_imported``, ``shipment_confirmed``, ``item_failed``)
are for notifiers. Each implementation is called on its own, after the change
is committed; one that raises is logged with its plugin's name and ignored, so
an alert that cannot be sent never stops a sync. They run inside the flow:
hand slow work (HTTP calls) to a queue or thread rather than blocking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from engine.models import Order, Shipment, ShopOrderRef
    from engine.registry import PlatformSpec

PROJECT = "ordersync"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_platforms(register: Callable[[PlatformSpec], None]) -> None:
    """Register marketplace or shop platforms.

    Called once when plugins are loaded.

    :param register: call it with a :class:`engine.registry.PlatformSpec` per platform.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``ordersync`` command line.

    Called when the CLI starts. If it raises, the plugin is listed in
    ``ordersync plugins`` errors and its commands are left out (fatal with
    ``ORDERSYNC_STRICT_PLUGINS=1``).

    :param cli: the root :class:`click.Group`; use ``@cli.command()``.
    """


@hookspec
def order_imported(connection_id: str, order: Order, shop_ref: ShopOrderRef) -> None:
    """A marketplace order now exists in the shop.

    Called after the import is committed to the state database.

    :param connection_id: the connection's ``id``.
    :param order: the marketplace order.
    :param shop_ref: the shop order it became.
    """


@hookspec
def shipment_confirmed(connection_id: str, order_id: str, shipment: Shipment) -> None:
    """A shop shipment was confirmed on the marketplace.

    Called after the confirmation is committed.

    :param connection_id: the connection's ``id``.
    :param order_id: the marketplace order id.
    :param shipment: the shipment that was confirmed.
    """


@hookspec
def item_failed(connection_id: str, kind: str, key: str, reason: str, message: str) -> None:
    """An order, shipment, cancellation or SKU failed and awaits a retry.

    Called after the failure is recorded; use it for alerts.

    :param connection_id: the connection's ``id``.
    :param kind: ``order``, ``shipment``, ``cancellation`` or ``stock``.
    :param key: the order id or SKU.
    :param reason: a :class:`engine.errors.FailureReason` value.
    :param message: a human-readable explanation.
    """
