"""orderCreate payload and totals, idempotent find, cancel, rejected orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import FailureReason, FatalAPIError, ItemError
from engine.models import ProductRef, ShopOrderRef
from plugins.shopify import ShopifyConnector
from plugins.shopify.simulator import ShopifySimulator

from .conftest import ConnectorFactory, RecordingTransport
from .factories import eur_order, usd_order


async def _create(connector: ShopifyConnector, order):  # noqa: ANN001, ANN202
    refs = await connector.resolve_products("sku", [line.sku for line in order.lines])
    return await connector.create_order(order, refs)


async def test_tax_inclusive_eur_order(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    order = eur_order()
    ref = await _create(connector, order)

    variables = recorder.graphql("OrdersyncOrderCreate")[0].body["variables"]
    payload = variables["order"]
    assert variables["options"] == {
        "inventoryBehaviour": "DECREMENT_IGNORING_POLICY",
        "sendReceipt": False,
        "sendFulfillmentReceipt": False,
    }
    assert payload["sourceIdentifier"] == "028-1111111-1111111"
    assert payload["sourceName"] == "ordersync"
    assert payload["tags"] == ["ordersync", "amazon"]
    assert payload["currency"] == "EUR"
    assert payload["taxesIncluded"] is True
    assert payload["financialStatus"] == "PAID"
    assert payload["email"] == "buyer@marketplace.amazon.de"
    assert payload["transactions"] == [
        {
            "kind": "SALE",
            "status": "SUCCESS",
            "gateway": "amazon",
            "amountSet": {"shopMoney": {"amount": "49.97", "currencyCode": "EUR"}},
            "processedAt": payload["processedAt"],
        }
    ]
    first = payload["lineItems"][0]
    assert first["variantId"] == catalog["SKU-1"]["variant_id"]
    assert first["quantity"] == 2
    assert first["priceSet"] == {"shopMoney": {"amount": "19.99", "currencyCode": "EUR"}}
    assert first["taxLines"] == [
        {
            "title": "Tax",
            "rate": "0.19",
            "priceSet": {"shopMoney": {"amount": "6.38", "currencyCode": "EUR"}},
        }
    ]
    assert {"name": "_marketplace_sku", "value": "SKU-1"} in first["properties"]
    shipping = payload["shippingLines"][0]
    assert shipping["title"] == "Standard"
    assert shipping["priceSet"]["shopMoney"]["amount"] == "4.99"
    assert shipping["taxLines"][0]["priceSet"]["shopMoney"]["amount"] == "0.80"
    assert payload["shippingAddress"] == {
        "firstName": "Erika",
        "lastName": "Mustermann",
        "address1": "Hauptstr. 1",
        "address2": "2. OG",
        "city": "Berlin",
        "zip": "10115",
        "countryCode": "DE",
        "phone": "+49301234567",
    }
    assert payload["billingAddress"] == payload["shippingAddress"]
    assert "discountCode" not in payload

    created = sim.get_order(ref.id)
    assert created["totals"] == {
        "subtotal": "44.98",
        "shipping": "4.99",
        "tax": "7.98",
        "discounts": "0",
        "total": "49.97",
        "received": "49.97",
    }
    assert Decimal(created["totals"]["total"]) == order.total.amount
    assert created["financial_status"] == "PAID"
    assert ref.number == created["name"]
    assert sim.notifications() == []  # the buyer has an e-mail address, yet gets no receipt


async def test_tax_exclusive_usd_order_with_promotion(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    order = usd_order()
    ref = await _create(connector, order)

    payload = recorder.graphql("OrdersyncOrderCreate")[0].body["variables"]["order"]
    assert payload["currency"] == "USD"
    assert payload["taxesIncluded"] is False
    assert "email" not in payload
    assert payload["discountCode"] == {
        "itemFixedDiscountCode": {
            "code": "AMAZON-PROMOTION",
            "amountSet": {"shopMoney": {"amount": "2.00", "currencyCode": "USD"}},
        }
    }
    assert payload["lineItems"][0]["taxLines"][0]["rate"] == "0.0825"
    assert payload["shippingLines"][0]["priceSet"]["shopMoney"]["amount"] == "4.99"
    assert payload["shippingAddress"]["provinceCode"] == "WA"
    assert "phone" not in payload["shippingAddress"]

    totals = sim.get_order(ref.id)["totals"]
    assert totals == {
        "subtotal": "28.00",
        "shipping": "4.99",
        "tax": "2.72",
        "discounts": "2.00",
        "total": "35.71",
        "received": "35.71",
    }


async def test_created_order_decrements_stock(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    await _create(connector, eur_order())
    assert sim.stock("SKU-1") == {"available": 8, "committed": 2, "on_hand": 10}


async def test_inventory_behaviour_is_configurable(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    connector = make_connector(inventory_behaviour="BYPASS")
    await _create(connector, eur_order())
    assert sim.stock("SKU-1")["available"] == 10


async def test_find_order_is_the_idempotency_check(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    order = eur_order()
    assert await connector.find_order(order.marketplace_order_id) is None

    ref = await _create(connector, order)
    again = await connector.find_order(order.marketplace_order_id)
    if again is None:  # what the engine does: create only when not found
        await _create(connector, order)

    assert again == ref
    assert sim.count_orders(order.marketplace_order_id) == 1
    query = recorder.graphql("OrdersyncFindOrder")[0].body["variables"]["query"]
    assert query == 'source_identifier:"028-1111111-1111111"'


async def test_find_order_ignores_similar_identifiers(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    sim.add_order({"SKU-2": 1}, source_identifier="028-1111111-11111112")
    assert await connector.find_order("028-1111111-1111111") is None
    assert await connector.find_order_refs(["028-1111111-1111111"]) == {}
    # Shopify's search is loose: the near miss came back and the connector dropped it.
    for operation in ("OrdersyncFindOrder", "OrdersyncFindOrders"):
        nodes = recorder.graphql(operation)[0].response["data"]["orders"]["nodes"]
        assert [n["sourceIdentifier"] for n in nodes] == ["028-1111111-11111112"]


async def test_cancel_is_idempotent_and_restocks_by_default(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    order = eur_order()
    ref = await _create(connector, order)

    await connector.cancel_order(ref, order)
    await connector.cancel_order(ref, order)

    cancelled = sim.get_order(ref.id)
    assert cancelled["cancelled_at"] is not None
    assert cancelled["cancel_reason"] == "OTHER"
    assert len(recorder.graphql("OrdersyncOrderCancel")) == 1
    variables = recorder.graphql("OrdersyncOrderCancel")[0].body["variables"]
    assert variables["refund"] is False
    assert variables["restock"] is True  # cancelled on Amazon before it shipped
    assert variables["notifyCustomer"] is False
    assert sim.stock("SKU-1") == {"available": 10, "committed": 0, "on_hand": 10}
    assert sim.notifications() == []
    found = await connector.find_order(order.marketplace_order_id)
    assert found is not None and found.cancelled


async def test_cancel_without_restock(
    make_connector: ConnectorFactory, sim: ShopifySimulator, catalog: dict
) -> None:
    connector = make_connector(restock_on_cancel=False)
    order = eur_order()
    ref = await _create(connector, order)
    await connector.cancel_order(ref, order)
    assert sim.stock("SKU-1") == {"available": 8, "committed": 0, "on_hand": 8}


async def test_cancel_survives_a_concurrent_cancel(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    """The merchant cancels between our status check and orderCancel: still fine."""
    order = eur_order()
    ref = await _create(connector, order)
    real = connector._cancelled  # noqa: SLF001
    calls = 0

    async def racing(order_id: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            sim.cancel(order_id)
            return False
        return await real(order_id)

    connector._cancelled = racing  # type: ignore[method-assign]  # noqa: SLF001
    await connector.cancel_order(ref, order)
    assert calls == 2


async def test_rejected_order_surfaces_user_errors(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    order = eur_order()
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    refs = {
        **refs,
        "SKU-2": ProductRef(
            sku="SKU-2",
            product_id="gid://shopify/Product/1",
            variant_id="gid://shopify/ProductVariant/1",
        ),
    }

    with pytest.raises(FatalAPIError) as caught:
        await connector.create_order(order, refs)

    error = caught.value
    assert error.reason == FailureReason.SHOP_REJECTED
    assert error.code == "INVALID"
    assert "Shopify rejected order 028-1111111-1111111" in str(error)
    assert "order.lineItems.1.variantId: Product variant does not exist" in str(error)
    assert sim.count_orders() == 0


async def test_inventory_claim_failure_is_a_clear_error(
    make_connector: ConnectorFactory, catalog: dict
) -> None:
    connector = make_connector(inventory_behaviour="DECREMENT_OBEYING_POLICY")
    order = usd_order()
    refs = await connector.resolve_products("sku", ["SKU-1"])
    big = order.model_copy(update={"lines": (order.lines[0].model_copy(update={"quantity": 50}),)})

    with pytest.raises(
        FatalAPIError, match=r"order\.lineItems\.0: Unable to claim inventory"
    ) as caught:
        await connector.create_order(big, refs)
    assert caught.value.code == "INVENTORY_CLAIM_FAILED"


async def test_unknown_sku_is_an_item_error(connector: ShopifyConnector, catalog: dict) -> None:
    with pytest.raises(ItemError) as caught:
        await connector.create_order(eur_order(), {})
    assert caught.value.reason == FailureReason.UNKNOWN_SKU
    assert "SKU-1, SKU-2" in caught.value.message


async def test_cancel_waits_for_shopifys_background_job(make_connector: ConnectorFactory) -> None:
    sim = ShopifySimulator(time_scale=100.0, job_seconds=3.0)
    sim.add_product("SKU-1", quantity=5)
    sim.add_product("SKU-2", quantity=5)
    wire = RecordingTransport(sim.transport())
    connector = make_connector(transport=wire)
    order = eur_order()
    ref = await _create(connector, order)

    await connector.cancel_order(ref, order)

    cancel = wire.graphql("OrdersyncOrderCancel")[0].response["data"]["orderCancel"]
    assert cancel["job"]["done"] is False
    polls = wire.graphql("OrdersyncJob")
    assert polls and polls[-1].response["data"]["job"]["done"] is True
    assert sim.get_order(ref.id)["cancelled_at"] is not None


def _numbered(n: int):  # noqa: ANN202
    """``n`` copies of the EUR order with distinct Amazon order ids."""
    return [eur_order(f"028-0000000-{i:07d}") for i in range(n)]


async def test_create_orders_sends_ten_per_request(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    orders = _numbered(12)
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])

    results = await connector.create_orders([(o, refs) for o in orders])

    batches = recorder.graphql("OrdersyncOrderCreateBatch")
    assert sorted(len(b.body["variables"]) - 1 for b in batches) == [2, 10]  # $o0.. + $options
    assert all(isinstance(r, ShopOrderRef) and r.number for r in results)
    assert len({r.id for r in results}) == 12
    for order in orders:
        assert sim.count_orders(order.marketplace_order_id) == 1
    sent = []
    for batch in batches:
        variables = batch.body["variables"]
        assert variables["options"] == {
            "inventoryBehaviour": "DECREMENT_IGNORING_POLICY",
            "sendReceipt": False,
            "sendFulfillmentReceipt": False,
        }
        sent += [variables[f"o{n}"] for n in range(len(variables) - 1)]
    assert [p["sourceIdentifier"] for p in sent] == [o.marketplace_order_id for o in orders]
    for payload in sent:
        assert payload["sourceName"] == "ordersync"
        assert payload["tags"] == ["ordersync", "amazon"]
        assert (payload["currency"], payload["taxesIncluded"]) == ("EUR", True)
        assert payload["financialStatus"] == "PAID"
        assert payload["transactions"][0]["amountSet"]["shopMoney"]["amount"] == "49.97"
        assert [(li["variantId"], li["quantity"]) for li in payload["lineItems"]] == [
            (catalog["SKU-1"]["variant_id"], 2),
            (catalog["SKU-2"]["variant_id"], 1),
        ]
    # Amazon already sold the units: stock is claimed even below zero, and nobody is mailed.
    assert sim.stock("SKU-1") == {"available": 10 - 24, "committed": 24, "on_hand": 10}
    assert sim.stock("SKU-2") == {"available": 5 - 12, "committed": 12, "on_hand": 5}
    assert sim.notifications() == []


async def test_create_orders_follow_the_inventory_setting(
    make_connector: ConnectorFactory,
    sim: ShopifySimulator,
    catalog: dict,
    recorder: RecordingTransport,
) -> None:
    connector = make_connector(inventory_behaviour="BYPASS")
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])

    results = await connector.create_orders([(o, refs) for o in _numbered(2)])

    assert all(isinstance(r, ShopOrderRef) for r in results)
    options = recorder.graphql("OrdersyncOrderCreateBatch")[0].body["variables"]["options"]
    assert options["inventoryBehaviour"] == "BYPASS"
    assert sim.stock("SKU-1") == {"available": 10, "committed": 0, "on_hand": 10}


async def test_create_orders_fails_only_the_rejected_order(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict
) -> None:
    good, bad, unknown = _numbered(3)
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    wrong = {**refs, "SKU-2": refs["SKU-2"].model_copy(update={"variant_id": gid_of(1)})}

    results = await connector.create_orders([(good, refs), (bad, wrong), (unknown, {})])

    assert results[0].number
    assert isinstance(results[1], FatalAPIError)
    assert "Shopify rejected order 028-0000000-0000001" in str(results[1])
    assert isinstance(results[2], ItemError)
    assert results[2].reason == FailureReason.UNKNOWN_SKU
    assert sim.count_orders() == 1


async def test_find_order_refs_is_one_search(
    connector: ShopifyConnector, sim: ShopifySimulator, catalog: dict, recorder: RecordingTransport
) -> None:
    first, second, absent = _numbered(3)
    refs = await connector.resolve_products("sku", ["SKU-1", "SKU-2"])
    one = await connector.create_order(first, refs)
    cancelled = await connector.create_order(second, refs)
    await connector.cancel_order(cancelled, second)
    two = await connector.create_order(second, refs)  # a duplicate; the live one counts
    sim.add_order({"SKU-2": 1}, source_identifier=absent.marketplace_order_id + "9")

    found = await connector.find_order_refs(
        [o.marketplace_order_id for o in (first, second, absent)]
    )

    assert found == {first.marketplace_order_id: one, second.marketplace_order_id: two}
    searches = recorder.graphql("OrdersyncFindOrders")
    assert len(searches) == 1
    assert searches[0].body["variables"]["query"] == " OR ".join(
        f'source_identifier:"{o.marketplace_order_id}"' for o in (first, second, absent)
    )


def gid_of(number: int) -> str:
    return f"gid://shopify/ProductVariant/{number}"
