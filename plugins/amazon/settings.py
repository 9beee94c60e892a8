"""Settings of one Amazon connection (one seller, one region)."""

from __future__ import annotations

import json
from functools import cached_property
from importlib import resources
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from plugins.amazon import marketplaces
from plugins.amazon.marketplaces import LWA_TOKEN_URL, REGIONS, Marketplace


def load_data(name: str) -> dict[str, Any]:
    """A JSON file from ``plugins/amazon/data``."""
    text = resources.files("plugins.amazon").joinpath("data", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


CANCEL_REASONS: tuple[str, ...] = tuple(load_data("cancel_reasons.json")["codes"])


class AmazonSettings(BaseModel):
    """One SP-API connection: a seller's LWA authorization for one region.

    Example (TOML)::

        [connections.marketplace]
        type = "amazon"
        [connections.marketplace.settings]
        marketplaces = ["Amazon.de", "Amazon.fr"]
        seller_id = "A2EXAMPLESELLER"
        lwa_client_id = { "$env" = "AMAZON_LWA_CLIENT_ID" }
        lwa_client_secret = { "$env" = "AMAZON_LWA_CLIENT_SECRET" }
        lwa_refresh_token = { "$env" = "AMAZON_REFRESH_TOKEN" }
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )

    marketplaces: tuple[str, ...] = Field(
        validation_alias=AliasChoices("marketplaces", "marketplace"),
        description="Marketplace ids or store names of one region, e.g. Amazon.de.",
    )
    seller_id: str = Field(min_length=1, description="Selling partner id (merchant token).")
    lwa_client_id: SecretStr
    """Login with Amazon client id of your SP-API app (Developer Central, ``amzn1.application-oa2-client...``)."""
    lwa_client_secret: SecretStr
    """Login with Amazon client secret of the same app."""
    lwa_refresh_token: SecretStr = Field(description="LWA refresh token of this seller and region.")

    endpoint: str | None = Field(
        default=None,
        description="SP-API base URL override (a sandbox host or a local simulator).",
    )
    sandbox: bool = Field(default=False, description="Use the region's sandbox host.")
    lwa_token_url: str = LWA_TOKEN_URL
    """Where the refresh token is exchanged for access tokens; override only for a local simulator."""

    page_size: int = Field(default=100, ge=1, le=100)
    """Orders per ``searchOrders`` page (Amazon's maximum is 100): the page rate is the bottleneck,
    so keep the maximum."""
    stock_batch_threshold: int = Field(
        default=20,
        ge=0,
        description="Up to this many SKUs use patchListingsItem; more use JSON_LISTINGS_FEED.",
    )
    product_type: str = Field(default="PRODUCT", min_length=1)
    """``productType`` sent with stock patches; ``PRODUCT`` works for quantity-only updates."""
    fulfillment_channel_code: str = Field(default="DEFAULT", min_length=1)
    """The ``fulfillment_availability`` channel stock is set on: ``DEFAULT`` is the seller's own
    (merchant-fulfilled) stock."""
    default_cancel_reason: str = "NoInventory"
    """Amazon ``CancelReason`` used when the connection's ``cancellation_reason`` is not one of
    Amazon's codes or aliases."""
    feed_poll_interval: float = Field(default=30.0, gt=0)
    """Seconds between ``getFeed`` polls while a cancellation or stock feed is processed."""
    feed_timeout: float = Field(default=1800.0, gt=0)
    """Seconds a feed may take before its items are retried at the next run."""
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds one HTTP request may take before it counts as a timeout (and is retried)."""

    @field_validator("marketplaces", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value

    @field_validator("marketplaces")
    @classmethod
    def _resolve(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one marketplace is required")
        resolved = [marketplaces.resolve(v) for v in value]
        regions = {m.region for m in resolved}
        if len(regions) > 1:
            listing = ", ".join(f"{m.domain} ({m.region})" for m in resolved)
            raise ValueError(
                "one connection covers one SP-API region (one refresh token per region); "
                f"got {listing}. Configure one connection per region."
            )
        ids = [m.id for m in resolved]
        return tuple(dict.fromkeys(ids))

    @field_validator("default_cancel_reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        if value not in CANCEL_REASONS:
            raise ValueError(
                f"unknown CancelReason {value!r}; use one of {', '.join(CANCEL_REASONS)}"
            )
        return value

    @field_validator("endpoint", "lwa_token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _endpoint_or_sandbox(self) -> AmazonSettings:
        if self.endpoint and self.sandbox:
            raise ValueError("set either endpoint or sandbox, not both")
        return self

    @cached_property
    def marketplace_list(self) -> tuple[Marketplace, ...]:
        return tuple(marketplaces.MARKETPLACES[m] for m in self.marketplaces)

    @property
    def region(self) -> str:
        return self.marketplace_list[0].region

    @property
    def base_url(self) -> str:
        if self.endpoint:
            return self.endpoint
        region = REGIONS[self.region]
        return region.sandbox_host if self.sandbox else region.host
