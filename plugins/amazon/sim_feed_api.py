"""Feeds API handlers of the simulator, with presigned document URLs on itself."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plugins.amazon import sim_feeds
from plugins.amazon.sim_state import (
    Document,
    Feed,
    SimError,
    SimState,
    bad_input,
    parse_time,
    read_json,
)

DOCUMENT_URL_TTL = timedelta(minutes=5)
FEEDS_PARAMS = frozenset(
    {
        "feedTypes",
        "marketplaceIds",
        "pageSize",
        "processingStatuses",
        "createdSince",
        "createdUntil",
        "nextToken",
    }
)


class FeedHandlers(SimState):
    """createFeedDocument, document upload/download, createFeed, getFeed, getFeedDocument."""

    async def _create_document(self, request: Request) -> Response:
        body = await read_json(request)
        content_type = body.get("contentType")
        if not isinstance(content_type, str) or not content_type:
            raise bad_input("contentType is required")
        document = Document(self._new_id("amzn1.tortuga.4.eu."), content_type, self.now())
        self.documents[document.id] = document
        url = self._document_url(request, document.id)
        return JSONResponse({"feedDocumentId": document.id, "url": url}, status_code=201)

    def _document_url(self, request: Request, document_id: str) -> str:
        base = str(request.base_url).rstrip("/")
        return f"{base}/feed-documents/{document_id}?X-Amz-Expires=300"

    async def _document_content(self, request: Request) -> Response:
        document = self.documents.get(request.path_params["documentId"])
        if document is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if self.now() - document.created > DOCUMENT_URL_TTL and request.method == "PUT":
            return _s3_error(403, "AccessDenied", "Request has expired")
        if request.method == "GET":
            if document.content is None:
                return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
            return Response(document.content, media_type=document.content_type)
        sent = request.headers.get("content-type", "")
        if _normal_type(sent) != _normal_type(document.content_type):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The Content-Type must equal the contentType given to createFeedDocument",
            )
        document.content = await request.body()
        return Response(status_code=200)

    async def _create_feed(self, request: Request) -> Response:
        body = await read_json(request)
        feed_type = body.get("feedType")
        ids = body.get("marketplaceIds")
        document = self.documents.get(str(body.get("inputFeedDocumentId")))
        if not isinstance(feed_type, str) or not feed_type:
            raise bad_input("feedType is required")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 25:
            raise bad_input("marketplaceIds needs 1 to 25 marketplace ids")
        if document is None or document.content is None:
            raise bad_input("inputFeedDocumentId does not name an uploaded feed document")
        if feed_type not in _FEED_HANDLERS and feed_type not in _REMOVED_FEEDS:
            raise bad_input(f"feedType {feed_type} is not supported by the simulator")
        feed = Feed(
            id=str(self._ids.randint(10**10, 10**11 - 1)),
            feed_type=feed_type,
            marketplace_ids=list(ids),
            input_document_id=document.id,
            created=self.now(),
            ready_at=self.clock.now() + self.feed_processing_seconds,
        )
        self.feeds[feed.id] = feed
        self.unfinished_feeds.add(feed.id)
        return JSONResponse({"feedId": feed.id}, status_code=202)

    async def _get_feed(self, request: Request) -> Response:
        feed = self.feeds.get(request.path_params["feedId"])
        if feed is None:
            raise SimError(404, "NotFound", "The requested feed does not exist.")
        return JSONResponse(feed.as_json())

    async def _get_feeds(self, request: Request) -> Response:
        query = self._feeds_query(request)
        token = query.get("nextToken")
        if token:
            if len(query) > 1:
                raise bad_input("nextToken must be the only parameter")
            if token not in self.feed_pages:
                raise bad_input("Invalid nextToken")
            ids, offset, size = self.feed_pages.pop(token)
        else:
            if "feedTypes" not in query:
                raise bad_input("Either feedTypes or nextToken is required")
            size_text = query.get("pageSize", "10")
            if not size_text.isdigit() or not 1 <= int(size_text) <= 100:
                raise bad_input("pageSize must be an integer between 1 and 100")
            ids, offset, size = self._select_feeds(query), 0, int(size_text)
        body: dict[str, Any] = {
            "feeds": [self.feeds[i].as_json() for i in ids[offset : offset + size]]
        }
        if offset + size < len(ids):
            next_token = self._new_id()
            self.feed_pages[next_token] = (ids, offset + size, size)
            body["nextToken"] = next_token
        return JSONResponse(body)

    def _feeds_query(self, request: Request) -> dict[str, str]:
        query: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            if key not in FEEDS_PARAMS:
                raise bad_input(f"Unknown query parameter {key!r}")
            if key in query:
                raise bad_input(f"Parameter {key!r} repeated; send arrays comma-separated")
            query[key] = value
        return query

    def _select_feeds(self, query: dict[str, str]) -> list[str]:
        types = set(query["feedTypes"].split(","))
        markets = set(filter(None, query.get("marketplaceIds", "").split(",")))
        statuses = set(filter(None, query.get("processingStatuses", "").split(",")))
        since = (
            parse_time(query["createdSince"], "createdSince") if "createdSince" in query else None
        )
        until = (
            parse_time(query["createdUntil"], "createdUntil") if "createdUntil" in query else None
        )
        found = [
            feed
            for feed in self.feeds.values()
            if feed.feed_type in types
            and (not markets or markets & set(feed.marketplace_ids))
            and (not statuses or feed.status in statuses)
            and (since is None or feed.created >= since)
            and (until is None or feed.created <= until)
        ]
        found.sort(key=lambda f: f.created, reverse=True)  # newest first
        return [f.id for f in found]

    def process_due_feeds(self) -> None:
        """Amazon processes a feed on its own schedule, whether anyone polls it or not."""
        for feed_id in sorted(self.unfinished_feeds, key=lambda i: self.feeds[i].created):
            feed = self.feeds[feed_id]
            self._progress(feed)
            if feed.status in ("DONE", "FATAL", "CANCELLED"):
                self.unfinished_feeds.discard(feed_id)

    def _progress(self, feed: Feed) -> None:
        if feed.status in ("DONE", "FATAL", "CANCELLED"):
            return
        now = self.clock.now()
        if now < feed.ready_at:
            half = feed.ready_at - self.feed_processing_seconds / 2
            if now >= half and feed.status == "IN_QUEUE":
                feed.status, feed.started = "IN_PROGRESS", self.now()
            return
        feed.started = feed.started or self.now()
        content = self.documents[feed.input_document_id].content or b""
        if feed.feed_type in _REMOVED_FEEDS:
            feed.status, feed.ended = "FATAL", self.now()
            return
        status, report, content_type = _FEED_HANDLERS[feed.feed_type](self, feed.id, content)
        document = Document(self._new_id("amzn1.tortuga.4.eu."), content_type, self.now())
        document.content = gzip.compress(report, mtime=0) if self.gzip_reports else report
        document.compressed = self.gzip_reports
        self.documents[document.id] = document
        feed.status, feed.ended, feed.result_document_id = status, self.now(), document.id

    async def _get_document(self, request: Request) -> Response:
        document = self.documents.get(request.path_params["documentId"])
        if document is None:
            raise SimError(404, "NotFound", "The requested feed document does not exist.")
        body = {"feedDocumentId": document.id, "url": self._document_url(request, document.id)}
        if document.compressed:
            body["compressionAlgorithm"] = "GZIP"
        return JSONResponse(body)


def _listings_handler(sim: SimState, feed_id: str, content: bytes) -> tuple[str, bytes, str]:
    status, report = sim_feeds.process_listings(sim, feed_id, content)
    return status, json.dumps(report).encode(), "application/json"


def _acknowledgement_handler(sim: SimState, feed_id: str, content: bytes) -> tuple[str, bytes, str]:
    return "DONE", sim_feeds.process_acknowledgements(sim, feed_id, content), "text/xml"


_FEED_HANDLERS: dict[str, Callable[[SimState, str, bytes], tuple[str, bytes, str]]] = {
    "POST_ORDER_ACKNOWLEDGEMENT_DATA": _acknowledgement_handler,
    "JSON_LISTINGS_FEED": _listings_handler,
}
_REMOVED_FEEDS = frozenset(
    {
        "POST_INVENTORY_AVAILABILITY_DATA",
        "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA",
        "POST_FLAT_FILE_INVLOADER_DATA",
    }
)


def _normal_type(value: str) -> str:
    return value.replace(" ", "").lower()


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
    body += f"<Message>{message}</Message></Error>"
    return Response(body, status_code=status, media_type="application/xml")
