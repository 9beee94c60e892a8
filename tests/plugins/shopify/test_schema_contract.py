"""Every GraphQL document in the plugin validates against Shopify's published schema."""

from __future__ import annotations

import gzip
import json
from importlib import resources

import pytest
from graphql import NoDeprecatedCustomRule, parse, validate

from plugins.shopify.cost import MAX_SINGLE_QUERY_COST, requested_cost
from plugins.shopify.queries import DOCUMENTS, bulk_stock_query, bulk_variants_query
from plugins.shopify.settings import ShopifySettings, parse_attribute

from .contract import SCHEMA_FILE, contract_schema, deprecated_in_document, variable_errors

ATTRIBUTES = ("sku", "barcode", "id", "metafield:custom.ean")
DOCUMENT_SET = {
    **DOCUMENTS,
    **{
        f"bulk[{a}]": bulk_stock_query("gid://shopify/Location/1", parse_attribute(a))
        for a in ATTRIBUTES
    },
    "bulk_variants[metafield:custom.ean]": bulk_variants_query(
        parse_attribute("metafield:custom.ean")
    ),
}


def test_simulator_serves_the_contract_schema() -> None:
    bundled = resources.files("plugins.shopify").joinpath("data", SCHEMA_FILE.name).read_bytes()
    assert bundled == SCHEMA_FILE.read_bytes()


@pytest.mark.parametrize("name", sorted(DOCUMENT_SET))
def test_document_validates(name: str) -> None:
    errors = validate(contract_schema(), parse(DOCUMENT_SET[name]))
    assert errors == []


@pytest.mark.parametrize("name", sorted(DOCUMENT_SET))
def test_no_deprecated_field_argument_or_enum_value(name: str) -> None:
    document = parse(DOCUMENT_SET[name])
    assert deprecated_in_document(document) == []
    assert validate(contract_schema(), document, [NoDeprecatedCustomRule]) == []


def test_deprecation_finder_finds_deprecations() -> None:
    """The walker really reports what the schema marks deprecated."""
    document = parse(
        '{ order(id: "gid://shopify/Order/1") { totalPrice riskLevel } '
        "shop { orders(first: 1) { nodes { id } } } }"
    )
    found = deprecated_in_document(document)
    assert "field Order.totalPrice" in found
    assert "field Order.riskLevel" in found
    assert "field Shop.orders" in found


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("variants_search", 250),
        ("variants_metafield", 250),
        ("changed_orders", 100),
        ("stock_levels", 150),
        ("locations", 50),
    ],
)
def test_requested_cost_stays_under_the_single_query_limit(name: str, first: int) -> None:
    """At the largest page size the connector uses (settings maximums)."""
    variables = {"first": first, "withMetafield": True}
    assert requested_cost(parse(DOCUMENTS[name]), variables) <= MAX_SINGLE_QUERY_COST


@pytest.mark.parametrize(("name", "ids"), [("variants_by_id", 100), ("fulfillment_details", 10)])
def test_node_lists_stay_under_the_single_query_limit(name: str, ids: int) -> None:
    variables = {"ids": [f"gid://shopify/X/{n}" for n in range(ids)]}
    assert requested_cost(parse(DOCUMENTS[name]), variables) <= MAX_SINGLE_QUERY_COST


def _maximum(setting: str) -> int:
    metadata = ShopifySettings.model_fields[setting].metadata
    return int(next(m.le for m in metadata if hasattr(m, "le")))


def test_page_size_settings_are_bounded_by_the_cost_checks() -> None:
    """The cost checks above use these maximums (variant pages always ask for 250)."""
    assert _maximum("orders_page_size") == 100
    assert _maximum("stock_page_size") == 150
    assert _maximum("product_batch_size") == 100


def test_deprecated_inputs_are_absent_so_validation_rejects_them() -> None:
    """The published introspection carries no deprecation flag on arguments or input
    fields: deprecated ones are left out (``MailingAddressInput`` has ``provinceCode``
    and ``countryCode``, not ``province`` and ``country``). So the argument and input
    branches of the deprecation walker can find nothing; what keeps deprecated inputs
    out is validation and variable coercion, shown here."""
    raw = json.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))["data"]["__schema"]["types"]
    keys = {
        key
        for kind in raw
        for entry in [*(kind.get("inputFields") or [])]
        + [a for f in kind.get("fields") or [] for a in f.get("args") or []]
        for key in entry
    }
    assert "isDeprecated" not in keys and "deprecationReason" not in keys
    document = parse("query Q($a: MailingAddressInput) { shop { name } }")
    assert variable_errors(document, "Q", {"a": {"provinceCode": "WA"}}) == []
    problems = variable_errors(document, "Q", {"a": {"province": "Washington"}})
    assert problems and "not to include unknown field 'province'" in problems[0]
    literal = parse('mutation { orderCancel(orderId: "1", province: "x") { job { id } } }')
    messages = [e.message for e in validate(contract_schema(), literal)]
    assert "Unknown argument 'province' on field 'Mutation.orderCancel'." in messages
    assert any(
        "orderCancel(reason:)' of type 'OrderCancelReason!' is required" in m for m in messages
    )
