"""A stand-in for Amazon's static sandbox, in front of the simulator.

Amazon's sandbox hosts answer the exact requests listed under each model
response's ``x-amzn-api-sandbox.static`` with the response given there. This
ASGI app does the same from the copied models, and passes everything else (the
LWA token exchange, requests no case matches) to the wrapped simulator. It lets
the sandbox recording path run, and be recorded, without Amazon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.plugins.amazon.contract import Models, Operation

Scope = dict[str, Any]


@dataclass(frozen=True)
class SandboxCase:
    operation: Operation
    status: int
    parameters: dict[str, Any]
    """``name`` → ``{"value": ...}`` (no ``value``: any)."""
    response: Any


OPERATIONS: list[Operation] = Models().operations


def sandbox_cases(operation_id: str | None = None) -> list[SandboxCase]:
    """Every static sandbox case of the models, in model order."""
    cases = []
    for op in OPERATIONS:
        if operation_id is not None and op.operation_id != operation_id:
            continue
        for status, response in op.spec["responses"].items():
            for case in (response.get("x-amzn-api-sandbox") or {}).get("static", []):
                cases.append(
                    SandboxCase(
                        op,
                        int(status),
                        dict(case["request"].get("parameters") or {}),
                        case.get("response"),
                    )
                )
    return cases


def case_value(operation_id: str, status: int, parameter: str, index: int = 0) -> Any:
    """The value a sandbox case of ``operation_id`` answering ``status`` expects."""
    cases = [c for c in sandbox_cases(operation_id) if c.status == status]
    return cases[index].parameters[parameter]["value"]


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)  # csv, as the models declare
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matches(case: SandboxCase, path: str, query: dict[str, str], body: bytes) -> bool:
    kinds = {p["name"]: p["in"] for p in case.operation.parameters}
    segments = path.split("/")
    template = case.operation.template.split("/")
    for name, spec in case.parameters.items():
        if "value" not in spec:
            continue  # "body": {} and the like: anything
        kind, expected = kinds.get(name), spec["value"]
        if kind == "path":
            if unquote(segments[template.index("{" + name + "}")]) != _text(expected):
                return False
        elif kind == "query":
            if query.get(name) != _text(expected):
                return False
        elif kind == "body":
            try:
                if json.loads(body or b"null") != expected:
                    return False
            except ValueError:
                return False
    return True


class StaticSandbox:
    """ASGI: the models' static sandbox answers, else ``inner`` (the simulator)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cases = sandbox_cases()
        self.answered: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode()
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        matching = [
            case
            for case in self.cases
            if case.operation.method == scope["method"]
            and case.operation.pattern.match(raw_path)
            and _matches(case, raw_path, query, body)
        ]
        if matching:  # the most specific case wins ({"body": {}} matches anything)
            case = max(matching, key=lambda c: sum("value" in p for p in c.parameters.values()))
            self.answered.append(f"{case.operation.operation_id} {case.status}")
            await _respond(send, case)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.inner(scope, replay, send)


async def _respond(send: Any, case: SandboxCase) -> None:
    no_body = case.response is None or case.status == 204  # HTTP: a 204 has no body
    content = b"" if no_body else json.dumps(case.response).encode()
    headers = [(b"x-amzn-requestid", b"sandbox-request")]
    if content:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": case.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
