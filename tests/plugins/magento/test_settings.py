"""Settings validation and platform registration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.registry import PlatformRegistry
from plugins.magento import MagentoConnector, MagentoSettings, register_platforms

EXAMPLE = {
    "base_url": "https://shop.example.com/",
    "auth_mode": "oauth",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "access_token": "at",
    "access_token_secret": "ats",
}


def test_example_settings() -> None:
    settings = MagentoSettings(**EXAMPLE)
    assert settings.rest_root == "https://shop.example.com/rest/default"
    assert settings.order_create_mode == "orders_create"
    assert "cs" not in repr(settings)


def test_endpoint_override() -> None:
    settings = MagentoSettings(**EXAMPLE, endpoint="https://shop.example.com/index.php/rest/de")
    assert settings.rest_root == "https://shop.example.com/index.php/rest/de"


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        MagentoSettings(**EXAMPLE, api_key="x")


def test_oauth_needs_all_four_values() -> None:
    data = {k: v for k, v in EXAMPLE.items() if k != "consumer_secret"}
    with pytest.raises(ValidationError, match="consumer_secret"):
        MagentoSettings(**data)
    MagentoSettings(**{**data, "auth_mode": "bearer"})


@pytest.mark.parametrize(
    ("field", "value"),
    [("base_url", "shop.example.com"), ("page_size", 301), ("order_create_mode", "soap")],
)
def test_invalid_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        MagentoSettings(**{**EXAMPLE, field: value})


def test_registers_as_a_shop_platform() -> None:
    registry = PlatformRegistry()
    register_platforms(registry.register)
    spec = registry.get("magento", "shop")
    assert spec.connector is MagentoConnector
    assert spec.settings_model is MagentoSettings
    assert spec.description


BEARER = {
    "base_url": "https://shop.example.com",
    "auth_mode": "bearer",
    "access_token": "tok-distinctive-0001",
}


@pytest.mark.parametrize("field", ["base_url", "endpoint"])
def test_a_bearer_token_is_never_sent_over_plain_http(field: str) -> None:
    url = "http://shop.example.com" + ("/rest/de" if field == "endpoint" else "")
    with pytest.raises(ValidationError) as refused:
        MagentoSettings(**{**BEARER, field: url})
    message = refused.value.errors()[0]["msg"]  # what the config loader reports
    assert f"{field} {url} is plain HTTP" in message
    assert "tok-distinctive-0001" not in message


@pytest.mark.parametrize(
    "settings",
    [
        {**BEARER, "base_url": "http://127.0.0.1:8104"},
        {**BEARER, "base_url": "http://localhost"},
        {**BEARER, "base_url": "http://[::1]:8080"},
        {**EXAMPLE, "base_url": "http://shop.example.com"},  # OAuth signs, secrets stay home
    ],
)
def test_plain_http_is_fine_on_loopback_or_with_oauth(settings: dict[str, str]) -> None:
    MagentoSettings(**settings)
