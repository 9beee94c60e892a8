"""In-memory state of the Shopify simulator and the business rules it applies.

Records use Shopify's vocabulary (GIDs, ``updatedAt`` bumped on every change,
inventory quantities ``available``/``committed``/``on_hand``). Order totals are
computed from the ``orderCreate`` input the way Shopify does: line prices minus
discounts, plus shipping, plus taxes unless ``taxesIncluded``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.testing.clock import ScaledClock
from plugins.shopify.simulator_records import (
    ZERO,
    BulkOperation,
    Fulfillment,
    FulfillmentLine,
    InventoryItem,
    InventoryLevel,
    LineItem,
    Location,
    Metafield,
    Order,
    Product,
    ShippingLine,
    TaxLine,
    Tracking,
    Transaction,
    UserError,
    Variant,
    gid,
    iso,
    parse_gid,
)
from plugins.shopify.simulator_search import WordIndex

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _money(bag: Mapping[str, Any] | None, currency: str, path: list[str]) -> Decimal | None:
    """Amount of a ``MoneyBagInput`` in shop money; checks the currency."""
    if not bag:
        return None
    shop_money = bag["shopMoney"]
    if shop_money["currencyCode"] != currency:
        raise UserError(
            [*path, "shopMoney", "currencyCode"],
            f"Currency {shop_money['currencyCode']} does not match the order currency {currency}",
        )
    try:
        amount = Decimal(str(shop_money["amount"]))
    except ArithmeticError:
        raise UserError([*path, "shopMoney", "amount"], "Amount is invalid") from None
    if amount < 0:
        raise UserError([*path, "shopMoney", "amount"], "Amount must be greater than or equal to 0")
    return amount


class ShopState:
    """Everything the simulated shop holds; guarded by one re-entrant lock."""

    def __init__(
        self,
        clock: ScaledClock,
        currency: str = "EUR",
        name: str = "Ordersync Simulator",
        domain: str = "ordersync-sim.myshopify.com",
    ) -> None:
        self.clock = clock
        self.currency = currency
        self.name = name
        self.domain = domain
        self.lock = threading.RLock()
        self.time_offset = 0.0
        self._ids: dict[str, int] = {}
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple[int, int], InventoryLevel] = {}
        self.orders: dict[int, Order] = {}
        self.source_words = WordIndex()
        """Order ids by the words of their ``sourceIdentifier`` (the search index)."""
        self.fulfillments: dict[int, Fulfillment] = {}
        self.bulk_operations: dict[int, BulkOperation] = {}
        self.notifications: list[dict[str, Any]] = []
        """Customer e-mails the shop would have sent (receipts, shipping and cancel notices)."""
        self.next_order_number = 1001

    # --- basics -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.moment().replace(microsecond=0)

    def moment(self) -> datetime:
        """The shop's time with sub-second precision (``now`` prints whole seconds)."""
        return datetime.now(UTC) + timedelta(seconds=self.time_offset)

    def searchable(self, order: Order, lag: float) -> bool:
        """Whether the search index already holds ``order`` (``lag`` seconds after its write)."""
        if lag <= 0 or order.indexed_from is None:
            return True
        return self.moment() >= order.indexed_from + timedelta(seconds=lag)

    def advance(self, seconds: float) -> None:
        """Move simulated time forward (timestamps, token expiry, bucket, bulk jobs)."""
        self.time_offset += seconds
        self.clock.advance(seconds)

    def new_id(self, kind: str) -> int:
        start = {"Order": 5_100_000_000, "ProductVariant": 4_400_000_000}.get(kind, 1_000_000)
        self._ids[kind] = self._ids.get(kind, start) + 1
        return self._ids[kind]

    def add_location(self, name: str) -> Location:
        with self.lock:
            now = self.now()
            location = Location(
                id=self.new_id("Location"), name=name, created_at=now, updated_at=now
            )
            self.locations[location.id] = location
            return location

    def default_location(self) -> Location:
        if not self.locations:
            return self.add_location("Warehouse")
        return next(iter(self.locations.values()))

    # --- catalog ------------------------------------------------------------------------

    def add_product(
        self,
        sku: str | None,
        *,
        barcode: str | None = None,
        price: Decimal | str = "10.00",
        quantity: int = 0,
        title: str | None = None,
        metafields: Mapping[str, str] | None = None,
        location_id: int | None = None,
        tracked: bool = True,
        inventory_policy: str = "DENY",
    ) -> Variant:
        with self.lock:
            now = self.now()
            product = Product(
                id=self.new_id("Product"),
                title=title or f"Product {sku}",
                handle=re.sub(r"[^a-z0-9]+", "-", (title or f"product-{sku}").lower()).strip("-"),
                created_at=now,
                updated_at=now,
            )
            item = InventoryItem(
                id=self.new_id("InventoryItem"),
                variant_id=0,
                created_at=now,
                updated_at=now,
                tracked=tracked,
            )
            variant = Variant(
                id=self.new_id("ProductVariant"),
                product_id=product.id,
                inventory_item_id=item.id,
                sku=sku,
                barcode=barcode,
                title="Default Title",
                price=Decimal(str(price)),
                created_at=now,
                updated_at=now,
                inventory_policy=inventory_policy,
            )
            item.variant_id = variant.id
            for name, value in (metafields or {}).items():
                namespace, _, key = name.partition(".")
                variant.metafields[(namespace, key)] = Metafield(
                    id=self.new_id("Metafield"),
                    namespace=namespace,
                    key=key,
                    value=value,
                    created_at=now,
                    updated_at=now,
                )
            product.variant_ids.append(variant.id)
            self.products[product.id] = product
            self.variants[variant.id] = variant
            self.items[item.id] = item
            location = self.locations.get(location_id or 0) or self.default_location()
            self.levels[(item.id, location.id)] = InventoryLevel(
                id=self.new_id("InventoryLevel"),
                item_id=item.id,
                location_id=location.id,
                created_at=now,
                updated_at=now,
                available=quantity,
            )
            return variant

    def find_variant(self, ref: str | int) -> Variant:
        """A variant by GID, numeric id or SKU."""
        number = parse_gid(ref, "ProductVariant")
        if number is not None and number in self.variants:
            return self.variants[number]
        matches = [v for v in self.variants.values() if v.sku == str(ref)]
        if not matches:
            raise KeyError(f"no variant {ref!r}")
        return matches[0]

    def level_for(self, variant: Variant, location_id: int | None = None) -> InventoryLevel:
        if location_id is None:
            for (item_id, _), level in self.levels.items():
                if item_id == variant.inventory_item_id:
                    return level
            location_id = self.default_location().id
        key = (variant.inventory_item_id, location_id)
        if key not in self.levels:
            now = self.now()
            self.levels[key] = InventoryLevel(
                id=self.new_id("InventoryLevel"),
                item_id=variant.inventory_item_id,
                location_id=location_id,
                created_at=now,
                updated_at=now,
            )
        return self.levels[key]

    def set_stock(
        self, ref: str | int, quantity: int, location_id: int | None = None
    ) -> InventoryLevel:
        with self.lock:
            level = self.level_for(self.find_variant(ref), location_id)
            level.available = quantity
            level.updated_at = self.now()
            return level

    # --- orders -------------------------------------------------------------------------

    def create_order(self, data: Mapping[str, Any], options: Mapping[str, Any] | None) -> Order:
        """Validate an ``OrderCreateOrderInput`` and create the order; ``UserError`` otherwise."""
        with self.lock:
            options = options or {}
            now = self.now()
            currency = data.get("currency") or self.currency
            lines = [
                self._line(i, item, currency) for i, item in enumerate(data.get("lineItems") or [])
            ]
            if not lines:
                raise UserError(["order", "lineItems"], "Line items can't be blank")
            order_taxes = [
                self._tax(t, currency, ["order", "taxLines", str(i)], None)
                for i, t in enumerate(data.get("taxLines") or [])
            ]
            if order_taxes and any(li.tax_lines for li in lines):
                raise UserError(
                    ["order", "taxLines"],
                    "Tax lines must be associated with either order or line item but not both",
                )
            shipping = [
                self._shipping(i, s, currency)
                for i, s in enumerate(data.get("shippingLines") or [])
            ]
            email = data.get("email")
            if email and not _EMAIL.match(email):
                raise UserError(["order", "email"], "Email is invalid")
            processed = (
                datetime.fromisoformat(data["processedAt"].replace("Z", "+00:00"))
                if data.get("processedAt")
                else now
            )
            if processed > now + timedelta(minutes=1):
                raise UserError(
                    ["order", "processedAt"],
                    "Processed at can't be in the future",
                    "PROCESSED_AT_INVALID",
                )
            order = Order(
                id=self.new_id("Order"),
                number=self.next_order_number,
                created_at=now,
                updated_at=now,
                processed_at=processed,
                currency=currency,
                line_items=lines,
                shipping_lines=shipping,
                order_tax_lines=order_taxes,
                email=email,
                phone=data.get("phone"),
                note=data.get("note"),
                po_number=data.get("poNumber"),
                source_name=data.get("sourceName"),
                source_identifier=data.get("sourceIdentifier"),
                tags=list(data.get("tags") or []),
                custom_attributes=[
                    (a["key"], a["value"]) for a in data.get("customAttributes") or []
                ],
                taxes_included=bool(data.get("taxesIncluded")),
                test=bool(data.get("test")),
                shipping_address=data.get("shippingAddress"),
                billing_address=data.get("billingAddress"),
            )
            self._apply_discount(order, data.get("discountCode"))
            order.transactions = [
                self._transaction(i, t, currency, now)
                for i, t in enumerate(data.get("transactions") or [])
            ]
            order.financial_status = data.get("financialStatus") or self._derived_status(order)
            self._claim_inventory(order, options.get("inventoryBehaviour") or "BYPASS")
            self.next_order_number += 1
            order.indexed_from = self.moment()
            self.orders[order.id] = order
            if options.get("sendReceipt"):
                self.notify("order_confirmation", order)
            if options.get("sendFulfillmentReceipt"):
                self.notify("shipping_confirmation", order)
            if order.source_identifier:
                self.source_words.add(order.source_identifier, order.id)
            return order

    def _tax(
        self, data: Mapping[str, Any], currency: str, path: list[str], base: Decimal | None
    ) -> TaxLine:
        rate = Decimal(str(data["rate"]))
        amount = _money(data.get("priceSet"), currency, [*path, "priceSet"])
        if amount is None:
            amount = (rate * (base or ZERO)).quantize(Decimal("0.01"))
        return TaxLine(
            title=data["title"],
            rate=rate,
            amount=amount,
            channel_liable=bool(data.get("channelLiable")),
        )

    def _line(self, index: int, data: Mapping[str, Any], currency: str) -> LineItem:
        path = ["order", "lineItems", str(index)]
        if data["quantity"] < 1:
            raise UserError([*path, "quantity"], "Quantity must be greater than or equal to 1")
        variant = None
        if data.get("variantId"):
            number = parse_gid(data["variantId"], "ProductVariant")
            variant = self.variants.get(number or -1)
            if variant is None:
                raise UserError([*path, "variantId"], "Product variant does not exist")
        price = _money(data.get("priceSet"), currency, [*path, "priceSet"])
        if price is None:
            if variant is None:
                raise UserError([*path, "priceSet"], "Price can't be blank for a custom line item")
            price = variant.price
        title = data.get("title") or (self.products[variant.product_id].title if variant else None)
        if not title:
            raise UserError([*path, "title"], "Title can't be blank")
        quantity = int(data["quantity"])
        line = LineItem(
            id=self.new_id("LineItem"),
            title=title,
            quantity=quantity,
            price=price,
            sku=data.get("sku") or (variant.sku if variant else None),
            variant_id=variant.id if variant else None,
            product_id=variant.product_id
            if variant
            else parse_gid(data.get("productId"), "Product"),
            variant_title=data.get("variantTitle") or (variant.title if variant else None),
            properties=[(p["name"], p["value"]) for p in data.get("properties") or []],
            requires_shipping=bool(data.get("requiresShipping", True)),
            taxable=bool(data.get("taxable", True)),
        )
        line.tax_lines = [
            self._tax(t, currency, [*path, "taxLines", str(i)], line.total)
            for i, t in enumerate(data.get("taxLines") or [])
        ]
        return line

    def _shipping(self, index: int, data: Mapping[str, Any], currency: str) -> ShippingLine:
        path = ["order", "shippingLines", str(index)]
        price = _money(data["priceSet"], currency, [*path, "priceSet"]) or ZERO
        line = ShippingLine(
            id=self.new_id("ShippingLine"),
            title=data["title"],
            price=price,
            code=data.get("code"),
            source=data.get("source"),
        )
        line.tax_lines = [
            self._tax(t, currency, [*path, "taxLines", str(i)], price)
            for i, t in enumerate(data.get("taxLines") or [])
        ]
        return line

    def _apply_discount(self, order: Order, data: Mapping[str, Any] | None) -> None:
        if not data:
            return
        fixed = data.get("itemFixedDiscountCode")
        percentage = data.get("itemPercentageDiscountCode")
        free_shipping = data.get("freeShippingDiscountCode")
        if sum(1 for d in (fixed, percentage, free_shipping) if d) > 1:
            raise UserError(["order", "discountCode"], "Only one discount code can be applied")
        if fixed:
            amount = (
                _money(
                    fixed.get("amountSet"),
                    order.currency,
                    ["order", "discountCode", "itemFixedDiscountCode", "amountSet"],
                )
                or ZERO
            )
            order.item_discount = min(amount, order.line_total)
            order.discount_code = fixed["code"]
        elif percentage:
            rate = Decimal(str(percentage.get("percentage") or 0)) / 100
            order.item_discount = (order.line_total * rate).quantize(Decimal("0.01"))
            order.discount_code = percentage["code"]
        elif free_shipping:
            for shipping_line in order.shipping_lines:
                shipping_line.discount = shipping_line.price
            order.discount_code = free_shipping["code"]
        remaining = order.item_discount
        for index, line in enumerate(order.line_items):
            if index == len(order.line_items) - 1:
                line.discount = remaining
            else:
                share = (
                    (order.item_discount * line.total / order.line_total).quantize(Decimal("0.01"))
                    if order.line_total
                    else ZERO
                )
                line.discount = share
                remaining -= share

    def _transaction(
        self, index: int, data: Mapping[str, Any], currency: str, now: datetime
    ) -> Transaction:
        amount = _money(
            data["amountSet"], currency, ["order", "transactions", str(index), "amountSet"]
        )
        processed = data.get("processedAt")
        return Transaction(
            id=self.new_id("OrderTransaction"),
            kind=data.get("kind") or "SALE",
            status=data.get("status") or "SUCCESS",
            amount=amount or ZERO,
            gateway=data.get("gateway"),
            created_at=now,
            processed_at=datetime.fromisoformat(processed.replace("Z", "+00:00"))
            if processed
            else now,
        )

    @staticmethod
    def _derived_status(order: Order) -> str:
        if order.received >= order.total:
            return "PAID"
        return "PARTIALLY_PAID" if order.received > 0 else "PENDING"

    def _claim_inventory(self, order: Order, behaviour: str) -> None:
        if behaviour == "BYPASS":
            return
        claims: list[tuple[LineItem, InventoryLevel]] = []
        for index, line in enumerate(order.line_items):
            variant = self.variants.get(line.variant_id or -1)
            if variant is None or not self.items[variant.inventory_item_id].tracked:
                continue
            level = self.level_for(variant)
            if (
                behaviour == "DECREMENT_OBEYING_POLICY"
                and variant.inventory_policy == "DENY"
                and level.available < line.quantity
            ):
                raise UserError(
                    ["order", "lineItems", str(index)],
                    f"Unable to claim inventory for {line.title}: only {level.available} available",
                    "INVENTORY_CLAIM_FAILED",
                )
            claims.append((line, level))
        for line, level in claims:
            level.available -= line.quantity
            level.committed += line.quantity
            level.updated_at = order.created_at
            line.claimed_location_id = level.location_id

    def add_order(
        self,
        lines: Iterable[tuple[str, int]],
        *,
        source_name: str = "web",
        source_identifier: str | None = None,
        tags: Iterable[str] = (),
    ) -> Order:
        """An order placed in the shop itself (not by ordersync)."""
        items = []
        for sku, quantity in lines:
            variant = self.find_variant(sku)
            items.append({"variantId": gid("ProductVariant", variant.id), "quantity": quantity})
        return self.create_order(
            {
                "lineItems": items,
                "sourceName": source_name,
                "sourceIdentifier": source_identifier,
                "tags": list(tags),
                "financialStatus": "PAID",
            },
            {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"},
        )

    def notify(self, kind: str, order: Order) -> None:
        """Record a customer notification (sent whenever asked; Shopify needs an address)."""
        self.notifications.append(
            {"kind": kind, "order": order.name, "to": order.email, "at": iso(self.now())}
        )

    def order(self, ref: str | int) -> Order:
        number = parse_gid(ref, "Order")
        if number is None or number not in self.orders:
            raise KeyError(f"no order {ref!r}")
        return self.orders[number]

    def cancel_order(
        self,
        ref: str | int,
        *,
        reason: str = "OTHER",
        restock: bool = False,
        refund: bool = False,
        staff_note: str | None = None,
        notify_customer: bool = False,
    ) -> Order:
        with self.lock:
            try:
                order = self.order(ref)
            except KeyError:
                raise UserError(["orderId"], "Order does not exist", "NOT_FOUND") from None
            if order.cancelled_at is not None:
                raise UserError(
                    ["orderId"], "Cannot cancel an order that has already been cancelled"
                )
            now = self.now()
            order.cancelled_at = order.closed_at = order.updated_at = now
            order.cancel_reason = reason
            order.staff_note = staff_note
            if refund and order.received > 0:
                order.financial_status = "REFUNDED"
            for line in order.line_items:
                open_quantity = line.quantity - line.fulfilled
                if line.claimed_location_id is None or open_quantity <= 0:
                    continue
                level = self.levels[
                    (
                        self.variants[line.variant_id or -1].inventory_item_id,
                        line.claimed_location_id,
                    )
                ]
                level.committed -= open_quantity
                if restock:
                    level.available += open_quantity
                level.updated_at = now
            if notify_customer:
                self.notify("order_cancelled", order)
            return order

    def fulfil(
        self,
        ref: str | int,
        lines: Iterable[tuple[str | int, int]] | None = None,
        *,
        tracking_company: str | None = None,
        tracking_number: str | None = None,
        tracking_url: str | None = None,
    ) -> Fulfillment:
        """Ship some (or all remaining) units; lines are ``(sku or line item id, quantity)``."""
        with self.lock:
            order = self.order(ref)
            if order.cancelled_at is not None:
                raise ValueError(f"order {order.name} is cancelled")
            wanted: list[tuple[LineItem, int]] = []
            if lines is None:
                wanted = [
                    (li, li.quantity - li.fulfilled)
                    for li in order.line_items
                    if li.quantity > li.fulfilled
                ]
            else:
                for key, quantity in lines:
                    line = next(
                        (
                            li
                            for li in order.line_items
                            if li.sku == str(key) or li.id == parse_gid(key, "LineItem")
                        ),
                        None,
                    )
                    if line is None:
                        raise ValueError(f"order {order.name} has no line {key!r}")
                    if quantity < 1 or quantity > line.quantity - line.fulfilled:
                        raise ValueError(
                            f"cannot ship {quantity} of {key!r}: "
                            f"{line.quantity - line.fulfilled} left"
                        )
                    wanted.append((line, quantity))
            if not wanted:
                raise ValueError(f"order {order.name} has nothing left to ship")
            now = self.now()
            fulfillment = Fulfillment(
                id=self.new_id("Fulfillment"),
                order_id=order.id,
                name=f"{order.name}-F{len(order.fulfillment_ids) + 1}",
                created_at=now,
                updated_at=now,
                lines=[
                    FulfillmentLine(
                        id=self.new_id("FulfillmentLineItem"), line_item_id=li.id, quantity=q
                    )
                    for li, q in wanted
                ],
                tracking=[Tracking(tracking_company, tracking_number, tracking_url)]
                if tracking_company or tracking_number
                else [],
                location_id=self.default_location().id,
            )
            for line, quantity in wanted:
                line.fulfilled += quantity
                if line.claimed_location_id is not None and line.variant_id in self.variants:
                    level = self.levels[
                        (self.variants[line.variant_id].inventory_item_id, line.claimed_location_id)
                    ]
                    level.committed -= quantity
                    level.updated_at = now
            self.fulfillments[fulfillment.id] = fulfillment
            order.fulfillment_ids.append(fulfillment.id)
            order.updated_at = now
            return fulfillment

    def cancel_fulfillment(self, ref: str | int) -> Fulfillment:
        """Cancel a fulfilment as the merchant would: its units are unshipped again."""
        with self.lock:
            fulfillment = self.fulfillments.get(parse_gid(ref, "Fulfillment") or -1)
            if fulfillment is None:
                raise KeyError(f"no fulfillment {ref!r}")
            if fulfillment.status != "SUCCESS":
                raise ValueError(f"fulfillment {fulfillment.name} is {fulfillment.status}")
            now = self.now()
            order = self.orders[fulfillment.order_id]
            lines = {li.id: li for li in order.line_items}
            for shipped in fulfillment.lines:
                line = lines[shipped.line_item_id]
                line.fulfilled -= shipped.quantity
                if line.claimed_location_id is not None and line.variant_id in self.variants:
                    level = self.levels[
                        (self.variants[line.variant_id].inventory_item_id, line.claimed_location_id)
                    ]
                    level.committed += shipped.quantity
                    level.updated_at = now
            fulfillment.status = "CANCELLED"
            fulfillment.updated_at = order.updated_at = now
            return fulfillment

    # --- reports for tests --------------------------------------------------------------

    def summary(self, order: Order) -> dict[str, Any]:
        """A JSON-ready view of one order (admin API)."""

        def taxes(lines: list[TaxLine]) -> str:
            return str(sum((t.amount for t in lines), ZERO))

        return {
            "id": gid("Order", order.id),
            "legacy_id": order.id,
            "name": order.name,
            "source_name": order.source_name,
            "source_identifier": order.source_identifier,
            "tags": order.tags,
            "email": order.email,
            "currency": order.currency,
            "taxes_included": order.taxes_included,
            "financial_status": order.financial_status,
            "fulfillment_status": order.fulfillment_status,
            "cancelled_at": iso(order.cancelled_at),
            "cancel_reason": order.cancel_reason,
            "updated_at": iso(order.updated_at),
            "shipping_address": order.shipping_address,
            "billing_address": order.billing_address,
            "lines": [
                {
                    "id": gid("LineItem", li.id),
                    "sku": li.sku,
                    "variant_id": gid("ProductVariant", li.variant_id) if li.variant_id else None,
                    "quantity": li.quantity,
                    "fulfilled": li.fulfilled,
                    "price": str(li.price),
                    "discount": str(li.discount),
                    "tax": taxes(li.tax_lines),
                    "tax_rates": [str(t.rate) for t in li.tax_lines],
                    "properties": dict(li.properties),
                }
                for li in order.line_items
            ],
            "shipping_lines": [
                {"title": s.title, "price": str(s.price), "tax": taxes(s.tax_lines)}
                for s in order.shipping_lines
            ],
            "transactions": [
                {"kind": t.kind, "status": t.status, "amount": str(t.amount), "gateway": t.gateway}
                for t in order.transactions
            ],
            "fulfillments": [
                {
                    "id": gid("Fulfillment", f.id),
                    "status": f.status,
                    "tracking_company": f.tracking[0].company if f.tracking else None,
                    "tracking_number": f.tracking[0].number if f.tracking else None,
                    "lines": [
                        {"line_item_id": gid("LineItem", fl.line_item_id), "quantity": fl.quantity}
                        for fl in f.lines
                    ],
                }
                for f in (self.fulfillments[i] for i in order.fulfillment_ids)
            ],
            "totals": {
                "subtotal": str(order.subtotal),
                "shipping": str(order.shipping),
                "tax": str(order.tax),
                "discounts": str(order.discounts),
                "total": str(order.total),
                "received": str(order.received),
            },
        }

    def count_by_source(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self.orders.values():
            if order.source_identifier:
                counts[order.source_identifier] = counts.get(order.source_identifier, 0) + 1
        return counts
