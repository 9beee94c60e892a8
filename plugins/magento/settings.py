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

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="Shop URL as Magento knows it, e.g. https://shop.example.com")
    store_code: str = "default"
    endpoint: str | None = Field(
        default=None,
        description="REST root override; default {base_url}/rest/{store_code}",
    )
    auth_mode: Literal["oauth", "bearer"] = "oauth"
    access_token: SecretStr
    access_token_secret: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None

    order_create_mode: Literal["orders_create", "cart"] = "orders_create"
    """``orders_create``: ``PUT /V1/orders/create`` with Amazon's amounts (exact, atomic),
    but Magento places no MSI reservation for it (magento2#26575): the web shop's salable
    quantity does not count these orders unless ``bin/magento
    inventory:reservation:create-compensations`` runs. ``cart``: guest-cart checkout
    (MSI reserves), then the amounts are aligned via ``POST /V1/orders``."""
    payment_method: str = "checkmo"
    shipping_carrier_code: str = "flatrate"
    shipping_method_code: str = "flatrate"
    shipping_description: str = "Amazon"
    use_amazon_increment_id: bool = True
    """``orders_create`` only: increment_id = prefix + Amazon order id (unique in Magento)."""
    increment_id_prefix: str = "AMZ-"
    placeholder_email: str = "no-reply@marketplace.invalid"
    placeholder_phone: str = "0"

    source_code: str = "default"
    open_order_days: int = Field(default=30, ge=1)
    """Open orders placed within this many days hold their unshipped units back from
    the stock reported to the marketplace."""
    ean_attribute: str = "ean"
    page_size: int = Field(default=100, ge=1, le=300)
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
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_tries: int = Field(default=5, ge=1)

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
