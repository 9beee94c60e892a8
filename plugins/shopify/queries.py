"""Every GraphQL document the connector sends.

They are sent to the configured ``api_version`` and validated against the
bundled 2025-01 schema (``settings.SCHEMA_VERSION``, see ``DEFAULT_API_VERSION``).

Names are prefixed ``Ordersync`` so they are easy to find in Shopify's API
logs. ``tests/plugins/shopify/test_schema_contract.py`` validates each document
against the published schema, rejects deprecated fields and checks that the
requested cost stays under Shopify's single-query limit at the page sizes used.
"""

from __future__ import annotations

import functools
import json

from plugins.shopify.settings import Attribute

SHOP = """
query OrdersyncShop {
  shop { id name myshopifyDomain currencyCode }
}
"""

LOCATION_BY_ID = """
query OrdersyncLocation($id: ID!) {
  location(id: $id) { id name isActive }
}
"""

LOCATIONS = """
query OrdersyncLocations($first: Int!, $after: String) {
  locations(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name isActive }
  }
}
"""

_VARIANT_FIELDS = """
fragment OrdersyncVariant on ProductVariant {
  id
  legacyResourceId
  sku
  barcode
  title
  product { id title }
}
"""

VARIANTS_SEARCH = (
    """
query OrdersyncVariantsSearch($first: Int!, $after: String, $query: String!) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { ...OrdersyncVariant }
  }
}
"""
    + _VARIANT_FIELDS
)

VARIANTS_BY_ID = (
    """
query OrdersyncVariantsById($ids: [ID!]!) {
  nodes(ids: $ids) {
    ...OrdersyncVariant
  }
}
"""
    + _VARIANT_FIELDS
)

VARIANTS_METAFIELD = (
    """
query OrdersyncVariantsMetafield($first: Int!, $after: String, $namespace: String!, $key: String!) {
  productVariants(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      ...OrdersyncVariant
      metafield(namespace: $namespace, key: $key) { value }
    }
  }
}
"""
    + _VARIANT_FIELDS
)

FIND_ORDER = """
query OrdersyncFindOrder($query: String!) {
  orders(first: 10, query: $query, sortKey: CREATED_AT) {
    nodes { id name sourceIdentifier cancelledAt createdAt totalPriceSet { shopMoney { amount currencyCode } } }
  }
}
"""

FIND_ORDERS = """
query OrdersyncFindOrders($query: String!) {
  orders(first: 250, query: $query, sortKey: CREATED_AT) {
    nodes { id name sourceIdentifier cancelledAt createdAt totalPriceSet { shopMoney { amount currencyCode } } }
  }
}
"""
FIND_ORDERS_PAGE = 250

RECENT_ORDERS = """
query OrdersyncRecentOrders($first: Int!, $after: String) {
  orders(first: $first, after: $after, sortKey: CREATED_AT, reverse: true) {
    pageInfo { hasNextPage endCursor }
    nodes { id name sourceIdentifier cancelledAt createdAt totalPriceSet { shopMoney { amount currencyCode } } }
  }
}
"""
RECENT_ORDERS_PAGE = 100
"""The newest orders, read without ``query:``: not through the (lagging) search index."""

_CREATED = """
    userErrors { field message code }
    order {
      id
      name
      sourceIdentifier
      taxesIncluded
      totalPriceSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
    }"""

ORDER_CREATE = f"""
mutation OrdersyncOrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {{
  orderCreate(order: $order, options: $options) {{{_CREATED}
  }}
}}
"""
CREATE_BATCH = 10
"""Orders created by one request: ``orderCreate`` under aliases, run one after another."""


@functools.lru_cache(maxsize=CREATE_BATCH)
def order_create_batch(size: int) -> str:
    """``orderCreate`` ``size`` times in one document: variables ``$o0``..., aliases ``o0``...

    GraphQL runs the mutation fields of a document in order, each with its own
    ``userErrors``.
    """
    variables = " ".join(f"$o{i}: OrderCreateOrderInput!" for i in range(size))
    fields = "".join(
        f"\n  o{i}: orderCreate(order: $o{i}, options: $options) {{{_CREATED}\n  }}"
        for i in range(size)
    )
    return (
        f"\nmutation OrdersyncOrderCreateBatch({variables} $options: OrderCreateOptionsInput) {{"
        f"{fields}\n}}\n"
    )


ORDER_STATUS = """
query OrdersyncOrderStatus($id: ID!) {
  order(id: $id) { id name cancelledAt }
}
"""

ORDER_CANCEL = """
mutation OrdersyncOrderCancel(
  $orderId: ID!
  $reason: OrderCancelReason!
  $refund: Boolean!
  $restock: Boolean!
  $notifyCustomer: Boolean
  $staffNote: String
) {
  orderCancel(
    orderId: $orderId
    reason: $reason
    refund: $refund
    restock: $restock
    notifyCustomer: $notifyCustomer
    staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

JOB_STATUS = """
query OrdersyncJob($id: ID!) {
  job(id: $id) { id done }
}
"""

CHANGED_ORDERS = """
query OrdersyncChangedOrders($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      sourceIdentifier
      sourceName
      tags
      updatedAt
      cancelledAt
      cancelReason
      shippingLine { title }
      fulfillmentsCount { count }
      fulfillments(first: 5) { id status updatedAt }
    }
  }
}
"""

LATEST_ORDER = """
query OrdersyncLatestOrder($query: String!) {
  orders(first: 1, query: $query, sortKey: UPDATED_AT, reverse: true) {
    nodes { id updatedAt }
  }
}
"""

ORDER_FULFILLMENTS = """
query OrdersyncOrderFulfillments($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 250) { id status updatedAt }
  }
}
"""

_FULFILLMENT_LINE = """
fragment OrdersyncFulfillmentLine on FulfillmentLineItem {
  id
  quantity
  lineItem { id sku customAttributes { key value } }
}
"""

FULFILLMENT_DETAILS = (
    """
query OrdersyncFulfillmentDetails($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Fulfillment {
      id
      status
      createdAt
      trackingInfo(first: 10) { company number url }
      fulfillmentLineItems(first: 20) {
        pageInfo { hasNextPage endCursor }
        nodes { ...OrdersyncFulfillmentLine }
      }
    }
  }
}
"""
    + _FULFILLMENT_LINE
)

FULFILLMENT_LINES = (
    """
query OrdersyncFulfillmentLines($id: ID!, $after: String) {
  fulfillment(id: $id) {
    id
    fulfillmentLineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...OrdersyncFulfillmentLine }
    }
  }
}
"""
    + _FULFILLMENT_LINE
)

VARIANTS_COUNT = """
query OrdersyncVariantsCount {
  productVariantsCount { count precision }
}
"""

STOCK_LEVELS = """
query OrdersyncStockLevels(
  $locationId: ID!
  $first: Int!
  $after: String
  $query: String
  $namespace: String!
  $key: String!
  $withMetafield: Boolean!
) {
  location(id: $locationId) {
    id
    inventoryLevels(first: $first, after: $after, query: $query) {
      pageInfo { hasNextPage endCursor }
      nodes {
        updatedAt
        quantities(names: ["available"]) { name quantity }
        item {
          id
          tracked
          variant {
            id
            legacyResourceId
            sku
            barcode
            metafield(namespace: $namespace, key: $key) @include(if: $withMetafield) { value }
          }
        }
      }
    }
  }
}
"""

BULK_RUN = """
mutation OrdersyncBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_STATUS = """
query OrdersyncBulkStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount url partialDataUrl }
  }
}
"""

DOCUMENTS: dict[str, str] = {
    "shop": SHOP,
    "location_by_id": LOCATION_BY_ID,
    "locations": LOCATIONS,
    "variants_search": VARIANTS_SEARCH,
    "variants_by_id": VARIANTS_BY_ID,
    "variants_metafield": VARIANTS_METAFIELD,
    "find_order": FIND_ORDER,
    "find_orders": FIND_ORDERS,
    "recent_orders": RECENT_ORDERS,
    "order_create": ORDER_CREATE,
    "order_create_batch": order_create_batch(CREATE_BATCH),
    "order_create_batch_of_one": order_create_batch(1),
    "order_status": ORDER_STATUS,
    "order_cancel": ORDER_CANCEL,
    "job_status": JOB_STATUS,
    "changed_orders": CHANGED_ORDERS,
    "latest_order": LATEST_ORDER,
    "order_fulfillments": ORDER_FULFILLMENTS,
    "fulfillment_details": FULFILLMENT_DETAILS,
    "fulfillment_lines": FULFILLMENT_LINES,
    "variants_count": VARIANTS_COUNT,
    "stock_levels": STOCK_LEVELS,
    "bulk_run": BULK_RUN,
    "bulk_status": BULK_STATUS,
}
"""Name → document, for the contract tests."""


def bulk_stock_query(location_id: str, attribute: Attribute) -> str:
    """The bulk query reading every inventory item with its level at one location.

    One JSONL line per inventory item (no nested connection, so no ``__parentId``).
    """
    metafield = ""
    if attribute.kind == "metafield":
        metafield = (
            f"metafield(namespace: {json.dumps(attribute.namespace)}, "
            f"key: {json.dumps(attribute.key)}) {{ value }}"
        )
    return (
        "{\n"
        "  inventoryItems {\n"
        "    edges {\n"
        "      node {\n"
        "        id\n"
        "        tracked\n"
        f"        variant {{ id legacyResourceId sku barcode {metafield} }}\n"
        f"        inventoryLevel(locationId: {json.dumps(location_id)}) {{\n"
        '          updatedAt quantities(names: ["available"]) { name quantity }\n'
        "        }\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def bulk_variants_query(attribute: Attribute) -> str:
    """The bulk query reading every variant with one metafield (the metafield index)."""
    return (
        "{\n"
        "  productVariants {\n"
        "    edges {\n"
        "      node {\n"
        "        id legacyResourceId sku barcode title\n"
        "        product { id title }\n"
        f"        metafield(namespace: {json.dumps(attribute.namespace)}, "
        f"key: {json.dumps(attribute.key)}) {{ value }}\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
