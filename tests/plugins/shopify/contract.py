"""Checks against the published Admin API schema (``tests/contracts/shopify``).

Independent of the simulator's own code: the schema is loaded from the test
contract copy, documents and variables are checked with graphql-core, and
responses are walked field by field against the document's selections.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_client_schema,
    get_named_type,
    get_nullable_type,
    is_input_object_type,
    type_from_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.execution.values import get_variable_values

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "shopify"
SCHEMA_FILE = CONTRACT / "admin_schema_2025-01.json.gz"


@lru_cache(maxsize=1)
def contract_schema() -> GraphQLSchema:
    schema = build_client_schema(json.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))["data"])
    schema._validation_errors = []  # accepted as published, see SOURCE.md
    return schema


class _DeprecationFinder(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found: list[str] = []

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        field = self.type_info.get_field_def()
        parent = self.type_info.get_parent_type()
        if field is not None and field.deprecation_reason:
            self.found.append(f"field {parent}.{node.name.value}")

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        argument = self.type_info.get_argument()
        if argument is not None and argument.deprecation_reason:
            self.found.append(f"argument {node.name.value}")

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        parent = get_named_type(self.type_info.get_parent_input_type())
        if isinstance(parent, GraphQLInputObjectType):
            field = parent.fields.get(node.name.value)
            if field is not None and field.deprecation_reason:
                self.found.append(f"input field {parent.name}.{node.name.value}")

    def enter_enum_value(self, node: EnumValueNode, *_: Any) -> None:
        enum = get_named_type(self.type_info.get_input_type())
        if isinstance(enum, GraphQLEnumType):
            value = enum.values.get(node.value)
            if value is not None and value.deprecation_reason:
                self.found.append(f"enum value {enum.name}.{node.value}")


def deprecated_in_document(document: DocumentNode) -> list[str]:
    """Deprecated fields, arguments, input fields and enum literals a document uses."""
    type_info = TypeInfo(contract_schema())
    finder = _DeprecationFinder(type_info)
    visit(document, TypeInfoVisitor(type_info, finder))
    return finder.found


def deprecated_in_value(type_: Any, value: Any, path: str = "") -> list[str]:
    """Deprecated input fields and enum values inside a variable value."""
    type_ = get_nullable_type(type_)
    if value is None:
        return []
    if isinstance(type_, GraphQLList):
        return [
            f
            for i, item in enumerate(value)
            for f in deprecated_in_value(type_.of_type, item, f"{path}.{i}")
        ]
    if isinstance(type_, GraphQLEnumType):
        found = type_.values.get(value)
        return (
            [f"enum value {type_.name}.{value} at {path}"]
            if found and found.deprecation_reason
            else []
        )
    if is_input_object_type(type_):
        out = []
        for key, item in value.items():
            field = type_.fields.get(key)
            if field is None:
                continue  # not a field of the type: coercion reports it
            if field.deprecation_reason:
                out.append(f"input field {type_.name}.{key} at {path}")
            out += deprecated_in_value(field.type, item, f"{path}.{key}")
        return out
    return []


def operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        operations = [o for o in operations if o.name and o.name.value == name]
    assert len(operations) == 1, f"expected one operation named {name!r}"
    return operations[0]


def variable_errors(
    document: DocumentNode, name: str | None, variables: dict[str, Any]
) -> list[str]:
    """Coercion errors of ``variables`` plus deprecated values inside them."""
    op = operation(document, name)
    definitions = op.variable_definitions or ()
    result = get_variable_values(contract_schema(), definitions, variables)
    errors = [e.message for e in result] if isinstance(result, list) else []
    schema = contract_schema()
    for definition in definitions:
        var_type = type_from_ast(schema, definition.type)
        errors += deprecated_in_value(
            var_type, variables.get(definition.variable.name.value), definition.variable.name.value
        )
    return errors


_SCALARS = {
    "Int": (int,),
    "Float": (int, float),
    "Boolean": (bool,),
    "String": (str,),
    "ID": (str,),
}


class ResponseChecker:
    """Walks ``data`` against the document's selections and the schema's types."""

    def __init__(
        self, document: DocumentNode, name: str | None, variables: dict[str, Any] | None = None
    ) -> None:
        self.variables = variables or {}
        self.schema = contract_schema()
        self.document = document
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.op = operation(document, name)
        self.problems: list[str] = []

    def check(self, data: dict[str, Any]) -> list[str]:
        root = (
            self.schema.mutation_type
            if self.op.operation == OperationType.MUTATION
            else self.schema.query_type
        )
        self.object(root, self.op.selection_set, data, "data")
        return self.problems

    def fields(
        self, parent: Any, selection_set: SelectionSetNode, typename: str | None
    ) -> list[FieldNode]:
        out: list[FieldNode] = []
        for node in selection_set.selections:
            if not self._included(node):
                continue
            if isinstance(node, FieldNode):
                out.append(node)
            elif isinstance(node, InlineFragmentNode | FragmentSpreadNode):
                fragment = (
                    self.fragments[node.name.value]
                    if isinstance(node, FragmentSpreadNode)
                    else node
                )
                condition = fragment.type_condition.name.value if fragment.type_condition else None
                if (
                    condition is None
                    or condition == typename
                    or condition == getattr(parent, "name", None)
                ):
                    out += self.fields(parent, fragment.selection_set, typename)
                elif typename and self._implements(typename, condition):
                    out += self.fields(parent, fragment.selection_set, typename)
        return out

    def _included(self, node: Any) -> bool:
        """Apply ``@include(if:)`` / ``@skip(if:)``."""
        for directive in node.directives or ():
            argument = next((a for a in directive.arguments if a.name.value == "if"), None)
            if argument is None:
                continue
            flag = value_from_ast_untyped(argument.value, self.variables)
            if (directive.name.value == "include" and not flag) or (
                directive.name.value == "skip" and flag
            ):
                return False
        return True

    def _implements(self, typename: str, abstract: str) -> bool:
        concrete = self.schema.get_type(typename)
        target = self.schema.get_type(abstract)
        return isinstance(concrete, GraphQLObjectType) and target in concrete.interfaces

    def object(self, type_: Any, selection_set: SelectionSetNode, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        typename = value.get("__typename")
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            if not value:
                return  # fragment on another type: nothing selected
            if typename is None:
                # Only our own fragments select on abstract types; find the concrete type from them.
                fragments = [
                    self.fragments[f.name.value] if isinstance(f, FragmentSpreadNode) else f
                    for f in selection_set.selections
                    if isinstance(f, InlineFragmentNode | FragmentSpreadNode)
                ]
                candidates = [
                    self.schema.get_type(f.type_condition.name.value)
                    for f in fragments
                    if f.type_condition
                ]
                type_ = next((c for c in candidates if c is not None), type_)
        fields = self.fields(type_, selection_set, getattr(type_, "name", None))
        expected = {(f.alias or f.name).value for f in fields}
        extra = set(value) - expected
        if extra:
            self.problems.append(f"{path}: unexpected keys {sorted(extra)}")
        for node in fields:
            key = (node.alias or node.name).value
            if key not in value:
                self.problems.append(f"{path}.{key}: missing")
                continue
            if node.name.value == "__typename":
                continue
            definition = type_.fields.get(node.name.value) if hasattr(type_, "fields") else None
            if definition is None:
                self.problems.append(f"{path}.{key}: not a field of {type_}")
                continue
            self.value(definition.type, node, value[key], f"{path}.{key}")

    def value(self, type_: Any, node: FieldNode, value: Any, path: str) -> None:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                self.problems.append(f"{path}: null for non-null {type_}")
                return
            type_ = type_.of_type
        if value is None:
            return
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                self.problems.append(f"{path}: expected a list")
                return
            for i, item in enumerate(value):
                self.value(type_.of_type, node, item, f"{path}.{i}")
            return
        if isinstance(type_, GraphQLEnumType):
            if value not in type_.values:
                self.problems.append(f"{path}: {value!r} is not a {type_.name}")
            return
        if isinstance(type_, GraphQLScalarType):
            allowed = _SCALARS.get(type_.name, (str,))
            if not isinstance(value, allowed) or (
                type_.name != "Boolean" and isinstance(value, bool)
            ):
                self.problems.append(f"{path}: {value!r} is not a {type_.name}")
            return
        assert node.selection_set is not None
        self.object(type_, node.selection_set, value, path)


def _connection_nodes(
    checker: ResponseChecker, parent: Any, selection_set: SelectionSetNode
) -> tuple[Any, SelectionSetNode] | None:
    """The node type and selections of the first connection selected under ``parent``."""
    for node in checker.fields(parent, selection_set, getattr(parent, "name", None)):
        definition = parent.fields.get(node.name.value)
        if definition is None or node.selection_set is None:
            continue
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType):
            continue
        if named.name.endswith("Connection"):
            for part in checker.fields(named, node.selection_set, named.name):
                if part.name.value == "nodes" and part.selection_set:
                    return get_named_type(named.fields["nodes"].type), part.selection_set
                if part.name.value == "edges" and part.selection_set:
                    edge = get_named_type(named.fields["edges"].type)
                    for inner in checker.fields(edge, part.selection_set, edge.name):
                        if inner.name.value == "node" and inner.selection_set:
                            return get_named_type(edge.fields["node"].type), inner.selection_set
        found = _connection_nodes(checker, named, node.selection_set)
        if found is not None:
            return found
    return None


def bulk_row_problems(document: DocumentNode, rows: list[dict[str, Any]]) -> list[str]:
    """JSONL rows of a bulk query checked against its connection's node selections.

    Bulk operations write one row per node of the outermost connection (and rows
    with ``__parentId`` for nested connections, which our queries do not have).
    """
    checker = ResponseChecker(document, None)
    found = _connection_nodes(checker, checker.schema.query_type, checker.op.selection_set)
    if found is None:
        return ["the bulk query selects no connection"]
    node_type, selection_set = found
    for index, row in enumerate(rows):
        if "__parentId" in row:
            checker.problems.append(f"row {index}: a nested-connection row was not expected")
            continue
        checker.object(node_type, selection_set, row, f"row {index}")
    return checker.problems
