"""Settings of one Shopify shop connection (validated from the config file)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

DEFAULT_API_VERSION = "2026-10"
"""The Admin API version requested unless ``api_version`` says otherwise.

Shopify supports a stable version for at least 12 months and answers a request
for an unsupported one with the oldest supported version instead, so the
default has to be a current version (2026-10 is the latest, per
``shared/research/shop-platforms.md``). The documents are validated against the
2025-01 schema (``SCHEMA_VERSION``), the newest public introspection we hold: no
field they use is deprecated there, and Shopify deprecates a field before a later
version removes it. ``check()`` reports the version Shopify actually served.
"""
SCHEMA_VERSION = "2025-01"
"""The version of the bundled schema (``data/``) that documents are validated against."""

InventoryBehaviour = Literal["BYPASS", "DECREMENT_IGNORING_POLICY", "DECREMENT_OBEYING_POLICY"]
CancelReason = Literal["CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"]

_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*$")
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
_HANDLE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Attribute:
    """A parsed product identification attribute."""

    kind: Literal["sku", "barcode", "id", "metafield"]
    namespace: str = ""
    key: str = ""


def parse_attribute(value: str) -> Attribute:
    """Parse ``sku``, ``barcode``, ``id`` or ``metafield:<namespace>.<key>``."""
    if value in ("sku", "barcode", "id"):
        return Attribute(kind=value)  # type: ignore[arg-type]
    if value.startswith("metafield:"):
        namespace, _, key = value.removeprefix("metafield:").partition(".")
        if _HANDLE.match(namespace) and _HANDLE.match(key):
            return Attribute(kind="metafield", namespace=namespace, key=key)
    raise ValueError(
        f"unknown identification attribute {value!r}: use sku, barcode, id or "
        "metafield:<namespace>.<key>"
    )


class ShopifySettings(BaseModel):
    """One Shopify store, reached through the GraphQL Admin API.

    Authenticate with either ``access_token`` (a custom app's Admin API token) or
    ``client_id`` + ``client_secret`` (client credentials grant; the token is
    fetched and refreshed before it expires).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    shop_domain: str = Field(
        description="Store domain, e.g. 'my-store.myshopify.com' or 'my-store'."
    )
    access_token: SecretStr | None = None
    """Admin API access token of a custom app (``shpat_...``), shown once when the app is installed.
    Give it, or ``client_id`` + ``client_secret``, not both."""
    client_id: SecretStr | None = None
    """Client ID of an app your own organization made in the Dev Dashboard and installed in the
    store; with ``client_secret``, ordersync fetches the access token itself (client credentials
    grant) and renews it before it expires."""
    client_secret: SecretStr | None = None
    """Client secret of the same app, used with ``client_id``."""
    api_version: str = Field(
        default=DEFAULT_API_VERSION,
        description="Admin API version (YYYY-01/04/07/10); keep it supported: Shopify "
        "answers an unsupported one with its oldest supported version, and `connections "
        "test` says so.",
    )
    location: str | None = Field(
        default=None,
        description="Location for stock: a GID, a numeric id or the location's name. "
        "May be omitted when the shop has exactly one active location.",
    )
    endpoint: AnyHttpUrl | None = Field(
        default=None, description="Base URL override, e.g. a local simulator."
    )
    inventory_behaviour: InventoryBehaviour = "DECREMENT_IGNORING_POLICY"
    """Claim stock for created orders; ignoring the policy because Amazon already sold it."""
    tags: list[str] = Field(default_factory=lambda: ["amazon"])
    """Extra tags added to every created order, after ``order_tag``; ``[]`` adds none."""
    order_tag: str = Field(
        default="ordersync", description="Marks orders created by ordersync; always added."
    )
    source_name: str = "ordersync"
    """``sourceName`` of created orders; with ``sourceIdentifier`` (the Amazon order id) and
    ``order_tag`` it marks an order as created by ordersync."""
    payment_gateway: str = "amazon"
    """Gateway name of the paid ``SALE`` transaction recorded on each created order for Amazon's
    total."""
    tax_title: str = "Tax"
    """Title of the tax lines that carry Amazon's tax on the items and shipping of created
    orders."""
    discount_code: str = "AMAZON-PROMOTION"
    """Discount code under which Amazon's item promotions (their total amount) appear on created
    orders."""
    cancel_reason: CancelReason = "OTHER"
    """Reason Shopify records when ordersync cancels an order because it was cancelled on Amazon
    (``CUSTOMER``, ``DECLINED``, ``FRAUD``, ``INVENTORY``, ``STAFF`` or ``OTHER``)."""
    restock_on_cancel: bool = True
    """Whether Shopify puts an order's units back into stock when ordersync cancels it (because it
    was cancelled on Amazon, which happens only before it shipped, so the goods are still on the
    shelf); turn it off only if someone restocks cancelled orders by hand."""
    product_batch_size: int = Field(default=50, ge=1, le=100)
    """SKUs or barcodes looked up per Shopify search query when matching Amazon SKUs to variants (1
    to 100)."""
    orders_page_size: int = Field(default=25, ge=1, le=100)
    """Orders per GraphQL page when reading shipments and cancellations of ordersync's orders (1 to
    100); larger pages cost more query points each."""
    stock_page_size: int = Field(default=100, ge=1, le=150)
    """Inventory levels per GraphQL page when reading stock (1 to 150; 150 keeps one page under
    Shopify's 1,000-point cost limit for a single query)."""
    bulk_threshold: int = Field(
        default=5000,
        ge=0,
        description="Full stock reads above this many variants use a bulk "
        "operation; 0 disables bulk operations.",
    )
    bulk_page_size: int = Field(default=5000, ge=1)
    """Stock levels per page handed on from a bulk operation's result (the result is downloaded
    once; only the page size changes)."""
    bulk_poll_interval: float = Field(default=2.0, gt=0)
    """Seconds between status checks of a running bulk operation."""
    bulk_timeout: float = Field(default=3600.0, gt=0)
    """Seconds to wait for a bulk operation to finish before the read fails (and is retried
    later)."""
    lookback_seconds: int = Field(
        default=300, ge=0, description="Re-read window for updated_at cursors (search lag)."
    )
    search_lag_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How far Shopify's order search may lag behind orderCreate: the "
        "idempotency lookup also lists the orders created this recently without a search, "
        "so an order whose create answer was lost is found at once; 0 trusts the search.",
    )
    metafield_cache_seconds: float = Field(default=600.0, ge=0)
    """How long, in seconds, the index of a metafield's values (products matched by
    ``metafield:<namespace>.<key>``) is reused before every variant is read again; 0 reads it each
    time."""
    max_throttle_retries: int = Field(default=8, ge=0)
    """How often one GraphQL query is sent again after a ``THROTTLED`` answer (waiting for cost
    points each time) before it fails as rate-limited, to be retried later."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for Shopify on one HTTP request (connecting, each read or write) before that
    try fails."""

    @field_validator("shop_domain")
    @classmethod
    def _shop_domain(cls, value: str) -> str:
        shop = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if "." not in shop:
            shop = f"{shop}.myshopify.com"
        if not _SHOP.match(shop):
            raise ValueError(f"not a shop domain: {value!r}")
        return shop

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(
                f"API version must look like 2025-01 (YYYY-01/04/07/10), got {value!r}"
            )
        return value

    @field_validator("order_tag", "source_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _one_auth_method(self) -> ShopifySettings:
        pair = (self.client_id is not None, self.client_secret is not None)
        if self.access_token is not None and any(pair):
            raise ValueError("give either access_token or client_id + client_secret, not both")
        if self.access_token is None and pair != (True, True):
            raise ValueError("access_token, or client_id and client_secret, is required")
        return self

    @property
    def base_url(self) -> str:
        return str(self.endpoint).rstrip("/") if self.endpoint else f"https://{self.shop_domain}"

    @property
    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"

    @property
    def all_tags(self) -> list[str]:
        tags = [self.order_tag, *self.tags]
        return list(dict.fromkeys(t.strip() for t in tags if t.strip()))
