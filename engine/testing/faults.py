"""Fault injection for simulators, as ASGI middleware.

Faults are drawn per request from rules (seeded, so runs are reproducible):

=================  =============================================================
``429`` ``500``     answer that status at once; nothing is committed
``503``
``html_200``        a 200 with an HTML error page instead of JSON
``malformed_json``  a 200 whose body is not JSON; nothing is committed
``truncated``       the request IS processed, the body is cut in half
``reset_before``    the connection drops before the server processes the request
``reset_after``     the server commits, then the connection drops
``timeout_before``  no answer; nothing committed
``timeout_after``   the server commits, then no answer
=================  =============================================================

In process (``httpx.ASGITransport``) resets and timeouts surface as
``httpx.RemoteProtocolError`` / ``httpx.ReadTimeout``; on loopback under
uvicorn the connection is really dropped (after ``hang_seconds`` for timeouts).

The middleware also serves ``GET/POST/DELETE /_faults`` so a chaos run can
change rules of a simulator running in another process.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from engine.testing.ratelimit import ASGIApp, Message, Receive, Scope, Send, send_response

FAULT_KINDS = (
    "429",
    "500",
    "503",
    "html_200",
    "malformed_json",
    "truncated",
    "reset_before",
    "reset_after",
    "timeout_before",
    "timeout_after",
)


class SimulatedReset(httpx.RemoteProtocolError):
    """The simulator dropped the connection."""


class SimulatedTimeout(httpx.ReadTimeout):
    """The simulator never answered."""


@dataclass
class FaultRule:
    """Inject ``kind`` into requests whose ``METHOD path`` matches ``match``.

    ``probability`` draws per request; ``count`` (when set) limits how many
    faults the rule injects in total.
    """

    kind: str
    match: str = ".*"
    probability: float = 1.0
    count: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        self._pattern = re.compile(self.match)

    def matches(self, target: str) -> bool:
        return bool(self._pattern.search(target))


@dataclass
class FaultInjector:
    """Holds the rules and counts what was injected."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    hang_seconds: float = 0.0
    """On loopback: how long a ``timeout_*`` fault holds the connection first."""
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def add(
        self, kind: str, match: str = ".*", probability: float = 1.0, count: int | None = None
    ) -> None:
        self.rules.append(FaultRule(kind=kind, match=match, probability=probability, count=count))

    def clear(self) -> None:
        self.rules.clear()

    def draw(self, target: str) -> str | None:
        for rule in self.rules:
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.matches(target) and self.random.random() < rule.probability:
                if rule.count is not None:
                    rule.count -= 1
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                return rule.kind
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "rules": [
                {k: v for k, v in asdict(r).items() if not k.startswith("_")} for r in self.rules
            ],
            "injected": dict(self.injected),
        }


_HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


class FaultMiddleware:
    """ASGI middleware applying a :class:`FaultInjector`.

    :param exempt: a regex of ``METHOD path`` never faulted (admin endpoints).
    """

    def __init__(self, app: ASGIApp, injector: FaultInjector, exempt: str = r"^\w+ /_") -> None:
        self.app = app
        self.injector = injector
        self.exempt = re.compile(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = f"{scope['method']} {scope['path']}"
        if scope["path"] == "/_faults":
            await self._admin(scope, receive, send)
            return
        kind = None if self.exempt.search(target) else self.injector.draw(target)
        if kind is None:
            await self.app(scope, receive, send)
            return
        await self._inject(kind, scope, receive, send)

    async def _inject(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        if kind in ("429", "500", "503"):
            error = json.dumps(
                {"errors": [{"code": "SimulatedFault", "message": f"injected {kind}"}]}
            )
            headers = {"content-type": "application/json"}
            if kind == "429":
                headers["retry-after"] = "1"
            await send_response(send, int(kind), headers, error.encode())
            return
        if kind == "html_200":
            await send_response(send, 200, {"content-type": "text/html"}, _HTML)
            return
        if kind == "malformed_json":
            await send_response(
                send, 200, {"content-type": "application/json"}, b'{"orders": [{"id": '
            )
            return
        after = kind.endswith("_after") or kind == "truncated"
        captured: list[Message] = []
        if after:

            async def capture(message: Message) -> None:
                captured.append(message)

            await self.app(scope, receive, capture)
        if kind == "truncated":
            body = b"".join(
                m.get("body", b"") for m in captured if m["type"] == "http.response.body"
            )
            start = next(m for m in captured if m["type"] == "http.response.start")
            headers = {
                k.decode(): v.decode()
                for k, v in start.get("headers", [])
                if k != b"content-length"
            }
            await send_response(send, start["status"], headers, body[: len(body) // 2])
            return
        if kind.startswith("timeout") and self.injector.hang_seconds:
            await asyncio.sleep(self.injector.hang_seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if kind.startswith("timeout"):
            raise SimulatedTimeout(f"simulated timeout ({kind})")
        raise SimulatedReset(f"simulated connection reset ({kind})")

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            data = json.loads(body or b"{}")
            for rule in data.get("rules", []):
                self.injector.add(**rule)
            if "hang_seconds" in data:
                self.injector.hang_seconds = float(data["hang_seconds"])
        elif scope["method"] == "DELETE":
            self.injector.clear()
        payload = json.dumps(self.injector.describe()).encode()
        await send_response(send, 200, {"content-type": "application/json"}, payload)
