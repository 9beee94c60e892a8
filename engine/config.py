"""The configuration file: one TOML file, environment overrides, plugin settings.

Secrets never sit in the file: a secret field takes ``{ "$env" = "NAME" }`` or
``{ "$file" = "/run/secrets/name" }`` and is held as ``SecretStr``.
Errors are reported with dotted paths (``connections.0.shop.settings.token: ...``).
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.errors import ConfigError
from engine.interfaces import MarketplaceConnector, ShopConnector
from engine.redact import GLOBAL_REDACTOR
from engine.registry import PlatformRegistry

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("ordersync_config_file", default=None)

Level = Literal["orders_and_stock", "stock_only"]
FLOWS = ("orders", "shipments", "stock")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlatformConfig(_Strict):
    """``type`` names a registered platform; ``settings`` is validated by its plugin."""

    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class Schedule(_Strict):
    """Seconds between runs of each flow."""

    orders: float = Field(default=300, gt=0)
    shipments: float = Field(default=300, gt=0)
    stock: float = Field(default=120, gt=0)
    full_stock_every: int = Field(default=24, ge=1)
    """Every Nth stock run reads all stock instead of only changes (drift repair)."""


class ConnectionConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    label: str = ""
    active: bool = True
    level: Level = "orders_and_stock"
    marketplace: PlatformConfig
    shop: PlatformConfig
    product_identification_attribute: str = "sku"
    default_shipping_service: str
    cancellation_reason: str
    carrier_map: dict[str, str] = Field(default_factory=dict)
    """Shop carrier name → marketplace carrier code (matched case-insensitively)."""
    schedule: Schedule = Field(default_factory=Schedule)
    orders_per_month: int | None = Field(default=None, ge=0)
    start_date: date | None = None
    """Import orders updated since this date on the first run (default: the last day)."""
    lookback_minutes: float | None = Field(default=None, ge=0)
    import_marketplace_fulfilled: bool = False
    """Also import orders the marketplace fulfils itself (FBA), e.g. for bookkeeping."""

    def flows(self) -> tuple[str, ...]:
        if not self.active:
            return ()
        if self.level == "stock_only":
            return ("stock",)
        return FLOWS


class Config(BaseSettings):
    """The root of the configuration file."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERSYNC_", env_nested_delimiter="__", extra="forbid", frozen=False
    )

    state_path: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    time_scale: float = Field(default=1.0, gt=0)
    """Speeds up client-side rate limits to match simulators run with the same scale."""
    lease_seconds: float = Field(default=600, gt=0)
    """How long a connection's lease lasts without renewal (renewed at every write)."""
    connections: list[ConnectionConfig] = Field(default_factory=list)

    @field_validator("connections")
    @classmethod
    def _unique_ids(cls, value: list[ConnectionConfig]) -> list[ConnectionConfig]:
        seen: set[str] = set()
        for conn in value:
            if conn.id in seen:
                raise ValueError(f"connection id {conn.id!r} is used twice")
            seen.add(conn.id)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def connection(self, connection_id: str) -> ConnectionConfig:
        for conn in self.connections:
            if conn.id == connection_id:
                return conn
        known = ", ".join(c.id for c in self.connections) or "none"
        raise KeyError(f"no connection {connection_id!r} in the config (known: {known})")


class LoadedConfig:
    """A validated config plus each connection's validated plugin settings."""

    def __init__(
        self, config: Config, settings: dict[tuple[str, str], BaseModel], path: Path | None
    ) -> None:
        self.config = config
        self.path = path
        self._settings = settings

    @property
    def connections(self) -> list[ConnectionConfig]:
        return self.config.connections

    def plugin_settings(self, connection_id: str, role: str) -> BaseModel:
        return self._settings[(connection_id, role)]


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _errors(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[tuple[str, str]]:
    return [(_dotted(prefix + tuple(e["loc"])), e["msg"]) for e in exc.errors()]


def _secret_fields(model: type[BaseModel]) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation) or (annotation,)
        if SecretStr in args:
            out.add(field.alias or name)
    return out


def resolve_secrets(
    settings: Mapping[str, Any], model: type[BaseModel], base_dir: Path | None, path: str
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Replace ``{"$env": NAME}`` / ``{"$file": PATH}`` values; refuse literal secrets."""
    out: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    secret_fields = _secret_fields(model)
    for key, value in settings.items():
        where = f"{path}.{key}"
        if isinstance(value, Mapping) and set(value) & {"$env", "$file"}:
            if "$env" in value:
                name = str(value["$env"])
                if name not in os.environ:
                    errors.append((where, f"environment variable {name} is not set"))
                    continue
                out[key] = os.environ[name]
            else:
                file = Path(str(value["$file"]))
                if not file.is_absolute() and base_dir is not None:
                    file = base_dir / file
                try:
                    out[key] = file.read_text().strip()
                except OSError as exc:
                    errors.append((where, f"cannot read secret file {file}: {exc.strerror}"))
                    continue
            GLOBAL_REDACTOR.add(out[key])
        elif key in secret_fields and value is not None:
            errors.append(
                (
                    where,
                    'secrets must not be written in the file; use { "$env" = "NAME" } or { "$file" = "PATH" }',
                )
            )
        else:
            out[key] = value
    return out, errors


def load_config(
    path: str | Path | None,
    registry: PlatformRegistry,
    *,
    data: Mapping[str, Any] | None = None,
    allow_literal_secrets: bool = False,
) -> LoadedConfig:
    """Read, validate and resolve a configuration; raise :class:`ConfigError` with every problem.

    :param path: the TOML file (environment variables ``ORDERSYNC_*`` override it).
    :param data: a dict instead of a file (tests, embedded use).
    :param allow_literal_secrets: accept secrets written inline (only for ``data``).
    """
    file = Path(path) if path is not None else None
    if file is not None:
        if not file.exists():
            raise ConfigError([("<file>", f"config file {file} does not exist")])
        try:
            tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([("<file>", f"{file} is not valid TOML: {exc}")]) from None
    token = _CONFIG_FILE.set(file)
    try:
        config = Config(**(dict(data) if data is not None else {}))
    except ValidationError as exc:
        raise ConfigError(_errors(exc)) from None
    finally:
        _CONFIG_FILE.reset(token)

    errors: list[tuple[str, str]] = []
    settings: dict[tuple[str, str], BaseModel] = {}
    base_dir = file.parent if file is not None else None
    for index, conn in enumerate(config.connections):
        for role in ("marketplace", "shop"):
            platform: PlatformConfig = getattr(conn, role)
            where = f"connections.{index}.{role}"
            try:
                spec = registry.get(platform.type, role)  # type: ignore[arg-type]
            except KeyError as exc:
                errors.append((f"{where}.type", str(exc.args[0])))
                continue
            raw, secret_errors = (
                (dict(platform.settings), [])
                if allow_literal_secrets
                else resolve_secrets(
                    platform.settings, spec.settings_model, base_dir, f"{where}.settings"
                )
            )
            errors.extend(secret_errors)
            if secret_errors:
                continue
            try:
                validated = spec.settings_model.model_validate(raw)
            except ValidationError as exc:
                errors.extend(_errors(exc, (f"{where}.settings",)))
                continue
            for value in validated.model_dump().values():
                if isinstance(value, SecretStr):
                    GLOBAL_REDACTOR.add(value)
            settings[(conn.id, role)] = validated
            errors.extend(_check_platform_values(conn, index, role, spec.connector))
    if errors:
        raise ConfigError(errors)
    return LoadedConfig(config, settings, file)


def _check_platform_values(
    conn: ConnectionConfig, index: int, role: str, connector: type
) -> list[tuple[str, str]]:
    errors = []
    where = f"connections.{index}"
    if role == "shop" and issubclass(connector, ShopConnector):
        if not connector.accepts_attribute(conn.product_identification_attribute):
            known = ", ".join(sorted(connector.identification_attributes))
            errors.append(
                (
                    f"{where}.product_identification_attribute",
                    f"{conn.shop.type} cannot match products by "
                    f"{conn.product_identification_attribute!r} (use one of: {known})",
                )
            )
    if role == "marketplace" and issubclass(connector, MarketplaceConnector):
        reasons = connector.cancellation_reasons
        if reasons and conn.cancellation_reason not in reasons:
            errors.append(
                (
                    f"{where}.cancellation_reason",
                    f"{conn.cancellation_reason!r} is not a {conn.marketplace.type} reason "
                    f"(use one of: {', '.join(sorted(reasons))})",
                )
            )
        carriers = connector.carrier_codes
        if carriers:
            if conn.default_shipping_service not in carriers:
                errors.append(
                    (
                        f"{where}.default_shipping_service",
                        f"{conn.default_shipping_service!r} is not a {conn.marketplace.type} carrier code",
                    )
                )
            for shop_name, code in conn.carrier_map.items():
                if code not in carriers:
                    errors.append(
                        (
                            f"{where}.carrier_map.{shop_name}",
                            f"{code!r} is not a {conn.marketplace.type} carrier code",
                        )
                    )
    return errors
