"""The platform registry handed to ``register_platforms``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from engine.interfaces import Connector, MarketplaceConnector, ShopConnector

Role = Literal["marketplace", "shop"]

_ROLE_BASES: dict[str, type] = {
    "marketplace": MarketplaceConnector,
    "shop": ShopConnector,
}


@dataclass(frozen=True)
class PlatformSpec:
    """One platform a plugin provides."""

    name: str
    role: Role
    connector: type[Connector]
    settings_model: type[BaseModel]
    description: str = ""
    simulator: str | None = None
    """``"module:Factory"`` of the platform's simulator harness (see
    :mod:`engine.testing.harness`), used by ``ordersync demo``, tests and benchmarks."""


class PlatformRegistry:
    """Name → :class:`PlatformSpec`, with shape checks and duplicate rejection."""

    def __init__(self) -> None:
        self._specs: dict[str, PlatformSpec] = {}
        self._owners: dict[str, str] = {}

    def register(self, spec: PlatformSpec, *, plugin: str = "?") -> None:
        if spec.name in self._specs:
            raise ValueError(
                f"platform {spec.name!r} from plugin {plugin!r} is already registered "
                f"by plugin {self._owners[spec.name]!r}"
            )
        base = _ROLE_BASES.get(spec.role)
        if base is None:
            raise ValueError(f"platform {spec.name!r}: unknown role {spec.role!r}")
        if not (isinstance(spec.connector, type) and issubclass(spec.connector, base)):
            raise TypeError(
                f"platform {spec.name!r}: connector must subclass {base.__name__}, "
                f"got {spec.connector!r}"
            )
        if not (
            isinstance(spec.settings_model, type) and issubclass(spec.settings_model, BaseModel)
        ):
            raise TypeError(f"platform {spec.name!r}: settings_model must be a pydantic model")
        self._specs[spec.name] = spec
        self._owners[spec.name] = plugin

    def get(self, name: str, role: Role | None = None) -> PlatformSpec:
        spec = self._specs.get(name)
        if spec is None or (role is not None and spec.role != role):
            known = ", ".join(sorted(n for n, s in self._specs.items() if role in (None, s.role)))
            raise KeyError(f"unknown {role or 'platform'} type {name!r} (known: {known or 'none'})")
        return spec

    def unregister_plugin(self, plugin: str) -> None:
        """Forget every platform ``plugin`` registered (it failed to load)."""
        for name in [n for n, owner in self._owners.items() if owner == plugin]:
            del self._specs[name], self._owners[name]

    def owner(self, name: str) -> str:
        return self._owners[name]

    def names(self, role: Role | None = None) -> list[str]:
        return sorted(n for n, s in self._specs.items() if role in (None, s.role))

    def __contains__(self, name: object) -> bool:
        return name in self._specs
