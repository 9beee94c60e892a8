"""Requested query cost, approximating Shopify's calculated query cost.

Rules (after shopify.dev "GraphQL Admin API rate limits", cost calculation):

- scalar and enum fields cost 0, ``__typename`` costs 0;
- an object field costs 1 plus its selection;
- a connection (a field sized by ``first``/``last`` whose selection has
  ``edges``/``nodes``) costs 2 plus ``first`` × the cost of one node;
- a list sized by ``first``/``last`` or by an ``ids`` list costs that size × one item;
- a connection without a size (bulk operations only) is counted as 250 items;
- each mutation root field costs 10;
- inline fragments on different types count the most expensive one (interfaces).

The client uses the same estimate before it has seen Shopify's own
``requestedQueryCost`` for an operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

MAX_SINGLE_QUERY_COST = 1000
MUTATION_COST = 10
UNSIZED_CONNECTION = 250
_CONNECTION_PARTS = frozenset({"edges", "nodes"})


def _value(node: ValueNode, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return list(node.values)
    return getattr(node, "value", None)


class _Estimator:
    def __init__(self, document: DocumentNode, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def included(self, node: SelectionNode) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("include", "skip"):
                continue
            arg = next((a for a in directive.arguments or () if a.name.value == "if"), None)
            flag = bool(_value(arg.value, self.variables)) if arg else True
            if (name == "include") != flag:
                return False
        return True

    def args(self, field: FieldNode) -> dict[str, Any]:
        return {a.name.value: _value(a.value, self.variables) for a in field.arguments or ()}

    def selection(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        fragments: list[int] = []
        for node in selection_set.selections:
            if not self.included(node):
                continue
            if isinstance(node, FieldNode):
                total += self.field(node)
            elif isinstance(node, InlineFragmentNode):
                fragments.append(self.selection(node.selection_set))
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    fragments.append(self.selection(fragment.selection_set))
        return total + max(fragments, default=0)

    def node_cost(self, selection_set: SelectionSetNode) -> int:
        """Cost of one item of a connection (``edges.node`` or ``nodes``)."""
        costs = [0]
        for node in selection_set.selections:
            if not isinstance(node, FieldNode) or not self.included(node):
                continue
            if node.name.value == "nodes":
                costs.append(1 + self.selection(node.selection_set))
            elif node.name.value == "edges" and node.selection_set:
                for inner in node.selection_set.selections:
                    if isinstance(inner, FieldNode) and inner.name.value == "node":
                        costs.append(1 + self.selection(inner.selection_set))
        return max(costs)

    def field(self, field: FieldNode) -> int:
        if field.selection_set is None:
            return 0
        args = self.args(field)
        size = args.get("first") or args.get("last")
        names = {s.name.value for s in field.selection_set.selections if isinstance(s, FieldNode)}
        if names & _CONNECTION_PARTS:
            count = int(size) if isinstance(size, int) else UNSIZED_CONNECTION
            return 2 + count * self.node_cost(field.selection_set)
        if isinstance(args.get("ids"), list):
            size = len(args["ids"])
        if isinstance(size, int):
            return size * (1 + self.selection(field.selection_set))
        return 1 + self.selection(field.selection_set)


def requested_cost(
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """Estimate the requested cost of one operation of ``document``."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if not operations:
        return 0
    operation = operations[0]
    estimator = _Estimator(document, variables or {})
    if operation.operation == OperationType.MUTATION:
        fields = [
            s
            for s in operation.selection_set.selections
            if isinstance(s, FieldNode) and estimator.included(s)
        ]
        return MUTATION_COST * len(fields)
    return estimator.selection(operation.selection_set)
