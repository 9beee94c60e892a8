"""Magento 2 (REST V1) as the shop side of a connection.

- Orders: ``PUT /V1/orders/create`` with Amazon's amounts (default), or the guest-cart
  checkout followed by ``POST /V1/orders`` to put Amazon's amounts on the placed order.
  The Amazon order id is ``ext_order_id``; :meth:`find_order` searches it before any create.
  Neither writes stock: MSI deducts the source when the order ships, and the stock read
  subtracts what open orders have not shipped yet (:mod:`plugins.magento.stock`).
- Products: :mod:`plugins.magento.products`; shipments and cancellations:
  :mod:`plugins.magento.changes`; MSI stock: :mod:`plugins.magento.stock`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

from engine.errors import (
    APIError,
    AuthError,
    ConfigError,
    FailureReason,
    FatalAPIError,
    ItemError,
    RetriableAPIError,
)
from engine.http import RetryPolicy
from engine.interfaces import ConnectorContext, ShopConnector
from engine.models import (
    CheckResult,
    Money,
    Order,
    ProductRef,
    ShopChanges,
    ShopOrderRef,
    StockPage,
)
from plugins.magento import mapping
from plugins.magento.changes import ChangeReader
from plugins.magento.client import Filter, Group, MagentoClient
from plugins.magento.mapping import JSON
from plugins.magento.products import PRODUCTS, chunks, in_groups, products_by
from plugins.magento.settings import MagentoSettings
from plugins.magento.stock import StockReader

ORDERS = "/V1/orders"
SOURCE_ITEMS = "/V1/inventory/source-items"
LOOKUP_BATCH = 50
"""Amazon order ids per ``find_order_refs`` search."""
ENTITY_ASC = [("entity_id", "ASC")]
UNSTAMPED_CLOCK_SKEW = timedelta(hours=1)
"""How far before the Amazon purchase time an unstamped cart order may seem placed."""


class MagentoConnector(ShopConnector):
    """Shop connector for Magento 2.4 / Adobe Commerce REST V1."""

    settings_model: ClassVar[type[MagentoSettings]] = MagentoSettings
    identification_attributes: ClassVar[frozenset[str]] = frozenset({"sku", "id", "ean"})
    """``sku``; ``id`` = product entity id; ``ean`` = the ``ean_attribute`` custom attribute."""

    settings: MagentoSettings

    def __init__(
        self,
        settings: MagentoSettings,
        context: ConnectorContext,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(settings, context)
        self.client = MagentoClient(settings, context, retry)
        self.retry = self.client.api.retry
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        """Clock for cursors; tests share the simulator's."""
        self._store: JSON | None = None
        self._stock = StockReader(self.client, settings, lambda: self.now())

    @property
    def log(self) -> logging.Logger:
        return self.context.logger

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- check ---------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        s = self.settings
        try:
            store = await self._store_config()
        except AuthError as exc:
            return CheckResult(
                ok=False, message=self._auth_message(exc), details={"status": exc.status}
            )
        except ConfigError as exc:
            return CheckResult(ok=False, message=str(exc))
        except RetriableAPIError as exc:
            return CheckResult(ok=False, message=f"Cannot reach Magento at {s.rest_root}: {exc}")
        except APIError as exc:
            return CheckResult(ok=False, message=f"Magento refused the store check: {exc}")
        probes: list[tuple[str, str, str, list[Group]]] = [
            ("products (Magento_Catalog::products)", PRODUCTS, "products_search", []),
            ("orders (Magento_Sales::sales)", ORDERS, "orders_search", []),
            (
                "MSI source items (Magento_InventoryApi::source)",
                SOURCE_ITEMS,
                "source_items_search",
                [[Filter("source_code", s.source_code)]],
            ),
        ]
        missing = []
        for label, path, operation, groups in probes:
            try:
                await self.client.search(path, operation, groups, page_size=1)
            except AuthError as exc:
                missing.append(f"{label}: {exc.message}")
        if missing:
            return CheckResult(
                ok=False,
                message="The integration may not read "
                + "; ".join(missing)
                + ". Grant these resources under System > Extensions > Integrations > API.",
            )
        details = {
            "store_id": store.get("id"),
            "base_currency": store.get("base_currency_code"),
            "timezone": store.get("timezone"),
            "auth_mode": s.auth_mode,
        }
        return CheckResult(
            ok=True,
            message=(
                f"Connected to Magento store {s.store_code!r} "
                f"({store.get('base_currency_code')}, {store.get('timezone')}) via {s.auth_mode}."
            ),
            details=details,
        )

    def _auth_message(self, exc: AuthError) -> str:
        text = exc.message
        low = text.lower()
        if any(word in low for word in ("signature", "nonce", "timestamp")):
            return (
                f"Magento rejected the OAuth 1.0a signature ({text}). Check consumer_secret and "
                "access_token_secret, and that base_url is exactly the URL Magento sees "
                "(scheme, host, port, path): the signature covers it."
            )
        if ("consumer" in low and ("key" in low or "exist" in low)) or "token" in low:
            return (
                f"Magento does not accept this integration's keys ({text}). Re-activate the "
                "integration and copy consumer key/secret and access token/secret again."
            )
        if self.settings.auth_mode == "bearer":
            return (
                f"Magento rejected the access token as a bearer token ({text}). Since 2.4.4 "
                "integration tokens work as bearer tokens only with Stores > Configuration > "
                "Services > OAuth > Consumer Settings > 'Allow OAuth Access Tokens to be used as "
                "standalone Bearer tokens' = Yes; otherwise use auth_mode 'oauth'."
            )
        return (
            f"Magento refused access ({text}). Check the integration's API resources "
            "(System > Extensions > Integrations)."
        )

    async def _store_config(self) -> JSON:
        if self._store is None:
            configs = await self.client.call("GET", "/V1/store/storeConfigs", "store_configs")
            codes = [c.get("code") for c in configs if isinstance(c, dict)]
            found = [c for c in configs if c.get("code") == self.settings.store_code]
            if not found:
                raise ConfigError(
                    [
                        (
                            "store_code",
                            f"store {self.settings.store_code!r} not found; known: {codes}",
                        )
                    ]
                )
            self._store = found[0]
        return self._store

    # --- products ------------------------------------------------------------------------

    async def resolve_products(
        self, attribute: str, skus: Sequence[str]
    ) -> Mapping[str, ProductRef]:
        if attribute not in self.identification_attributes:
            raise ValueError(f"magento cannot identify products by {attribute!r}")
        wanted = list(dict.fromkeys(skus))
        if attribute == "id":
            wanted = [v for v in wanted if v.isdigit()]
        products = await products_by(self.client, self.settings, attribute, wanted)
        return {key: mapping.product_ref(p, key) for key, p in products.items()}

    # --- orders --------------------------------------------------------------------------

    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        raw = await self._find_raw(marketplace_order_id)
        return self._ref(raw) if raw else None

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        page = await self.client.search(
            ORDERS,
            "orders_search",
            [[Filter("ext_order_id", marketplace_order_id)]],
            page_size=10,
            sort=[("entity_id", "ASC")],
        )
        return [self._ref(raw) for raw in page.items]

    async def find_order_refs(
        self, marketplace_order_ids: Sequence[str], *, attempted: bool = False
    ) -> dict[str, ShopOrderRef]:
        """One ``ext_order_id in (...)`` search per 50 ids; the oldest order wins a tie.

        Magento's searchCriteria reads the orders table itself: ``attempted`` changes
        nothing."""
        wanted = {oid.casefold(): oid for oid in marketplace_order_ids}  # MySQL collation
        found: dict[str, ShopOrderRef] = {}
        for batch in chunks(list(dict.fromkeys(marketplace_order_ids)), LOOKUP_BATCH):
            for raw in await self.client.search_all(
                ORDERS, "orders_search", in_groups("ext_order_id", batch), sort=ENTITY_ASC
            ):
                oid = wanted.get(str(raw.get("ext_order_id") or "").casefold())
                if oid is not None and oid not in found:
                    found[oid] = self._ref(raw)
        return found

    async def _find_raw(self, marketplace_order_id: str) -> JSON | None:
        page = await self.client.search(
            ORDERS,
            "orders_search",
            [[Filter("ext_order_id", marketplace_order_id)]],
            page_size=10,
            sort=[("entity_id", "ASC")],
        )
        if page.total_count > 1:
            self.log.warning(
                "magento: %d orders carry ext_order_id %s; using entity %s",
                page.total_count,
                marketplace_order_id,
                page.items[0].get("entity_id"),
            )
        return page.items[0] if page.items else None

    @staticmethod
    def _ref(raw: JSON) -> ShopOrderRef:
        total = raw.get("grand_total")
        currency = raw.get("order_currency_code")
        return ShopOrderRef(
            id=str(raw["entity_id"]),
            number=raw.get("increment_id"),
            cancelled=raw.get("state") == "canceled",
            total=Money(amount=Decimal(str(total)), currency=currency)
            if total is not None and currency
            else None,
        )

    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        existing = await self._find_raw(order.marketplace_order_id)
        if existing is not None:
            return self._ref(existing)
        self._validate(order, products)
        if self.settings.order_create_mode == "orders_create":
            raw = await self._create_direct(order, products)
        else:
            raw = await self._create_via_cart(order, products)
        return self._ref(raw)

    def _validate(self, order: Order, products: Mapping[str, ProductRef]) -> None:
        if not order.lines:
            raise ItemError(FailureReason.INVALID_ORDER, "order has no lines")
        unknown = sorted({line.sku for line in order.lines} - set(products))
        if unknown:
            raise ItemError(FailureReason.UNKNOWN_SKU, f"no Magento product for {unknown}")
        address = order.shipping_address
        missing = address.missing_for_shipping() if address else ["shipping_address"]
        if missing:
            raise ItemError(FailureReason.INVALID_ADDRESS, f"missing {', '.join(missing)}")
        amounts = mapping.order_amounts(order)
        if amounts.computed_total != amounts.grand_total:
            self.log.warning(
                "magento: order %s lines add up to %s but Amazon's total is %s; "
                "grand_total uses Amazon's",
                order.marketplace_order_id,
                amounts.computed_total,
                amounts.grand_total,
            )

    async def _create_with_lookup(self, order: Order, create: Callable[[], Any], what: str) -> JSON:
        """Send a non-idempotent create; after an ambiguous failure look before sending again."""
        for attempt in range(1, self.retry.max_tries + 1):
            try:
                return dict(await create())
            except (RetriableAPIError, FatalAPIError) as exc:
                found = await self._find_raw(order.marketplace_order_id)
                if found is not None:
                    return found
                if isinstance(exc, FatalAPIError) or attempt == self.retry.max_tries:
                    raise
                await asyncio.sleep(self._backoff(attempt, exc.retry_after))
                self.log.info("magento: retrying %s for %s", what, order.marketplace_order_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        wait = self.retry.initial * 2.0 ** (attempt - 1)
        if retry_after is not None:
            wait = retry_after
        return min(wait, self.retry.max_wait)

    async def _create_direct(self, order: Order, products: Mapping[str, ProductRef]) -> JSON:
        store = await self._store_config()
        entity = mapping.order_entity(order, products, self.settings, int(store["id"]))

        async def create() -> Any:
            return await self.client.call(
                "PUT", f"{ORDERS}/create", "orders_create", body={"entity": entity}, retry=False
            )

        return await self._create_with_lookup(order, create, "PUT /V1/orders/create")

    async def _comment(self, raw: JSON, text: str) -> None:
        order_id = int(raw["entity_id"])
        history = {
            "comment": text,
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
            "parent_id": order_id,
            "status": raw.get("status") or "processing",
        }
        await self.client.call(
            "POST",
            f"{ORDERS}/{order_id}/comments",
            "order_comment",
            body={"statusHistory": history},
        )

    async def _create_via_cart(self, order: Order, products: Mapping[str, ProductRef]) -> JSON:
        s = self.settings
        lines = mapping.cart_lines(order, products)
        placed = await self._find_unstamped(order, lines)
        if placed is None:
            placed = await self._place_cart(order, lines)
        else:
            self.log.info(
                "magento: order %s was placed for %s but never stamped; finishing it",
                placed.get("increment_id"),
                order.marketplace_order_id,
            )
        aligned = mapping.aligned_entity(order, placed, lines, s)
        saved = await self.client.call("POST", ORDERS, "orders_save", body={"entity": aligned})
        return dict(saved)

    async def _find_unstamped(self, order: Order, lines: Sequence[mapping.CartLine]) -> JSON | None:
        """A cart order placed for ``order`` whose stamping ``POST /V1/orders`` never ran
        (it failed, or the process died in between): no ``ext_order_id``, the buyer's
        e-mail, placed since the purchase, not cancelled, and our payment method, SKUs,
        quantities and recipient. Placing another cart would sell the units twice."""
        since = order.purchased_at - UNSTAMPED_CLOCK_SKEW
        groups: list[Group] = [
            [Filter("ext_order_id", "1", "null")],
            [Filter("customer_email", mapping.buyer_email(order, self.settings))],
            [Filter("created_at", mapping.to_magento_time(since), "gteq")],
            [Filter("state", "canceled", "neq")],
        ]
        candidates = await self.client.search_all(
            ORDERS, "orders_search", groups, sort=[("entity_id", "ASC")]
        )
        for raw in candidates:
            if mapping.placed_for(raw, order, lines, self.settings):
                return raw
        return None

    async def _place_cart(self, order: Order, lines: Sequence[mapping.CartLine]) -> JSON:
        """Guest cart → items → shipping information → place: the order, not yet stamped."""
        s = self.settings
        cart_id = str(await self.client.call("POST", "/V1/guest-carts", "guest_cart_create"))
        cart = f"/V1/guest-carts/{quote(cart_id, safe='')}"
        for line in lines:
            item = {"sku": line.sku, "qty": line.amounts.qty, "quote_id": cart_id}
            # Not idempotent: a failure abandons this cart and the engine retries the order.
            await self.client.call(
                "POST", f"{cart}/items", "guest_cart_item_add", body={"cartItem": item}, retry=False
            )
        email = mapping.buyer_email(order, s)
        ship_to = order.shipping_address
        assert ship_to is not None
        info = {
            "shipping_address": mapping.quote_address(ship_to, email, s),
            "billing_address": mapping.quote_address(order.billing_address or ship_to, email, s),
            "shipping_carrier_code": s.shipping_carrier_code,
            "shipping_method_code": s.shipping_method_code,
        }
        await self.client.call(
            "POST",
            f"{cart}/shipping-information",
            "guest_cart_shipping_information",
            body={"addressInformation": info},
        )
        try:
            order_id = await self.client.call(
                "PUT",
                f"{cart}/order",
                "guest_cart_place_order",
                body={"paymentMethod": {"method": s.payment_method}},
                retry=False,
            )
        except RetriableAPIError:
            order_id = await self._placed_order_id(cart)
            if order_id is None:
                raise
        return dict(await self.client.call("GET", f"{ORDERS}/{int(order_id)}", "order_get"))

    async def _placed_order_id(self, cart: str) -> int | None:
        """After an ambiguous place-order failure: did the cart become an order?"""
        data = await self.client.call("GET", cart, "guest_cart_get")
        reserved = data.get("reserved_order_id")
        if data.get("is_active") is not False or not reserved:
            return None
        page = await self.client.search(
            ORDERS, "orders_search", [[Filter("increment_id", str(reserved))]], page_size=1
        )
        return int(page.items[0]["entity_id"]) if page.items else None

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        path = f"{ORDERS}/{int(ref.id)}"
        raw = await self.client.call("GET", path, "order_get")
        if raw.get("state") == "canceled":
            return
        if not mapping.has_marker(raw, mapping.CANCEL_MARKER):
            await self._comment(raw, f"{mapping.CANCEL_MARKER} ({order.marketplace_order_id})")
        if await self.client.call("POST", f"{path}/cancel", "order_cancel") is True:
            return
        raw = await self.client.call("GET", path, "order_get")
        if raw.get("state") == "canceled":
            return
        raise ItemError(
            FailureReason.SHOP_REJECTED,
            f"Magento cannot cancel order {raw.get('increment_id')} in state "
            f"{raw.get('state')!r}: shipped or invoiced items need a credit memo",
        )

    # --- shipments, cancellations, stock --------------------------------------------------

    async def changes_since(self, cursor: str | None) -> ShopChanges:
        return await ChangeReader(self.client, self.settings, lambda: self.now()).read(cursor)

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        if attribute not in self.identification_attributes:
            raise ValueError(f"magento cannot key stock by {attribute!r}")
        return await self._stock.read(attribute, cursor)
