"""AmazonSettings, the marketplace table and plugin registration."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.registry import PlatformRegistry
from plugins.amazon import marketplaces, register_platforms
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.settings import AmazonSettings

EXAMPLE: dict[str, Any] = {
    "marketplaces": ["Amazon.de", "Amazon.fr"],
    "seller_id": "A2EXAMPLESELLER",
    "lwa_client_id": "amzn1.application-oa2-client.example",
    "lwa_client_secret": "example-client-secret",
    "lwa_refresh_token": "example-refresh-token",
}


def make(**changes: Any) -> AmazonSettings:
    return AmazonSettings(**{**EXAMPLE, **changes})


def test_example_settings() -> None:
    settings = make()
    assert settings.marketplaces == ("A1PA6795UKMFR9", "A13V1IB3VIYZZH")
    assert settings.region == "EU"
    assert settings.base_url == "https://sellingpartnerapi-eu.amazon.com"
    assert settings.lwa_token_url == "https://api.amazon.com/auth/o2/token"
    assert settings.page_size == 100


@pytest.mark.parametrize(
    "value", ["Amazon.de", "amazon.de", "www.amazon.de", "A1PA6795UKMFR9", "DE", " Amazon.DE "]
)
def test_marketplace_names_ids_and_countries(value: str) -> None:
    assert make(marketplaces=[value]).marketplaces == ("A1PA6795UKMFR9",)


def test_single_marketplace_key() -> None:
    data = {k: v for k, v in EXAMPLE.items() if k != "marketplaces"}
    settings = AmazonSettings.model_validate({**data, "marketplace": "Amazon.co.uk"})
    assert settings.marketplaces == ("A1F83G8C2ARO7P",)
    assert make(marketplaces="GB").marketplaces == ("A1F83G8C2ARO7P",)


def test_one_region_per_connection() -> None:
    with pytest.raises(ValidationError) as caught:
        make(marketplaces=["Amazon.de", "Amazon.com"])
    message = str(caught.value)
    assert "Amazon.de (EU), Amazon.com (NA)" in message
    assert "one connection per region" in message


def test_unknown_marketplace() -> None:
    with pytest.raises(ValidationError, match="unknown Amazon marketplace 'Amazon.xyz'"):
        make(marketplaces=["Amazon.xyz"])


def test_secrets_are_hidden() -> None:
    settings = make()
    text = repr(settings) + str(settings.model_dump())
    for secret in ("example-client-secret", "example-refresh-token", "amzn1.application"):
        assert secret not in text
    assert settings.lwa_refresh_token.get_secret_value() == "example-refresh-token"


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        ({"sandbox": True}, "https://sandbox.sellingpartnerapi-eu.amazon.com"),
        ({"marketplaces": ["Amazon.com"]}, "https://sellingpartnerapi-na.amazon.com"),
        ({"marketplaces": ["Amazon.co.jp"]}, "https://sellingpartnerapi-fe.amazon.com"),
        ({"marketplaces": ["Amazon.in"]}, "https://sellingpartnerapi-eu.amazon.com"),
        ({"endpoint": "http://127.0.0.1:8101/"}, "http://127.0.0.1:8101"),
    ],
)
def test_base_url(changes: dict[str, Any], url: str) -> None:
    assert make(**changes).base_url == url


@pytest.mark.parametrize(
    "changes",
    [
        {"unknown_option": 1},
        {"endpoint": "ftp://example"},
        {"endpoint": "http://x", "sandbox": True},
        {"page_size": 101},
        {"default_cancel_reason": "BecauseISaidSo"},
        {"marketplaces": []},
        {"seller_id": ""},
    ],
)
def test_invalid_settings(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(**changes)


def test_marketplace_table() -> None:
    table = marketplaces.MARKETPLACES
    assert len(table) == 23
    de = table["A1PA6795UKMFR9"]
    assert (de.domain, de.region, de.currency, de.tax_inclusive) == ("Amazon.de", "EU", "EUR", True)
    assert table["ATVPDKIKX0DER"].tax_inclusive is False
    assert {m.region for m in table.values()} == {"NA", "EU", "FE"}
    assert marketplaces.resolve("Amazon.in").region == "EU"


def test_register_platforms() -> None:
    registry = PlatformRegistry()
    register_platforms(lambda spec: registry.register(spec, plugin="amazon"))
    spec = registry.get("amazon", "marketplace")
    assert spec.connector is AmazonConnector
    assert spec.settings_model is AmazonSettings
    assert spec.description
