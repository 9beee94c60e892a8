"""Magento 2 REST V1 calls: searchCriteria, pagination, authentication, error bodies.

Every call goes through :class:`engine.http.ApiClient`. Non-idempotent writes use a
second client that never retries on its own: after an ambiguous failure the
connector looks the result up instead of sending the write again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import BadResponseError
from engine.http import ApiClient, RetryPolicy, default_error_parser, json_body
from engine.interfaces import ConnectorContext
from engine.ratelimit import OperationLimiter, RateLimit
from engine.redact import Redactor
from plugins.magento.auth import OAuth1Auth, OAuth1Credentials, OAuth1Signer, bearer_headers
from plugins.magento.settings import MagentoSettings

PLATFORM = "magento"

OPERATIONS = (
    "store_configs",
    "products_search",
    "orders_search",
    "order_get",
    "orders_create",
    "orders_save",
    "order_cancel",
    "order_comment",
    "shipments_search",
    "source_items_search",
    "guest_cart_create",
    "guest_cart_get",
    "guest_cart_item_add",
    "guest_cart_shipping_information",
    "guest_cart_place_order",
)


@dataclass(frozen=True)
class Filter:
    """One searchCriteria filter; filters in a group are OR-ed, groups are AND-ed."""

    field: str
    value: str
    condition: str = "eq"


Group = Sequence[Filter]


def search_params(
    groups: Sequence[Group],
    *,
    page_size: int,
    current_page: int = 1,
    sort: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Query parameters spelled as in the 2.4.9 schema (``filterGroups``, ``conditionType``)."""
    params: list[tuple[str, str]] = []
    for g, group in enumerate(groups):
        for f, flt in enumerate(group):
            prefix = f"searchCriteria[filterGroups][{g}][filters][{f}]"
            params += [
                (f"{prefix}[field]", flt.field),
                (f"{prefix}[value]", flt.value),
                (f"{prefix}[conditionType]", flt.condition),
            ]
    for i, (field, direction) in enumerate(sort):
        params += [
            (f"searchCriteria[sortOrders][{i}][field]", field),
            (f"searchCriteria[sortOrders][{i}][direction]", direction),
        ]
    params += [
        ("searchCriteria[pageSize]", str(page_size)),
        ("searchCriteria[currentPage]", str(current_page)),
    ]
    return params


@dataclass(frozen=True)
class SearchPage:
    items: list[dict[str, Any]]
    total_count: int
    page: int
    page_size: int

    @property
    def has_more(self) -> bool:
        # Magento repeats the last page for an out-of-range currentPage (magento2#3787),
        # so the end is known only from total_count.
        return self.page * self.page_size < self.total_count


_PLACEHOLDER = re.compile(r"%(\w+)")


def magento_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    """Read ``{"message": "... %1 / %name ...", "parameters": [...] | {...}}``."""
    try:
        data = response.json()
    except ValueError:
        return default_error_parser(response)
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return default_error_parser(response)
    message: str = data["message"]
    params = data.get("parameters")
    if isinstance(params, list):
        lookup = {str(i + 1): str(v) for i, v in enumerate(params)}
    elif isinstance(params, dict):
        lookup = {str(k): str(v) for k, v in params.items()}
    else:
        lookup = {}
    message = _PLACEHOLDER.sub(lambda m: lookup.get(m.group(1), m.group(0)), message)
    code = data.get("code")
    return (str(code) if code is not None else None), message


class MagentoClient:
    """Thin wrapper: JSON in, JSON out, Magento's searchCriteria and pagination."""

    def __init__(
        self,
        settings: MagentoSettings,
        context: ConnectorContext,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        rate = settings.requests_per_second
        limits = {op: RateLimit(rate=rate, burst=max(1, int(rate * 2))) for op in OPERATIONS}
        self.limiter = OperationLimiter(limits, time_scale=context.time_scale)
        self.redactor = Redactor()
        self.redactor.add(*settings.secrets())
        policy = retry or RetryPolicy(max_tries=settings.max_tries)
        self.api = self._api(context, policy)
        self.api_once = self._api(context, RetryPolicy(max_tries=1))

    def _api(self, context: ConnectorContext, retry: RetryPolicy) -> ApiClient:
        s = self.settings
        auth = None
        if s.auth_mode == "oauth":
            assert s.consumer_key is not None and s.consumer_secret is not None
            assert s.access_token_secret is not None
            credentials = OAuth1Credentials(
                consumer_key=s.consumer_key.get_secret_value(),
                consumer_secret=s.consumer_secret.get_secret_value(),
                token=s.access_token.get_secret_value(),
                token_secret=s.access_token_secret.get_secret_value(),
            )
            auth = OAuth1Auth(OAuth1Signer(credentials))  # signs every try, fresh nonce
        return ApiClient(
            platform=PLATFORM,
            base_url=s.rest_root,
            transport=context.transport,
            time_scale=context.time_scale,
            limiter=self.limiter,
            retry=retry,
            timeout=s.timeout_seconds,
            headers={"Accept": "application/json"},
            auth_headers=(
                bearer_headers(s.access_token.get_secret_value())
                if s.auth_mode == "bearer"
                else None
            ),
            error_parser=magento_error_parser,
            redactor=self.redactor,
            auth=auth,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.api_once.aclose()

    async def call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> Any:
        api = self.api if retry else self.api_once
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["json"] = body
        if method == "GET":  # a proxy's HTML page or a cut body: a read may be sent again
            return await api.request_json(method, path, operation=operation, **kwargs)
        response = await api.request(method, path, operation=operation, **kwargs)
        return json_body(response, platform=PLATFORM, operation=operation)

    async def search(
        self,
        path: str,
        operation: str,
        groups: Sequence[Group],
        *,
        page: int = 1,
        page_size: int | None = None,
        sort: Sequence[tuple[str, str]] = (),
    ) -> SearchPage:
        size = page_size or self.settings.page_size
        params = search_params(groups, page_size=size, current_page=page, sort=sort)
        data = await self.call("GET", path, operation, params=params)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise BadResponseError(
                "search result without an items list", platform=PLATFORM, operation=operation
            )
        return SearchPage(
            items=data["items"],
            total_count=int(data.get("total_count") or 0),
            page=page,
            page_size=size,
        )

    async def search_all(
        self,
        path: str,
        operation: str,
        groups: Sequence[Group],
        *,
        sort: Sequence[tuple[str, str]] = (),
        max_pages: int = 10_000,
    ) -> list[dict[str, Any]]:
        """Every page; stops by ``total_count`` (Magento repeats the last page)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            result = await self.search(path, operation, groups, page=page, sort=sort)
            items.extend(result.items)
            if not result.has_more or not result.items:
                return items
            page += 1
            if page > max_pages:
                raise RuntimeError(f"{operation}: more than {max_pages} pages")
