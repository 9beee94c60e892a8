"""Settings of one Magento 2 shop connection."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MagentoSettings(BaseModel):
    """How to reach a Magento 2 / Adobe Commerce shop and how to write Amazon orders into it.

    Authentication uses an *integration* (System > Extensions > Integrations): its four
    OAuth 1.0a values for ``auth_mode="oauth"`` (HMAC-SHA256 signing), or only its access
    token for ``auth_mode="bearer"``, which Magento accepts since 2.4.4 only when
    *Allow OAuth Access Tokens to be used as standalone Bearer tokens* is switched on.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    base_url: str = Field(description="Shop URL as Magento knows it, e.g. https://shop.example.com")
    store_code: str = "default"
    """Store view code: part of the REST path (``/rest/<store_code>``) and the store whose id orders
    are created in; ``connections test`` lists the known codes when it is wrong."""
    endpoint: str | None = Field(
        default=None,
        description="REST root override; default {base_url}/rest/{store_code}",
    )
    auth_mode: Literal["oauth", "bearer"] = "oauth"
    """``oauth``: sign every request with the integration's four OAuth 1.0a values (plain HTTP is
    allowed); ``bearer``: send only ``access_token`` as a Bearer token, over https, which Magento
    2.4.4+ accepts only with *Allow OAuth Access Tokens to be used as standalone Bearer tokens*
    switched on."""
    access_token: SecretStr
    """Access token of the integration (System > Extensions > Integrations, shown after *Activate*);
    needed in both auth modes."""
    access_token_secret: SecretStr | None = None
    """Access token secret of the integration; required for ``auth_mode = "oauth"``."""
    consumer_key: SecretStr | None = None
    """Consumer key of the integration; required for ``auth_mode = "oauth"``."""
    consumer_secret: SecretStr | None = None
    """Consumer secret of the integration; required for ``auth_mode = "oauth"``."""

    order_create_mode: Literal["orders_create", "cart"] = "orders_create"
    """``orders_create``: ``PUT /V1/orders/create`` with Amazon's amounts (exact, atomic),
    but Magento places no MSI reservation for it (magento2#26575): the web shop's salable
    quantity does not count these orders unless ``bin/magento
    inventory:reservation:create-compensations`` runs. ``cart``: guest-cart checkout
    (MSI reserves), then the amounts are aligned via ``POST /V1/orders``."""
    payment_method: str = "checkmo"
    """Payment method code of created orders; the default ``checkmo`` (Check / Money order) comes
    with Magento. In ``cart`` mode the checkout must accept it; it also helps recognise an order
    whose checkout answer was lost."""
    shipping_carrier_code: str = "flatrate"
    """Carrier code of the shipping method of created orders (Magento's method is
    ``<carrier>_<method>``, by default ``flatrate_flatrate``); in ``cart`` mode the carrier must be
    enabled."""
    shipping_method_code: str = "flatrate"
    """Method code of that carrier's shipping method, see ``shipping_carrier_code``."""
    shipping_description: str = "Amazon"
    """Shipping description of created orders, followed by `` - <Amazon shipping service>`` when
    Amazon names one."""
    use_amazon_increment_id: bool = True
    """``orders_create`` only: increment_id = prefix + Amazon order id (unique in Magento)."""
    increment_id_prefix: str = "AMZ-"
    """Put before the Amazon order id to make the order number when ``use_amazon_increment_id`` is
    on (``orders_create`` mode), e.g. ``AMZ-302-1234567-1234567``."""
    placeholder_email: str = "no-reply@marketplace.invalid"
    """E-mail set on orders whose Amazon order carries no buyer e-mail, since Magento requires one;
    the ``.invalid`` default cannot receive mail."""
    placeholder_phone: str = "0"
    """Telephone set on addresses without a phone number, since Magento's addresses require one."""

    source_code: str = "default"
    """MSI source whose quantities are read as stock (``default`` is the Default Source of a
    single-source shop)."""
    open_order_days: int = Field(default=30, ge=1)
    """Open orders placed within this many days hold their unshipped units back from
    the stock reported to the marketplace."""
    ean_attribute: str = "ean"
    """Attribute code of the product attribute holding the EAN, used when products are identified by
    ``ean``."""
    page_size: int = Field(default=100, ge=1, le=300)
    """Items per search page, and values per ``in`` filter, of Magento REST searches (1 to 300,
    Magento's maximum when its input limits are on)."""
    max_changed_skus: int = Field(default=1000, ge=1)
    """Above this many changed SKUs an incremental stock read becomes a full scan."""
    untracked_shipment_delay_seconds: float = Field(default=600.0, ge=0)
    """How long a shipment without a track waits before it is reported untracked (a
    track added meanwhile is reported with it)."""
    settle_seconds: int = Field(default=10, ge=0)
    """Shop events newer than this are left for the next poll (commit lag)."""
    lookback_seconds: int = Field(default=0, ge=0)
    """Each poll re-reads this much of the previous window (the engine dedupes repeats)."""

    requests_per_second: float = Field(default=20.0, gt=0)
    """Client-side pace for each kind of request (product search, order create, ...), with bursts of
    twice that; Magento core sets no limit, lower it for a small server."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for Magento on one HTTP request before that try fails."""
    max_tries: int = Field(default=5, ge=1)
    """Tries per request, the first included, when it fails in a way worth retrying (timeout,
    connection error, 429, 5xx); before an order create is sent again, Magento is searched for
    it."""

    @field_validator("base_url", "endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _no_clear_text_token(self) -> MagentoSettings:
        """A bearer token is the whole credential; over plain HTTP anyone on the way has
        it. OAuth 1.0a signs requests and never sends the secrets, so it may use HTTP."""
        if self.auth_mode != "bearer":
            return self
        for name in ("base_url", "endpoint"):
            url = getattr(self, name)
            parts = urlsplit(url or "")
            if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
                raise ValueError(
                    f"{name} {url} is plain HTTP: auth_mode 'bearer' would send the access "
                    "token in clear text; use https:// or auth_mode 'oauth'"
                )
        return self

    @model_validator(mode="after")
    def _oauth_complete(self) -> MagentoSettings:
        if self.auth_mode == "oauth":
            missing = [
                name
                for name in ("consumer_key", "consumer_secret", "access_token_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"auth_mode 'oauth' needs {', '.join(missing)}")
        return self

    @property
    def rest_root(self) -> str:
        """URL that ``/V1/...`` paths are appended to."""
        return self.endpoint or f"{self.base_url}/rest/{self.store_code}"

    def secrets(self) -> list[SecretStr]:
        values = [self.access_token, self.access_token_secret, self.consumer_key]
        values.append(self.consumer_secret)
        return [v for v in values if v is not None]
