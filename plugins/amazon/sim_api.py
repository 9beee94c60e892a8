"""SP-API and LWA handlers of the simulator: orders, shipments, listings, sellers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plugins.amazon import marketplaces
from plugins.amazon.settings import load_data
from plugins.amazon.sim_orders import FULFILLMENT_STATUSES, INCLUDED_DATA, SimOrder, iso
from plugins.amazon.sim_state import PageState, SimError, SimState, bad_input, parse_time, read_json

LANGUAGES = {
    "CA": "en_CA", "US": "en_US", "MX": "es_MX", "BR": "pt_BR", "IE": "en_IE", "ES": "es_ES",
    "UK": "en_GB", "FR": "fr_FR", "BE": "fr_BE", "NL": "nl_NL", "DE": "de_DE", "IT": "it_IT",
    "SE": "sv_SE", "ZA": "en_ZA", "PL": "pl_PL", "EG": "ar_EG", "TR": "tr_TR", "SA": "ar_SA",
    "AE": "ar_AE", "IN": "en_IN", "SG": "en_SG", "AU": "en_AU", "JP": "ja_JP",
}  # fmt: skip
CARRIERS = frozenset(load_data("carriers.json")["codes"])
OPERATIONS_WITH_401 = frozenset(
    {"confirmShipment", "createFeed", "getFeed", "getFeeds", "getFeedDocument"}
)
"""Operations whose model declares a 401 answer (the rest declare only 403)."""
SEARCH_PARAMS = frozenset(
    {
        "createdAfter",
        "createdBefore",
        "lastUpdatedAfter",
        "lastUpdatedBefore",
        "fulfillmentStatuses",
        "marketplaceIds",
        "fulfilledBy",
        "maxResultsPerPage",
        "paginationToken",
        "includedData",
    }
)


class ApiHandlers(SimState):
    """Handlers for the SP-API operations and the LWA token endpoint."""

    def _authorize(self, request: Request, operation: str | None) -> None:
        """403 for an expired token; 401 for a missing or unknown one where the model has 401."""
        token = request.headers.get("x-amz-access-token") or ""
        expiry = self.access_tokens.get(token)
        if expiry is not None and expiry > self.now():
            return
        self.rejected_requests += 1
        if expiry is not None:
            details = "The access token you provided has expired."
        elif token:
            details = "The access token you provided is revoked, malformed or otherwise invalid."
        else:
            details = "The request has no x-amz-access-token header."
        status = 401 if expiry is None and operation in OPERATIONS_WITH_401 else 403
        raise SimError(status, "Unauthorized", "Access to requested resource is denied.", details)

    # -- LWA --------------------------------------------------------------------

    async def _lwa_token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        creds = self.credentials
        if form.get("grant_type") != "refresh_token":
            return _lwa_error(400, "unsupported_grant_type", "Only refresh_token is simulated")
        if (
            form.get("client_id") != creds.client_id
            or form.get("client_secret") != creds.client_secret
        ):
            return _lwa_error(401, "invalid_client", "Client authentication failed")
        if form.get("refresh_token") != creds.refresh_token:
            return _lwa_error(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = self._new_id("sim-access-")
        self.access_tokens[token] = self.now() + timedelta(seconds=self.token_ttl)
        self.token_grants += 1
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": int(self.token_ttl)}
        )

    # -- orders -----------------------------------------------------------------

    def _query(self, request: Request, allowed: Iterable[str]) -> dict[str, str]:
        query: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            if key not in allowed:
                raise bad_input(f"Unknown query parameter {key!r}")
            if key in query:
                raise bad_input(f"Parameter {key!r} repeated; send arrays comma-separated")
            query[key] = value
        return query

    @staticmethod
    def _csv(query: Mapping[str, str], name: str, enum: Iterable[str] | None = None) -> list[str]:
        values = [v for v in query.get(name, "").split(",") if v]
        if enum is not None:
            unknown = sorted(set(values) - set(enum))
            if unknown:
                raise bad_input(f"Invalid value(s) {unknown} for {name}")
        return values

    async def _search_orders(self, request: Request) -> Response:
        query = self._query(request, SEARCH_PARAMS)
        included = set(self._csv(query, "includedData", INCLUDED_DATA))
        size_text = query.get("maxResultsPerPage", "100")
        if not size_text.isdigit() or not 1 <= int(size_text) <= 100:
            raise bad_input("maxResultsPerPage must be an integer between 1 and 100")
        size = int(size_text)
        filters = {
            k: v
            for k, v in query.items()
            if k not in ("paginationToken", "maxResultsPerPage", "includedData")
        }
        token = query.get("paginationToken")
        if token:
            state = self.page_tokens.get(token)
            if state is None:
                raise bad_input("Invalid paginationToken")
            if self.now() - state.issued > timedelta(seconds=self.page_token_ttl):
                raise bad_input(
                    "The paginationToken has expired; repeat the request without it "
                    "(tokens expire after 24 hours)"
                )
            if state.filters != filters:
                raise bad_input(
                    "Parameters must have the same values as the request that returned "
                    "the paginationToken"
                )
            ids, offset, before_key, before = (
                state.ids,
                state.offset,
                state.before_key,
                state.before,
            )
        else:
            ids, before_key, before = self._select(filters)
            offset = 0
        page = [self.orders[i].view(included) for i in ids[offset : offset + size]]
        body: dict[str, Any] = {"orders": page}
        if offset + size < len(ids):
            next_token = self._new_id()
            self.page_tokens[next_token] = PageState(
                filters, ids, offset + size, self.now(), before_key, before
            )
            body["pagination"] = {"nextToken": next_token}
        body[before_key] = iso(before)
        return JSONResponse(body)

    def _select(self, filters: Mapping[str, str]) -> tuple[list[str], str, datetime]:
        created_after = filters.get("createdAfter")
        updated_after = filters.get("lastUpdatedAfter")
        if bool(created_after) == bool(updated_after):
            raise bad_input("Exactly one of createdAfter and lastUpdatedAfter is required")
        by_created = bool(created_after)
        if by_created and "lastUpdatedBefore" in filters:
            raise bad_input("lastUpdatedBefore cannot be combined with createdAfter")
        if not by_created and "createdBefore" in filters:
            raise bad_input("createdBefore cannot be combined with lastUpdatedAfter")
        after_key = "createdAfter" if by_created else "lastUpdatedAfter"
        before_key = "createdBefore" if by_created else "lastUpdatedBefore"
        after = parse_time(filters[after_key], after_key)
        latest = self.now() - timedelta(minutes=2)
        before = parse_time(filters[before_key], before_key) if before_key in filters else latest
        if before > latest:
            raise bad_input(
                f"{before_key} must be at least two minutes before the time of the request"
            )
        if before < after:
            raise bad_input(f"{before_key} must be equal to or after {after_key}")
        market_ids = set(self._csv(filters, "marketplaceIds"))
        if len(market_ids) > 50:
            raise bad_input("At most 50 marketplaceIds")
        statuses = set(self._csv(filters, "fulfillmentStatuses", FULFILLMENT_STATUSES))
        fulfilled_by = set(self._csv(filters, "fulfilledBy", ("MERCHANT", "AMAZON")))
        now = self.now()
        found = []
        for order in self.orders.values():
            moment = order.created if by_created else order.updated
            fulfillment = order.data.get("fulfillment") or {}
            if (
                order.visible_at <= now
                and after <= moment <= before
                and (
                    not market_ids or order.data["salesChannel"].get("marketplaceId") in market_ids
                )
                and (not statuses or order.status in statuses)
                and (not fulfilled_by or fulfillment.get("fulfilledBy") in fulfilled_by)
            ):
                found.append((moment, order.id))
        return [order_id for _, order_id in sorted(found)], before_key, before

    async def _get_order(self, request: Request) -> Response:
        query = self._query(request, ("includedData",))
        included = set(self._csv(query, "includedData", INCLUDED_DATA))
        order = self.orders.get(request.path_params["orderId"])
        if order is None:
            raise SimError(404, "NotFound", "The requested order does not exist.")
        return JSONResponse({"order": order.view(included)})

    async def _confirm_shipment(self, request: Request) -> Response:
        order = self.orders.get(request.path_params["orderId"])
        if order is None:
            raise SimError(404, "NotFound", "The requested order does not exist.")
        body = await read_json(request)
        package = body.get("packageDetail")
        if body.get("marketplaceId") != order.data["salesChannel"].get("marketplaceId"):
            raise bad_input("marketplaceId does not match the order")
        if not isinstance(package, dict):
            raise bad_input("packageDetail is required")
        _check_package(package)
        if (order.data.get("fulfillment") or {}).get("fulfilledBy") == "AMAZON":
            raise bad_input("The order is fulfilled by Amazon")
        reference = package["packageReferenceId"]
        packages = [p for p in order.data.setdefault("packages", []) if isinstance(p, dict)]
        previous = next((p for p in packages if p.get("packageReferenceId") == reference), None)
        if order.status not in ("UNSHIPPED", "PARTIALLY_SHIPPED") and previous is None:
            raise bad_input(f"Order in status {order.status} cannot be confirmed")
        shipped = _shipped_quantities(p for p in packages if p is not previous)
        for line in package["orderItems"]:
            item = order.item(str(line.get("orderItemId")))
            if item is None:
                raise bad_input(f"OrderItemId {line.get('orderItemId')} is invalid")
            already = shipped.get(item["orderItemId"], 0)
            if line["quantity"] + already > item["quantityOrdered"]:
                raise bad_input(
                    f"Quantity {line['quantity']} of {item['orderItemId']} exceeds the "
                    f"{item['quantityOrdered'] - already} unshipped"
                )
            shipped[item["orderItemId"]] = already + line["quantity"]
        self._apply_package(order, package, previous)
        return Response(status_code=204)

    def _apply_package(
        self, order: SimOrder, package: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        carrier = (
            package["carrierName"] if package["carrierCode"] == "Other" else package["carrierCode"]
        )
        stored = {
            "packageReferenceId": package["packageReferenceId"],
            "createdTime": iso(self.now()),
            "packageStatus": {"status": "SHIPPED"},
            "carrier": carrier,
            "shipTime": iso(parse_time(package["shipDate"], "shipDate")),
            "trackingNumber": package["trackingNumber"],
            "packageItems": [
                {"orderItemId": str(i["orderItemId"]), "quantity": i["quantity"]}
                for i in package["orderItems"]
            ],
        }
        if package.get("shippingMethod"):
            stored["shippingService"] = package["shippingMethod"]
        packages = order.data["packages"]
        if previous is not None:
            packages.remove(previous)
        packages.append(stored)
        shipped = _shipped_quantities(packages)
        for item in order.data["orderItems"]:
            done = shipped.get(item["orderItemId"], 0)
            item["fulfillment"] = {
                **(item.get("fulfillment") or {}),
                "quantityFulfilled": done,
                "quantityUnfulfilled": item["quantityOrdered"] - done,
            }
        complete = all(
            i["quantityOrdered"] <= shipped.get(i["orderItemId"], 0)
            for i in order.data["orderItems"]
        )
        order.data["fulfillment"]["fulfillmentStatus"] = (
            "SHIPPED" if complete else "PARTIALLY_SHIPPED"
        )
        order.touch(self.now())
        self.confirmations.append(
            {"orderId": order.id, "request": package, "package": stored, "time": iso(self.now())}
        )

    # -- sellers ----------------------------------------------------------------

    async def _participations(self, request: Request) -> Response:
        self._query(request, ())
        payload = []
        for market_id, participating in self.participations.items():
            market = marketplaces.MARKETPLACES[market_id]
            country = "GB" if market.country_code == "UK" else market.country_code
            payload.append(
                {
                    "marketplace": {
                        "id": market.id,
                        "name": market.domain,
                        "countryCode": country,
                        "defaultCurrencyCode": market.currency,
                        "defaultLanguageCode": LANGUAGES[market.country_code],
                        "domainName": "www." + market.domain.lower(),
                    },
                    "storeName": "Simulated Store",
                    "participation": {
                        "isParticipating": participating,
                        "hasSuspendedListings": False,
                    },
                }
            )
        return JSONResponse({"payload": payload})


def _check_package(package: dict[str, Any]) -> None:
    for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"):
        if not package.get(name):
            raise bad_input(f"packageDetail.{name} is required")
    reference = package["packageReferenceId"]
    if not isinstance(reference, str) or not reference.isdigit() or int(reference) <= 0:
        raise bad_input("packageReferenceId must be a string holding a positive number")
    if package["carrierCode"] not in CARRIERS:
        raise bad_input(f"Invalid carrierCode {package['carrierCode']!r}")
    if package["carrierCode"] == "Other" and not package.get("carrierName"):
        raise bad_input("carrierName is required when carrierCode is Other")
    parse_time(str(package["shipDate"]), "shipDate")
    for line in package["orderItems"]:
        if (
            not isinstance(line, dict)
            or not isinstance(line.get("quantity"), int)
            or line["quantity"] < 1
        ):
            raise bad_input("each orderItems entry needs an orderItemId and a positive quantity")


def _shipped_quantities(packages: Iterable[dict[str, Any]]) -> dict[str, int]:
    shipped: dict[str, int] = {}
    for package in packages:
        for item in package.get("packageItems") or ():
            key = str(item["orderItemId"])
            shipped[key] = shipped.get(key, 0) + int(item["quantity"])
    return shipped


def _lwa_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
