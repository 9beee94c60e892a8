"""Seller cancellation: one POST_ORDER_ACKNOWLEDGEMENT_DATA feed for many orders."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from engine.errors import RetriableAPIError
from engine.models import CancelRequest, Order, Shipment, ShipmentLine, StockLevel
from plugins.amazon import feeds
from plugins.amazon.connector import AmazonConnector
from plugins.amazon.simulator import AmazonSimulator
from tests.plugins.amazon.conftest import ConnectorFactory, token_headers
from tests.plugins.amazon.contract import RecordingTransport


def _uploaded_xml(recorder: RecordingTransport) -> ET.Element:
    (upload,) = [e for e in recorder.exchanges if e.method == "PUT"]
    assert upload.request_headers["content-type"] == "text/xml; charset=UTF-8"
    return feeds.parse_xml(upload.request_body)


async def test_one_feed_cancels_several_orders_and_reports_each(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    a = sim.create_order({"A": 1, "B": 2})["orderId"]
    b = sim.create_order({"C": 1})["orderId"]
    shipped = sim.create_order({"D": 1})["orderId"]
    order = await connector.get_order(shipped)
    assert isinstance(order, Order)
    await connector.confirm_shipment(
        order,
        Shipment(
            shipment_id="x",
            marketplace_order_id=shipped,
            shop_order_id="9",
            lines=(ShipmentLine(sku="D", quantity=1),),
            tracking_number="T",
            shipped_at=order.purchased_at,
        ),
        "DHL",
    )

    results = await connector.cancel_orders(
        [
            CancelRequest(marketplace_order_id=a, reason="NoInventory"),
            CancelRequest(marketplace_order_id=b, reason="customer request"),
            CancelRequest(marketplace_order_id=shipped, reason="NoInventory"),
            CancelRequest(marketplace_order_id=a, reason="NoInventory"),  # duplicate
        ]
    )

    assert [(r.key, r.ok) for r in results] == [(a, True), (b, True), (shipped, False)]
    assert results[2].code == "18054" and "shipped" in (results[2].message or "")
    assert sim.calls["createFeed"] == 1
    assert sim.order(a)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert sim.order(b)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert sim.order(shipped)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [(c["orderId"], c["by"], c["reason"]) for c in sim.cancellations] == [
        (a, "MERCHANT", "NoInventory"),
        (b, "MERCHANT", "BuyerCanceled"),
    ]

    root = _uploaded_xml(recorder)
    assert root.findtext("Header/MerchantIdentifier") == sim.seller_id
    assert root.findtext("MessageType") == "OrderAcknowledgement"
    messages = root.findall("Message")
    assert [m.findtext("MessageID") for m in messages] == ["1", "2", "3"]
    first = messages[0].find("OrderAcknowledgement")
    assert first is not None
    assert first.findtext("AmazonOrderID") == a
    assert first.findtext("StatusCode") == "Failure"
    items = first.findall("Item")
    assert {i.findtext("AmazonOrderItemCode") for i in items} == {
        str(i["orderItemId"]) for i in sim.order(a)["orderItems"]
    }
    assert {i.findtext("CancelReason") for i in items} == {"NoInventory"}


async def test_lines_given_are_used_without_reading_the_order(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    order_id = sim.create_order({"A": 1})["orderId"]
    order = await connector.get_order(order_id)
    assert isinstance(order, Order)
    calls = sim.calls["getOrder"]
    (result,) = await connector.cancel_orders(
        [CancelRequest(marketplace_order_id=order_id, reason="PricingError", lines=order.lines)]
    )
    assert result.ok
    assert sim.calls["getOrder"] == calls


async def test_unknown_order_fails_without_a_feed(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    (result,) = await connector.cancel_orders(
        [CancelRequest(marketplace_order_id="999-9999999-9999999", reason="NoInventory")]
    )
    assert (result.ok, result.code) == (False, "NotFound")
    assert "createFeed" not in sim.calls


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("NoInventory", "NoInventory"),
        ("no_inventory", "NoInventory"),
        ("out of stock", "NoInventory"),
        ("BUYER-CANCELED", "BuyerCanceled"),
        ("customer_request", "BuyerCanceled"),
        ("weather delay", "WeatherDelay"),
        ("something else", "PricingError"),  # the configured default
    ],
)
def test_reason_mapping(make_connector: ConnectorFactory, reason: str, code: str) -> None:
    connector = make_connector(default_cancel_reason="PricingError")
    assert connector.cancel_reason(reason) == code


async def test_feed_is_polled_until_done(make_connector: ConnectorFactory) -> None:
    # 60 simulated seconds of processing, polled every 30 s: three getFeed calls
    slow = AmazonSimulator(time_scale=1000, feed_processing_seconds=60, gzip_reports=True)
    connector = make_connector(transport=slow.transport())
    connector.now = slow.now
    order_id = slow.create_order({"A": 1})["orderId"]
    (result,) = await connector.cancel_orders(
        [CancelRequest(marketplace_order_id=order_id, reason="NoInventory")]
    )
    assert result.ok
    assert slow.calls["getFeed"] >= 2
    assert slow.order(order_id)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"


async def test_feed_that_never_finishes_is_retriable(make_connector: ConnectorFactory) -> None:
    stuck = AmazonSimulator(time_scale=1000, feed_processing_seconds=10**9)
    connector = make_connector(transport=stuck.transport(), feed_timeout=120)
    order_id = stuck.create_order({"A": 1})["orderId"]
    with pytest.raises(RetriableAPIError, match="still IN_"):
        await connector.cancel_orders(
            [CancelRequest(marketplace_order_id=order_id, reason="NoInventory")]
        )
    assert stuck.order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


@pytest.mark.parametrize("broken", ["wrong merchant", "unparsable"])
async def test_a_feed_rejected_as_a_whole_fails_every_order(
    sim: AmazonSimulator,
    make_connector: ConnectorFactory,
    monkeypatch: pytest.MonkeyPatch,
    broken: str,
) -> None:
    """A report whose only error has MessageID 0 cancels nothing: no order is ok."""
    if broken == "unparsable":
        monkeypatch.setattr(feeds, "cancel_feed_xml", lambda seller, items: b"<AmazonEnvelope><")
    connector = make_connector(
        seller_id="A-DIFFERENT-SELLER" if broken == "wrong merchant" else sim.seller_id
    )
    ids = [sim.create_order({"A": 1})["orderId"], sim.create_order({"B": 1})["orderId"]]

    results = await connector.cancel_orders(
        [CancelRequest(marketplace_order_id=i, reason="NoInventory") for i in ids]
    )

    assert sim.calls["createFeed"] == 1
    assert [(r.key, r.ok) for r in results] == [(ids[0], False), (ids[1], False)]
    expected = "is not this seller" if broken == "wrong merchant" else "XML Parsing Fatal Error"
    assert all(r.code in ("5000", "5001") and expected in (r.message or "") for r in results)
    assert [sim.order(i)["fulfillment"]["fulfillmentStatus"] for i in ids] == ["UNSHIPPED"] * 2


def _report(processed: int, results: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope><Header><DocumentVersion>1.02</DocumentVersion></Header>
  <MessageType>ProcessingReport</MessageType>
  <Message><MessageID>1</MessageID><ProcessingReport><StatusCode>Complete</StatusCode>
    <ProcessingSummary><MessagesProcessed>{processed}</MessagesProcessed></ProcessingSummary>
    {results}
  </ProcessingReport></Message></AmazonEnvelope>""".encode()


def test_fewer_messages_processed_than_sent_fails_the_unaccounted_orders(
    connector: AmazonConnector,
) -> None:
    items = [feeds.CancelItem(f"order-{n}", ("1",), "NoInventory") for n in (1, 2, 3)]
    own_error = (
        "<Result><MessageID>2</MessageID><ResultCode>Error</ResultCode>"
        "<ResultMessageCode>18054</ResultMessageCode>"
        "<ResultDescription>shipped</ResultDescription></Result>"
    )
    feed = {"feedId": "42", "processingStatus": "DONE"}

    results = connector._cancel_results(items, feed, _report(2, own_error))  # noqa: SLF001

    assert [(k, r.ok, r.code) for k, r in results.items()] == [
        ("order-1", False, "MessagesNotProcessed"),
        ("order-2", False, "18054"),
        ("order-3", False, "MessagesNotProcessed"),
    ]
    assert results["order-1"].message == "feed 42 processed 2 of 3 messages"
    complete = connector._cancel_results(items, feed, _report(3, own_error))  # noqa: SLF001
    assert [r.ok for r in complete.values()] == [True, False, True]


def test_processing_report_parser_reads_errors_and_ignores_warnings() -> None:
    report = b"""<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header><DocumentVersion>1.02</DocumentVersion><MerchantIdentifier>M</MerchantIdentifier></Header>
  <MessageType>ProcessingReport</MessageType>
  <Message><MessageID>1</MessageID><ProcessingReport>
    <DocumentTransactionID>42</DocumentTransactionID><StatusCode>Complete</StatusCode>
    <ProcessingSummary><MessagesProcessed>3</MessagesProcessed>
      <MessagesSuccessful>2</MessagesSuccessful><MessagesWithError>1</MessagesWithError>
      <MessagesWithWarning>1</MessagesWithWarning></ProcessingSummary>
    <Result><MessageID>2</MessageID><ResultCode>Error</ResultCode>
      <ResultMessageCode>18028</ResultMessageCode><ResultDescription>not found</ResultDescription>
      <AdditionalInfo><AmazonOrderID>111-1111111-1111111</AmazonOrderID></AdditionalInfo></Result>
    <Result><MessageID>3</MessageID><ResultCode>Warning</ResultCode>
      <ResultMessageCode>1</ResultMessageCode><ResultDescription>fyi</ResultDescription></Result>
  </ProcessingReport></Message>
</AmazonEnvelope>"""
    parsed = feeds.parse_xml_processing_report(report)
    assert (parsed.status, parsed.processed, parsed.successful, parsed.with_error) == (
        "Complete",
        3,
        2,
        1,
    )
    errors = parsed.errors_by_message()
    assert list(errors) == [2]
    assert errors[2].order_id == "111-1111111-1111111"
    assert errors[2].message_code == "18028"


def test_xml_with_entities_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><AmazonEnvelope>&x;</AmazonEnvelope>'
    )
    with pytest.raises(ValueError, match="DOCTYPE"):
        feeds.parse_xml_processing_report(bomb)


def _cancel(*order_ids: str) -> list[CancelRequest]:
    return [CancelRequest(marketplace_order_id=i, reason="NoInventory") for i in order_ids]


async def test_a_lost_create_feed_answer_is_looked_up_not_sent_again(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """Amazon accepted the feed but the answer never came: one feed, both orders ok."""
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    a, b = (sim.create_order({sku: 1})["orderId"] for sku in "AB")
    sim.faults.add("timeout_after", match=r"^POST /feeds/2021-06-30/feeds$", count=1)

    results = await connector.cancel_orders(_cancel(a, b))

    assert [(r.key, r.ok) for r in results] == [(a, True), (b, True)]
    assert len(sim.feeds) == 1 and sim.calls["createFeed"] == 1
    assert sim.calls["getFeeds"] == 1
    assert [(c["orderId"], c["by"]) for c in sim.cancellations] == [
        (a, "MERCHANT"),
        (b, "MERCHANT"),
    ]
    reports = [e for e in recorder.exchanges if e.url.path.startswith("/feed-documents/")]
    assert len([e for e in reports if e.method == "GET"]) == 1  # the one feed's report


async def test_a_create_feed_that_failed_outright_is_sent_again(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """A 500 before anything was committed: getFeeds finds no feed, so it is resent."""
    recorder = RecordingTransport(sim.transport())
    connector = make_connector(transport=recorder)
    order_id = sim.create_order({"A": 1})["orderId"]
    sim.faults.add("500", match=r"^POST /feeds/2021-06-30/feeds$", count=1)

    (result,) = await connector.cancel_orders(_cancel(order_id))

    assert result.ok and len(sim.feeds) == 1
    posts = [
        e.status for e in recorder.exchanges if e.method == "POST" and e.url.path.endswith("/feeds")
    ]
    assert posts == [500, 202]


async def test_a_lost_answer_of_a_stock_feed_is_not_sent_again_now(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """Quantities are absolute: rather than trust a feed it cannot tie to this push, the
    connector leaves the push to the next run (and does not send a second feed now)."""
    connector = make_connector(stock_batch_threshold=0)
    sim.faults.add("timeout_after", match=r"^POST /feeds/2021-06-30/feeds$", count=1)
    with pytest.raises(RetriableAPIError, match="sent again at the next run"):
        await connector.push_stock([StockLevel(sku="A", quantity=1)])
    assert len(sim.feeds) == 1 and sim.calls["createFeed"] == 1


async def test_a_feed_found_after_a_lost_answer_that_is_not_ours_is_retried(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """A killed process sent a feed moments ago; ours never reached Amazon. The feed
    getFeeds finds is not these orders': nothing is known of them, nothing failed."""
    a, b, other = (sim.create_order({sku: 1})["orderId"] for sku in "ABC")
    await make_connector().cancel_orders(_cancel(other))  # the process before the kill
    connector = make_connector()  # after the restart: it knows no feed
    sim.faults.add("timeout_before", match=r"^POST /feeds/2021-06-30/feeds$", count=1)

    with pytest.raises(RetriableAPIError, match="processed 1 messages, not the 2 sent"):
        await connector.cancel_orders(_cancel(a, b))

    assert len(sim.feeds) == 1  # ours was never created, and not sent again blindly
    assert {c["orderId"] for c in sim.cancellations} == {other}


async def test_a_foreign_feed_of_as_many_messages_is_not_taken_for_ours(
    sim: AmazonSimulator, make_connector: ConnectorFactory
) -> None:
    """Same as above with one order each: the counts fit, the order does not."""
    mine, other = (sim.create_order({sku: 1})["orderId"] for sku in "AB")
    await make_connector().cancel_orders(_cancel(other))
    connector = make_connector()
    sim.faults.add("timeout_before", match=r"^POST /feeds/2021-06-30/feeds$", count=1)

    with pytest.raises(RetriableAPIError, match=f"not the one of order {mine}"):
        await connector.cancel_orders(_cancel(mine))

    assert {c["orderId"] for c in sim.cancellations} == {other}


async def test_an_order_found_cancelled_after_a_feed_error_is_ok(
    sim: AmazonSimulator, connector: AmazonConnector
) -> None:
    """E.g. a duplicate feed already cancelled it: the report errs, the order is cancelled."""
    gone = sim.create_order({"A": 1})["orderId"]
    order = await connector.get_order(gone)
    assert isinstance(order, Order)
    sim.cancel_order(gone, by="AMAZON", reason="Cancelled by Amazon")

    (result,) = await connector.cancel_orders(
        [CancelRequest(marketplace_order_id=gone, reason="NoInventory", lines=order.lines)]
    )

    assert result.ok
    assert sim.calls["getOrder"] == 2  # read once above, looked up once after the report


async def test_feeds_take_effect_without_being_polled() -> None:
    sim = AmazonSimulator(time_scale=1.0, feed_processing_seconds=60)
    order_id = sim.create_order({"A": 1})["orderId"]
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        headers = await token_headers(http, sim)
        content_type = feeds.XML_CONTENT_TYPE
        document = (
            await http.post(
                "/feeds/2021-06-30/documents", json={"contentType": content_type}, headers=headers
            )
        ).json()
        xml = feeds.cancel_feed_xml(sim.seller_id, [feeds.CancelItem(order_id, (), "NoInventory")])
        await http.put(document["url"], content=xml, headers={"content-type": content_type})
        body = {
            "feedType": feeds.CANCEL_FEED_TYPE,
            "marketplaceIds": ["A1PA6795UKMFR9"],
            "inputFeedDocumentId": document["feedDocumentId"],
        }
        assert (
            await http.post("/feeds/2021-06-30/feeds", json=body, headers=headers)
        ).status_code == 202
    assert sim.order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    sim.advance(61)
    assert sim.order(order_id)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert "getFeed" not in sim.calls
