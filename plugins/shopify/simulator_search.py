"""Shopify's search syntax (the ``query:`` argument), enough for the simulator.

Supports ``field:value``, comparators ``:>``, ``:>=``, ``:<``, ``:<=``, quoted
values with backslash escapes, a trailing ``*`` for prefix matches, ``AND``
(also implicit), ``OR``, ``NOT`` / ``-term`` and parentheses. Unknown fields
match everything, as Shopify ignores invalid search fields.

Fields wrapped in :class:`Tokenized` (SKUs, barcodes, source identifiers) match
the way Shopify's search index does, loosely: the value is split into words
and each word of the query only has to start a word of the value, in order.
``sku:"ABC-1"`` finds ``ABC-1`` and ``ABC-10``; ``source_identifier:"028-1-1"``
finds ``028-1-12``. Clients must keep only the exact matches themselves.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Accessor = Callable[[Any], Any]
Predicate = Callable[[Any], bool]
_WORD_BREAK = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
    """The lower-cased words Shopify's index keeps of a value (``"ABC-10"`` → abc, 10)."""
    return [w for w in _WORD_BREAK.split(text.lower()) if w]


@dataclass(frozen=True)
class Tokenized:
    """An accessor whose ``field:value`` terms match by word prefixes (see the module)."""

    get: Accessor

    def __call__(self, obj: Any) -> Any:
        return self.get(obj)


class WordIndex:
    """Record ids by the words of a value; finds those with a word starting with a prefix."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, int]] = []

    def add(self, text: str, ident: int) -> None:
        for word in set(words(text)):
            bisect.insort(self._entries, (word, ident))

    def _range(self, prefix: str) -> tuple[int, int]:
        start = bisect.bisect_left(self._entries, (prefix, -1))
        return start, bisect.bisect_left(self._entries, (prefix + "\uffff", -1), lo=start)

    def starting_with(self, prefix: str) -> set[int]:
        start, end = self._range(prefix)
        return {ident for _, ident in self._entries[start:end]}

    def narrowest(self, prefixes: list[str]) -> set[int]:
        """:meth:`starting_with` for the prefix with the fewest entries: a superset of the
        records whose words start with every prefix (the caller still filters)."""
        ranges = [self._range(p) for p in prefixes]
        start, end = min(ranges, key=lambda r: r[1] - r[0])
        return {ident for _, ident in self._entries[start:end]}


def token_match(actual: Any, wanted: str) -> bool:
    """Whether each word of ``wanted`` starts a word of ``actual``, in a row."""
    if actual is None:
        return False
    if isinstance(actual, list | tuple | set):
        return any(token_match(a, wanted) for a in actual)
    text = str(actual)
    if wanted.endswith("*"):
        return text.lower().startswith(wanted[:-1].lower())
    query, found = words(wanted), words(text)
    if not query:
        return text.lower() == wanted.lower()
    return any(
        all(found[start + k].startswith(part) for k, part in enumerate(query))
        for start in range(len(found) - len(query) + 1)
    )


@dataclass(frozen=True)
class _Term:
    field: str | None
    op: str
    value: str


def _tokens(text: str) -> list[str | _Term]:
    out: list[str | _Term] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char in "()":
            out.append(char)
            i += 1
            continue
        negate = char == "-" and i + 1 < len(text) and not text[i + 1].isspace()
        if negate:
            out.append("NOT")
            i += 1
        raw: list[str] = []
        quoted = False
        while i < len(text) and not text[i].isspace() and text[i] not in "()":
            if text[i] in "\"'":
                quote, i = text[i], i + 1
                quoted = True
                while i < len(text) and text[i] != quote:
                    if text[i] == "\\" and i + 1 < len(text):
                        i += 1
                    raw.append(text[i])
                    i += 1
                i += 1
                continue
            raw.append(text[i])
            i += 1
        word = "".join(raw)
        if not quoted and word in ("AND", "OR", "NOT"):
            out.append(word)
            continue
        out.append(_term(word, text))
    return out


def _term(word: str, source: str) -> _Term:
    field, sep, rest = word.partition(":")
    if not sep or not field.replace("_", "").replace(".", "").isalnum():
        return _Term(None, "=", word)
    for op in (">=", "<=", ">", "<"):
        if rest.startswith(op):
            return _Term(field, op, rest[len(op) :])
    return _Term(field, "=", rest)


def _as_time(value: str) -> datetime | None:
    if value == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime(int(value), 1, 1, tzinfo=UTC)
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(actual: Any, op: str, wanted: str) -> bool:
    if actual is None:
        return False
    if isinstance(actual, list | tuple | set):
        return any(_compare(a, op, wanted) for a in actual)
    if isinstance(actual, datetime):
        moment = _as_time(wanted)
        if moment is None:
            return False
        return {
            "=": actual == moment,
            ">": actual > moment,
            ">=": actual >= moment,
            "<": actual < moment,
            "<=": actual <= moment,
        }[op]
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, int):
        try:
            number = int(wanted.rsplit("/", 1)[-1])
        except ValueError:
            return False
        return {
            "=": actual == number,
            ">": actual > number,
            ">=": actual >= number,
            "<": actual < number,
            "<=": actual <= number,
        }[op]
    text = str(actual).lower()
    if wanted.endswith("*"):
        return text.startswith(wanted[:-1].lower())
    return text == wanted.lower()


class _Parser:
    def __init__(
        self, tokens: list[str | _Term], fields: Mapping[str, Accessor], default: Accessor
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields
        self.default = default

    def peek(self) -> str | _Term | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | _Term | None:
        token = self.peek()
        self.pos += 1
        return token

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda obj: any(p(obj) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda obj: all(p(obj) for p in parts))

    def parse_unary(self) -> Predicate:
        item = self.take()
        if item == "NOT":
            inner = self.parse_unary()
            return lambda obj: not inner(obj)
        if item == "(":
            inner = self.parse_or()
            if self.peek() == ")":
                self.take()
            return inner
        if isinstance(item, _Term):
            return self.term(item)
        return lambda obj: True

    def term(self, term: _Term) -> Predicate:
        if term.field is None:
            wanted = term.value.lower()
            return lambda obj: any(wanted in str(v).lower() for v in self.default(obj) if v)
        accessor = self.fields.get(term.field)
        if accessor is None:
            return lambda obj: True
        if isinstance(accessor, Tokenized) and term.op == "=":
            return lambda obj: token_match(accessor(obj), term.value)
        return lambda obj: _compare(accessor(obj), term.op, term.value)


def compile_query(
    query: str | None, fields: Mapping[str, Accessor], default: Accessor
) -> Predicate:
    """A predicate for ``query``; ``default`` returns the texts a bare word searches."""
    if not query or not query.strip():
        return lambda obj: True
    tokens = _tokens(query)
    if not tokens:
        return lambda obj: True
    return _Parser(tokens, fields, default).parse_or()
