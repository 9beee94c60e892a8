"""The copied WooCommerce docs as request rules and response JSON schemas.

Requests: a route and method must be in the documented index (or ``extra-routes.json``);
query arguments in the route's index ``args`` or in the ``.md`` "Available parameters"
table, with the documented type and enum; body properties in the index ``args`` (nested
``items.properties``; billing/shipping from the ``.md`` property tables), never ``readonly``.

Responses: a schema derived from the documented "JSON response example" (every example key
required, its JSON type allowed) merged with the property tables (documented type allowed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "contracts" / "woocommerce"
DATE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
TABLE_TYPES: dict[str, list[str]] = {
    "integer": ["integer"],
    "number": ["number"],
    "string": ["string"],
    "boolean": ["boolean"],
    "array": ["array"],
    # WordPress answers null for an absent sub-object (a variation without image).
    "object": ["object", "null"],
    "date-time": ["string", "null"],
}
LIST_PARAMETERS = {
    ("wp-api-v3_orders.md", "List all orders"): ("GET", "/wc/v3/orders"),
    ("wp-api-v3_products.md", "List all products"): ("GET", "/wc/v3/products"),
    ("wp-api-v3_product-variations.md", "List all product variations"): (
        "GET",
        r"/wc/v3/products/(?P<product_id>[\d]+)/variations",
    ),
}
ORDER_OBJECTS = {"billing": "Order - Billing properties", "shipping": "Order - Shipping properties"}
RESOURCES = {
    "order": ("wp-api-v3_orders.md", "Order", "Retrieve an order"),
    "product": ("wp-api-v3_products.md", "Product", "Retrieve a product"),
    "variation": (
        "wp-api-v3_product-variations.md",
        "Product variation",
        "Retrieve a product variation",
    ),
}


def _read(name: str) -> str:
    return (DOCS / name).read_text()


# --- markdown -----------------------------------------------------------------------------


def _sections(text: str) -> dict[str, str]:
    """``## Heading ##`` / ``### Heading ###`` → the text up to the next heading of any level
    (for level-2 headings: up to the next level-2 heading)."""
    out: dict[str, str] = {}
    heads = list(re.finditer(r"^(#{2,4}) (.+?)(?: #+)?$", text, re.M))
    for i, match in enumerate(heads):
        level = len(match.group(1))
        end = len(text)
        for nxt in heads[i + 1 :]:
            if len(nxt.group(1)) <= level:
                end = nxt.start()
                break
        out.setdefault(match.group(2).strip(), text[match.end() : end])
    return out


def _table(block: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*([\w-]+)\s*\|(.*)\|\s*$", block, re.M)
    return {name: (kind.strip(), desc.strip()) for name, kind, desc in rows}


def _first_table(block: str) -> dict[str, tuple[str, str]]:
    """The first table of a section (before any nested heading)."""
    cut = re.search(r"^#{2,4} ", block, re.M)
    return _table(block[: cut.start()] if cut else block)


def _options(description: str) -> list[str] | None:
    found = re.search(r"Options: (.*?)\.(?:\s|$)", description)
    return re.findall(r"`([^`]+)`", found.group(1)) if found else None


@cache
def tables(doc: str) -> dict[str, dict[str, tuple[str, str]]]:
    return {title: _first_table(body) for title, body in _sections(_read(doc)).items()}


def _examples(block: str) -> list[Any]:
    blocks = re.findall(r"> JSON response example:\s*```json\n(.*?)```", block, re.S)
    return [json.loads(b) for b in blocks]


# --- requests -----------------------------------------------------------------------------


@dataclass
class Endpoint:
    route: str
    methods: frozenset[str]
    args: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Argument name → every documented schema for it (index, .md table)."""

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.route)


@cache
def endpoints() -> list[Endpoint]:
    index = json.loads(_read("wc-v3-index.example.json"))
    extra = json.loads(_read("extra-routes.json"))
    out: list[Endpoint] = []
    for source in (index, extra):
        for route, spec in source["routes"].items():
            for ep in spec["endpoints"]:
                args = ep.get("args") if isinstance(ep.get("args"), dict) else {}
                out.append(
                    Endpoint(route, frozenset(ep["methods"]), {k: [v] for k, v in args.items()})
                )
    for (doc, heading), (method, route) in LIST_PARAMETERS.items():
        block = _sections(_read(doc))[heading]
        params = _table(_sections(block)["Available parameters"])
        ep = next(e for e in out if e.route == route and method in e.methods)
        for name, (kind, desc) in params.items():
            schema: dict[str, Any] = {"type": kind}
            if _options(desc):
                schema["enum"] = _options(desc)
            ep.args.setdefault(name, []).append(schema)
    auth = _read("wp-api-v3_authentication.md")
    assert "consumer_key=" in auth and "consumer_secret=" in auth  # documented query auth
    return out


def find_endpoint(method: str, path: str) -> Endpoint | None:
    for ep in endpoints():
        if method in ep.methods and ep.pattern.fullmatch(path):
            return ep
    return None


def _query_value_ok(value: str, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        return all(
            _query_value_ok(v, {**items, **({"enum": schema["enum"]} if "enum" in schema else {})})
            for v in value.split(",")
        )
    if "enum" in schema and value not in schema["enum"]:
        return False
    if kind == "integer":
        return re.fullmatch(r"-?\d+", value) is not None
    if kind == "boolean":
        return value in ("true", "false", "1", "0")
    return True


def check_request(method: str, path: str, query: list[tuple[str, str]], body: Any) -> list[str]:
    """Every way a request strays from the docs; empty when it keeps to them."""
    where = f"{method} {path}"
    ep = find_endpoint(method, path)
    if ep is None:
        return [f"{where}: undocumented route or method"]
    errors = []
    for name, value in query:
        if name in ("consumer_key", "consumer_secret"):
            continue
        schemas = ep.args.get(name)
        if not schemas:
            errors.append(f"{where}: undocumented query argument {name!r}")
        elif not any(_query_value_ok(value, s) for s in schemas):
            errors.append(f"{where}: {name}={value!r} does not match {schemas}")
    if body is not None:
        errors += _check_body(ep, body, where)
    return errors


def _body_schema(ep: Endpoint, skip: set[str]) -> dict[str, Any]:
    props = {}
    for name, schemas in ep.args.items():
        if name in skip:
            continue
        schema = dict(schemas[0])
        if name in ORDER_OBJECTS and "/orders" in ep.route:
            table = tables("wp-api-v3_orders.md")[ORDER_OBJECTS[name]]
            schema["properties"] = {k: {"type": TABLE_TYPES[t][0]} for k, (t, _) in table.items()}
        props[name] = schema
    return {"type": "object", "properties": props}


def _check_body(ep: Endpoint, body: Any, where: str) -> list[str]:
    path_params = set(re.findall(r"\?P<(\w+)>", ep.route))
    errors: list[str] = []
    if not ep.route.endswith("/batch"):
        check_json(body, _body_schema(ep, path_params), "body", errors)
        return [f"{where}: {e}" for e in errors]
    if not isinstance(body, dict) or set(body) - {"create", "update", "delete"}:
        return [f"{where}: a batch body holds only create/update/delete"]
    collection = ep.route.removesuffix("/batch")
    create = find_endpoint("POST", collection.replace(r"(?P<product_id>[\d]+)", "1"))
    item = next(
        e for e in endpoints() if e.route == collection + r"/(?P<id>[\d]+)" and "PUT" in e.methods
    )
    for n, entry in enumerate(body.get("create") or []):
        check_json(entry, _body_schema(create, path_params), f"create[{n}]", errors)  # type: ignore[arg-type]
    for n, entry in enumerate(body.get("update") or []):
        check_json(entry, _body_schema(item, path_params - {"id"}), f"update[{n}]", errors)
    for n, entry in enumerate(body.get("delete") or []):
        if not isinstance(entry, int):
            errors.append(f"delete[{n}]: expected an integer id")
    return [f"{where}: {e}" for e in errors]


_PY = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def check_json(value: Any, schema: dict[str, Any], where: str, errors: list[str]) -> None:
    """A request body against index arg schemas: types, enums, known and writable keys."""
    if schema.get("readonly"):
        errors.append(f"{where}: read-only property sent")
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if kinds and not any(_PY[k](value) for k in kinds):
        errors.append(f"{where}: {type(value).__name__} where {kinds} is documented")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of the documented values")
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in value.items():
            if key not in schema["properties"]:
                errors.append(f"{where}.{key}: undocumented property")
            else:
                check_json(sub, schema["properties"][key], f"{where}.{key}", errors)
    if isinstance(value, list) and "items" in schema:
        for n, sub in enumerate(value):
            check_json(sub, schema["items"], f"{where}[{n}]", errors)


# --- responses ----------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    return next(
        k
        for k in ("null", "boolean", "integer", "number", "string", "array", "object")
        if _PY[k](value)
    )


def derive(example: Any, table: dict[str, tuple[str, str]], nested: Any) -> dict[str, Any]:
    """A JSON schema from a documented example object and its property table."""
    example = example if isinstance(example, dict) else {}
    props: dict[str, Any] = {}
    for name in sorted(set(table) | set(example)):
        kinds: set[str] = set()
        if name in table:
            kinds.update(TABLE_TYPES.get(table[name][0], []))
        if name in example:
            kind = _json_type(example[name])
            if kind == "integer" and name in table and table[name][0] != "integer":
                kind = "number"  # e.g. a line's ``price``: the example's 12 stands for 12.6
            kinds.add(kind)
        schema: dict[str, Any] = {"type": sorted(kinds)} if kinds - {"null"} else {}
        sub_table = nested(name)
        value = example.get(name)
        if "array" in kinds:
            first = value[0] if isinstance(value, list) and value else None
            if isinstance(first, dict) or sub_table:
                schema["items"] = derive(first, sub_table or {}, nested)
            elif first is not None:
                schema["items"] = {"type": _json_type(first)}
        if "object" in kinds and (isinstance(value, dict) or sub_table):
            schema.update(
                {k: v for k, v in derive(value, sub_table or {}, nested).items() if k != "type"}
            )
        if name.startswith("date_") and "string" in kinds:
            schema["pattern"] = DATE
        props[name] = schema
    return {"type": "object", "properties": props, "required": sorted(example)}


def _relax_meta_values(schema: dict[str, Any]) -> None:
    """Meta ``value`` is documented as a string, but a serialised PHP array comes back as
    JSON (e.g. ``_wc_shipment_tracking_items``): any JSON value is accepted."""
    for name, sub in schema.get("properties", {}).items():
        if name == "meta_data" and "items" in sub:
            sub["items"]["properties"]["value"] = {}
        _relax_meta_values(sub)
        if "items" in sub:
            _relax_meta_values(sub["items"])


@cache
def resource_schema(resource: str) -> dict[str, Any]:
    doc, prefix, heading = RESOURCES[resource]
    all_tables = tables(doc)
    example = _examples(_sections(_read(doc))[heading])[0]

    def nested(name: str) -> dict[str, tuple[str, str]] | None:
        return all_tables.get(f"{prefix} - {name.replace('_', ' ').capitalize()} properties")

    schema = derive(example, all_tables[f"{prefix} properties"], nested)
    _relax_meta_values(schema)
    if resource == "order":
        status = all_tables["Order properties"]["status"][1]
        schema["properties"]["status"]["enum"] = _options(status)
    return schema


@cache
def error_schema() -> dict[str, Any]:
    text = _read("wp-api-v3_introduction.md")
    block = re.search(r"> WP REST API error example:\s*```json\n(.*?)```", text, re.S)
    assert block is not None
    return derive(json.loads(block.group(1)), {}, lambda name: None)


def response_validator(method: str, path: str, status: int) -> Any:
    """A (cached) validator for the documented schema of an answer, or ``None`` when
    neither the copied docs nor ``extra-routes.json`` describe it."""
    if status >= 400:
        return _validator("error", False)
    if re.fullmatch(r"/wc/v3/orders/\d+/fulfillments", path):
        return _validator("fulfillments", True)
    if f"{method} {path}" in json.loads(_read("extra-routes.json"))["responses"]:
        return _validator(f"{method} {path}", False)
    routes = [
        (r"/wc/v3/(orders|products)/batch", "batch"),
        (r"/wc/v3/orders(/\d+)?", "order"),
        (r"/wc/v3/products/\d+/variations(/\d+)?", "variation"),
        (r"/wc/v3/products(/\d+)?", "product"),
    ]
    for pattern, resource in routes:
        match = re.fullmatch(pattern, path)
        if match and resource == "batch":
            return _validator(f"batch-{match.group(1)}", False)
        if match:
            return _validator(resource, method == "GET" and match.group(1) is None)
    return None


@cache
def _validator(kind: str, is_list: bool) -> Any:
    import jsonschema

    if kind == "error":
        schema = error_schema()
    elif kind == "fulfillments":
        schema = next(iter(json.loads(_read("extra-routes.json"))["routes"].values()))["response"]
    elif " " in kind:  # "METHOD path": a minimal schema of ours
        schema = json.loads(_read("extra-routes.json"))["responses"][kind]
    elif kind.startswith("batch-"):
        item = resource_schema("order" if kind == "batch-orders" else "product")
        error = {
            "type": "object",
            "required": ["id", "error"],
            "properties": {"error": error_schema()},
        }
        entry = {"type": "array", "items": {"anyOf": [error, item]}}
        schema = {
            "type": "object",
            "properties": {k: entry for k in ("create", "update", "delete")},
        }
    else:
        schema = resource_schema(kind)
        if is_list:
            schema = {"type": "array", "items": schema}
    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    return validator(schema)
