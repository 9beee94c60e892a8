"""Choosing the marketplace carrier code for a shop shipment."""

from __future__ import annotations

from collections.abc import Mapping


def map_carrier(
    shop_carrier: str | None,
    carrier_map: Mapping[str, str],
    allowed: frozenset[str],
    default: str,
) -> str:
    """``carrier_map`` first, then an allowed code with the same name, else ``default``.

    Matching is case- and space-insensitive. A mapped code the marketplace does
    not allow also falls back to ``default``.
    """

    def norm(value: str) -> str:
        return "".join(value.lower().split())

    if shop_carrier:
        wanted = norm(shop_carrier)
        for name, code in carrier_map.items():
            if norm(name) == wanted:
                return code if not allowed or code in allowed else default
        for code in allowed:
            if norm(code) == wanted:
                return code
    return default
