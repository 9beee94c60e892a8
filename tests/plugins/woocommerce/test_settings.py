"""Settings validation and platform registration."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from engine.registry import PlatformRegistry
from plugins import woocommerce
from plugins.woocommerce.connector import WooCommerceConnector
from plugins.woocommerce.settings import WooCommerceSettings

EXAMPLE = {
    "store_url": "https://shop.example.com/",
    "consumer_key": "ck_test",
    "consumer_secret": "cs_test",
    "ean_meta_key": "_ean",
    "new_order_status": "processing",
    "amazon_order_id_meta_key": "_amazon_order_id",
    "shipped_statuses": ["completed"],
    "page_size": 100,
    "use_batch": True,
}


def test_example_settings_validate_with_secrets_hidden() -> None:
    s = WooCommerceSettings.model_validate(EXAMPLE)
    assert s.store_url == "https://shop.example.com"
    assert s.base_url == "https://shop.example.com/wp-json/wc/v3"
    assert isinstance(s.consumer_secret, SecretStr)
    assert "cs_test" not in repr(s) and "cs_test" not in str(s.model_dump())
    assert s.query_string_auth is False and s.tracking_source == "meta"


def test_endpoint_override() -> None:
    s = WooCommerceSettings.model_validate(
        {**EXAMPLE, "api_base": "https://shop.example.com/index.php/wp-json/wc/v3/"}
    )
    assert s.base_url == "https://shop.example.com/index.php/wp-json/wc/v3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "Extra inputs are not permitted"),
        ({"store_url": "http://shop.example.com"}, "plain HTTP"),
        ({"store_url": "ftp://shop.example.com"}, "expected an http"),
        ({"store_url": "https://shop.example.com/?x=1"}, "query string"),
        ({"page_size": 101}, "less than or equal to 100"),
        ({"shipped_statuses": ["cancelled"]}, "must not contain 'cancelled'"),
        ({"new_order_status": "shipped"}, "Input should be"),
        ({"consumer_secret": None}, "consumer_secret"),
    ],
)
def test_invalid_settings_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WooCommerceSettings.model_validate({**EXAMPLE, **change})


def test_plain_http_only_on_loopback_or_when_allowed_and_then_signed() -> None:
    """WooCommerce takes keys over plain HTTP only as OAuth 1.0a signatures."""
    for url in ("http://127.0.0.1:8103", "http://localhost:8103"):
        assert WooCommerceSettings.model_validate({**EXAMPLE, "store_url": url}).signs_requests
    lan = WooCommerceSettings.model_validate(
        {**EXAMPLE, "store_url": "http://shop.lan", "allow_insecure_http": True}
    )
    assert lan.signs_requests
    assert not WooCommerceSettings.model_validate(EXAMPLE).signs_requests
    mixed = {**EXAMPLE, "api_base": "http://127.0.0.1:8103/wp-json/wc/v3"}
    assert WooCommerceSettings.model_validate(mixed).signs_requests  # the URL requests go to


def test_register_platforms_registers_the_shop() -> None:
    registry = PlatformRegistry()
    woocommerce.register_platforms(registry.register)
    spec = registry.get("woocommerce", "shop")
    assert spec.connector is WooCommerceConnector
    assert spec.settings_model is WooCommerceSettings
    assert spec.description
    assert {"sku", "id", "ean"} <= WooCommerceConnector.identification_attributes
