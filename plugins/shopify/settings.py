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

    model_config = ConfigDict(extra="forbid")

    shop_domain: str = Field(
        description="Store domain, e.g. 'my-store.myshopify.com' or 'my-store'."
    )
    access_token: SecretStr | None = None
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
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
    order_tag: str = Field(
        default="ordersync", description="Marks orders created by ordersync; always added."
    )
    source_name: str = "ordersync"
    payment_gateway: str = "amazon"
    tax_title: str = "Tax"
    discount_code: str = "AMAZON-PROMOTION"
    cancel_reason: CancelReason = "OTHER"
    restock_on_cancel: bool = False
    product_batch_size: int = Field(default=50, ge=1, le=100)
    orders_page_size: int = Field(default=25, ge=1, le=100)
    stock_page_size: int = Field(default=100, ge=1, le=150)
    bulk_threshold: int = Field(
        default=5000,
        ge=0,
        description="Full stock reads above this many variants use a bulk "
        "operation; 0 disables bulk operations.",
    )
    bulk_page_size: int = Field(default=5000, ge=1)
    bulk_poll_interval: float = Field(default=2.0, gt=0)
    bulk_timeout: float = Field(default=3600.0, gt=0)
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
    max_throttle_retries: int = Field(default=8, ge=0)
    timeout: float = Field(default=30.0, gt=0)

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
