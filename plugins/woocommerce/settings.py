"""Settings of one WooCommerce shop connection (validated by the engine's config loader)."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

OrderStatus = Literal[
    "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"
]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WooCommerceSettings(BaseModel):
    """A WooCommerce store reached through the REST API ``wc/v3``.

    Example::

        {"store_url": "https://shop.example.com",
         "consumer_key": {"$env": "WOO_KEY"}, "consumer_secret": {"$env": "WOO_SECRET"},
         "ean_meta_key": "_alg_ean", "shipped_statuses": ["completed"]}
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    store_url: str
    """Root URL of the WordPress site, e.g. ``https://shop.example.com``."""
    consumer_key: SecretStr
    """REST API consumer key (``ck_...``) from *WooCommerce > Settings > Advanced > REST API*; the
    key needs *Read/Write* access."""
    consumer_secret: SecretStr
    """The consumer secret (``cs_...``) generated together with that key."""
    query_string_auth: bool = False
    """Over HTTPS, send the keys as ``consumer_key``/``consumer_secret`` query parameters
    instead of HTTP Basic (for servers that strip the ``Authorization`` header)."""
    api_base: str | None = None
    """Override of the ``wc/v3`` base URL, e.g. ``https://shop.example.com/index.php/wp-json/wc/v3``."""
    allow_insecure_http: bool = False
    """Permit ``http://`` for a non-loopback store. WooCommerce accepts keys over plain HTTP
    only as OAuth 1.0a signatures, so requests to an ``http://`` store (loopback too) are
    signed (HMAC-SHA256) and the secret never travels; orders and addresses still go in
    clear text."""

    ean_meta_key: str = "_alg_ean"
    """Product/variation meta key holding the EAN (``_alg_ean``, ``_ean``, ...)."""
    new_order_status: OrderStatus = "processing"
    """Status of created orders (they are created paid); the default ``processing`` is WooCommerce's
    status for a paid order waiting to be shipped."""
    amazon_order_id_meta_key: str = "_amazon_order_id"
    """Order meta key that holds the Amazon order id on created orders; ordersync finds its orders
    by it, so change it only before the first import."""
    shipped_statuses: list[OrderStatus] = Field(default=["completed"], min_length=1)
    """Order statuses that mean shipped: the units no itemised tracking entry covers are reported to
    Amazon as shipped, and an order in such a status is not cancelled when Amazon cancels it (that
    is reported, to be cancelled by hand)."""
    tracking_source: Literal["meta", "fulfillments", "auto"] = "meta"
    """``meta``: the Shipment Tracking meta (``tracking_meta_key``); ``fulfillments``: the
    core Order Fulfillments endpoints (WooCommerce 10.2+ with the feature enabled);
    ``auto``: the meta, plus the fulfilments when the store serves them (one more call per
    changed order), a parcel recorded in both (same tracking number) counted once."""
    tracking_meta_key: str = "_wc_shipment_tracking_items"
    """Order meta key of the Shipment Tracking items read when ``tracking_source`` is ``meta`` or
    ``auto``; the default is the one the Shipment Tracking extension writes."""
    untracked_shipment_delay_seconds: float = Field(default=600.0, ge=0)
    """How long an order completed without tracking waits before it is reported as
    shipped untracked (tracking added meanwhile makes it a tracked shipment)."""
    tax_handling: Literal["shop", "amazon"] = "shop"
    """``shop``: send net prices and let WooCommerce add tax from its tax tables (a
    non-taxable fee line absorbs any cent difference to Amazon's total); ``amazon``: the
    shop charges no tax on these orders, Amazon's amounts are sent as they are."""
    payment_method: str = "amazon"
    """Payment method id stored on created orders, which are created paid with the Amazon order id
    as transaction id."""
    payment_method_title: str = "Amazon"
    """Payment method name shown on created orders."""
    shipping_method_id: str = "amazon"
    """``method_id`` of the shipping line of created orders (its title reads ``Amazon <service>
    (<Amazon order id>)``)."""

    page_size: int = Field(default=50, ge=1, le=100)
    """Records per page when listing orders and products for changes, stock and order look-ups (1 to
    100, WooCommerce's maximum)."""
    use_batch: bool = True
    """Use ``/orders/batch`` for the multi-order helpers (``create_orders``, ``cancel_orders``)."""
    requests_per_second: float = Field(default=5.0, gt=0)
    """Client-side limit: WooCommerce publishes none, hosts and WAFs do throttle."""
    burst: int = Field(default=10, ge=1)
    """Requests that may go at once after a quiet spell before ``requests_per_second`` paces
    them."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for the store on one HTTP request before that try fails."""
    catalogue_cache_seconds: float = Field(default=600.0, ge=0)
    """How long a full catalogue scan (EAN and variation-id lookups) is reused."""
    cursor_lookback_seconds: float = Field(default=120.0, ge=0)
    """Overlap re-read by ``changes_since``/``stock_levels`` (clock skew, same-second writes)."""

    @field_validator("store_url", "api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        if parts.query or parts.fragment:
            raise ValueError("the URL must not carry a query string or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _https(self) -> WooCommerceSettings:
        for url in filter(None, (self.store_url, self.api_base)):
            parts = urlsplit(url)
            if parts.scheme == "http" and not (
                self.allow_insecure_http or _is_loopback(parts.hostname or "")
            ):
                raise ValueError(
                    f"{url} is plain HTTP: use https, or set allow_insecure_http to sign every "
                    "request with OAuth 1.0a (the secret stays secret, but orders and buyers' "
                    "addresses travel in clear text: only on a trusted network)"
                )
        if "cancelled" in self.shipped_statuses:
            raise ValueError("shipped_statuses must not contain 'cancelled'")
        return self

    @property
    def signs_requests(self) -> bool:
        """Whether requests are OAuth 1.0a signed (the API is reached over plain HTTP)."""
        return urlsplit(self.base_url).scheme == "http"

    @property
    def base_url(self) -> str:
        """The ``wc/v3`` namespace URL every request is relative to."""
        return self.api_base or f"{self.store_url}/wp-json/wc/v3"
