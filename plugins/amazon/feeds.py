"""Feed documents: order-acknowledgement XML (cancel) and JSON_LISTINGS_FEED (stock).

Builders and processing-report parsers only; the upload/poll flow lives in
:mod:`plugins.amazon.connector`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # noqa: S405 - only builds, parsing is guarded below
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CANCEL_FEED_TYPE = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
LISTINGS_FEED_TYPE = "JSON_LISTINGS_FEED"
XML_CONTENT_TYPE = "text/xml; charset=UTF-8"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
MAX_LISTINGS_MESSAGES = 25_000
"""``maxItems`` of ``messages`` in listings-feed-schema-v2.json."""
QUANTITY_PATH = "/attributes/fulfillment_availability"


@dataclass(frozen=True)
class CancelItem:
    order_id: str
    order_item_ids: tuple[str, ...]
    reason: str


def cancel_feed_xml(seller_id: str, items: Sequence[CancelItem]) -> bytes:
    """An ``OrderAcknowledgement`` envelope: StatusCode ``Failure`` cancels the items.

    One ``Message`` per order (``MessageID`` = position, from 1); each item
    carries the ``CancelReason`` (research brief §6.2).
    """
    envelope = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(envelope, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.01"
    ET.SubElement(header, "MerchantIdentifier").text = seller_id
    ET.SubElement(envelope, "MessageType").text = "OrderAcknowledgement"
    for number, item in enumerate(items, start=1):
        message = ET.SubElement(envelope, "Message")
        ET.SubElement(message, "MessageID").text = str(number)
        ack = ET.SubElement(message, "OrderAcknowledgement")
        ET.SubElement(ack, "AmazonOrderID").text = item.order_id
        ET.SubElement(ack, "StatusCode").text = "Failure"
        for order_item_id in item.order_item_ids:
            line = ET.SubElement(ack, "Item")
            ET.SubElement(line, "AmazonOrderItemCode").text = order_item_id
            ET.SubElement(line, "CancelReason").text = item.reason
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=True))


_UNSAFE_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(content: bytes) -> ET.Element:
    """Parse a document from Amazon, refusing DTDs and entities (no defusedxml here)."""
    if _UNSAFE_XML.search(content):
        raise ValueError("XML with a DOCTYPE or ENTITY declaration is not accepted")
    return ET.fromstring(content)  # noqa: S314 - DTDs rejected above


@dataclass
class XmlResult:
    message_id: int
    code: str
    """``Error`` or ``Warning``."""
    message_code: str | None
    description: str
    order_id: str | None = None


@dataclass
class XmlProcessingReport:
    status: str
    processed: int
    successful: int
    with_error: int
    results: list[XmlResult] = field(default_factory=list)

    def errors_by_message(self) -> dict[int, XmlResult]:
        return {r.message_id: r for r in self.results if r.code == "Error"}


def _int(element: ET.Element | None) -> int:
    return int((element.text or "0").strip()) if element is not None else 0


def parse_xml_processing_report(content: bytes) -> XmlProcessingReport:
    """Read ``AmazonEnvelope/Message/ProcessingReport`` (MWS/SP-API XML feeds)."""
    root = parse_xml(content)
    report = root.find("./Message/ProcessingReport")
    if report is None:
        raise ValueError("no ProcessingReport in the feed result document")
    summary = report.find("ProcessingSummary")
    parsed = XmlProcessingReport(
        status=(report.findtext("StatusCode") or "").strip(),
        processed=_int(summary.find("MessagesProcessed") if summary is not None else None),
        successful=_int(summary.find("MessagesSuccessful") if summary is not None else None),
        with_error=_int(summary.find("MessagesWithError") if summary is not None else None),
    )
    for result in report.findall("Result"):
        parsed.results.append(
            XmlResult(
                message_id=_int(result.find("MessageID")),
                code=(result.findtext("ResultCode") or "").strip(),
                message_code=(result.findtext("ResultMessageCode") or "").strip() or None,
                description=(result.findtext("ResultDescription") or "").strip(),
                order_id=(result.findtext("AdditionalInfo/AmazonOrderID") or "").strip() or None,
            )
        )
    return parsed


def listings_feed(
    seller_id: str,
    quantities: Sequence[tuple[str, int]],
    *,
    product_type: str,
    channel_code: str = "DEFAULT",
) -> dict[str, Any]:
    """A JSON_LISTINGS_FEED that PATCHes ``fulfillment_availability`` of each SKU.

    ``messageId`` is the 1-based position in ``quantities``.
    """
    if len(quantities) > MAX_LISTINGS_MESSAGES:
        raise ValueError(f"at most {MAX_LISTINGS_MESSAGES} messages per feed")
    return {
        "header": {"sellerId": seller_id, "version": "2.0"},
        "messages": [
            {
                "messageId": number,
                "sku": sku,
                "operationType": "PATCH",
                "productType": product_type,
                "patches": [quantity_patch(quantity, channel_code)],
            }
            for number, (sku, quantity) in enumerate(quantities, start=1)
        ],
    }


def quantity_patch(quantity: int, channel_code: str = "DEFAULT") -> dict[str, Any]:
    """The JSON Patch that sets the seller-fulfilled quantity.

    ``merge``, not ``replace``: ``replace`` overwrites the whole attribute, dropping
    ``lead_time_to_ship_max_days`` and ``restock_date`` the seller set in Seller
    Central; ``merge`` updates only the quantity of the channel named by the
    selector ``fulfillment_channel_code`` (research brief §7).
    """
    return {
        "op": "merge",
        "path": QUANTITY_PATH,
        "value": [{"fulfillment_channel_code": channel_code, "quantity": quantity}],
    }


def parse_listings_report(content: bytes) -> dict[int, list[dict[str, Any]]]:
    """``ERROR`` issues of a listings processing report, keyed by ``messageId``.

    Issues without a messageId (feed-level problems) are keyed ``0``.
    """
    data = json.loads(content)
    errors: dict[int, list[dict[str, Any]]] = {}
    for issue in data.get("issues") or ():
        if issue.get("severity") != "ERROR":
            continue
        errors.setdefault(int(issue.get("messageId") or 0), []).append(issue)
    return errors
