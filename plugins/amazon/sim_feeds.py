"""Feed processing for the simulator: order acknowledgements and listings feeds.

Result codes are the simulator's own choice where Amazon's are not public
(the XML ones imitate the MWS processing report; ``90000900`` is the code of
the Listings Items model's invalid-attributes example).
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET  # noqa: S405 - builds; parsing goes through feeds.parse_xml
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.amazon.feeds import parse_xml
from plugins.amazon.settings import CANCEL_REASONS, load_data
from plugins.amazon.sim_listings import QUANTITY_PATH, Listing, apply_availability_patch

if TYPE_CHECKING:
    from plugins.amazon.sim_state import SimState

INVALID_ATTRIBUTE_CODE = "90000900"


@dataclass
class _Result:
    message_id: int
    code: str
    description: str
    order_id: str | None = None


def _report_xml(sim: SimState, feed_id: str, processed: int, results: list[_Result]) -> bytes:
    envelope = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(envelope, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = sim.seller_id
    ET.SubElement(envelope, "MessageType").text = "ProcessingReport"
    message = ET.SubElement(envelope, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    report = ET.SubElement(message, "ProcessingReport")
    ET.SubElement(report, "DocumentTransactionID").text = feed_id
    ET.SubElement(report, "StatusCode").text = "Complete"
    summary = ET.SubElement(report, "ProcessingSummary")
    failed = len({r.message_id for r in results})
    ET.SubElement(summary, "MessagesProcessed").text = str(processed)
    ET.SubElement(summary, "MessagesSuccessful").text = str(max(0, processed - failed))
    ET.SubElement(summary, "MessagesWithError").text = str(failed)
    ET.SubElement(summary, "MessagesWithWarning").text = "0"
    for result in results:
        node = ET.SubElement(report, "Result")
        ET.SubElement(node, "MessageID").text = str(result.message_id)
        ET.SubElement(node, "ResultCode").text = "Error"
        ET.SubElement(node, "ResultMessageCode").text = result.code
        ET.SubElement(node, "ResultDescription").text = result.description
        if result.order_id:
            info = ET.SubElement(node, "AdditionalInfo")
            ET.SubElement(info, "AmazonOrderID").text = result.order_id
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=True))


def process_acknowledgements(sim: SimState, feed_id: str, content: bytes) -> bytes:
    """Apply ``StatusCode=Failure`` messages as seller cancellations; return the report."""
    try:
        root = parse_xml(content)
    except (ValueError, ET.ParseError) as exc:
        return _report_xml(sim, feed_id, 0, [_Result(0, "5001", f"XML Parsing Fatal Error: {exc}")])
    if root.tag != "AmazonEnvelope" or root.findtext("MessageType") != "OrderAcknowledgement":
        error = _Result(0, "5000", "expected an AmazonEnvelope of MessageType OrderAcknowledgement")
        return _report_xml(sim, feed_id, 0, [error])
    merchant = (root.findtext("Header/MerchantIdentifier") or "").strip()
    if merchant != sim.seller_id:
        error = _Result(0, "5000", f"MerchantIdentifier {merchant!r} is not this seller")
        return _report_xml(sim, feed_id, 0, [error])
    messages = root.findall("Message")
    results = [r for r in (_acknowledge(sim, m) for m in messages) if r is not None]
    return _report_xml(sim, feed_id, len(messages), results)


def _acknowledge(sim: SimState, message: ET.Element) -> _Result | None:
    number = int(message.findtext("MessageID") or 0)
    ack = message.find("OrderAcknowledgement")
    order_id = (ack.findtext("AmazonOrderID") if ack is not None else None) or ""
    order = sim.orders.get(order_id)
    if ack is None or order is None:
        return _Result(number, "18028", f"order {order_id!r} was not found", order_id or None)
    status_code = ack.findtext("StatusCode")
    if status_code == "Success":
        return None
    if status_code != "Failure":
        return _Result(number, "5000", f"bad StatusCode {status_code!r}", order_id)
    if order.status in ("SHIPPED", "PARTIALLY_SHIPPED"):
        return _Result(number, "18054", f"order {order_id} has shipped items", order_id)
    if order.status == "CANCELLED":
        return _Result(number, "18055", f"order {order_id} is already cancelled", order_id)
    items = ack.findall("Item")
    all_ids = {str(i["orderItemId"]) for i in order.data.get("orderItems") or ()}
    listed = {(i.findtext("AmazonOrderItemCode") or "").strip() for i in items}
    reasons = {(i.findtext("CancelReason") or "").strip() for i in items} - {""}
    if listed - all_ids:
        unknown = ", ".join(sorted(listed - all_ids))
        return _Result(number, "18079", f"unknown AmazonOrderItemCode {unknown}", order_id)
    if items and listed != all_ids:
        return _Result(
            number, "18080", "partial cancellation is not simulated; list every item", order_id
        )
    if reasons - set(CANCEL_REASONS):
        bad = ", ".join(sorted(reasons - set(CANCEL_REASONS)))
        return _Result(number, "5000", f"invalid CancelReason {bad}", order_id)
    sim.cancel_order(order_id, by="MERCHANT", reason=min(reasons) if reasons else "NoInventory")
    return None


def process_listings(sim: SimState, feed_id: str, content: bytes) -> tuple[str, dict[str, Any]]:
    """Apply a JSON_LISTINGS_FEED; return ``(processingStatus, report)``."""
    header = {"sellerId": sim.seller_id, "version": "2.0", "feedId": feed_id}
    try:
        document = json.loads(content)
    except ValueError as exc:
        return "FATAL", _listings_report(header, [_feed_issue(f"document is not JSON: {exc}")], 0)
    problem = _schema_problem(document)
    if problem:
        return "FATAL", _listings_report(header, [_feed_issue(problem)], 0)
    if document["header"].get("sellerId") != sim.seller_id:
        issue = _feed_issue(f"sellerId {document['header'].get('sellerId')!r} is not this seller")
        return "FATAL", _listings_report(header, [issue], 0)
    applied = (_apply_listing_message(sim, message) for message in document["messages"])
    issues = [issue for issue in applied if issue is not None]
    return "DONE", _listings_report(header, issues, len(document["messages"]))


def _feed_issue(message: str) -> dict[str, Any]:
    return {"code": "4000001", "severity": "ERROR", "message": message}


def _listings_report(
    header: dict[str, Any], issues: list[dict[str, Any]], processed: int
) -> dict[str, Any]:
    invalid = len({i["messageId"] for i in issues if "messageId" in i})
    return {
        "header": header,
        "issues": issues,
        "summary": {
            "errors": len(issues),
            "warnings": 0,
            "messagesProcessed": processed,
            "messagesAccepted": processed - invalid,
            "messagesInvalid": invalid,
        },
    }


def _schema_problem(document: Any) -> str | None:
    """Validate against listings-feed-schema-v2.json when jsonschema is installed."""
    try:
        import jsonschema  # noqa: PLC0415 - optional: only the simulator validates
    except ImportError:  # pragma: no cover - jsonschema ships with the test extras
        ok = isinstance(document, dict) and "header" in document and "messages" in document
        return None if ok else "document needs header and messages"
    schema = load_data("listings-feed-schema-v2.json")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(schema).iter_errors(document)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "document"
    return f"{where}: {error.message}"


def _apply_listing_message(sim: SimState, message: dict[str, Any]) -> dict[str, Any] | None:
    sku, number = message["sku"], message["messageId"]
    if sku in sim.failing_skus:
        sim.listing_updates.append({"sku": sku, "via": "feed", "ok": False})
        return {
            "messageId": number,
            "sku": sku,
            "code": INVALID_ATTRIBUTE_CODE,
            "severity": "ERROR",
            "message": "The attributes are invalid.",
            "attributeName": "fulfillment_availability",
        }
    listing = copy.deepcopy(sim.listings.get(sku)) or Listing(sku, sim.now(), sim.now())
    problem = _apply_message(listing, message)
    if problem is not None:
        sim.listing_updates.append({"sku": sku, "via": "feed", "ok": False})
        return {"messageId": number, "sku": sku, "code": "4000002", "severity": "ERROR",
                "message": problem}  # fmt: skip
    sim.store_listing(listing, str(message.get("productType") or "PRODUCT"), via="feed")
    return None


def _apply_message(listing: Listing, message: dict[str, Any]) -> str | None:
    """Apply a PATCH or PARTIAL_UPDATE of ``fulfillment_availability``; a problem or ``None``."""
    operation = message.get("operationType")
    if operation == "PATCH":
        patches = [p for p in message.get("patches") or () if p.get("path") == QUANTITY_PATH]
        for patch in patches:
            problem = apply_availability_patch(listing, patch)
            if problem:
                return problem
        if patches:
            return None
    if operation == "PARTIAL_UPDATE":
        values = (message.get("attributes") or {}).get("fulfillment_availability")
        if values:
            return apply_availability_patch(listing, {"op": "replace", "value": values})
    return "the simulator applies only fulfillment_availability quantity updates"
