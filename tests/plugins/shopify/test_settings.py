"""ShopifySettings validation, the identification attributes and plugin registration."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.config import load_config
from engine.errors import ConfigError
from engine.plugins import load_plugins
from plugins.shopify import ShopifyConnector, ShopifySettings

BASE: dict[str, Any] = {"shop_domain": "my-store", "access_token": "test-access-token"}


def test_example_config_settings() -> None:
    settings = ShopifySettings(
        shop_domain="https://My-Store.myshopify.com/",
        client_id="test-client-id",
        client_secret="test-client-secret",
        location="Main warehouse",
        tags=["amazon", "amazon-de"],
    )
    assert settings.shop_domain == "my-store.myshopify.com"
    assert settings.base_url == "https://my-store.myshopify.com"
    assert settings.graphql_path == "/admin/api/2026-10/graphql.json"
    assert settings.inventory_behaviour == "DECREMENT_IGNORING_POLICY"
    assert settings.all_tags == ["ordersync", "amazon", "amazon-de"]
    assert "test-client-secret" not in repr(settings)


def test_bare_shop_name_and_endpoint_override() -> None:
    settings = ShopifySettings(**BASE, endpoint="http://127.0.0.1:8102/")
    assert settings.shop_domain == "my-store.myshopify.com"
    assert settings.base_url == "http://127.0.0.1:8102"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unknown_key": 1}, "Extra inputs are not permitted"),
        ({"access_token": None}, "access_token, or client_id and client_secret, is required"),
        ({"client_id": "x", "client_secret": "y"}, "not both"),
        ({"access_token": None, "client_id": "x"}, "is required"),
        ({"api_version": "2025-02"}, "API version must look like 2025-01"),
        ({"shop_domain": "bad domain!"}, "not a shop domain"),
        ({"inventory_behaviour": "SOMETIMES"}, "BYPASS"),
        ({"stock_page_size": 500}, "less than or equal to 150"),
        ({"order_tag": " "}, "must not be blank"),
    ],
)
def test_invalid_settings(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ShopifySettings(**{**BASE, **changes})


@pytest.mark.parametrize(
    ("attribute", "accepted"),
    [
        ("sku", True),
        ("barcode", True),
        ("id", True),
        ("metafield:custom.ean", True),
        ("metafield:", False),
        ("metafield:custom", False),
        ("metafield:custom.e an", False),
        ("title", False),
    ],
)
def test_identification_attributes(attribute: str, accepted: bool) -> None:
    assert ShopifyConnector.accepts_attribute(attribute) is accepted


def test_registered_through_the_plugin_hook() -> None:
    plugins = load_plugins(entry_points_group=None, extra_modules=("plugins.shopify",))
    assert plugins.errors == []
    spec = plugins.registry.get("shopify", "shop")
    assert spec.connector is ShopifyConnector
    assert spec.settings_model is ShopifySettings
    assert "GraphQL" in spec.description


def _config(attribute: str, settings: dict[str, Any]) -> dict[str, Any]:
    plugins = load_plugins(
        entry_points_group=None, extra_modules=("plugins.shopify", "tests.fakes")
    )
    data = {
        "connections": [
            {
                "id": "c1",
                "marketplace": {"type": "fakemarket", "settings": {"world": "default"}},
                "shop": {"type": "shopify", "settings": settings},
                "product_identification_attribute": attribute,
                "default_shipping_service": "Other",
                "cancellation_reason": "NoInventory",
            }
        ]
    }
    return {"registry": plugins.registry, "data": data}


def test_config_file_validation_with_the_engine() -> None:
    loaded = _config("metafield:custom.ean", BASE)
    load_config(None, loaded["registry"], data=loaded["data"], allow_literal_secrets=True)

    bad = _config("sku", {**BASE, "stock_page_size": 0})
    with pytest.raises(ConfigError) as caught:
        load_config(None, bad["registry"], data=bad["data"], allow_literal_secrets=True)
    assert [path for path, _ in caught.value.errors] == [
        "connections.0.shop.settings.stock_page_size"
    ]

    wrong = _config("metafield:oops", BASE)
    with pytest.raises(ConfigError) as caught:
        load_config(None, wrong["registry"], data=wrong["data"], allow_literal_secrets=True)
    ((path, message),) = caught.value.errors
    assert path == "connections.0.product_identification_attribute"
    assert "metafield:oops" in message
