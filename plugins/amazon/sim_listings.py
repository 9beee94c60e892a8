"""Listings of the simulator: ``fulfillment_availability`` per SKU and channel.

The JSON Patch semantics here serve both ``patchListingsItem`` and
``JSON_LISTINGS_FEED`` messages: ``add``/``replace`` set the whole entry of a
channel (fields not sent are dropped), ``merge`` updates only the fields sent
(``lead_time_to_ship_max_days``, ``restock_date`` survive a quantity update),
``delete`` removes the channel's entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plugins.amazon.feeds import QUANTITY_PATH
from plugins.amazon.sim_orders import iso

__all__ = ["DEFAULT_CHANNEL", "QUANTITY_PATH", "Listing", "apply_availability_patch"]
DEFAULT_CHANNEL = "DEFAULT"


@dataclass
class Listing:
    sku: str
    created: datetime
    updated: datetime
    product_type: str = "PRODUCT"
    availability: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``fulfillment_channel_code`` → that channel's ``fulfillment_availability`` entry."""

    def quantity(self, channel: str = DEFAULT_CHANNEL) -> int | None:
        value = self.availability.get(channel, {}).get("quantity")
        return value if isinstance(value, int) else None

    def view(self, included: set[str], marketplace_ids: list[str]) -> dict[str, Any]:
        """The ``Item`` answer of getListingsItem for the requested data sets."""
        item: dict[str, Any] = {"sku": self.sku}
        if "summaries" in included:
            buyable = any((e.get("quantity") or 0) > 0 for e in self.availability.values())
            item["summaries"] = [
                {
                    "marketplaceId": market_id,
                    "productType": self.product_type,
                    "conditionType": "new_new",
                    "status": ["BUYABLE"] if buyable else [],
                    "itemName": self.sku,
                    "createdDate": iso(self.created),
                    "lastUpdatedDate": iso(self.updated),
                }
                for market_id in marketplace_ids
            ]
        if "attributes" in included:
            entries = [dict(e) for e in self.availability.values()]
            item["attributes"] = {"fulfillment_availability": entries} if entries else {}
        if "issues" in included:
            item["issues"] = []
        if "fulfillmentAvailability" in included:
            item["fulfillmentAvailability"] = [
                {"fulfillmentChannelCode": channel}
                | ({"quantity": e["quantity"]} if isinstance(e.get("quantity"), int) else {})
                for channel, e in self.availability.items()
            ]
        if "productTypes" in included:
            item["productTypes"] = [
                {"marketplaceId": m, "productType": self.product_type} for m in marketplace_ids
            ]
        return item


def apply_availability_patch(listing: Listing, patch: dict[str, Any]) -> str | None:
    """Apply one JSON Patch on ``fulfillment_availability``; a problem text, else ``None``."""
    op, value = patch.get("op"), patch.get("value")
    if op == "delete" and value is None:
        listing.availability.clear()
        return None
    entries = value if isinstance(value, list) else None
    if not entries or not all(
        isinstance(e, dict) and e.get("fulfillment_channel_code") for e in entries
    ):
        return "each fulfillment_availability value needs a fulfillment_channel_code"
    for entry in entries:
        channel = str(entry["fulfillment_channel_code"])
        quantity = entry.get("quantity")
        if quantity is not None and (not isinstance(quantity, int) or quantity < 0):
            return f"quantity {quantity!r} must be a non-negative integer"
        if op == "delete":
            listing.availability.pop(channel, None)
        elif op == "merge":
            listing.availability[channel] = {**listing.availability.get(channel, {}), **entry}
        elif op in ("add", "replace"):
            listing.availability[channel] = dict(entry)
        else:
            return f"op {op!r} is not add, replace, merge or delete"
    return None
