"""Validate HTTP exchanges against the Magento 2.4.9 admin schema (Swagger 2.0).

Paths, parameters and schemas come only from ``tests/contracts/magento``. Object
schemas with ``properties`` are made strict (no undeclared keys), so neither the
plugin nor the simulator can drift into invented field names.

Two readings of the schema are spelled out here:

- searchCriteria parameters are documented once, with index 0
  (``searchCriteria[filterGroups][0][filters][0][field]``); any index matches them.
- A void service method has no 2xx response in the schema; its body must be empty,
  ``null`` or ``[]`` (what Magento returns for ``void``).
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jsonschema
import yaml

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "magento"
SCHEMA_FILE = CONTRACTS / "admin-schema-2.4.9.yaml"
CACHE_FILE = CONTRACTS / "admin-schema-2.4.9.json.gz"
_PREFIX = re.compile(r"^/rest(?:/(?!V1/)[^/]+)?(/V1/.*)$")
_INDEX = re.compile(r"\[(filterGroups|filters|sortOrders)\]\[\d+\]")


def source_digest() -> str:
    return hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()


def parse_yaml() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SCHEMA_FILE.open("rb") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    return data


def write_cache() -> None:
    """Parse the YAML once and store it as gzipped JSON beside it (about 1 s → 50 ms)."""
    payload = {"source_sha256": source_digest(), "schema": parse_yaml()}
    with gzip.open(CACHE_FILE, "wt", encoding="utf-8") as fh:
        json.dump(payload, fh, separators=(",", ":"), sort_keys=True)


@functools.cache
def schema() -> dict[str, Any]:
    """The parsed schema, from the JSON cache when it matches the YAML byte for byte."""
    if CACHE_FILE.exists():
        with gzip.open(CACHE_FILE, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        if payload.get("source_sha256") == source_digest():
            return payload["schema"]  # type: ignore[no-any-return]
    return parse_yaml()


def strict(node: Any) -> Any:
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def definitions() -> dict[str, Any]:
    return strict(copy.deepcopy(schema()["definitions"]))  # type: ignore[no-any-return]


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in schema()["paths"]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        out.append((re.compile(f"^{pattern}$"), template))
    # Literal segments win over parameters: /V1/orders/create before /V1/orders/{id}.
    out.sort(key=lambda item: item[1].count("{"))
    return out


@dataclass
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    path_params: dict[str, str]


def operation(method: str, path: str) -> Operation:
    match = _PREFIX.match(path)
    if not match:
        raise AssertionError(f"{path} is not under /rest[/store]/V1")
    v1 = match.group(1)
    for pattern, template in _templates():
        found = pattern.match(v1)
        if found and method.lower() in schema()["paths"][template]:
            spec = schema()["paths"][template][method.lower()]
            return Operation(template, method.upper(), spec, found.groupdict())
    raise AssertionError(f"{method} {v1} is not an operation of the 2.4.9 schema")


def _errors(instance: Any, subschema: dict[str, Any]) -> list[str]:
    root = {"definitions": definitions(), "allOf": [strict(subschema)]}
    validator = jsonschema.Draft4Validator(root)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(instance)
    ]


def _check_scalar(name: str, kind: str | None, value: str) -> list[str]:
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return [f"{name}={value!r} is not an integer"]
    if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        return [f"{name}={value!r} is not a number"]
    return []


def request_errors(request: httpx.Request) -> list[str]:
    op = operation(request.method, request.url.path)
    params = op.spec.get("parameters") or []
    where = f"{op.method} {op.template}"
    errors = []
    for p in params:
        if p["in"] == "path":
            errors += _check_scalar(p["name"], p.get("type"), op.path_params[p["name"]])
    query = {p["name"]: p for p in params if p["in"] == "query"}
    for name, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
        spec = query.get(_INDEX.sub(lambda m: f"[{m.group(1)}][0]", name))
        if spec is None:
            errors.append(f"query parameter {name!r} is not in the schema")
        else:
            errors += _check_scalar(name, spec.get("type"), value)
    body = [p for p in params if p["in"] == "body"]
    if request.content:
        if not body:
            errors.append("sends a body the operation does not take")
        else:
            errors += _errors(json.loads(request.content), body[0]["schema"])
    elif body and body[0]["schema"].get("required"):
        errors.append("misses the required body")
    return [f"{where}: {e}" for e in errors]


def response_errors(request: httpx.Request, status: int, content: bytes) -> list[str]:
    op = operation(request.method, request.url.path)
    responses = op.spec["responses"]
    where = f"{op.method} {op.template} -> {status}"
    documented_2xx = [code for code in responses if code.startswith("2")]
    spec = responses.get(str(status))
    if spec is None and 200 <= status < 300 and not documented_2xx:
        body = json.loads(content) if content else None
        return [] if body in (None, []) else [f"{where}: void operation answered {body!r}"]
    spec = spec or responses.get("default")
    if spec is None:
        return [f"{where}: status not in the schema"]
    if "schema" not in spec:
        return []
    try:
        body = json.loads(content)
    except ValueError:
        return [f"{where}: body is not JSON"]
    return [f"{where}: {e}" for e in _errors(body, spec["schema"])]


@dataclass
class Exchange:
    request: httpx.Request
    status: int
    content: bytes

    @property
    def operation(self) -> str:
        op = operation(self.request.method, self.request.url.path)
        return f"{op.method} {op.template}"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests on and keeps each request with its answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(Exchange(request, response.status_code, content))
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


if __name__ == "__main__":
    write_cache()
