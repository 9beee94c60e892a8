"""``ShopConnector`` for Shopify on the GraphQL Admin API."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, cast

from pydantic import BaseModel

from engine.errors import (
    APIError,
    AuthError,
    ConfigError,
    FailureReason,
    FatalAPIError,
    ItemError,
    RetriableAPIError,
)
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
from plugins.shopify import queries as q
from plugins.shopify.changes import ChangeReader
from plugins.shopify.client import PLATFORM, ShopifyClient, user_errors_message
from plugins.shopify.mapping import (
    any_of,
    expected_total,
    gid,
    order_input,
    parse_time,
    search_value,
)
from plugins.shopify.products import ProductResolver
from plugins.shopify.settings import DEFAULT_API_VERSION, ShopifySettings, parse_attribute
from plugins.shopify.stock import StockReader

JOB_POLLS = 10
FIND_BATCH = 50
"""Marketplace order ids per idempotency search (``source_identifier:"A" OR ...``)."""
CREATE_REQUESTS = 2
"""Batched ``orderCreate`` requests in flight at once (the cost bucket still paces them)."""
JOB_POLL_SECONDS = 1.0
RECENT_PAGES = 10
"""Pages of :data:`queries.RECENT_ORDERS_PAGE` newest orders read at most per lookup."""


class ShopifyConnector(ShopConnector):
    """Creates Amazon orders in Shopify, reads fulfillments, cancellations and stock."""

    settings_model: ClassVar[type[BaseModel]] = ShopifySettings
    identification_attributes: ClassVar[frozenset[str]] = frozenset(
        {"sku", "barcode", "id", "metafield:"}
    )
    """``id`` is the variant id; ``metafield:<namespace>.<key>`` a variant metafield."""
    primary_key: ClassVar[str] = "sourceIdentifier"
    cursor_field: ClassVar[str] = "updated_at"
    is_sorted: ClassVar[bool] = True
    page_size_param: ClassVar[str] = "first"
    next_token_field: ClassVar[str] = "endCursor"  # noqa: S105 - a field name

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.config = cast(ShopifySettings, settings)
        self.log = context.logger
        self.client = ShopifyClient(self.config, context)
        self.products = ProductResolver(self.client, self.config, self.log, context.time_scale)
        self.changes = ChangeReader(self.client, self.config, self.log)
        self.stock = StockReader(self.client, self.config, context.time_scale, self.log)
        self._location: dict[str, Any] | None = None

    @classmethod
    def accepts_attribute(cls, attribute: str) -> bool:
        """Also checks the shape of ``metafield:<namespace>.<key>``."""
        try:
            parse_attribute(attribute)
        except ValueError:
            return False
        return super().accepts_attribute(attribute)

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- connection ---------------------------------------------------------------------

    async def check(self) -> CheckResult:
        try:
            shop = (await self.client.execute(q.SHOP))["shop"]
        except AuthError as exc:
            return CheckResult(
                ok=False,
                message=f"Shopify rejected the credentials for {self.config.shop_domain}: {exc.message}. "
                "Check access_token (or client_id/client_secret) and that the app is installed.",
                details={"status": exc.status, "code": exc.code},
            )
        except APIError as exc:
            return CheckResult(ok=False, message=f"Shopify API call failed: {exc}")
        try:
            location = await self.location()
        except ConfigError as exc:
            return CheckResult(
                ok=False, message=str(exc), details={"shop": shop["myshopifyDomain"]}
            )
        served = self.client.served_version or self.config.api_version
        message = (
            f"connected to {shop['name']} ({shop['myshopifyDomain']}), "
            f"stock location {location['name']!r}"
        )
        if served != self.config.api_version:
            message += (
                f"; Shopify answered with API version {served}, not {self.config.api_version}: "
                "the version asked for is not supported (any more); set api_version to a "
                f"supported one (the default is {DEFAULT_API_VERSION})"
            )
        return CheckResult(
            ok=True,
            message=message,
            details={
                "shop": shop["myshopifyDomain"],
                "currency": shop["currencyCode"],
                "location_id": location["id"],
                "api_version": self.config.api_version,
                "api_version_served": served,
            },
        )

    async def location(self) -> dict[str, Any]:
        """The configured stock location (id, name), looked up once."""
        if self._location is None:
            self._location = await self._find_location(self.config.location)
        return self._location

    async def _find_location(self, wanted: str | None) -> dict[str, Any]:
        if wanted and (wanted.isdigit() or wanted.startswith("gid://shopify/Location/")):
            found = (await self.client.execute(q.LOCATION_BY_ID, {"id": gid("Location", wanted)}))[
                "location"
            ]
            if found is None:
                raise ConfigError([("location", f"no Shopify location with id {wanted}")])
            return cast(dict[str, Any], found)
        locations: list[dict[str, Any]] = []
        after = None
        while True:
            page = (await self.client.execute(q.LOCATIONS, {"first": 50, "after": after}))[
                "locations"
            ]
            locations.extend(page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        active = [loc for loc in locations if loc["isActive"]]
        names = ", ".join(repr(loc["name"]) for loc in active) or "none"
        if wanted is None:
            if len(active) == 1:
                return active[0]
            raise ConfigError(
                [("location", f"the shop has several locations; choose one of {names}")]
            )
        matches = [loc for loc in active if loc["name"].casefold() == wanted.strip().casefold()]
        if not matches:
            raise ConfigError(
                [("location", f"unknown location {wanted!r}; active locations: {names}")]
            )
        return matches[0]

    # --- products -----------------------------------------------------------------------

    async def resolve_products(
        self, attribute: str, skus: Sequence[str]
    ) -> Mapping[str, ProductRef]:
        return await self.products.resolve(parse_attribute(attribute), skus)

    # --- orders -------------------------------------------------------------------------

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        """Search only (``ordersync check``): an order created in the last
        ``search_lag_seconds`` may not show yet."""
        return [_order_ref(n) for n in await self._find(marketplace_order_id)]

    async def _find(self, marketplace_order_id: str) -> list[dict[str, Any]]:
        query = f"source_identifier:{search_value(marketplace_order_id)}"
        nodes = (await self.client.execute(q.FIND_ORDER, {"query": query}))["orders"]["nodes"]
        return [n for n in nodes if n.get("sourceIdentifier") == marketplace_order_id]

    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        """The ``source_identifier:`` search plus the orders too new to be searchable."""
        recent = await self._recent()
        matches = _merged(await self._find(marketplace_order_id), recent, marketplace_order_id)
        return self._pick(marketplace_order_id, matches) if matches else None

    async def find_order_refs(
        self, marketplace_order_ids: Sequence[str], *, attempted: bool = False
    ) -> dict[str, ShopOrderRef]:
        """One ``source_identifier:"A" OR ...`` search per :data:`FIND_BATCH` ids; after
        an ``attempted`` create, also one read of the orders too new to be searchable
        (a first attempt cannot have created anything, and the read grows with the
        shop's order rate)."""
        found: dict[str, ShopOrderRef] = {}
        ids = list(dict.fromkeys(marketplace_order_ids))
        recent = await self._recent() if ids and attempted else []
        for start in range(0, len(ids), FIND_BATCH):
            chunk = ids[start : start + FIND_BATCH]
            data = await self.client.execute(
                q.FIND_ORDERS, {"query": any_of("source_identifier", chunk)}
            )
            nodes = data["orders"]["nodes"]
            if len(nodes) >= q.FIND_ORDERS_PAGE:  # a full page: some may be on the next
                for oid in chunk:
                    matches = _merged(await self._find(oid), recent, oid)
                    if matches:
                        found[oid] = self._pick(oid, matches)
                continue
            for oid in chunk:
                matches = _merged(nodes, recent, oid)
                if matches:
                    found[oid] = self._pick(oid, matches)
        return found

    async def _recent(self) -> list[dict[str, Any]]:
        """The orders created in the last ``search_lag_seconds``, newest first.

        Shopify's ``orders(query:)`` search reads an index that is updated after the
        write; a listing without ``query`` reads the orders themselves. An order whose
        ``orderCreate`` answer was lost (a reset, a crash) may be too new for the
        search, and creating it again would make a duplicate: it is found here.
        """
        window = self.config.search_lag_seconds
        if window <= 0:
            return []
        found: list[dict[str, Any]] = []
        cutoff: datetime | None = None
        after = None
        for _ in range(RECENT_PAGES):
            page = (
                await self.client.execute(
                    q.RECENT_ORDERS, {"first": q.RECENT_ORDERS_PAGE, "after": after}
                )
            )["orders"]
            for node in page["nodes"]:
                created = parse_time(node["createdAt"])
                if cutoff is None:  # Shopify's clock: the newest order is not after its now
                    cutoff = created - timedelta(seconds=window)
                if created < cutoff:
                    return found
                found.append(node)
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]
        raise RetriableAPIError(
            f"more than {len(found)} orders were created in the last {window:.0f} s; the "
            "idempotency lookup waits until Shopify's search has indexed them",
            platform=PLATFORM,
            operation="orders",
        )

    def _pick(self, marketplace_order_id: str, matches: list[dict[str, Any]]) -> ShopOrderRef:
        """The order that stands for a marketplace order: the first not cancelled."""
        if len(matches) > 1:
            self.log.warning(
                "shopify: %d orders carry source identifier %s: %s",
                len(matches),
                marketplace_order_id,
                ", ".join(m["name"] for m in matches),
            )
        best = next((m for m in matches if not m.get("cancelledAt")), matches[0])
        return _order_ref(best)

    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        payload, options = self._order_variables(order, products)
        data = await self.client.execute(q.ORDER_CREATE, {"order": payload, "options": options})
        return self._created(order, data["orderCreate"])

    async def create_orders(
        self, items: Sequence[tuple[Order, Mapping[str, ProductRef]]]
    ) -> list[ShopOrderRef | Exception]:
        """Up to :data:`queries.CREATE_BATCH` ``orderCreate`` per request (aliases).

        A request that fails as a whole fails each of its orders with that error
        (the engine looks them up before it tries again).
        """
        results: list[ShopOrderRef | Exception | None] = [None] * len(items)
        batch: list[tuple[int, Order, dict[str, Any]]] = []
        options: dict[str, Any] = {}
        for index, (order, products) in enumerate(items):
            try:
                payload, options = self._order_variables(order, products)
            except ItemError as exc:
                results[index] = exc
                continue
            batch.append((index, order, payload))
        chunks = [batch[i : i + q.CREATE_BATCH] for i in range(0, len(batch), q.CREATE_BATCH)]
        gate = asyncio.Semaphore(CREATE_REQUESTS)

        async def send(chunk: list[tuple[int, Order, dict[str, Any]]]) -> None:
            variables: dict[str, Any] = {f"o{n}": p for n, (_, _, p) in enumerate(chunk)}
            variables["options"] = options
            async with gate:
                try:
                    data = await self.client.execute(q.order_create_batch(len(chunk)), variables)
                except Exception as exc:  # noqa: BLE001 - every order of the request failed
                    for index, _, _ in chunk:
                        results[index] = exc
                    return
            for n, (index, order, _) in enumerate(chunk):
                try:
                    results[index] = self._created(order, data.get(f"o{n}"))
                except FatalAPIError as exc:
                    results[index] = exc

        await asyncio.gather(*(send(chunk) for chunk in chunks))
        return [r if r is not None else RuntimeError("not sent") for r in results]

    def _order_variables(
        self, order: Order, products: Mapping[str, ProductRef]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        missing = sorted({line.sku for line in order.lines if line.sku not in products})
        if missing:
            raise ItemError(
                FailureReason.UNKNOWN_SKU, f"no Shopify variant for {', '.join(missing)}"
            )
        return order_input(order, products, self.config)

    def _created(self, order: Order, result: dict[str, Any] | None) -> ShopOrderRef:
        """The ref of one ``orderCreate`` result, or its ``userErrors`` raised."""
        if result is None:
            result = {"userErrors": [], "order": None}
        if result["userErrors"]:
            errors = result["userErrors"]
            raise FatalAPIError(
                f"Shopify rejected order {order.marketplace_order_id}: {user_errors_message(errors)}",
                platform=PLATFORM,
                operation="orderCreate",
                code=errors[0].get("code"),
            )
        created = result["order"]
        if created is None:
            raise FatalAPIError(
                f"orderCreate returned no order for {order.marketplace_order_id}",
                platform=PLATFORM,
                operation="orderCreate",
            )
        total = Decimal(created["totalPriceSet"]["shopMoney"]["amount"])
        if total != order.total.amount:
            self.log.warning(
                "shopify: order %s total is %s in Shopify but %s on the marketplace (payload %s)",
                order.marketplace_order_id,
                total,
                order.total.amount,
                expected_total(order),
            )
        return _order_ref(created)

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        if await self._cancelled(ref.id):
            return
        data = await self.client.execute(
            q.ORDER_CANCEL,
            {
                "orderId": ref.id,
                "reason": self.config.cancel_reason,
                "refund": False,
                "restock": self.config.restock_on_cancel,
                "notifyCustomer": False,
                "staffNote": f"Cancelled on the marketplace (order {order.marketplace_order_id})",
            },
        )
        errors = data["orderCancel"]["orderCancelUserErrors"]
        job = data["orderCancel"]["job"]
        if job and not job["done"]:
            await self._wait_for(job["id"])
        if errors and not await self._cancelled(ref.id):
            raise FatalAPIError(
                f"Shopify refused to cancel order {ref.number or ref.id}: {user_errors_message(errors)}",
                platform=PLATFORM,
                operation="orderCancel",
                code=errors[0].get("code"),
            )

    async def _wait_for(self, job_id: str) -> None:
        """Shopify cancels in a background job; wait (briefly) until it is done."""
        for _ in range(JOB_POLLS):
            await asyncio.sleep(JOB_POLL_SECONDS / self.context.time_scale)
            job = (await self.client.execute(q.JOB_STATUS, {"id": job_id}))["job"]
            if job is None or job["done"]:
                return
        self.log.warning("shopify: cancellation job %s is still running", job_id)

    async def _cancelled(self, order_id: str) -> bool:
        found = (await self.client.execute(q.ORDER_STATUS, {"id": order_id}))["order"]
        if found is None:
            raise FatalAPIError(
                f"Shopify order {order_id} not found", platform=PLATFORM, operation="order"
            )
        return bool(found["cancelledAt"])

    # --- shop → marketplace ------------------------------------------------------------

    async def changes_since(self, cursor: str | None) -> ShopChanges:
        return await self.changes.page(cursor)

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        location = await self.location()
        return await self.stock.page(parse_attribute(attribute), location["id"], cursor)


def _merged(
    searched: Sequence[dict[str, Any]], recent: Sequence[dict[str, Any]], marketplace_order_id: str
) -> list[dict[str, Any]]:
    """The orders carrying exactly this id, from both reads, once each, oldest first."""
    by_id = {
        n["id"]: n
        for n in (*searched, *recent)
        if n.get("sourceIdentifier") == marketplace_order_id
    }
    return sorted(by_id.values(), key=lambda n: (n.get("createdAt") or "", n["id"]))


def _order_ref(node: dict[str, Any]) -> ShopOrderRef:
    money = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    total = (
        Money(amount=Decimal(money["amount"]), currency=money["currencyCode"])
        if money.get("amount") is not None
        else None
    )
    return ShopOrderRef(
        id=node["id"], number=node["name"], cancelled=bool(node.get("cancelledAt")), total=total
    )
