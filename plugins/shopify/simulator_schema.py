"""The official Admin API schema with the simulator's resolvers attached.

The schema is built from the bundled introspection (``data/``), so documents
are validated and results are serialized exactly against Shopify's types.
Objects are exposed as *views*: dicts keyed by GraphQL field names whose
values are plain data or callables ``(info, **arguments)``.
"""

from __future__ import annotations

import base64
import bisect
import gzip
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, build_client_schema

from plugins.shopify.settings import SCHEMA_VERSION
from plugins.shopify.simulator_records import (
    BulkOperation,
    Fulfillment,
    FulfillmentLine,
    InventoryItem,
    InventoryLevel,
    LineItem,
    Location,
    Order,
    Product,
    ShippingLine,
    TaxLine,
    Transaction,
    Variant,
    gid,
    iso,
    parse_gid,
)
from plugins.shopify.simulator_search import Tokenized, compile_query
from plugins.shopify.simulator_state import ShopState

SCHEMA_FILE = f"admin_schema_{SCHEMA_VERSION}.json.gz"
MAX_PAGE = 250
View = dict[str, Any]


@lru_cache(maxsize=1)
def load_schema() -> GraphQLSchema:
    """Shopify's Admin API 2025-01 schema, built once per process.

    graphql-core's schema check rejects Shopify's published schema (deprecated
    implementations of non-deprecated interface fields); it is accepted as published.
    """
    raw = resources.files("plugins.shopify").joinpath("data", SCHEMA_FILE).read_bytes()
    schema = build_client_schema(json.loads(gzip.decompress(raw))["data"])
    schema._validation_errors = []  # noqa: SLF001 - accept Shopify's schema as published
    return schema


def field_resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    value = source.get(info.field_name) if isinstance(source, Mapping) else None
    return value(info, **args) if callable(value) else value


def type_resolver(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    return value.get("__typename") if isinstance(value, Mapping) else None


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def money(amount: Decimal, currency: str) -> View:
    return {"amount": _amount(amount), "currencyCode": currency}


def money_bag(amount: Decimal, currency: str) -> View:
    return {"shopMoney": money(amount, currency), "presentmentMoney": money(amount, currency)}


def _cursor(key: Any) -> str:
    return base64.b64encode(json.dumps(key).encode()).decode()


def _plain(key: Any) -> Any:
    """A sort key as its cursor holds it (JSON types: lists for tuples, text for dates)."""
    kind = type(key)
    if kind is int or kind is str:  # the common case, checked first: this runs per row
        return key
    if (kind is list or kind is tuple) and all(type(k) in (int, str) for k in key):
        return list(key)
    return json.loads(json.dumps(key, default=str))


def _uncursor(cursor: str) -> Any:
    try:
        return json.loads(base64.b64decode(cursor.encode()))
    except ValueError:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from None


def connection(
    info: GraphQLResolveInfo,
    items: Iterable[Any],
    view: Callable[[Any], View],
    *,
    key: Callable[[Any], Any] = lambda item: item.id,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool = False,
    ordered: tuple[list[Any]] | None = None,
    **_: Any,
) -> View:
    """A Relay connection over ``items`` sorted by ``key`` (cursor = the key).

    ``ordered``: ``(keys,)`` when ``items`` are sorted already (``keys[i]`` is the
    plain key of ``items[i]``), so a large collection is not sorted for every page."""
    bulk = bool((info.context or {}).get("bulk"))
    if first is None and last is None and not bulk:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE:
            raise GraphQLError(f"The '{name}' argument must be between 0 and {MAX_PAGE}")
    if ordered is not None:  # already sorted by the caller, with their keys
        keys, values = ordered[0], list(items)
    else:
        pairs = sorted(((_plain(key(i)), i) for i in items), key=lambda r: r[0])
        keys, values = [k for k, _ in pairs], [i for _, i in pairs]
    # The window after/before a cursor, found by bisection (keys are sorted).
    low, high = 0, len(keys)
    if after:
        mark = _uncursor(after)
        if reverse:
            high = bisect.bisect_left(keys, mark)
        else:
            low = bisect.bisect_right(keys, mark)
    if before:
        mark = _uncursor(before)
        if reverse:
            low = max(low, bisect.bisect_right(keys, mark))
        else:
            high = min(high, bisect.bisect_left(keys, mark))
    total = max(0, high - low)
    # The page within the window (``first`` from its start, ``last`` from its end),
    # in the order asked for.
    if reverse:
        start, stop = max(low, high - (first if first is not None else total)), high
        if last is not None:
            stop = min(stop, start + last) if last else start
    else:
        start, stop = low, min(high, low + (first if first is not None else total))
        if last is not None:
            start = max(start, stop - last) if last else stop
    rows = list(zip(keys[start:stop], values[start:stop], strict=True))
    if reverse:
        rows.reverse()
    edges = [{"cursor": _cursor(k), "node": view(i)} for k, i in rows]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {
            "hasNextPage": first is not None and total > len(rows),
            "hasPreviousPage": last is not None and total > len(rows) or bool(after),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _limit(items: list[Any], first: int | None) -> list[Any]:
    return items[:first] if first is not None else items


class Views:
    """Builds GraphQL views of the simulator's records."""

    def __init__(self, state: ShopState) -> None:
        self.state = state
        self._levels_memo: dict[tuple[int, str | None], tuple[int, list[Any], list[int]]] = {}

    # --- shop and locations ---------------------------------------------------------------

    def shop(self) -> View:
        s = self.state
        return {
            "__typename": "Shop",
            "id": gid("Shop", 1),
            "name": s.name,
            "myshopifyDomain": s.domain,
            "currencyCode": s.currency,
            "email": f"owner@{s.domain}",
            "contactEmail": f"owner@{s.domain}",
            "ianaTimezone": "Etc/UTC",
            "timezoneAbbreviation": "UTC",
            "taxesIncluded": s.currency == "EUR",
            "url": f"https://{s.domain}",
        }

    def location(self, loc: Location) -> View:
        s = self.state

        def levels(info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> View:
            # A paginated read asks for the same filtered list page after page: it is
            # kept until any level changes (100,000 SKUs made each page a full scan).
            memo = self._levels_memo.get((loc.id, query))
            if memo is None or memo[0] != InventoryLevel.writes:
                rows = [lv for lv in s.levels.values() if lv.location_id == loc.id]
                found = filtered(rows, query, self._level_fields(), lambda lv: [])
                found.sort(key=lambda lv: lv.id)
                memo = (InventoryLevel.writes, found, [lv.id for lv in found])
                self._levels_memo[(loc.id, query)] = memo
            _, found, ids = memo
            return connection(info, found, self.level, ordered=(ids,), **args)

        def level(info: GraphQLResolveInfo, inventoryItemId: str) -> View | None:  # noqa: N803
            found = s.levels.get((parse_gid(inventoryItemId, "InventoryItem") or -1, loc.id))
            return self.level(found) if found else None

        return {
            "__typename": "Location",
            "id": gid("Location", loc.id),
            "legacyResourceId": str(loc.id),
            "name": loc.name,
            "isActive": loc.active,
            "activatable": not loc.active,
            "deactivatable": loc.active,
            "deletable": False,
            "shipsInventory": True,
            "fulfillsOnlineOrders": True,
            "hasActiveInventory": True,
            "hasUnfulfilledOrders": False,
            "isFulfillmentService": False,
            "addressVerified": True,
            "createdAt": iso(loc.created_at),
            "updatedAt": iso(loc.updated_at),
            "inventoryLevels": levels,
            "inventoryLevel": level,
        }

    # --- catalog --------------------------------------------------------------------------

    def product(self, product: Product) -> View:
        s = self.state
        variants = [s.variants[i] for i in product.variant_ids]
        return {
            "__typename": "Product",
            "id": gid("Product", product.id),
            "legacyResourceId": str(product.id),
            "title": product.title,
            "handle": product.handle,
            "status": "ACTIVE",
            "tags": [],
            "productType": "",
            "vendor": s.name,
            "createdAt": iso(product.created_at),
            "updatedAt": iso(product.updated_at),
            "hasOnlyDefaultVariant": len(variants) == 1,
            "totalInventory": sum(self._available(v) for v in variants),
            "variants": lambda info, **a: connection(info, variants, self.variant, **a),
        }

    def _available(self, variant: Variant) -> int:
        # One lookup per location (levels are keyed by (item, location)), not a scan
        # of every level: the bulk stock query asks this of every variant.
        levels = self.state.levels
        item = variant.inventory_item_id
        return sum(
            levels[(item, location)].available
            for location in self.state.locations
            if (item, location) in levels
        )

    def variant(self, variant: Variant) -> View:
        s = self.state

        def metafield(
            info: GraphQLResolveInfo, key: str, namespace: str | None = None
        ) -> View | None:
            found = variant.metafields.get((namespace or "", key))
            return self.metafield(found, gid("ProductVariant", variant.id)) if found else None

        def metafields(
            info: GraphQLResolveInfo,
            namespace: str | None = None,
            keys: list[str] | None = None,
            **args: Any,
        ) -> View:
            rows = [
                m
                for m in variant.metafields.values()
                if (namespace is None or m.namespace == namespace)
                and (keys is None or f"{m.namespace}.{m.key}" in keys)
            ]
            return connection(
                info, rows, lambda m: self.metafield(m, gid("ProductVariant", variant.id)), **args
            )

        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", variant.id),
            "legacyResourceId": str(variant.id),
            "sku": variant.sku,
            "barcode": variant.barcode,
            "title": variant.title,
            "displayName": f"{s.products[variant.product_id].title} - {variant.title}",
            "price": _amount(variant.price),
            "taxable": True,
            "position": 1,
            "inventoryPolicy": variant.inventory_policy,
            "inventoryQuantity": self._available(variant),
            "availableForSale": True,
            "createdAt": iso(variant.created_at),
            "updatedAt": iso(variant.updated_at),
            "selectedOptions": [{"name": "Title", "value": variant.title}],
            "product": lambda info: self.product(s.products[variant.product_id]),
            "inventoryItem": lambda info: self.item(s.items[variant.inventory_item_id]),
            "metafield": metafield,
            "metafields": metafields,
        }

    def metafield(self, m: Any, owner: str) -> View:
        return {
            "__typename": "Metafield",
            "id": gid("Metafield", m.id),
            "legacyResourceId": str(m.id),
            "namespace": m.namespace,
            "key": m.key,
            "value": m.value,
            "type": m.type,
            "jsonValue": m.value,
            "ownerType": "PRODUCTVARIANT",
            "compareDigest": str(hash(m.value)),
            "createdAt": iso(m.created_at),
            "updatedAt": iso(m.updated_at),
        }

    def item(self, item: InventoryItem) -> View:
        s = self.state
        variant = s.variants[item.variant_id]

        def level(info: GraphQLResolveInfo, locationId: str) -> View | None:  # noqa: N803
            found = s.levels.get((item.id, parse_gid(locationId, "Location") or -1))
            return self.level(found) if found else None

        def levels(info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> View:
            rows = [lv for lv in s.levels.values() if lv.item_id == item.id]
            return connection(
                info, filtered(rows, query, self._level_fields(), lambda lv: []), self.level, **args
            )

        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", item.id),
            "legacyResourceId": str(item.id),
            "sku": variant.sku,
            "tracked": item.tracked,
            "requiresShipping": True,
            "duplicateSkuCount": 0,
            "createdAt": iso(item.created_at),
            "updatedAt": iso(item.updated_at),
            "variant": lambda info: self.variant(variant),
            "inventoryLevel": level,
            "inventoryLevels": levels,
        }

    def level(self, lv: InventoryLevel) -> View:
        s = self.state

        def quantities(info: GraphQLResolveInfo, names: list[str]) -> list[View]:
            return [
                {
                    "id": f"gid://shopify/InventoryQuantity/{lv.id}?name={name}",
                    "name": name,
                    "quantity": lv.quantity(name),
                    "updatedAt": iso(lv.updated_at),
                }
                for name in names
            ]

        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{lv.id}?inventory_item_id={lv.item_id}",
            "canDeactivate": True,
            "createdAt": iso(lv.created_at),
            "updatedAt": iso(lv.updated_at),
            "quantities": quantities,
            "item": lambda info: self.item(s.items[lv.item_id]),
            "location": lambda info: self.location(s.locations[lv.location_id]),
        }

    def _level_fields(self) -> dict[str, Callable[[InventoryLevel], Any]]:
        return {
            "updated_at": lambda lv: lv.updated_at,
            "created_at": lambda lv: lv.created_at,
            "inventory_item_id": lambda lv: lv.item_id,
            "id": lambda lv: lv.id,
        }

    def variant_fields(self) -> dict[str, Callable[[Variant], Any]]:
        s = self.state
        return {
            "sku": Tokenized(lambda v: v.sku),
            "barcode": Tokenized(lambda v: v.barcode),
            "id": lambda v: v.id,
            "product_id": lambda v: v.product_id,
            "title": lambda v: v.title,
            "updated_at": lambda v: v.updated_at,
            "created_at": lambda v: v.created_at,
            "location_id": lambda v: [
                loc for (item, loc) in s.levels if item == v.inventory_item_id
            ],
            "inventory_quantity": self._available,
        }

    def item_fields(self) -> dict[str, Callable[[InventoryItem], Any]]:
        s = self.state
        return {
            "sku": Tokenized(lambda i: s.variants[i.variant_id].sku),
            "id": lambda i: i.id,
            "updated_at": lambda i: i.updated_at,
            "created_at": lambda i: i.created_at,
        }

    # --- orders ---------------------------------------------------------------------------

    def order_fields(self) -> dict[str, Callable[[Order], Any]]:
        return {
            "source_identifier": Tokenized(lambda o: o.source_identifier),
            "source_name": lambda o: o.source_name,
            "tag": lambda o: o.tags,
            "tag_not": lambda o: None,
            "name": lambda o: o.name,
            "email": lambda o: o.email,
            "id": lambda o: o.id,
            "po_number": lambda o: o.po_number,
            "updated_at": lambda o: o.updated_at,
            "created_at": lambda o: o.created_at,
            "processed_at": lambda o: o.processed_at,
            "status": lambda o: (
                ["cancelled", "closed"] if o.cancelled_at else ["open", "not_closed"]
            ),
            "financial_status": lambda o: o.financial_status.lower(),
            "fulfillment_status": lambda o: {
                "UNFULFILLED": ["unshipped", "unfulfilled"],
                "PARTIALLY_FULFILLED": ["partial"],
                "FULFILLED": ["shipped", "fulfilled"],
            }[o.fulfillment_status],
            "sku": Tokenized(lambda o: [li.sku for li in o.line_items]),
            "test": lambda o: o.test,
        }

    def tax_line(self, t: TaxLine, currency: str) -> View:
        return {
            "title": t.title,
            "rate": float(t.rate),
            "ratePercentage": float(t.rate * 100),
            "priceSet": money_bag(t.amount, currency),
            "channelLiable": t.channel_liable,
            "source": None,
        }

    def address(self, data: Mapping[str, Any] | None, key: str) -> View | None:
        if not data:
            return None
        name = " ".join(p for p in (data.get("firstName"), data.get("lastName")) if p)
        return {
            "id": f"gid://shopify/MailingAddress/{abs(hash(key)) % 10**9}?model_name=Address",
            "address1": data.get("address1"),
            "address2": data.get("address2"),
            "city": data.get("city"),
            "company": data.get("company"),
            "countryCodeV2": data.get("countryCode"),
            "country": data.get("countryCode"),
            "firstName": data.get("firstName"),
            "lastName": data.get("lastName"),
            "name": name or None,
            "phone": data.get("phone"),
            "provinceCode": data.get("provinceCode"),
            "province": data.get("provinceCode"),
            "zip": data.get("zip"),
            "coordinatesValidated": False,
            "formatted": lambda info, **a: [
                v for v in (data.get("address1"), data.get("city")) if v
            ],
        }

    def line_item(self, li: LineItem, order: Order) -> View:
        s = self.state
        c = order.currency
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", li.id),
            "name": li.title,
            "title": li.title,
            "sku": li.sku,
            "quantity": li.quantity,
            "currentQuantity": li.quantity,
            "unfulfilledQuantity": li.quantity - li.fulfilled,
            "refundableQuantity": li.quantity,
            "nonFulfillableQuantity": 0,
            "variantTitle": li.variant_title,
            "vendor": None,
            "taxable": li.taxable,
            "requiresShipping": li.requires_shipping,
            "isGiftCard": False,
            "restockable": True,
            "merchantEditable": True,
            "customAttributes": [{"key": k, "value": v} for k, v in li.properties],
            "originalUnitPriceSet": money_bag(li.price, c),
            "originalTotalSet": money_bag(li.total, c),
            "discountedUnitPriceSet": money_bag(li.price - li.discount / li.quantity, c),
            "discountedUnitPriceAfterAllDiscountsSet": money_bag(
                li.price - li.discount / li.quantity, c
            ),
            "discountedTotalSet": lambda info, **a: money_bag(li.total - li.discount, c),
            "totalDiscountSet": money_bag(li.discount, c),
            "unfulfilledOriginalTotalSet": money_bag(li.price * (li.quantity - li.fulfilled), c),
            "unfulfilledDiscountedTotalSet": money_bag(li.price * (li.quantity - li.fulfilled), c),
            "taxLines": lambda info, first=None: [
                self.tax_line(t, c) for t in _limit(li.tax_lines, first)
            ],
            "discountAllocations": [],
            "duties": [],
            "variant": lambda info: (
                self.variant(s.variants[li.variant_id]) if li.variant_id in s.variants else None
            ),
            "product": lambda info: (
                self.product(s.products[li.product_id]) if li.product_id in s.products else None
            ),
        }

    def shipping_line(self, sl: ShippingLine, currency: str) -> View:
        return {
            "id": gid("ShippingLine", sl.id),
            "title": sl.title,
            "code": sl.code,
            "source": sl.source,
            "custom": True,
            "isRemoved": False,
            "carrierIdentifier": None,
            "deliveryCategory": None,
            "originalPriceSet": money_bag(sl.price, currency),
            "discountedPriceSet": money_bag(sl.price - sl.discount, currency),
            "currentDiscountedPriceSet": money_bag(sl.price - sl.discount, currency),
            "taxLines": [self.tax_line(t, currency) for t in sl.tax_lines],
            "discountAllocations": [],
        }

    def transaction(self, t: Transaction, order: Order) -> View:
        return {
            "__typename": "OrderTransaction",
            "id": gid("OrderTransaction", t.id),
            "kind": t.kind,
            "status": t.status,
            "gateway": t.gateway,
            "formattedGateway": t.gateway,
            "amountSet": money_bag(t.amount, order.currency),
            "createdAt": iso(t.created_at),
            "processedAt": iso(t.processed_at),
            "test": order.test,
            "manualPaymentGateway": True,
            "manuallyCapturable": False,
            "multiCapturable": False,
            "fees": [],
        }

    def order(self, o: Order) -> View:
        s = self.state
        c = o.currency
        tax_lines = [
            *o.order_tax_lines,
            *(t for li in o.line_items for t in li.tax_lines),
            *(t for sl in o.shipping_lines for t in sl.tax_lines),
        ]
        fulfillments = [s.fulfillments[i] for i in o.fulfillment_ids]
        received = o.received
        return {
            "__typename": "Order",
            "id": gid("Order", o.id),
            "legacyResourceId": str(o.id),
            "name": o.name,
            "createdAt": iso(o.created_at),
            "updatedAt": iso(o.updated_at),
            "processedAt": iso(o.processed_at),
            "cancelledAt": iso(o.cancelled_at),
            "cancelReason": o.cancel_reason,
            "closed": o.closed_at is not None,
            "closedAt": iso(o.closed_at),
            "currencyCode": c,
            "presentmentCurrencyCode": c,
            "email": o.email,
            "phone": o.phone,
            "note": o.note,
            "poNumber": o.po_number,
            "sourceName": o.source_name,
            "sourceIdentifier": o.source_identifier,
            "tags": o.tags,
            "taxesIncluded": o.taxes_included,
            "test": o.test,
            "confirmed": True,
            "edited": False,
            "taxExempt": False,
            "displayFinancialStatus": o.financial_status,
            "displayFulfillmentStatus": o.fulfillment_status,
            "fullyPaid": received >= o.total,
            "unpaid": received == 0,
            "requiresShipping": any(li.requires_shipping for li in o.line_items),
            "discountCode": o.discount_code,
            "discountCodes": [o.discount_code] if o.discount_code else [],
            "customAttributes": [{"key": k, "value": v} for k, v in o.custom_attributes],
            "subtotalLineItemsQuantity": sum(li.quantity for li in o.line_items),
            "currentSubtotalLineItemsQuantity": sum(li.quantity for li in o.line_items),
            "subtotalPriceSet": money_bag(o.subtotal, c),
            "currentSubtotalPriceSet": money_bag(o.subtotal, c),
            "totalShippingPriceSet": money_bag(o.shipping, c),
            "currentShippingPriceSet": money_bag(o.shipping, c),
            "totalTaxSet": money_bag(o.tax, c),
            "currentTotalTaxSet": money_bag(o.tax, c),
            "totalDiscountsSet": money_bag(o.discounts, c),
            "currentTotalDiscountsSet": money_bag(o.discounts, c),
            "totalPriceSet": money_bag(o.total, c),
            "currentTotalPriceSet": money_bag(o.total, c),
            "originalTotalPriceSet": money_bag(o.total, c),
            "totalReceivedSet": money_bag(received, c),
            "netPaymentSet": money_bag(received, c),
            "totalOutstandingSet": money_bag(max(o.total - received, Decimal(0)), c),
            "totalRefundedSet": money_bag(Decimal(0), c),
            "taxLines": [self.tax_line(t, c) for t in tax_lines],
            "currentTaxLines": [self.tax_line(t, c) for t in tax_lines],
            "shippingAddress": self.address(o.shipping_address, f"s{o.id}"),
            "billingAddress": self.address(o.billing_address, f"b{o.id}"),
            "shippingLine": self.shipping_line(o.shipping_lines[0], c)
            if o.shipping_lines
            else None,
            "shippingLines": lambda info, includeRemovals=None, **a: connection(  # noqa: N803
                info, o.shipping_lines, lambda sl: self.shipping_line(sl, c), **a
            ),
            "lineItems": lambda info, **a: connection(
                info, o.line_items, lambda li: self.line_item(li, o), **a
            ),
            "fulfillments": lambda info, first=None: [
                self.fulfillment(f) for f in _limit(fulfillments, first)
            ],
            "fulfillmentsCount": {"count": len(fulfillments), "precision": "EXACT"},
            "transactions": lambda info, first=None, **a: [
                self.transaction(t, o) for t in _limit(o.transactions, first)
            ],
            "transactionsCount": {"count": len(o.transactions), "precision": "EXACT"},
            "refunds": lambda info, first=None: [],
        }

    def fulfillment(self, f: Fulfillment) -> View:
        s = self.state
        order = s.orders[f.order_id]
        lines = {li.id: li for li in order.line_items}

        def line(fl: FulfillmentLine) -> View:
            li = lines[fl.line_item_id]
            return {
                "__typename": "FulfillmentLineItem",
                "id": gid("FulfillmentLineItem", fl.id),
                "quantity": fl.quantity,
                "lineItem": self.line_item(li, order),
                "originalTotalSet": money_bag(li.price * fl.quantity, order.currency),
                "discountedTotalSet": money_bag(li.price * fl.quantity, order.currency),
            }

        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", f.id),
            "legacyResourceId": str(f.id),
            "name": f.name,
            "status": f.status,
            "displayStatus": "FULFILLED" if f.status == "SUCCESS" else "CANCELED",
            "createdAt": iso(f.created_at),
            "updatedAt": iso(f.updated_at),
            "deliveredAt": None,
            "inTransitAt": None,
            "estimatedDeliveryAt": None,
            "requiresShipping": True,
            "totalQuantity": sum(fl.quantity for fl in f.lines),
            "trackingInfo": lambda info, first=None: [
                {"company": t.company, "number": t.number, "url": t.url}
                for t in _limit(f.tracking, first)
            ],
            "fulfillmentLineItems": lambda info, **a: connection(info, f.lines, line, **a),
            "order": lambda info: self.order(order),
            "location": lambda info: (
                self.location(s.locations[f.location_id]) if f.location_id in s.locations else None
            ),
        }

    def bulk_operation(self, op: BulkOperation) -> View:
        done = op.completed_at is not None
        size = sum(len(json.dumps(line)) + 1 for line in op.lines) if done else None
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", op.id),
            "type": "QUERY",
            "status": "COMPLETED" if done else "RUNNING",
            "errorCode": None,
            "query": op.query,
            "createdAt": iso(op.created_at),
            "completedAt": iso(op.completed_at),
            "objectCount": str(len(op.lines)) if done else "0",
            "rootObjectCount": str(op.root_count) if done else "0",
            "fileSize": str(size) if size else None,
            "url": op.url if done and op.lines else None,
            "partialDataUrl": None,
        }

    def node(self, ref: str) -> View | None:
        """Any record by GID (``node``/``nodes``)."""
        s = self.state
        kind = ref.removeprefix("gid://shopify/").split("/", 1)[0]
        number = parse_gid(ref, kind)
        table: dict[str, tuple[Mapping[int, Any], Callable[[Any], View]]] = {
            "Order": (s.orders, self.order),
            "ProductVariant": (s.variants, self.variant),
            "Product": (s.products, self.product),
            "InventoryItem": (s.items, self.item),
            "Location": (s.locations, self.location),
            "Fulfillment": (s.fulfillments, self.fulfillment),
            "BulkOperation": (s.bulk_operations, self.bulk_operation),
        }
        if kind not in table or number is None:
            return None
        records, view = table[kind]
        record = records.get(number)
        return view(record) if record is not None else None


def filtered(
    rows: Iterable[Any],
    query: str | None,
    fields: Mapping[str, Callable[[Any], Any]],
    default: Callable[[Any], list[Any]],
) -> list[Any]:
    """Rows matching a search ``query`` (Shopify's search syntax)."""
    predicate = compile_query(query, fields, default)
    return [row for row in rows if predicate(row)]
