"""Pieces of the Magento simulator: error answers, JSON, searchCriteria.

searchCriteria follows Magento: filters inside a group are OR-ed, groups are AND-ed;
``filterGroups``/``filter_groups``, ``conditionType``/``condition_type`` are both read;
numbers compare as numbers and text case-insensitively (MySQL collation); an
out-of-range ``currentPage`` returns the last page again (magento2#3787) unless the
caller turns that off (products, fixed in 2.4).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response

JSON = dict[str, Any]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CENT = Decimal("0.01")

NOT_AUTHORIZED = "The consumer isn't authorized to access {resource}."
NO_ENTITY = "The entity that was requested doesn't exist. Verify the entity and try again."
NO_ROUTE = "Request does not match any route."


@dataclass(frozen=True)
class Credentials:
    """The integration the simulator accepts (its four OAuth values)."""

    access_token: str = "sim-magento-access-token-0000000"  # noqa: S105 - simulator-only value
    access_token_secret: str = "sim-magento-token-secret-0000000"  # noqa: S105
    consumer_key: str = "sim-magento-consumer-key-0000000"
    consumer_secret: str = "sim-magento-consumer-secret-0000"  # noqa: S105


class MagentoError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        raise MagentoError(400, f'The "{value}" value is not a number.') from None


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(data, default=_encode)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


# --- searchCriteria --------------------------------------------------------------------

_FILTER = re.compile(
    r"^searchCriteria\[(?:filterGroups|filter_groups)\]\[(\d+)\]\[filters\]\[(\d+)\]"
    r"\[(field|value|conditionType|condition_type)\]$"
)
_SORT = re.compile(r"^searchCriteria\[(?:sortOrders|sort_orders)\]\[(\d+)\]\[(field|direction)\]$")
_PAGING = {
    "searchCriteria[pageSize]": "page_size",
    "searchCriteria[page_size]": "page_size",
    "searchCriteria[currentPage]": "current_page",
    "searchCriteria[current_page]": "current_page",
}


@dataclass
class SearchCriteria:
    groups: list[list[JSON]] = field(default_factory=list)
    sort: list[JSON] = field(default_factory=list)
    page_size: int | None = None
    current_page: int = 1

    @classmethod
    def parse(cls, items: Sequence[tuple[str, str]]) -> SearchCriteria:
        groups: dict[int, dict[int, JSON]] = {}
        sorts: dict[int, JSON] = {}
        out = cls()
        for key, value in items:
            if m := _FILTER.match(key):
                g, f, part = int(m[1]), int(m[2]), m[3]
                part = "condition_type" if part == "conditionType" else part
                groups.setdefault(g, {}).setdefault(f, {})[part] = value
            elif m := _SORT.match(key):
                sorts.setdefault(int(m[1]), {})[m[2]] = value
            elif key in _PAGING:
                try:
                    setattr(out, _PAGING[key], int(value))
                except ValueError:
                    raise MagentoError(400, f'The "{value}" value\'s type is invalid.') from None
        for g in sorted(groups):
            filters = []
            for f in sorted(groups[g]):
                flt = groups[g][f]
                if "field" not in flt:
                    raise MagentoError(400, '"field" is required. Enter and try again.')
                flt.setdefault("value", "")
                flt.setdefault("condition_type", "eq")
                filters.append(flt)
            out.groups.append(filters)
        out.sort = [
            {"field": s.get("field", ""), "direction": s.get("direction", "ASC").upper()}
            for _, s in sorted(sorts.items())
        ]
        return out

    def echo(self) -> JSON:
        data: JSON = {"filter_groups": [{"filters": g} for g in self.groups]}
        if self.sort:
            data["sort_orders"] = self.sort
        if self.page_size is not None:
            data["page_size"] = self.page_size
        data["current_page"] = self.current_page
        return data


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    try:
        return (1, Decimal(str(value)))
    except InvalidOperation:
        return (2, str(value).casefold())


def _typed(actual: Any, value: str) -> tuple[Any, Any]:
    """Numbers compare as numbers, everything else as case-insensitive text (MySQL-like)."""
    if isinstance(actual, int | float | Decimal) and not isinstance(actual, bool):
        try:
            return Decimal(str(actual)), Decimal(value)
        except InvalidOperation:
            pass
    return str(actual).casefold(), value.casefold()


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
    "from": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "to": lambda a, b: a <= b,
}


def _compare(actual: Any, condition: str, value: str) -> bool:
    cond = condition.lower()
    if cond == "null":
        return actual in (None, "")
    if cond == "notnull":
        return actual not in (None, "")
    if cond in ("in", "nin"):
        hit = actual is not None and any(_compare(actual, "eq", v) for v in value.split(","))
        return hit if cond == "in" else not hit
    if actual is None:
        return cond == "neq"
    if cond == "like":
        pattern = re.escape(value.casefold()).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, str(actual).casefold()) is not None
    if cond == "finset":
        return value.casefold() in str(actual).casefold().split(",")
    if cond not in _OPS:
        raise MagentoError(400, f'Invalid condition type "{condition}".')
    left, right = _typed(actual, value)
    return _OPS[cond](left, right)


Getter = Callable[[JSON, str], Any]


def search(
    records: Sequence[JSON], criteria: SearchCriteria, get: Getter, *, repeat_last_page: bool
) -> JSON:
    """``{items, search_criteria, total_count}`` for one page of ``records``."""
    hits = [
        r
        for r in records
        if all(
            any(_compare(get(r, f["field"]), f["condition_type"], f["value"]) for f in group)
            for group in criteria.groups
        )
    ]
    for order in reversed(criteria.sort):
        hits.sort(
            key=lambda r: _sort_key(get(r, order["field"])), reverse=order["direction"] == "DESC"
        )
    total = len(hits)
    size = criteria.page_size
    if size:
        page = max(1, criteria.current_page)
        if repeat_last_page and total:
            page = min(page, math.ceil(total / size))
        hits = hits[(page - 1) * size : page * size]
    return {"items": hits, "search_criteria": criteria.echo(), "total_count": total}
