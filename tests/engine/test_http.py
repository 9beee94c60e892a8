"""ApiClient: error classes, retries, Retry-After, auth refresh, JSON decoding, redaction."""

from __future__ import annotations

import httpx
import pytest

from engine.errors import AuthError, BadResponseError, FatalAPIError, RetriableAPIError
from engine.http import ApiClient, RetryPolicy, parse_retry_after
from engine.redact import Redactor


def scripted(
    *responses: httpx.Response | Exception,
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def client(transport: httpx.MockTransport, **kw) -> ApiClient:
    return ApiClient(
        platform="test",
        base_url="https://api.test",
        transport=transport,
        retry=RetryPolicy(max_tries=3, max_time=5, initial=0.001, max_wait=0.01),
        **kw,
    )


async def test_retries_429_5xx_and_resets_then_succeeds():
    transport, seen = scripted(
        httpx.Response(429, json={"errors": [{"code": "QuotaExceeded", "message": "slow down"}]}),
        httpx.ReadTimeout("t"),
        httpx.Response(200, json={"ok": True}),
    )
    api = client(transport)
    response = await api.request("GET", "/x", operation="op")
    assert response.json() == {"ok": True}
    assert len(seen) == 3 and api.stats["retries"] == 2 and api.stats["throttled"] == 1


async def test_gives_up_after_max_tries_with_a_retriable_error():
    transport, seen = scripted(*[httpx.Response(503, text="down")] * 3)
    with pytest.raises(RetriableAPIError, match="HTTP 503"):
        await client(transport).request("GET", "/x", operation="op")
    assert len(seen) == 3


async def test_non_idempotent_write_is_sent_once():
    transport, seen = scripted(httpx.Response(502, text="bad gateway"))
    with pytest.raises(RetriableAPIError):
        await client(transport).request("POST", "/orders", operation="create", retry=False)
    assert len(seen) == 1


async def test_other_4xx_is_fatal_with_the_platform_code():
    transport, seen = scripted(
        httpx.Response(400, json={"errors": [{"code": "InvalidInput", "message": "bad sku"}]})
    )
    with pytest.raises(FatalAPIError) as info:
        await client(transport).request("GET", "/x", operation="op")
    assert info.value.code == "InvalidInput" and info.value.status == 400
    assert str(info.value) == "test op: HTTP 400 [InvalidInput] bad sku"
    assert len(seen) == 1


async def test_auth_refresh_once_then_auth_error():
    tokens = iter(["t1", "t2", "t3"])
    current = {"token": next(tokens)}

    async def headers():
        return {"authorization": f"Bearer {current['token']}"}

    def refresh():
        current["token"] = next(tokens)

    transport, seen = scripted(httpx.Response(401), httpx.Response(200, json={}))
    await client(transport, auth_headers=headers, on_auth_failure=refresh).request(
        "GET", "/x", operation="op"
    )
    assert [r.headers["authorization"] for r in seen] == ["Bearer t1", "Bearer t2"]
    transport, seen = scripted(httpx.Response(403), httpx.Response(403))
    with pytest.raises(AuthError):
        await client(transport, auth_headers=headers, on_auth_failure=refresh).request(
            "GET", "/x", operation="op"
        )
    assert len(seen) == 2


async def test_retry_after_is_honoured():
    transport, _ = scripted(
        httpx.Response(429, headers={"retry-after": "0.02"}), httpx.Response(200, json={})
    )
    api = client(transport)
    api.retry.max_wait = 1
    await api.request("GET", "/x", operation="op")
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


async def test_request_json_retries_html_and_truncated_bodies():
    transport, seen = scripted(
        httpx.Response(200, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, text='{"orders": [', headers={"content-type": "application/json"}),
        httpx.Response(200, json={"orders": []}),
    )
    assert await client(transport).request_json("GET", "/x", operation="op") == {"orders": []}
    assert len(seen) == 3
    transport, _ = scripted(
        *[httpx.Response(200, text="<html>x</html>", headers={"content-type": "text/html"})] * 3
    )
    with pytest.raises(BadResponseError, match="an HTML page"):
        await client(transport).request_json("GET", "/x", operation="op")


async def test_secrets_are_redacted_from_errors():
    transport, _ = scripted(
        httpx.Response(400, json={"message": "token abc-secret-123 is invalid"})
    )
    api = client(transport, redactor=Redactor(["abc-secret-123"]))
    with pytest.raises(FatalAPIError) as info:
        await api.request("GET", "/x?access_token=abc-secret-123", operation="op")
    assert "abc-secret-123" not in str(info.value)


class FakeSleep:
    """Records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def throttled(retry_after: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    return httpx.Response(429, headers=headers, json={"message": "slow down"})


async def test_an_operation_may_wait_longer_than_the_default_policy():
    """A one-call-a-few-minutes operation: a 178 s wait is slept, not cut to 30 s."""
    slow = RetryPolicy(max_tries=3, max_time=600, max_wait=200)
    for policies, expected in (({"slow": slow}, [178.0]), ({}, [0.01])):
        transport, seen = scripted(throttled(), httpx.Response(200, json={}))
        sleep = FakeSleep()
        api = client(transport, operation_retry=policies, sleep=sleep, backoff_time=lambda r: 178.0)
        await api.request("GET", "/x", operation="slow")
        assert sleep.waits == expected and len(seen) == 2
        assert api.retry_for("slow") is (slow if policies else api.retry)


async def test_advised_waits_are_jittered_upwards():
    sleep = FakeSleep()
    transport, _ = scripted(*[throttled("10")] * 20, httpx.Response(200, json={}))
    policy = RetryPolicy(max_tries=21, max_time=10_000, max_wait=60, jitter=0.1)
    api = client(transport, sleep=sleep, operation_retry={"op": policy})
    await api.request("GET", "/x", operation="op")
    assert len(sleep.waits) == 20
    assert all(10.0 <= w <= 11.0 for w in sleep.waits)
    assert len(set(sleep.waits)) > 1


async def test_time_slept_bounds_the_retries():
    """max_time holds when sleeping is faked: 50 s waits stop once 120 s were slept."""
    sleep = FakeSleep()
    transport, seen = scripted(*[throttled("50")] * 10)
    policy = RetryPolicy(max_tries=10, max_time=120, max_wait=60)
    api = client(transport, sleep=sleep, operation_retry={"op": policy})
    with pytest.raises(RetriableAPIError, match="HTTP 429"):
        await api.request("GET", "/x", operation="op")
    assert sleep.waits == [50.0, 50.0, 50.0] and len(seen) == 4


async def test_a_write_sent_once_is_still_retried_when_throttled():
    """A 429 was refused before anything happened: safe to send again."""
    sleep = FakeSleep()
    transport, seen = scripted(throttled("1"), httpx.Response(200, json={}))
    api = client(transport, sleep=sleep)
    await api.request("POST", "/feeds", operation="create", retry=False, retry_throttled=True)
    assert len(seen) == 2
    transport, seen = scripted(httpx.Response(502, text="bad gateway"))
    with pytest.raises(RetriableAPIError):
        await client(transport, sleep=sleep).request(
            "POST", "/feeds", operation="create", retry=False, retry_throttled=True
        )
    assert len(seen) == 1


async def test_cookies_a_server_sets_are_never_sent_back():
    """Platforms authenticate every request with a token or a signature: no cookie jar."""
    transport, seen = scripted(
        httpx.Response(200, json={}, headers={"set-cookie": "session=abc; Path=/"}),
        httpx.Response(200, json={}),
    )
    api = client(transport)
    await api.request("GET", "/x", operation="op")
    await api.request("GET", "/x", operation="op")
    assert "cookie" not in seen[1].headers
    assert list(api.client.cookies.jar) == []


async def test_json_bodies_are_sent_as_json():
    transport, seen = scripted(httpx.Response(200, json={"ok": True}))
    api = client(transport)
    await api.request("POST", "/x", operation="op", json={"a": [1, "é"]})
    assert seen[0].headers["content-type"] == "application/json"
    assert httpx.Response(200, content=seen[0].content).json() == {"a": [1, "é"]}
