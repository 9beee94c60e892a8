"""Validate HTTP exchanges against Amazon's Swagger 2.0 models (tests/contracts/amazon).

Independent of the plugin's own operation table: paths, parameters and schemas
come from the model files only. Object schemas are made strict (no properties
the model does not define) so neither side can drift into invented fields.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import jsonschema

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "amazon"
MODEL_FILES = (
    "orders_2026-01-01.json",
    "ordersV0.json",
    "feeds_2021-06-30.json",
    "listingsItems_2021-08-01.json",
    "sellers.json",
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / name).read_text("utf-8"))
    return data


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(_is_datetime)


def strict(schema: Any) -> Any:
    """Deep copy where object schemas with ``properties`` forbid other keys."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@dataclass
class Operation:
    model: str
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]
    parameters: list[dict[str, Any]]

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])


@dataclass
class Exchange:
    method: str
    url: httpx.URL
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    @property
    def raw_path(self) -> str:
        """The path as sent, percent-encoded (a SKU with ``/`` stays one segment)."""
        return self.url.raw_path.decode("ascii").split("?", 1)[0]


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request/response pair."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(
            Exchange(
                request.method,
                request.url,
                dict(request.headers),
                body,
                response.status_code,
                dict(response.headers),
                content,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


class Models:
    """All copied Swagger models, searchable by ``METHOD /path``."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self.definitions: dict[str, dict[str, Any]] = {}
        for name in MODEL_FILES:
            doc = load(name)
            self.definitions[name] = strict(doc.get("definitions", {}))
            for template, item in doc["paths"].items():
                shared = item.get("parameters", [])
                regex = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
                for method, spec in item.items():
                    if method == "parameters":
                        continue
                    params = list(shared) + list(spec.get("parameters", []))
                    self.operations.append(
                        Operation(name, method.upper(), template, re.compile(regex), spec, params)
                    )

    def find(self, method: str, path: str) -> Operation | None:
        """The operation of ``METHOD path``; ``path`` percent-encoded as sent."""
        for op in self.operations:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    def find_exchange(self, exchange: Exchange) -> Operation | None:
        return self.find(exchange.method, exchange.raw_path)

    def _validator(self, op: Operation, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
        root = {"allOf": [strict(schema)], "definitions": self.definitions[op.model]}
        return jsonschema.Draft4Validator(root, format_checker=FORMATS)

    def request_errors(self, op: Operation, exchange: Exchange) -> list[str]:
        errors: list[str] = []
        query = parse_qsl(urlsplit(str(exchange.url)).query, keep_blank_values=True)
        keys = [k for k, _ in query]
        declared = {p["name"]: p for p in op.parameters if p["in"] == "query"}
        for key in set(keys):
            if keys.count(key) > 1:
                errors.append(f"query parameter {key} repeated (arrays are csv)")
            if key not in declared:
                errors.append(f"query parameter {key} is not in the model")
        values = dict(query)
        for name, param in declared.items():
            if name not in values:
                if param.get("required"):
                    errors.append(f"required query parameter {name} missing")
                continue
            errors.extend(_param_errors(param, values[name]))
        for param in op.parameters:
            if param["in"] == "body":
                try:
                    body = json.loads(exchange.request_body)
                except ValueError:
                    errors.append("request body is not JSON")
                    continue
                validator = self._validator(op, param["schema"])
                errors.extend(f"body: {e.message}" for e in validator.iter_errors(body))
            if param["in"] == "path":
                segments = [unquote(s) for s in exchange.raw_path.split("/")]
                index = op.template.split("/").index("{" + param["name"] + "}")
                if index >= len(segments) or not segments[index]:
                    errors.append(f"path parameter {param['name']} empty")
        return errors

    def response_errors(self, op: Operation, exchange: Exchange) -> list[str]:
        responses = op.spec["responses"]
        spec = responses.get(str(exchange.status)) or responses.get("default")
        if spec is None:
            return [f"status {exchange.status} is not declared for {op.operation_id}"]
        schema = spec.get("schema")
        if schema is None:
            if exchange.response_body.strip():
                return [f"status {exchange.status} has no body in the model"]
            return []
        try:
            body = json.loads(exchange.response_body)
        except ValueError:
            return [f"response body is not JSON: {exchange.response_body[:80]!r}"]
        validator = self._validator(op, schema)
        return [f"response: {e.message}" for e in validator.iter_errors(body)]


def _param_errors(param: dict[str, Any], raw: str) -> list[str]:
    name = param["name"]
    kind = param.get("type")
    if kind == "array":
        if param.get("collectionFormat", "csv") != "csv":
            return [f"{name}: unexpected collectionFormat"]
        items = raw.split(",")
        errors = []
        if "maxItems" in param and len(items) > param["maxItems"]:
            errors.append(f"{name}: more than {param['maxItems']} items")
        if "minItems" in param and len(items) < param["minItems"]:
            errors.append(f"{name}: fewer than {param['minItems']} items")
        for item in items:
            errors.extend(_param_errors({"name": name, **param["items"]}, item))
        return errors
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", raw):
            return [f"{name}: {raw!r} is not an integer"]
        value = int(raw)
        if "minimum" in param and value < param["minimum"]:
            return [f"{name}: below minimum"]
        if "maximum" in param and value > param["maximum"]:
            return [f"{name}: above maximum"]
        return []
    if kind == "boolean":
        return [] if raw in ("true", "false") else [f"{name}: {raw!r} is not a boolean"]
    if "enum" in param and raw not in param["enum"]:
        return [f"{name}: {raw!r} not in {param['enum']}"]
    if param.get("format") == "date-time" and not _is_datetime(raw):
        return [f"{name}: {raw!r} is not an ISO 8601 date-time with an offset"]
    if not raw:
        return [f"{name}: empty"]
    return []


def listings_feed_errors(document: Any) -> list[str]:
    schema = copy.deepcopy(load("listings-feed-schema-v2.json"))
    validator = jsonschema.Draft7Validator(schema)
    return [e.message for e in validator.iter_errors(document)]


def listings_report_errors(document: Any) -> list[str]:
    schema = load("listings-feed-processing-report-schema-v2.json")
    validator = jsonschema.Draft7Validator(schema)
    return [e.message for e in validator.iter_errors(document)]


def model_example_orders() -> list[tuple[str, dict[str, Any]]]:
    """Every order in the v2026 model: response ``examples`` and sandbox responses."""
    doc = load("orders_2026-01-01.json")
    found: list[tuple[str, dict[str, Any]]] = []
    for item in doc["paths"].values():
        for spec in item.values():
            response = spec["responses"]["200"]
            bodies = [("example", response.get("examples", {}).get("application/json", {}))]
            for n, case in enumerate(response.get("x-amzn-api-sandbox", {}).get("static", [])):
                bodies.append((f"sandbox{n}", case["response"]))
            for label, body in bodies:
                orders = body.get("orders") or ([body["order"]] if "order" in body else [])
                for order in orders:
                    found.append((f"{spec['operationId']}-{label}-{order['orderId']}", order))
    return found
