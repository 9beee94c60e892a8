"""The configuration file: one TOML file, environment overrides, plugin settings.

Secrets never sit in the file: a secret field takes ``{ "$env" = "NAME" }`` or
``{ "$file" = "/run/secrets/name" }`` and is held as ``SecretStr``.
Environment variables override the file: ``ORDERSYNC_LOG_LEVEL`` at the top level,
``ORDERSYNC_CONNECTIONS__<index or id>__<KEY>[__<KEY>...]`` inside a connection.
Errors are reported with dotted paths (``connections.0.shop.settings.token: ...``),
all of them in one pass, naming the variable when one set the value.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
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
_CONNECTIONS: ContextVar[list[Any] | None] = ContextVar("ordersync_connections", default=None)
ENV_PREFIX = "ORDERSYNC_"
CONNECTIONS_VAR = "ORDERSYNC_CONNECTIONS"
MISSING_SECRET = "<missing secret>"  # noqa: S105 - a placeholder, not a secret

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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=False)

    state_path: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    time_scale: float = Field(default=1.0, gt=0)
    """Speeds up client-side rate limits to match simulators run with the same scale."""
    lease_seconds: float = Field(default=600, gt=0)
    """How long a connection's lease lasts without renewal (renewed at every write)."""
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    """On SIGTERM/SIGINT, how long running flows may take to finish their step before
    they are cancelled (their committed intents are reconciled at the next start)."""
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
        sources: list[PydanticBaseSettingsSource] = [
            _ConnectionsWithOverrides(settings_cls),
            init_settings,
            env_settings,
        ]
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


class _ConnectionsWithOverrides(PydanticBaseSettingsSource):
    """The connections list with the ``ORDERSYNC_CONNECTIONS__...`` variables applied
    (prepared by :func:`load_config`; nothing when no variable changes it)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged = _CONNECTIONS.get()
        return {} if merged is None else {"connections": merged}


@dataclass
class EnvOverrides:
    """What the environment changes in a configuration."""

    connections: list[Any] | None = None
    """The connections list with the variables applied; ``None`` when none applies."""
    origins: dict[str, str] = dataclass_field(default_factory=dict)
    """Dotted path → the variable that set it."""
    errors: list[tuple[str, str]] = dataclass_field(default_factory=list)


def _env_key(connection_id: object) -> str:
    """How a connection id is spelled in a variable name: ``amazon-de`` → ``AMAZON_DE``."""
    return re.sub(r"[^A-Z0-9]", "_", str(connection_id).upper())


def environment_overrides(connections: Any, environ: Mapping[str, str]) -> EnvOverrides:
    """Apply ``ORDERSYNC_CONNECTIONS__<index|id>__<KEY>[__<KEY>...]`` to ``connections``.

    Keys are matched in lower case; a value starting with ``[`` or ``{`` is JSON.
    ``ORDERSYNC_CONNECTIONS`` alone (JSON) replaces the whole list first.
    """
    found = EnvOverrides()
    upper = {name.upper(): name for name in environ}
    for name in Config.model_fields:
        var = upper.get(ENV_PREFIX + name.upper())
        if var is not None:
            found.origins[name] = var
    base = connections
    whole = upper.get(CONNECTIONS_VAR)
    if whole is not None:
        try:
            base = json.loads(environ[whole])
        except ValueError as exc:
            found.errors.append(("connections", f"{whole} is not valid JSON: {exc}"))
    nested = sorted(v for k, v in upper.items() if k.startswith(CONNECTIONS_VAR + "__"))
    if whole is None and not nested:
        return found
    merged: list[Any] = copy.deepcopy(base) if isinstance(base, list) else []
    for var in nested:
        _apply(var, environ[var], merged, found)
    found.connections = merged
    return found


def _apply(var: str, value: str, merged: list[Any], found: EnvOverrides) -> None:
    selector, *keys = var[len(CONNECTIONS_VAR) + 2 :].split("__")
    index, problem = _select(merged, selector)
    if index is None:
        found.errors.append((f"connections.{selector.lower()}", f"{var}: {problem}"))
        return
    keys = [k.lower() for k in keys]
    if not keys or not all(keys):
        found.errors.append(
            (
                f"connections.{index}",
                f"{var}: name a key after the connection, e.g. {CONNECTIONS_VAR}__{index}__ACTIVE",
            )
        )
        return
    path = f"connections.{index}." + ".".join(keys)
    target = merged[index]
    for depth, key in enumerate(keys[:-1]):
        if isinstance(target, dict) and key not in target:
            target[key] = {}
        target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            where = f"connections.{index}." + ".".join(keys[: depth + 1])
            found.errors.append((path, f"{var}: {where} is not a table"))
            return
    if not isinstance(target, dict):
        found.errors.append((path, f"{var}: connections.{index} is not a table"))
        return
    text = value.strip()
    if text[:1] in ("[", "{"):
        try:
            target[keys[-1]] = json.loads(text)
        except ValueError as exc:
            found.errors.append((path, f"{var} is not valid JSON: {exc}"))
            return
    else:
        target[keys[-1]] = value
    found.origins[path] = var


def _select(merged: list[Any], selector: str) -> tuple[int | None, str]:
    """The connection a variable names, by index or by id."""
    ids = [c.get("id") if isinstance(c, dict) else None for c in merged]
    known = f"the config has {len(merged)} connection(s): " + (
        ", ".join(f"{i} ({cid})" for i, cid in enumerate(ids)) or "none"
    )
    if selector.isdigit():
        index = int(selector)
        return (index, "") if index < len(merged) else (None, f"no connection {index}; {known}")
    matches = [
        i for i, cid in enumerate(ids) if cid is not None and _env_key(cid) == selector.upper()
    ]
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"{selector} matches connections {matches}; use the index"
    return None, f"no connection with id {selector}; {known}"


def _annotate(errors: list[tuple[str, str]], origins: Mapping[str, str]) -> list[tuple[str, str]]:
    """Name the variable that set a value next to an error about it."""
    out = []
    for path, message in errors:
        var = next(
            (
                origins[key]
                for key in sorted(origins, key=len, reverse=True)
                if path == key or path.startswith(key + ".")
            ),
            None,
        )
        if var is not None and var not in message:
            message = f"{message} (set by {var})"
        out.append((path, message))
    return out


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
    """Replace ``{"$env": NAME}`` / ``{"$file": PATH}`` values; refuse literal secrets.

    A reference that cannot be resolved is reported and replaced by a placeholder,
    so the rest of the settings can still be validated.
    """
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
                    out[key] = MISSING_SECRET
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
                    out[key] = MISSING_SECRET
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
    file_data: dict[str, Any] = {}
    if file is not None:
        if not file.exists():
            raise ConfigError([("<file>", f"config file {file} does not exist")])
        try:
            file_data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([("<file>", f"{file} is not valid TOML: {exc}")]) from None
    base = (data if data is not None else file_data).get("connections")
    overrides = environment_overrides(base, os.environ)
    errors = list(overrides.errors)
    config: Config | None = None
    tokens = (_CONFIG_FILE.set(file), _CONNECTIONS.set(overrides.connections))
    try:
        config = Config(**(dict(data) if data is not None else {}))
    except ValidationError as exc:
        errors.extend(_errors(exc))
    finally:
        _CONFIG_FILE.reset(tokens[0])
        _CONNECTIONS.reset(tokens[1])

    # Plugin settings are checked even when the core config is wrong: every error at once.
    raw = overrides.connections if overrides.connections is not None else base
    settings: dict[tuple[str, str], BaseModel] = {}
    base_dir = file.parent if file is not None else None
    for index, conn in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(conn, Mapping):
            continue
        for role in ("marketplace", "shop"):
            validated, problems = _plugin_settings(
                conn, index, role, registry, base_dir, allow_literal_secrets
            )
            errors.extend(problems)
            if validated is not None:
                settings[(str(conn.get("id")), role)] = validated
    if errors or config is None:
        raise ConfigError(_annotate(errors, overrides.origins))
    return LoadedConfig(config, settings, file)


def _plugin_settings(
    conn: Mapping[str, Any],
    index: int,
    role: str,
    registry: PlatformRegistry,
    base_dir: Path | None,
    allow_literal_secrets: bool,
) -> tuple[BaseModel | None, list[tuple[str, str]]]:
    """One connection's settings for one role, validated by its plugin, and its values
    checked against what the platform accepts."""
    platform = conn.get(role)
    if not isinstance(platform, Mapping) or not isinstance(platform.get("type"), str):
        return None, []  # reported by the core validation
    where = f"connections.{index}.{role}"
    try:
        spec = registry.get(platform["type"], role)  # type: ignore[arg-type]
    except KeyError as exc:
        return None, [(f"{where}.type", str(exc.args[0]))]
    values = platform.get("settings", {})
    if not isinstance(values, Mapping):
        return None, []  # reported by the core validation
    errors: list[tuple[str, str]] = []
    if allow_literal_secrets:
        raw: dict[str, Any] = dict(values)
    else:
        raw, errors = resolve_secrets(values, spec.settings_model, base_dir, f"{where}.settings")
    unresolved = {path for path, _ in errors}
    validated: BaseModel | None = None
    try:
        validated = spec.settings_model.model_validate(raw)
    except ValidationError as exc:
        problems = _errors(exc, (f"{where}.settings",))
        errors.extend(p for p in problems if not any(_under(p[0], u) for u in unresolved))
    errors.extend(_check_platform_values(conn, index, role, spec.connector))
    if errors or validated is None:
        return None, errors
    for value in validated.model_dump().values():
        if isinstance(value, SecretStr):
            GLOBAL_REDACTOR.add(value)
    return validated, []


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _check_platform_values(
    conn: Mapping[str, Any], index: int, role: str, connector: type
) -> list[tuple[str, str]]:
    """Values the platform must accept (raw values: a wrong type is a core error)."""
    defaults = ConnectionConfig.model_fields
    attribute = conn.get(
        "product_identification_attribute", defaults["product_identification_attribute"].default
    )
    reason = conn.get("cancellation_reason")
    service = conn.get("default_shipping_service")
    carrier_map = conn.get("carrier_map") or {}
    kind = conn[role]["type"]
    errors = []
    where = f"connections.{index}"
    if role == "shop" and issubclass(connector, ShopConnector) and isinstance(attribute, str):
        if not connector.accepts_attribute(attribute):
            known = ", ".join(sorted(connector.identification_attributes))
            errors.append(
                (
                    f"{where}.product_identification_attribute",
                    f"{kind} cannot match products by {attribute!r} (use one of: {known})",
                )
            )
    if role == "marketplace" and issubclass(connector, MarketplaceConnector):
        reasons = connector.cancellation_reasons
        if reasons and isinstance(reason, str) and reason not in reasons:
            errors.append(
                (
                    f"{where}.cancellation_reason",
                    f"{reason!r} is not a {kind} reason (use one of: {', '.join(sorted(reasons))})",
                )
            )
        carriers = connector.carrier_codes
        if carriers and isinstance(service, str) and service not in carriers:
            errors.append(
                (
                    f"{where}.default_shipping_service",
                    f"{service!r} is not a {kind} carrier code",
                )
            )
        if carriers and isinstance(carrier_map, Mapping):
            for shop_name, code in carrier_map.items():
                if isinstance(code, str) and code not in carriers:
                    errors.append(
                        (
                            f"{where}.carrier_map.{shop_name}",
                            f"{code!r} is not a {kind} carrier code",
                        )
                    )
    return errors
