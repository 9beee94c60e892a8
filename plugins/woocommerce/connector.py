"""The WooCommerce shop connector (REST API ``wc/v3``).

Calls per flow, and why:

- **resolve_products**: by SKU, ``GET /products?sku=a,b,c`` (core splits the value on
  commas and, when ``sku`` is given, also matches variations), one call per 50 SKUs;
  by id, ``GET /products?include=`` then ``GET /products/<id>`` for ids that are
  variations; by EAN (or any ``meta:<key>``), a cached catalogue scan, since the REST
  API has no meta query.
- **find_order**: ``GET /orders?search=<amazon id>``; core search covers order item
  names, and our shipping line's title carries the Amazon order id. Every hit is
  verified against the ``amazon_order_id_meta_key`` meta.
- **create_order**: one ``POST /orders`` (``set_paid``), never resent blindly, plus one
  ``PUT`` with a fee line only when WooCommerce's tax left the total off Amazon's.
- **changes_since** / **stock_levels**: ``modified_after`` + ``dates_are_gmt`` + page
  numbers over ``orderby=id&order=asc`` (stable while records change); the next
  window starts at the server's clock (``Date``) of the pass's first page minus a
  lookback, so nothing changed during a pass is lost; the changes cursor remembers the
  overlap's events so none is reported twice. A changes-only stock pass reads the
  variations of the variable products modified in the window only (saving a variation
  saves its parent).
- Batch endpoints are write-only in ``wc/v3``: :meth:`create_orders` and
  :meth:`cancel_orders` use ``/orders/batch`` (100 per call) when ``use_batch``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from engine.errors import (
    APIError,
    AuthError,
    BadResponseError,
    FailureReason,
    FatalAPIError,
    ItemError,
    RateLimited,
    RetriableAPIError,
)
from engine.interfaces import ConnectorContext, ShopConnector
from engine.models import (
    Cancellation,
    CheckResult,
    Order,
    ProductRef,
    RejectedChange,
    Shipment,
    ShopChanges,
    ShopOrderRef,
    StockLevel,
    StockPage,
)
from plugins.woocommerce import mapping
from plugins.woocommerce.client import MAX_PER_PAGE, PLATFORM, WooClient
from plugins.woocommerce.settings import WooCommerceSettings

BATCH_LIMIT = 100
ORDER_INVALID_ID = "woocommerce_rest_shop_order_invalid_id"
SKU_CHUNK = 50


def encode_cursor(state: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(state), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Our opaque cursor back to its state; ``ValueError`` for a foreign one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ValueError(f"not a WooCommerce cursor: {cursor[:40]!r}") from None
    if not isinstance(state, dict):
        raise ValueError(f"not a WooCommerce cursor: {cursor[:40]!r}")
    return state


def _when(value: Any) -> datetime | None:
    return mapping.parse_gmt(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return mapping.format_gmt(value) if value else None


_SLIM = ("id", "type", "parent_id", "name", "sku", "meta_data")


@dataclass
class _Catalogue:
    """Every product and variation (slimmed), indexed lazily per attribute."""

    built_at: float
    entries: list[tuple[dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    indexes: dict[str, dict[str, ProductRef]] = field(default_factory=dict)

    def add(self, item: Mapping[str, Any], parent: Mapping[str, Any] | None) -> None:
        slim_parent = {k: parent.get(k) for k in ("id", "name")} if parent is not None else None
        self.entries.append(({k: item.get(k) for k in _SLIM}, slim_parent))

    def index(self, attribute: str, ean_meta_key: str) -> dict[str, ProductRef]:
        if attribute not in self.indexes:
            refs: dict[str, ProductRef] = {}
            for item, parent in self.entries:
                key = mapping.product_key(item, attribute, ean_meta_key)
                ref = mapping.product_ref(item, key, parent) if key else None
                if key and ref is not None:
                    refs.setdefault(key, ref)
            self.indexes[attribute] = refs
        return self.indexes[attribute]


class WooCommerceConnector(ShopConnector):
    """A WooCommerce store as the shop side of a connection."""

    settings_model = WooCommerceSettings
    identification_attributes: ClassVar[frozenset[str]] = frozenset({"sku", "id", "ean", "meta:"})
    """``ean`` reads the ``ean_meta_key`` meta; ``meta:<key>`` any product/variation meta."""
    # The API's shape (see STYLE 11): what the cursors and pages are built on.
    primary_key: ClassVar[str] = "id"
    cursor_field: ClassVar[str] = "date_modified_gmt"
    start_param: ClassVar[str] = "modified_after"
    page_param: ClassVar[str] = "page"
    page_size_param: ClassVar[str] = "per_page"
    total_pages_header: ClassVar[str] = "X-WP-TotalPages"
    is_sorted: ClassVar[bool] = False
    """Pages are sorted by id, not by ``cursor_field``: checkpoint only at a pass's end."""

    settings: WooCommerceSettings

    def __init__(self, settings: WooCommerceSettings, context: ConnectorContext) -> None:  # type: ignore[override]
        super().__init__(settings, context)
        self.client = WooClient(settings, context)
        self.log = context.logger.getChild("woocommerce")
        self._catalogue: _Catalogue | None = None
        self._has_fulfillments: bool | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- check ---------------------------------------------------------------------

    async def check(self) -> CheckResult:
        base = self.settings.base_url
        try:
            status = await self.client.call(
                "GET", "system_status", operation="check", api=self.client.api_quick
            )
            if self.settings.tracking_source == "fulfillments":
                missing = await self._fulfillments_missing()
                if missing:
                    return CheckResult(ok=False, message=missing, details={"base_url": base})
        except AuthError as exc:
            return CheckResult(
                ok=False,
                message=_auth_message(exc),
                details={"status": exc.status, "code": exc.code},
            )
        except BadResponseError as exc:
            return CheckResult(
                ok=False,
                message=f"{base} did not answer as the WooCommerce REST API ({exc.message}); "
                "check store_url/api_base and any security plugin or firewall in front of it",
                details={"status": exc.status},
            )
        except RetriableAPIError as exc:
            if exc.status is None:
                message = f"cannot reach the store at {self.settings.store_url}: {exc.message}"
            else:
                message = f"the store answered HTTP {exc.status} ({exc.message}); try again later"
            return CheckResult(ok=False, message=message, details={"status": exc.status})
        except FatalAPIError as exc:
            if exc.status == 404:
                message = (
                    f"no WooCommerce REST API at {base} ({exc.code or 'not found'}): check "
                    "store_url (or api_base), that WooCommerce is active and that permalinks "
                    "are not 'Plain'"
                )
            else:
                message = f"the store rejected the status request: {exc}"
            return CheckResult(
                ok=False, message=message, details={"status": exc.status, "code": exc.code}
            )
        env = status.get("environment") or {}
        store = status.get("settings") or {}
        version = env.get("version") or "?"
        source: str = self.settings.tracking_source
        if source == "auto":
            try:
                both = await self._uses_fulfillments()
            except APIError as exc:
                both = False
                self.log.warning("could not tell whether the store has fulfilments: %s", exc)
            source = "auto: meta and fulfillments" if both else "auto: meta"
        return CheckResult(
            ok=True,
            message=f"connected to WooCommerce {version} at {self.settings.store_url}",
            details={
                "version": version,
                "currency": store.get("currency"),
                "base_url": base,
                "tracking_source": source,
            },
        )

    async def _fulfillments_missing(self) -> str | None:
        """Order 0 tells "feature off" (``rest_no_route``) from "route there" (invalid id)."""
        try:
            await self.client.request(
                "GET", "orders/0/fulfillments", operation="check", api=self.client.api_quick
            )
        except FatalAPIError as exc:
            if exc.code == "rest_no_route":
                return (
                    "tracking_source is 'fulfillments' but the store has no order fulfillments "
                    "API: enable the Order Fulfillments feature (WooCommerce 10.2+) or use "
                    "tracking_source 'meta'"
                )
        return None

    # --- products ------------------------------------------------------------------

    async def resolve_products(
        self, attribute: str, skus: Sequence[str]
    ) -> Mapping[str, ProductRef]:
        wanted = list(dict.fromkeys(s for s in skus if s))
        if not wanted:
            return {}
        if attribute == "sku":
            return await self._by_sku(wanted)
        if attribute == "id":
            return await self._by_id(wanted)
        if _known_attribute(attribute):  # ean or meta:<key>
            return await self._by_catalogue(attribute, wanted)
        raise ValueError(f"woocommerce cannot identify products by {attribute!r}")

    async def _by_sku(self, skus: list[str]) -> dict[str, ProductRef]:
        found: dict[str, ProductRef] = {}
        plain = [s for s in skus if "," not in s]
        chunks = [plain[i : i + SKU_CHUNK] for i in range(0, len(plain), SKU_CHUNK)]
        chunks += [[s] for s in skus if "," in s]  # cannot be sent in a comma list
        for chunk in chunks:
            wanted = set(chunk)
            params = {"sku": ",".join(chunk), "per_page": MAX_PER_PAGE}
            for item in await self.client.all_items("products", params, operation="products"):
                sku = str(item.get("sku") or "")
                if sku not in wanted:
                    continue
                ref = mapping.product_ref(item, sku)
                if ref is None:
                    self.log.warning("SKU %s is a variable product; order its variations", sku)
                elif sku in found:
                    self.log.warning(
                        "SKU %s is used by more than one product; using %s",
                        sku,
                        found[sku].product_id,
                    )
                else:
                    found[sku] = ref
        return found

    async def _by_id(self, ids: list[str]) -> dict[str, ProductRef]:
        numeric = [i for i in ids if i.isdigit()]
        found: dict[str, ProductRef] = {}
        for start in range(0, len(numeric), MAX_PER_PAGE):
            chunk = numeric[start : start + MAX_PER_PAGE]
            params = {"include": chunk, "per_page": MAX_PER_PAGE}
            for item in await self.client.all_items("products", params, operation="products"):
                key = str(item.get("id"))
                ref = mapping.product_ref(item, key) if key in chunk else None
                if ref is not None:
                    found[key] = ref
        for key in numeric:  # not a product: maybe a variation (served by /products/<id>)
            if key in found:
                continue
            try:
                item = await self.client.call("GET", f"products/{key}", operation="products")
            except FatalAPIError as exc:
                if exc.status == 404:
                    continue
                raise
            ref = mapping.product_ref(item, key)
            if ref is not None:
                found[key] = ref
        return found

    async def _by_catalogue(self, attribute: str, keys: list[str]) -> dict[str, ProductRef]:
        catalogue = await self._catalogue_for(stale_ok=True)
        index = catalogue.index(attribute, self.settings.ean_meta_key)
        age = time.monotonic() - catalogue.built_at
        if any(k not in index for k in keys) and age > min(
            60.0, self.settings.catalogue_cache_seconds
        ):
            catalogue = await self._catalogue_for(stale_ok=False)
            index = catalogue.index(attribute, self.settings.ean_meta_key)
        return {k: index[k] for k in keys if k in index}

    async def _catalogue_for(self, *, stale_ok: bool) -> _Catalogue:
        cached = self._catalogue
        if (
            cached is not None
            and stale_ok
            and time.monotonic() - cached.built_at <= self.settings.catalogue_cache_seconds
        ):
            return cached
        catalogue = _Catalogue(built_at=time.monotonic())
        params = {"per_page": MAX_PER_PAGE, "orderby": "id", "order": "asc"}
        async for page in self.client.pages("products", params, operation="catalogue"):
            for product in page.items:
                catalogue.add(product, None)
                if product.get("type") == "variable":
                    for variation in await self._variations(product["id"]):
                        catalogue.add(variation, product)
        self._catalogue = catalogue
        return catalogue

    async def _variations(self, product_id: Any) -> list[dict[str, Any]]:
        return await self.client.all_items(
            f"products/{product_id}/variations",
            {"per_page": MAX_PER_PAGE, "orderby": "id", "order": "asc"},
            operation="variations",
        )

    # --- orders --------------------------------------------------------------------

    async def find_order(self, marketplace_order_id: str) -> ShopOrderRef | None:
        matches = await self._find(marketplace_order_id)
        if not matches:
            return None
        if len(matches) > 1:
            self.log.warning(
                "Amazon order %s exists %d times in the shop (%s)",
                marketplace_order_id,
                len(matches),
                ", ".join(str(m["id"]) for m in matches),
            )
        live = [m for m in matches if m.get("status") != "cancelled"]
        return mapping.order_ref((live or matches)[0])

    async def find_orders(self, marketplace_order_id: str) -> list[ShopOrderRef]:
        return [mapping.order_ref(o) for o in await self._find(marketplace_order_id)]

    async def _find(self, marketplace_order_id: str) -> list[dict[str, Any]]:
        key = self.settings.amazon_order_id_meta_key
        params = {"search": marketplace_order_id, "per_page": self.settings.page_size}
        hits = await self.client.all_items("orders", params, operation="find_order")
        matches = [
            o
            for o in hits
            if any(str(v) == marketplace_order_id for v in mapping.meta_values(o, key))
        ]
        return sorted(matches, key=lambda o: int(o["id"]))

    async def create_order(self, order: Order, products: Mapping[str, ProductRef]) -> ShopOrderRef:
        payload = mapping.order_payload(order, products, self.settings)
        try:
            created = await self._post_once("orders", payload, operation="create_order")
        except RetriableAPIError:
            # The answer was lost: the order may exist. Never send the create twice.
            existing = await self._find(order.marketplace_order_id)
            if not existing:
                raise
            created = existing[0]
        settled = await self._settle_totals([(order, created)])
        return mapping.order_ref(settled[str(created["id"])])

    async def complete_order(self, order: Order, ref: ShopOrderRef) -> ShopOrderRef:
        """Add the total adjustment an interrupted earlier attempt may not have made."""
        current = await self.client.call("GET", f"orders/{ref.id}", operation="get_order")
        settled = await self._settle_totals([(order, current)])
        return mapping.order_ref(settled[str(current["id"])])

    async def _post_once(self, path: str, body: Any, *, operation: str) -> Any:
        """POST without blind retries; only a 429 (nothing processed) is sent again."""
        for attempt in range(3):
            try:
                return await self.client.call(
                    "POST", path, operation=operation, json=body, retry=False
                )
            except RateLimited as exc:
                if attempt == 2:
                    raise
                await asyncio.sleep(
                    min(exc.retry_after or 1.0, 30.0) / max(self.context.time_scale, 1e-6)
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _settle_totals(
        self, pairs: Sequence[tuple[Order, dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        """Add a non-taxable fee line wherever WooCommerce's total is off Amazon's.

        Adding a fee is not idempotent, so it is sent once; when the answer is lost the
        orders are read again and only what is still off gets its fee. One ``PUT`` for a
        single order, one ``/orders/batch`` update for many.
        """
        current = {str(wc["id"]): (order, wc) for order, wc in pairs}
        for attempt in range(2):
            fees = {}
            for oid, (order, wc) in current.items():
                fee = mapping.adjustment_fee(order, wc)
                if fee is not None:
                    fees[oid] = fee
            if not fees:
                break
            try:
                if len(fees) == 1:
                    [(oid, fee)] = fees.items()
                    updated = [
                        await self.client.call(
                            "PUT",
                            f"orders/{oid}",
                            operation="adjust_total",
                            json={"fee_lines": [fee]},
                            retry=False,  # adds a fee line: not idempotent
                        )
                    ]
                else:
                    body = {"update": [{"id": int(i), "fee_lines": [f]} for i, f in fees.items()]}
                    answer = await self._post_once("orders/batch", body, operation="adjust_total")
                    updated = answer.get("update") or []
            except RetriableAPIError:
                if attempt:
                    raise
                params = {"include": list(fees), "per_page": MAX_PER_PAGE}
                updated = await self.client.all_items("orders", params, operation="get_order")
                self._adopt(current, updated)
                continue
            self._adopt(current, updated)
            break
        for order, wc in current.values():
            left = mapping.total_difference(order, wc)
            if left != 0:
                self.log.error(
                    "shop order %s total %s differs from Amazon's %s by %s (a taxed fee?)",
                    wc["id"],
                    wc.get("total"),
                    order.total.amount,
                    left,
                )
        return {oid: wc for oid, (_, wc) in current.items()}

    @staticmethod
    def _adopt(current: dict[str, tuple[Order, dict[str, Any]]], updated: Sequence[Any]) -> None:
        for wc in updated:
            if isinstance(wc, dict) and str(wc.get("id")) in current and not wc.get("error"):
                current[str(wc["id"])] = (current[str(wc["id"])][0], wc)

    async def cancel_order(self, ref: ShopOrderRef, order: Order) -> None:
        if not ref.id.isdigit():
            raise _not_an_order_id(ref)
        try:
            current = await self.client.call("GET", f"orders/{ref.id}", operation="get_order")
        except FatalAPIError as exc:
            if exc.status == 404:
                self.log.info("shop order %s no longer exists; nothing to cancel", ref.id)
                return
            raise
        status = current.get("status")
        if status in _DONE_STATUSES:
            return
        if status in self.settings.shipped_statuses:
            raise _shipped(ref, str(status))
        try:
            await self.client.call(
                "PUT", f"orders/{ref.id}", operation="cancel_order", json=self._cancel_body()
            )
        except FatalAPIError as exc:
            if exc.code != ORDER_INVALID_ID:
                raise
            self.log.info("shop order %s was deleted meanwhile; nothing to cancel", ref.id)

    def _cancel_body(self) -> dict[str, Any]:
        return {
            "status": "cancelled",
            "meta_data": [{"key": mapping.CANCELLED_BY_META, "value": mapping.CANCELLED_BY_US}],
        }

    # --- batch writes ---------------------------------------------------------------

    async def create_orders(
        self, items: Sequence[tuple[Order, Mapping[str, ProductRef]]]
    ) -> list[ShopOrderRef | Exception]:
        """``/orders/batch`` creates, 100 per call, then one fee update for those off.

        The engine has looked every order up first. A rejected order fails alone; a
        call whose answer is lost fails each of its orders with that error (the engine
        looks them up again before anything is resent).
        """
        if not self.settings.use_batch:
            return await super().create_orders(items)
        results: list[ShopOrderRef | Exception | None] = [None] * len(items)
        pending: list[tuple[int, Order, dict[str, Any]]] = []
        for index, (order, products) in enumerate(items):
            try:
                pending.append(
                    (index, order, mapping.order_payload(order, products, self.settings))
                )
            except ItemError as exc:
                results[index] = exc
        for start in range(0, len(pending), BATCH_LIMIT):
            chunk = pending[start : start + BATCH_LIMIT]
            try:
                answer = await self._post_once(
                    "orders/batch", {"create": [p for _, _, p in chunk]}, operation="create_orders"
                )
            except Exception as exc:  # noqa: BLE001 - every order of the call failed
                for index, _, _ in chunk:
                    results[index] = exc
                continue
            created = answer.get("create") if isinstance(answer, dict) else None
            landed: list[tuple[int, Order, dict[str, Any]]] = []
            for n, (index, order, _) in enumerate(chunk):
                wc = created[n] if isinstance(created, list) and n < len(created) else None
                error = wc.get("error") if isinstance(wc, dict) else None
                if error or not isinstance(wc, dict) or not wc.get("id"):
                    err = error if isinstance(error, dict) else {}
                    results[index] = FatalAPIError(
                        f"WooCommerce rejected order {order.marketplace_order_id}: "
                        f"{err.get('message') or 'no order in the batch answer'}",
                        platform=PLATFORM,
                        operation="create_orders",
                        code=err.get("code"),
                    )
                    continue
                landed.append((index, order, wc))
            try:
                settled = await self._settle_totals([(o, wc) for _, o, wc in landed])
            except Exception as exc:  # noqa: BLE001 - created; complete_order finishes later
                for index, _, _ in landed:
                    results[index] = exc
                continue
            for index, _, wc in landed:
                results[index] = mapping.order_ref(settled[str(wc["id"])])
        return [r if r is not None else RuntimeError("not sent") for r in results]

    async def cancel_orders(
        self, items: Sequence[tuple[ShopOrderRef, Order]]
    ) -> list[Exception | None]:
        """Cancel many shop orders: one ``GET /orders?include=`` and one ``/orders/batch``
        update per 100. Same rules as :meth:`cancel_order`: cancelled, refunded or
        missing orders are done already (``None``), shipped ones fail with ``ItemError``,
        an order the batch rejects with ``FatalAPIError``; a call that fails as a whole
        fails each of its orders (cancelling again is harmless)."""
        if not self.settings.use_batch:
            return await super().cancel_orders(items)
        results: list[Exception | None] = [None] * len(items)
        numeric: list[tuple[int, ShopOrderRef]] = []
        for index, (ref, _) in enumerate(items):
            if ref.id.isdigit():
                numeric.append((index, ref))
            else:
                results[index] = _not_an_order_id(ref)
        for start in range(0, len(numeric), BATCH_LIMIT):
            chunk = numeric[start : start + BATCH_LIMIT]
            try:
                await self._cancel_chunk(chunk, results)
            except Exception as exc:  # noqa: BLE001 - every order of the call failed
                for index, _ in chunk:
                    if results[index] is None:
                        results[index] = exc
        return results

    async def _cancel_chunk(
        self, chunk: Sequence[tuple[int, ShopOrderRef]], results: list[Exception | None]
    ) -> None:
        params = {"include": [ref.id for _, ref in chunk], "per_page": MAX_PER_PAGE}
        current = {
            str(o.get("id")): o
            for o in await self.client.all_items("orders", params, operation="get_order")
        }
        todo: list[tuple[int, ShopOrderRef]] = []
        for index, ref in chunk:
            status = current.get(ref.id, {}).get("status")
            if status is None or status in _DONE_STATUSES:
                continue  # gone or cancelled already: nothing to do
            if status in self.settings.shipped_statuses:
                results[index] = _shipped(ref, str(status))
            else:
                todo.append((index, ref))
        if not todo:
            return
        updates = [{"id": int(ref.id), **self._cancel_body()} for _, ref in todo]
        answer = await self.client.call(
            "POST", "orders/batch", operation="cancel_orders", json={"update": updates}
        )
        answered = {
            str(item.get("id")): item
            for item in answer.get("update") or []
            if isinstance(item, dict)
        }
        for index, ref in todo:
            item = answered.get(ref.id)
            error = item.get("error") if item is not None else None
            if isinstance(error, dict) and error.get("code") == ORDER_INVALID_ID:
                continue  # deleted since we read it: nothing left to cancel
            if isinstance(error, dict) and error:
                results[index] = FatalAPIError(
                    f"WooCommerce refused to cancel order {ref.id}: "
                    f"{error.get('message') or 'no reason given'}",
                    platform=PLATFORM,
                    operation="cancel_orders",
                    status=_int_or_none((error.get("data") or {}).get("status")),
                    code=error.get("code"),
                )
            elif item is None or item.get("status") not in _DONE_STATUSES:
                results[index] = BadResponseError(
                    f"the batch answer does not show order {ref.id} cancelled",
                    platform=PLATFORM,
                    operation="cancel_orders",
                )

    # --- shipments and cancellations ------------------------------------------------

    async def changes_since(self, cursor: str | None) -> ShopChanges:
        """Shipments and cancellations new since the cursor.

        Each pass re-reads ``cursor_lookback_seconds`` before its start (coarse, possibly
        skewed timestamps); the cursor remembers the events of the orders in that overlap
        (``seen``), so nothing is reported twice. ``None`` primes that memory with what
        the last lookback holds and reports nothing: history is not replayed.
        """
        if cursor is None:
            now = await self._server_now()
            lookback = timedelta(seconds=self.settings.cursor_lookback_seconds)
            state: dict[str, Any] = {"since": _iso(now - lookback), "sp": _iso(now), "prime": True}
        else:
            state = decode_cursor(cursor)
        since = _when(state.get("since"))
        if since is None:
            raise ValueError("WooCommerce changes cursor without a start time")
        number = int(state.get("page", 1))
        params = {
            "modified_after": _after(since),
            "dates_are_gmt": True,
            "orderby": "id",
            "order": "asc",
            "per_page": self.settings.page_size,
        }
        page = await self.client.page("orders", params, operation="changes", page=number)
        signpost = _when(state.get("sp")) or (page.server_time if number == 1 else None)
        newest = _when(state.get("max"))
        hold = _when(state.get("hold"))
        seen: dict[str, Any] = state.get("seen") or {}
        fresh: dict[str, Any] = state.get("fresh") or {}
        shipments, cancellations, rejected = [], [], []
        for wc_order in page.items:
            amazon_id = mapping.meta_value(wc_order, self.settings.amazon_order_id_meta_key)
            if not amazon_id:
                continue  # not an order ordersync imported
            modified = mapping.parse_gmt(wc_order.get("date_modified_gmt"))
            newest = _max(newest, modified)
            events, unreadable = await self._read_order(wc_order, str(amazon_id))
            if not state.get("prime"):  # kept out of ``seen``: a fixed record is reported
                rejected += unreadable
            if not str(wc_order.get("id", "")).isdigit():
                continue
            if not state.get("prime") and self._defer_untracked(wc_order, events, signpost):
                hold = modified if hold is None or modified is None else min(hold, modified)
            known = set(seen.get(str(wc_order["id"]), {}).get("k", []))
            fresh[str(wc_order["id"])] = {"m": _iso(modified), "k": sorted(events)}
            if state.get("prime"):
                continue
            for event_key, event in events.items():
                if event_key in known:
                    continue
                if isinstance(event, Cancellation):
                    cancellations.append(event)
                else:
                    shipments.append(event)
        if page.has_more:
            nxt = {**state, "page": number + 1, "sp": _iso(signpost), "max": _iso(newest)}
            nxt.update(fresh=fresh, hold=_iso(hold))
        else:
            start = self._next_since(since, signpost, newest)
            if hold is not None:  # read deferred orders again until their delay is over
                start = max(min(start, hold), since)
            memory = {
                oid: entry
                for oid, entry in {**seen, **fresh}.items()
                if (_when(entry["m"]) or start) >= start  # re-read next time: remember
            }
            nxt = {"since": _iso(start), "seen": memory}
        return ShopChanges(
            shipments=tuple(shipments),
            cancellations=tuple(cancellations),
            rejected=tuple(rejected),
            cursor=encode_cursor(nxt),
            has_more=page.has_more,
        )

    def _defer_untracked(
        self,
        wc_order: dict[str, Any],
        events: dict[str, Shipment | Cancellation],
        now: datetime | None,
    ) -> bool:
        """Hold back a just-completed order's untracked shipment for a while: shops often
        complete first and add tracking minutes later (one shipment, not two)."""
        key = f"{wc_order['id']}:{mapping.UNTRACKED}"
        if key not in events:
            return False
        done = mapping.parse_gmt(wc_order.get("date_completed_gmt")) or mapping.parse_gmt(
            wc_order.get("date_modified_gmt")
        )
        delay = timedelta(seconds=self.settings.untracked_shipment_delay_seconds)
        if done is None or done + delay <= (now or datetime.now(UTC)):
            return False
        del events[key]
        return True

    async def _read_order(
        self, wc_order: dict[str, Any], amazon_id: str
    ) -> tuple[dict[str, Shipment | Cancellation], list[RejectedChange]]:
        """:meth:`_events`, with whatever cannot be read as :class:`RejectedChange`: a
        record with bad fields, or an order the store will not list fulfilments of. One
        bad order never fails the page; a retriable or auth failure still does."""
        oid = wc_order.get("id")
        kind: Literal["shipment", "cancellation"] = (
            "cancellation" if wc_order.get("status") == "cancelled" else "shipment"
        )
        if not str(oid).isdigit():
            message = f"a shop order without a usable id ({oid!r}) carries this Amazon order id"
            return {}, [
                RejectedChange(
                    kind=kind,
                    key=f"{amazon_id}:no-id",
                    message=message,
                    marketplace_order_id=amazon_id,
                )
            ]
        try:
            return await self._events(wc_order, amazon_id)
        except FatalAPIError as exc:
            message = f"the store refused to list the order's fulfilments: {exc}"
        except (KeyError, TypeError, ValueError) as exc:
            message = f"cannot read shop order {oid}: {type(exc).__name__}: {exc}"
        return {}, [
            RejectedChange(
                kind=kind, key=f"{oid}:order", marketplace_order_id=amazon_id, message=message
            )
        ]

    async def _events(
        self, wc_order: dict[str, Any], amazon_id: str
    ) -> tuple[dict[str, Shipment | Cancellation], list[RejectedChange]]:
        """Every shipment and cancellation the order carries now, by a stable key, and the
        packages that cannot be read (keyed as their shipments would be)."""
        cancelled = mapping.cancellation(wc_order, amazon_id)
        if cancelled is not None:
            return {"cancelled": cancelled}, []
        if wc_order.get("status") in ("pending", "failed", "refunded", "cancelled", "trash"):
            return {}, []
        packages, problems = await self._packages(wc_order)
        found, unallocated = mapping.shipments(
            wc_order, amazon_id, packages, self.settings.shipped_statuses, unreadable=bool(problems)
        )
        rejected = [
            RejectedChange(
                kind="shipment",
                key=f"{wc_order['id']}:{problem.key}",
                marketplace_order_id=amazon_id,
                message=problem.message,
            )
            for problem in (*problems, *unallocated)
        ]
        return {s.shipment_id: s for s in found}, rejected

    async def _packages(
        self, wc_order: dict[str, Any]
    ) -> tuple[list[mapping.Package], list[mapping.Problem]]:
        """The order's packages from the configured source; with ``auto`` the meta and, when
        the store has them, the fulfilments, a parcel in both (same tracking number) once."""
        packages: list[mapping.Package] = []
        problems: list[mapping.Problem] = []
        if self.settings.tracking_source != "fulfillments":
            packages, problems = mapping.tracking_packages(
                wc_order, self.settings.tracking_meta_key
            )
        if not await self._uses_fulfillments():
            return packages, problems
        fulfillments = await self.client.call(
            "GET", f"orders/{wc_order['id']}/fulfillments", operation="fulfillments", expect=list
        )
        found, unreadable = mapping.fulfillment_packages(
            f for f in fulfillments if isinstance(f, dict)
        )
        numbers = {p.tracking_number for p in found if p.tracking_number}
        meta_only = [
            p for p in packages if p.tracking_number not in numbers or not p.tracking_number
        ]
        return meta_only + found, problems + unreadable

    async def _uses_fulfillments(self) -> bool:
        """``fulfillments``: yes; ``meta``: no; ``auto``: whether the store serves the Order
        Fulfillments API (asked once per connector)."""
        source = self.settings.tracking_source
        if source != "auto":
            return source == "fulfillments"
        if self._has_fulfillments is None:
            self._has_fulfillments = await self._fulfillments_missing() is None
            self.log.info(
                "tracking from the %s",
                "Shipment Tracking meta and order fulfilments"
                if self._has_fulfillments
                else "Shipment Tracking meta (the store has no order fulfilments API)",
            )
        return self._has_fulfillments

    async def _server_now(self) -> datetime:
        """The store's clock (``Date`` of a cheap call); ours if it sends none."""
        page = await self.client.page("orders", {"per_page": 1}, operation="clock")
        return page.server_time or datetime.now(UTC)

    def _next_since(
        self, since: datetime | None, signpost: datetime | None, newest: datetime | None
    ) -> datetime:
        anchor = signpost or newest
        if anchor is None:
            return since or datetime.now(UTC)
        candidate = anchor - timedelta(seconds=self.settings.cursor_lookback_seconds)
        return max(candidate, since) if since else candidate

    # --- stock ---------------------------------------------------------------------

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        if not _known_attribute(attribute):
            raise ValueError(f"woocommerce cannot identify products by {attribute!r}")
        run = _StockPass.from_cursor(cursor)
        levels: dict[str, StockLevel] = {}
        has_more = False
        if run.phase == "products":  # a cursor of the former variations phase ends its pass
            has_more = await self._stock_products(run, attribute, levels)
        state = run.next_state(has_more)
        if state is None:
            since = self._next_since(run.since, run.signpost, run.newest)
            state = {"since": _iso(since)}
        return StockPage(
            levels=tuple(levels.values()), cursor=encode_cursor(state), has_more="mode" in state
        )

    def _stock_params(self) -> dict[str, Any]:
        return {"orderby": "id", "order": "asc", "per_page": self.settings.page_size}

    async def _stock_products(
        self, run: _StockPass, attribute: str, levels: dict[str, StockLevel]
    ) -> bool:
        """One page of products, with the variations of the variable ones.

        A changes-only pass lists the products modified since the window start; a
        variable product is among them whenever one of its variations was saved (stock
        set, an order's reduction: WooCommerce then syncs and saves the parent), and of
        its variations only those modified since are kept. Variations have no documented
        ``modified_after``, so this is what keeps a pass from reading every variable
        product's variations; the engine's periodic full read repairs anything a write
        around WooCommerce's CRUD left unmarked."""
        params = self._stock_params()
        if run.delta:
            params.update(modified_after=_after(run.since), dates_are_gmt=True)
        page = await self.client.page("products", params, operation="stock", page=run.page)
        if run.page == 1:
            run.signpost = run.signpost or page.server_time
        ean = self.settings.ean_meta_key
        for item in page.items:
            run.saw(item)
            if item.get("type") != "variable":
                _keep(levels, mapping.stock_level(item, attribute, ean))
                continue
            by_parent = item.get("manage_stock") is True  # its stock: all its variations'
            for variation in await self._variations(item["id"]):
                changed = mapping.parse_gmt(variation.get("date_modified_gmt"))
                if run.delta and not by_parent and _before(changed, run.since):
                    continue
                run.saw(variation)
                _keep(levels, mapping.stock_level(variation, attribute, ean, item))
        return page.has_more


@dataclass
class _StockPass:
    """Where a stock read stands: full or changes-only, phase, page, clocks seen."""

    delta: bool
    since: datetime | None
    phase: str = "products"
    page: int = 1
    signpost: datetime | None = None
    newest: datetime | None = None

    @classmethod
    def from_cursor(cls, cursor: str | None) -> _StockPass:
        if cursor is None:
            return cls(delta=False, since=None)
        state = decode_cursor(cursor)
        since = _when(state.get("since"))
        if "mode" not in state:  # the resume cursor of a finished pass
            if since is None:
                raise ValueError("WooCommerce stock cursor without a start time")
            return cls(delta=True, since=since)
        return cls(
            delta=state["mode"] == "delta",
            since=since,
            phase=str(state.get("phase", "products")),
            page=int(state.get("page", 1)),
            signpost=_when(state.get("sp")),
            newest=_when(state.get("max")),
        )

    def saw(self, item: Mapping[str, Any]) -> None:
        self.newest = _max(self.newest, mapping.parse_gmt(item.get("date_modified_gmt")))

    def next_state(self, has_more: bool) -> dict[str, Any] | None:
        """The cursor state of the next page, ``None`` when the pass is over."""
        if not has_more:
            return None
        return {
            "mode": "delta" if self.delta else "full",
            "since": _iso(self.since),
            "phase": self.phase,
            "page": self.page + 1,
            "sp": _iso(self.signpost),
            "max": _iso(self.newest),
        }


def _keep(levels: dict[str, StockLevel], level: StockLevel | None) -> None:
    if level is not None:
        levels[level.sku] = level


_DONE_STATUSES = ("cancelled", "refunded", "trash")
"""Order statuses a cancellation has nothing left to do for."""


def _shipped(ref: ShopOrderRef, status: str) -> ItemError:
    return ItemError(
        FailureReason.SHOP_REJECTED,
        f"shop order {ref.number or ref.id} is already {status}; cancel it by hand",
    )


def _not_an_order_id(ref: ShopOrderRef) -> ItemError:
    return ItemError(
        FailureReason.SHOP_REJECTED, f"{ref.id!r} is not a WooCommerce order id; nothing cancelled"
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _known_attribute(attribute: str) -> bool:
    """``sku``, ``id``, ``ean`` (the ``ean_meta_key`` meta) or ``meta:<any meta key>``."""
    return attribute in ("sku", "id", "ean") or (
        attribute.startswith("meta:") and len(attribute) > len("meta:")
    )


def _after(since: datetime | None) -> str:
    """``modified_after`` is exclusive and counts whole seconds: step back one so the
    cursor's own second is read too (a write in that second after our read is kept)."""
    assert since is not None
    return mapping.format_gmt(since - timedelta(seconds=1))


def _before(when: datetime | None, since: datetime | None) -> bool:
    return when is not None and since is not None and when < since


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _auth_message(exc: AuthError) -> str:
    if exc.code == "woocommerce_rest_cannot_view":
        return (
            "WooCommerce did not accept the API key for reading (woocommerce_rest_cannot_view): "
            "the key may lack read permission, or the web server strips the Authorization "
            "header (then set query_string_auth = true)"
        )
    if exc.code == "woocommerce_rest_authentication_error" and "signature" in exc.message:
        return (
            f"WooCommerce rejected the OAuth 1.0a signature of a plain-HTTP request "
            f"({exc.message}): check consumer_key and consumer_secret, and that store_url is "
            "exactly the site's home URL (the store signs with it: www or not, port, path)"
        )
    if exc.code == "woocommerce_rest_authentication_error" and "timestamp" in exc.message:
        return (
            f"WooCommerce refused the OAuth timestamp ({exc.message}): this machine's clock "
            "is more than 15 minutes off the store's"
        )
    if exc.code == "woocommerce_rest_authentication_error":
        return (
            f"WooCommerce rejected the API key ({exc.message}): check consumer_key and "
            "consumer_secret under WooCommerce > Settings > Advanced > REST API"
        )
    return f"WooCommerce refused access (HTTP {exc.status} {exc.code or ''}): {exc.message}".strip()
