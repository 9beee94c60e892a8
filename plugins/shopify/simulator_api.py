"""The simulator's GraphQL endpoint: validation, cost and throttling, root fields, bulk jobs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)

from engine.testing.clock import ScaledClock
from engine.testing.ratelimit import TokenBucket
from plugins.shopify.cost import MAX_SINGLE_QUERY_COST, requested_cost
from plugins.shopify.simulator_records import BulkOperation, UserError, gid, parse_gid
from plugins.shopify.simulator_schema import (
    Views,
    connection,
    field_resolver,
    filtered,
    load_schema,
    type_resolver,
)
from plugins.shopify.simulator_search import words
from plugins.shopify.simulator_state import ShopState

THROTTLE_DOCS = "https://shopify.dev/api/usage/rate-limits"
_SOURCE_TERM = r'source_identifier:"((?:[^"\\]|\\.)*)"'
_SOURCE_ONLY = re.compile(rf"{_SOURCE_TERM}(?: OR {_SOURCE_TERM})*")
"""A query of quoted ``source_identifier`` terms joined by ``OR`` (an index lookup)."""
_SOURCE_TERMS = re.compile(_SOURCE_TERM)
MAX_NODES = 250


@dataclass
class CostLimiter:
    """Shopify's leaky bucket: requested cost up front, refund of the unused part after."""

    clock: ScaledClock
    maximum: float = 2000.0
    restore_rate: float = 100.0
    enabled: bool = True
    bucket: TokenBucket = field(init=False)
    throttled: int = 0

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(rate=self.restore_rate, burst=self.maximum)

    def take(self, cost: float) -> bool:
        if not self.enabled:
            return True
        if self.bucket.take(self.clock.now(), cost):
            return True
        self.throttled += 1
        return False

    def refund(self, points: float) -> None:
        if self.enabled and points > 0:
            self.bucket.tokens = min(self.maximum, self.bucket.tokens + points)

    def configure(self, maximum: float | None = None, restore_rate: float | None = None) -> None:
        self.bucket.take(self.clock.now(), 0)
        if maximum is not None:
            self.maximum = self.bucket.burst = maximum
            self.bucket.tokens = min(self.bucket.tokens, maximum)
        if restore_rate is not None:
            self.restore_rate = self.bucket.rate = restore_rate

    def set_available(self, points: float) -> None:
        self.bucket.take(self.clock.now(), 0)
        self.bucket.tokens = max(0.0, min(self.maximum, points))

    def status(self) -> dict[str, float]:
        if self.enabled:
            self.bucket.take(self.clock.now(), 0)
        available = self.bucket.tokens if self.enabled else self.maximum
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(available, 1),
            "restoreRate": self.restore_rate,
        }


def _format(error: GraphQLError) -> dict[str, Any]:
    return error.formatted  # type: ignore[return-value]


def actual_cost(data: Any) -> int:
    """Objects actually returned (Shopify refunds requested − actual)."""
    if isinstance(data, dict):
        return 1 + sum(actual_cost(v) for v in data.values())
    if isinstance(data, list):
        return sum(actual_cost(v) for v in data)
    return 0


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        operations = [o for o in operations if o.name and o.name.value == name]
    return operations[0] if len(operations) == 1 or (name and operations) else None


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("edges", value.get("nodes")), list)


def _connection_nodes(value: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(value.get("edges"), list):
        return [e["node"] for e in value["edges"] if isinstance(e, dict) and e.get("node")]
    return [n for n in value.get("nodes") or [] if n]


def flatten_bulk(data: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """JSONL rows as Shopify writes them: nested connections become rows with ``__parentId``."""
    rows: list[dict[str, Any]] = []

    def walk(connection: dict[str, Any], parent: str | None) -> int:
        nodes = _connection_nodes(connection)
        for node in nodes:
            row = {k: v for k, v in node.items() if not _is_connection(v)}
            if parent is not None:
                row["__parentId"] = parent
            rows.append(row)
            for value in node.values():
                if _is_connection(value):
                    walk(value, node.get("id"))
        return len(nodes)

    roots = sum(walk(v, None) for v in data.values() if _is_connection(v))
    return rows, roots


class GraphQLAPI:
    """Executes Admin API requests against a :class:`ShopState`."""

    def __init__(
        self,
        state: ShopState,
        limiter: CostLimiter,
        bulk_seconds: float = 2.0,
        job_seconds: float = 0.0,
        search_lag: float = 0.0,
    ) -> None:
        self.state = state
        self.limiter = limiter
        self.views = Views(state)
        self.schema = load_schema()
        self.bulk_seconds = bulk_seconds
        self.job_seconds = job_seconds
        self.search_lag = search_lag
        """Seconds before a new order shows in ``orders(query:)`` searches (Shopify's index
        is updated asynchronously); listings without ``query`` read it at once."""
        self.jobs: dict[str, float] = {}
        self.requests = 0
        self._documents: dict[str, tuple[DocumentNode, list[GraphQLError]]] = {}

    # --- request handling -------------------------------------------------------------------

    def _checked(self, query: str) -> tuple[DocumentNode, list[GraphQLError]]:
        """Parse and validate a document once: clients send the same few documents with
        new variables, and validating against the Admin schema costs milliseconds."""
        found = self._documents.get(query)
        if found is None:
            document = parse(query)
            found = (document, validate(self.schema, document))
            if len(self._documents) >= 512:
                self._documents.clear()
            self._documents[query] = found
        return found

    def cost_extension(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.limiter.status(),
            }
        }

    def handle(self, body: Any, base_url: str) -> dict[str, Any]:
        """One GraphQL request body → the JSON answer (always HTTP 200)."""
        self.requests += 1
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"errors": [{"message": "No query string was present"}]}
        try:
            document, errors = self._checked(body["query"])
        except GraphQLSyntaxError as exc:
            return {"errors": [_format(exc)]}
        if errors:
            return {"errors": [_format(e) for e in errors]}
        variables = body.get("variables") or {}
        name = body.get("operationName")
        operation = _operation(document, name)
        requested = requested_cost(document, variables, name)
        if requested > MAX_SINGLE_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query max cost "
                        f"limit ({MAX_SINGLE_QUERY_COST}).",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": MAX_SINGLE_QUERY_COST,
                        },
                    }
                ],
                "extensions": self.cost_extension(requested, None),
            }
        with self.state.lock:
            if not self.limiter.take(requested):
                return {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOCS},
                        }
                    ],
                    "extensions": self.cost_extension(requested, None),
                }
            is_mutation = operation is not None and operation.operation == OperationType.MUTATION
            result = execute(
                self.schema,
                document,
                root_value=self.mutation_root() if is_mutation else self.query_root(),
                context_value={"base_url": base_url},
                variable_values=variables,
                operation_name=name,
                field_resolver=field_resolver,
                type_resolver=type_resolver,
            )
        actual = requested if is_mutation else min(requested, actual_cost(result.data))  # type: ignore[union-attr]
        self.limiter.refund(requested - actual)
        answer: dict[str, Any] = {}
        if result.errors:  # type: ignore[union-attr]
            answer["errors"] = [_format(e) for e in result.errors]  # type: ignore[union-attr]
        if result.data is not None or not result.errors:  # type: ignore[union-attr]
            answer["data"] = result.data  # type: ignore[union-attr]
        answer["extensions"] = self.cost_extension(requested, actual)
        return answer

    # --- root fields --------------------------------------------------------------------------

    def query_root(self) -> dict[str, Any]:
        s, v = self.state, self.views

        def by_gid(
            table: dict[int, Any], kind: str, view: Callable[[Any], Any]
        ) -> Callable[..., Any]:
            def resolve(info: GraphQLResolveInfo, id: str | None = None) -> Any:  # noqa: A002
                record = table.get(parse_gid(id, kind) or -1)
                return view(record) if record is not None else None

            return resolve

        def listing(
            rows: Callable[[], list[Any]],
            fields: Callable[[], dict[str, Any]],
            default: Callable[[Any], list[Any]],
            view: Callable[[Any], Any],
            sort: Callable[[str | None], Callable[[Any], Any]] | None = None,
            candidates: Callable[[str | None], list[Any] | None] | None = None,
            indexed: Callable[[Any], bool] | None = None,
        ) -> Callable[..., Any]:
            def resolve(
                info: GraphQLResolveInfo,
                query: str | None = None,
                sortKey: str | None = None,  # noqa: N803
                savedSearchId: str | None = None,
                **args: Any,
            ) -> Any:  # noqa: N803
                narrowed = candidates(query) if candidates else None
                found = filtered(rows() if narrowed is None else narrowed, query, fields(), default)
                if indexed is not None and query and query.strip():
                    found = [row for row in found if indexed(row)]
                key = sort(sortKey) if sort else (lambda r: r.id)
                return connection(info, found, view, key=key, **args)

            return resolve

        def order_sort(sort_key: str | None) -> Callable[[Any], Any]:
            attr = {
                "CREATED_AT": "created_at",
                "UPDATED_AT": "updated_at",
                "PROCESSED_AT": "processed_at",
            }.get(sort_key or "")
            if attr is None:
                return lambda o: o.id
            return lambda o: [getattr(o, attr).isoformat(), o.id]

        def by_source(query: str | None) -> list[Any] | None:
            """The orders ``source_identifier:"X" OR ...`` can match (index lookups).

            The full search still filters them; this only narrows the scan."""
            text = (query or "").strip()
            if _SOURCE_ONLY.fullmatch(text) is None:
                return None
            ids: set[int] = set()
            for value in _SOURCE_TERMS.findall(text):
                parts = words(re.sub(r"\\(.)", r"\1", value))
                if value.endswith("*") or not parts:
                    return None
                # Every word of the value must start a word of the order's: the rarest
                # word's orders are enough to search.
                ids.update(s.source_words.narrowest(parts))
            return [s.orders[i] for i in sorted(ids)]

        def count(
            rows: Callable[[], list[Any]], fields: Callable[[], dict[str, Any]]
        ) -> Callable[..., Any]:
            def resolve(
                info: GraphQLResolveInfo, query: str | None = None, **_: Any
            ) -> dict[str, Any]:
                return {
                    "count": len(filtered(rows(), query, fields(), lambda r: [])),
                    "precision": "EXACT",
                }

            return resolve

        def current_bulk(info: GraphQLResolveInfo, type: str = "QUERY") -> Any:  # noqa: A002
            if type != "QUERY" or not s.bulk_operations:
                return None
            return v.bulk_operation(
                self._refresh_bulk(max(s.bulk_operations.values(), key=lambda o: o.id))
            )

        def node(info: GraphQLResolveInfo, id: str) -> Any:  # noqa: A002
            self._refresh_bulk_ref(id)
            return v.node(id)

        def nodes(info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
            if len(ids) > MAX_NODES:
                raise GraphQLError(f"The ids argument accepts at most {MAX_NODES} ids")
            for ref in ids:
                self._refresh_bulk_ref(ref)
            return [v.node(ref) for ref in ids]

        return {
            "shop": lambda info: v.shop(),
            "location": lambda info, id=None: (  # noqa: A006
                v.location(s.locations[parse_gid(id, "Location") or -1])
                if (parse_gid(id, "Location") or -1) in s.locations
                else (v.location(s.default_location()) if id is None else None)
            ),
            "locations": listing(
                lambda: list(s.locations.values()),
                lambda: {
                    "name": lambda loc: loc.name,
                    "id": lambda loc: loc.id,
                    "active": lambda loc: loc.active,
                },
                lambda loc: [loc.name],
                v.location,
            ),
            "locationsCount": count(lambda: list(s.locations.values()), lambda: {}),
            "productVariant": by_gid(s.variants, "ProductVariant", v.variant),
            "productVariants": listing(
                lambda: list(s.variants.values()),
                v.variant_fields,
                lambda var: [var.sku, var.barcode, var.title],
                v.variant,
            ),
            "productVariantsCount": count(lambda: list(s.variants.values()), v.variant_fields),
            "product": by_gid(s.products, "Product", v.product),
            "inventoryItem": by_gid(s.items, "InventoryItem", v.item),
            "inventoryItems": listing(
                lambda: list(s.items.values()),
                v.item_fields,
                lambda i: [s.variants[i.variant_id].sku],
                v.item,
            ),
            "order": by_gid(s.orders, "Order", v.order),
            "orders": listing(
                lambda: list(s.orders.values()),
                v.order_fields,
                lambda o: [o.name, o.email, o.source_identifier],
                v.order,
                order_sort,
                by_source,
                lambda o: s.searchable(o, self.search_lag),
            ),
            "ordersCount": count(lambda: list(s.orders.values()), v.order_fields),
            "fulfillment": by_gid(s.fulfillments, "Fulfillment", v.fulfillment),
            "currentBulkOperation": current_bulk,
            "job": self.job,
            "node": node,
            "nodes": nodes,
        }

    def mutation_root(self) -> dict[str, Any]:
        s, v = self.state, self.views

        def errors(exc: UserError) -> list[dict[str, Any]]:
            return [{"field": exc.field, "message": exc.message, "code": exc.code}]

        def order_create(
            info: GraphQLResolveInfo, order: dict[str, Any], options: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            try:
                created = s.create_order(order, options)
            except UserError as exc:
                return {"order": None, "userErrors": errors(exc)}
            return {"order": v.order(created), "userErrors": []}

        def order_cancel(
            info: GraphQLResolveInfo,
            orderId: str,
            reason: str,
            refund: bool,  # noqa: N803
            restock: bool,
            notifyCustomer: bool | None = None,  # noqa: N803
            staffNote: str | None = None,
        ) -> dict[str, Any]:  # noqa: N803
            try:
                s.cancel_order(
                    orderId,
                    reason=reason,
                    restock=restock,
                    refund=refund,
                    staff_note=staffNote,
                    notify_customer=bool(notifyCustomer),
                )
            except UserError as exc:
                found = errors(exc)
                return {
                    "job": None,
                    "orderCancelUserErrors": found,
                    "userErrors": [{"field": e["field"], "message": e["message"]} for e in found],
                }
            job = gid("Job", s.new_id("Job"))
            self.jobs[job] = s.clock.now() + self.job_seconds
            return {"job": self.job(info, job), "orderCancelUserErrors": [], "userErrors": []}

        def bulk_run(info: GraphQLResolveInfo, query: str) -> dict[str, Any]:
            try:
                operation = self.start_bulk(query, info.context["base_url"])
            except UserError as exc:
                return {"bulkOperation": None, "userErrors": errors(exc)}
            return {"bulkOperation": v.bulk_operation(operation), "userErrors": []}

        return {
            "orderCreate": order_create,
            "orderCancel": order_cancel,
            "bulkOperationRunQuery": bulk_run,
        }

    def job(self, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:  # noqa: A002
        ready = self.jobs.get(id)
        if ready is None:
            return None
        return {"id": id, "done": self.state.clock.now() >= ready, "query": None}

    # --- bulk operations ------------------------------------------------------------------------

    def start_bulk(self, query: str, base_url: str) -> BulkOperation:
        s = self.state
        running = [op for op in s.bulk_operations.values() if op.completed_at is None]
        for op in running:
            self._refresh_bulk(op)
        if any(op.completed_at is None for op in running):
            raise UserError(
                None,
                "A bulk query operation for this app and shop is already in progress: "
                f"{gid('BulkOperation', running[0].id)}.",
                "OPERATION_IN_PROGRESS",
            )
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            raise UserError(["query"], f"Invalid bulk query: {exc.message}") from None
        problems = validate(self.schema, document)
        if problems:
            raise UserError(["query"], f"Invalid bulk query: {problems[0].message}")
        result = execute(
            self.schema,
            document,
            root_value=self.query_root(),
            context_value={"bulk": True, "base_url": base_url},
            field_resolver=field_resolver,
            type_resolver=type_resolver,
        )
        if result.errors or not result.data:  # type: ignore[union-attr]
            message = result.errors[0].message if result.errors else "no data"  # type: ignore[union-attr]
            raise UserError(["query"], f"Invalid bulk query: {message}")
        rows, roots = flatten_bulk(result.data)  # type: ignore[union-attr]
        if not any(_is_connection(value) for value in result.data.values()):  # type: ignore[union-attr]
            raise UserError(["query"], "Bulk queries must contain at least one connection.")
        number = s.new_id("BulkOperation")
        operation = BulkOperation(
            id=number,
            query=query,
            created_at=s.now(),
            ready_at=s.clock.now() + self.bulk_seconds,
            lines=rows,
            root_count=roots,
            url=f"{base_url}/bulk-results/{number}.jsonl",
        )
        s.bulk_operations[number] = operation
        return operation

    def _refresh_bulk(self, operation: BulkOperation) -> BulkOperation:
        if operation.completed_at is None and self.state.clock.now() >= operation.ready_at:
            operation.completed_at = self.state.now()
        return operation

    def _refresh_bulk_ref(self, ref: str) -> None:
        number = parse_gid(ref, "BulkOperation")
        if number in self.state.bulk_operations:
            self._refresh_bulk(self.state.bulk_operations[number])

    def bulk_file(self, number: int) -> bytes | None:
        operation = self.state.bulk_operations.get(number)
        if operation is None or self._refresh_bulk(operation).completed_at is None:
            return None
        return "".join(json.dumps(row) + "\n" for row in operation.lines).encode()
