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


# Research brief §2.2 (Amazon's "Marketplace IDs" page), typed in by hand:
# store, marketplaceId, country code as Amazon prints it, region.
MARKETPLACE_IDS = """
Amazon.ca A2EUQ1WTGCTBG2 CA NA | Amazon.com ATVPDKIKX0DER US NA | Amazon.com.mx A1AM78C64UM0Y8 MX NA
Amazon.com.br A2Q3Y263D00KWC BR NA | Amazon.ie A28R8C7NBKEWEA IE EU | Amazon.es A1RKKUPIHCS9HS ES EU
Amazon.co.uk A1F83G8C2ARO7P UK EU | Amazon.fr A13V1IB3VIYZZH FR EU | Amazon.com.be AMEN7PMS3EDWL BE EU
Amazon.nl A1805IZSGTT6HS NL EU | Amazon.de A1PA6795UKMFR9 DE EU | Amazon.it APJ6JRA9NG5V4 IT EU
Amazon.se A2NODRKZP88ZB9 SE EU | Amazon.co.za AE08WJ6YKNBMC ZA EU | Amazon.pl A1C3SOZRARQ6R3 PL EU
Amazon.eg ARBP9OOSHTCHU EG EU | Amazon.com.tr A33AVAJ2PDY3EV TR EU | Amazon.sa A17E79C6D8DWNP SA EU
Amazon.ae A2VIGQ35RCS4UG AE EU | Amazon.in A21TJRUUN4KGV IN EU | Amazon.sg A19VAU5U5O7RUS SG FE
Amazon.com.au A39IBJ37TRP1C6 AU FE | Amazon.co.jp A1VC38T7YXB528 JP FE
"""
# Research brief §2.1 ("SP-API endpoints"): production and sandbox host per region.
HOSTS = {
    "NA": (
        "https://sellingpartnerapi-na.amazon.com",
        "https://sandbox.sellingpartnerapi-na.amazon.com",
    ),
    "EU": (
        "https://sellingpartnerapi-eu.amazon.com",
        "https://sandbox.sellingpartnerapi-eu.amazon.com",
    ),
    "FE": (
        "https://sellingpartnerapi-fe.amazon.com",
        "https://sandbox.sellingpartnerapi-fe.amazon.com",
    ),
}


def test_every_marketplace_id_country_region_and_host() -> None:
    rows = [row.split() for row in MARKETPLACE_IDS.replace("\n", " | ").split("|") if row.strip()]
    assert len(rows) == 23
    table = marketplaces.MARKETPLACES
    assert set(table) == {market_id for _, market_id, _, _ in rows}
    for domain, market_id, country, region in rows:
        market = table[market_id]
        assert (market.domain, market.country_code, market.region) == (domain, country, region)
        assert marketplaces.resolve(domain) is market
        assert (marketplaces.REGIONS[region].host, marketplaces.REGIONS[region].sandbox_host) == (
            HOSTS[region]
        )


def test_register_platforms() -> None:
    registry = PlatformRegistry()
    register_platforms(lambda spec: registry.register(spec, plugin="amazon"))
    spec = registry.get("amazon", "marketplace")
    assert spec.connector is AmazonConnector
    assert spec.settings_model is AmazonSettings
    assert spec.description
