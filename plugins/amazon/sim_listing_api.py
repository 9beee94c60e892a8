"""Listings Items API handlers of the simulator: getListingsItem and patchListingsItem."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plugins.amazon import sim_feeds
from plugins.amazon.sim_api import ApiHandlers
from plugins.amazon.sim_listings import QUANTITY_PATH, Listing, apply_availability_patch
from plugins.amazon.sim_state import SimError, bad_input, read_json

ITEM_DATA = (
    "summaries",
    "attributes",
    "issues",
    "offers",
    "fulfillmentAvailability",
    "procurement",
    "relationships",
    "productTypes",
)
"""``includedData`` values of getListingsItem (offers, procurement and relationships are
accepted and answered without data)."""
PATCH_OPS = ("add", "replace", "merge", "delete")


class ListingHandlers(ApiHandlers):
    """``/listings/2021-08-01/items/{sellerId}/{sku}``: GET and PATCH."""

    def _listing_request(self, request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
        query = self._query(request, allowed)
        if request.path_params["sellerId"] != self.seller_id:
            raise SimError(403, "Unauthorized", "Access to requested resource is denied.")
        market_ids = self._csv(query, "marketplaceIds")
        if not market_ids:
            raise bad_input("marketplaceIds is required")
        for market_id in market_ids:
            if not self.participations.get(market_id):
                raise bad_input(f"The seller does not participate in marketplace {market_id}")
        return dict(query)

    async def _get_listing(self, request: Request) -> Response:
        query = self._listing_request(request, ("marketplaceIds", "includedData", "issueLocale"))
        included = set(self._csv(query, "includedData", ITEM_DATA)) or {"summaries"}
        sku = request.path_params["sku"]
        listing = self.listings.get(sku)
        if listing is None:
            raise SimError(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace")
        market_ids = self._csv(query, "marketplaceIds")
        return JSONResponse(listing.view(included, market_ids))

    async def _patch_listing(self, request: Request) -> Response:
        query = self._listing_request(
            request, ("marketplaceIds", "includedData", "mode", "issueLocale")
        )
        self._csv(query, "includedData", ("identifiers", "issues"))
        if query.get("mode") not in (None, "VALIDATION_PREVIEW"):
            raise bad_input("mode must be VALIDATION_PREVIEW")
        body = await read_json(request)
        patches = body.get("patches")
        product_type = body.get("productType")
        if not isinstance(product_type, str) or not isinstance(patches, list) or not patches:
            raise bad_input("productType and at least one patch are required")
        for patch in patches:
            if not isinstance(patch, dict) or patch.get("op") not in PATCH_OPS:
                raise bad_input("each patch needs op add, replace, merge or delete and a path")
        sku = request.path_params["sku"]
        answer: dict[str, Any] = {"sku": sku, "submissionId": self._new_id()}
        if sku in self.failing_skus:
            self.listing_updates.append({"sku": sku, "via": "patch", "ok": False})
            return JSONResponse({**answer, "status": "INVALID", "issues": [invalid_attribute()]})
        existing = self.listings.get(sku)
        trial = copy.deepcopy(existing) if existing else Listing(sku, self.now(), self.now())
        problems = [
            problem
            for patch in patches
            if patch.get("path") == QUANTITY_PATH
            and (problem := apply_availability_patch(trial, patch))
        ]
        if problems:
            self.listing_updates.append({"sku": sku, "via": "patch", "ok": False})
            issues = [invalid_attribute(message) for message in problems]
            return JSONResponse({**answer, "status": "INVALID", "issues": issues})
        if query.get("mode") == "VALIDATION_PREVIEW":
            return JSONResponse({**answer, "status": "VALID", "issues": []})
        if any(p.get("path") == QUANTITY_PATH for p in patches):
            self.store_listing(trial, product_type, via="patch")
        return JSONResponse({**answer, "status": "ACCEPTED", "issues": []})


def invalid_attribute(message: str = "The attributes are invalid.") -> dict[str, Any]:
    return {
        "code": sim_feeds.INVALID_ATTRIBUTE_CODE,
        "message": message,
        "severity": "ERROR",
        "attributeNames": ["fulfillment_availability"],
        "categories": ["INVALID_ATTRIBUTE"],
    }
