"""engine.testing on its own: rate limits, fault injection, the pytest plugin, the suites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.interfaces import ConnectorContext
from engine.models import StockPage
from engine.testing import clock as clock_module
from engine.testing import conformance, pytest_plugin
from engine.testing.clock import ScaledClock
from engine.testing.faults import FAULT_KINDS, FaultInjector, FaultMiddleware, FaultRule
from engine.testing.ratelimit import Limit, RateLimiter, RateLimitMiddleware, TokenBucket
from tests.engine.test_conformance_fakes import FakeShopHarness
from tests.fakes import FakeSettings, FakeShop

ROOT = Path(__file__).resolve().parents[2]


class Counter:
    """A tiny ASGI app: ``POST /items`` commits (counts) and answers the new count."""

    def __init__(self) -> None:
        self.committed = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] == "POST":
            self.committed += 1
        body = json.dumps({"committed": self.committed, "padding": "x" * 40}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    return fake


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


# -- token buckets --------------------------------------------------------------


def test_bucket_allows_the_burst_then_refills_at_the_rate():
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(0.5)
    assert not bucket.take(0.25)  # half a token
    assert bucket.take(0.5)  # one token after 1/rate seconds
    assert bucket.take(100.0) and bucket.tokens == pytest.approx(2)  # never above the burst


def test_scaled_clock_runs_time_scale_times_faster(fake_time):
    fast = ScaledClock(time_scale=10)
    start = fast.now()
    fake_time.now += 0.5
    assert fast.now() - start == pytest.approx(5.0)
    fast.advance(60)
    assert fast.now() - start == pytest.approx(65.0)


def test_limiter_refills_at_rate_times_time_scale(fake_time):
    limiter = RateLimiter({"create": Limit(rate=1.0, burst=2)}, clock=ScaledClock(time_scale=10))
    assert limiter.try_acquire("create") is None
    assert limiter.try_acquire("create") is None
    assert limiter.try_acquire("create") == pytest.approx(1.0)  # simulated seconds
    fake_time.now += 0.1  # 1 simulated second
    assert limiter.try_acquire("create") is None
    assert limiter.try_acquire("create") is not None
    assert limiter.allowed == {"create": 3} and limiter.throttled == {"create": 2}


def test_limiter_keeps_a_bucket_per_key_and_can_be_switched_off(fake_time):
    limiter = RateLimiter({"create": Limit(rate=1.0, burst=1)})
    assert limiter.try_acquire("create", "shop-a") is None
    assert limiter.try_acquire("create", "shop-b") is None  # another seller's bucket
    assert limiter.try_acquire("create", "shop-a") is not None
    assert limiter.try_acquire("unlimited-operation") is None
    limiter.enabled = False
    assert all(limiter.try_acquire("create", "shop-a") is None for _ in range(10))


# -- rate-limit middleware --------------------------------------------------------


def _limited(app: Counter, limiter: RateLimiter) -> RateLimitMiddleware:
    def classify(scope: Any) -> tuple[str, str] | None:
        return None if scope["path"].startswith("/admin") else ("create", "")

    return RateLimitMiddleware(
        app, limiter, classify, extra_headers=lambda op: {"x-ratelimit-limit": "1.0"}
    )


async def test_middleware_answers_429_with_retry_after_once_the_burst_is_used(fake_time):
    app = Counter()
    limiter = RateLimiter({"create": Limit(rate=0.5, burst=2)})
    async with client(_limited(app, limiter)) as http:
        statuses = [(await http.post("/items")).status_code for _ in range(2)]
        throttled = await http.post("/items")
        assert statuses == [200, 200] and throttled.status_code == 429
        assert throttled.headers["retry-after"] == "2"  # a token every 2 s
        assert throttled.headers["x-ratelimit-limit"] == "1.0"
        assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
        assert app.committed == 2  # the throttled request never reached the app
        ok = await http.post("/admin/items")  # not classified: never limited
        assert ok.status_code == 200 and "x-ratelimit-limit" not in ok.headers
        limiter.clock.advance(2)
        again = await http.post("/items")
        assert again.status_code == 200 and again.headers["x-ratelimit-limit"] == "1.0"
    assert app.committed == 4


async def test_middleware_time_scale_shortens_real_waits(fake_time):
    limiter = RateLimiter({"create": Limit(rate=1.0, burst=1)}, clock=ScaledClock(time_scale=4))
    async with client(_limited(Counter(), limiter)) as http:
        assert (await http.post("/items")).status_code == 200
        assert (await http.post("/items")).status_code == 429
        fake_time.now += 0.25  # one simulated second at time scale 4
        assert (await http.post("/items")).status_code == 200


# -- fault middleware -------------------------------------------------------------


@pytest.fixture
async def faulty() -> AsyncIterator[tuple[Counter, FaultInjector, httpx.AsyncClient]]:
    app = Counter()
    injector = FaultInjector(seed=7)
    async with client(FaultMiddleware(app, injector)) as http:
        yield app, injector, http


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("429", 429, "application/json"),
        ("500", 500, "application/json"),
        ("503", 503, "application/json"),
        ("html_200", 200, "text/html"),
        ("malformed_json", 200, "application/json"),
    ],
)
async def test_answer_faults_commit_nothing(faulty, kind, status, content_type):
    app, injector, http = faulty
    injector.add(kind, count=1)
    response = await http.post("/items")
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    if kind == "429":
        assert response.headers["retry-after"] == "1"
    if kind in ("html_200", "malformed_json"):
        with pytest.raises(json.JSONDecodeError):
            response.json()
    assert app.committed == 0
    assert (await http.post("/items")).json()["committed"] == 1  # the rule is used up
    assert injector.injected == {kind: 1}


async def test_truncated_body_is_processed_then_cut(faulty):
    app, injector, http = faulty
    whole = (await http.get("/items")).content
    injector.add("truncated", count=1)
    response = await http.post("/items")
    assert app.committed == 1
    assert response.status_code == 200 and len(response.content) == len(whole) // 2


@pytest.mark.parametrize(
    ("kind", "error", "committed"),
    [
        ("reset_before", httpx.RemoteProtocolError, 0),
        ("reset_after", httpx.RemoteProtocolError, 1),
        ("timeout_before", httpx.ReadTimeout, 0),
        ("timeout_after", httpx.ReadTimeout, 1),
    ],
)
async def test_resets_and_timeouts_before_or_after_the_commit(faulty, kind, error, committed):
    app, injector, http = faulty
    injector.add(kind, match="^POST /items$", count=1)
    with pytest.raises(error):
        await http.post("/items")
    assert app.committed == committed


def test_every_fault_kind_is_tested_here():
    tested = {"429", "500", "503", "html_200", "malformed_json", "truncated"} | {
        "reset_before",
        "reset_after",
        "timeout_before",
        "timeout_after",
    }
    assert set(FAULT_KINDS) == tested
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule(kind="fire")


async def test_rules_match_by_method_and_path_and_draw_reproducibly(faulty):
    app, injector, http = faulty
    injector.add("500", match="^POST /items")
    assert (await http.get("/items")).status_code == 200
    assert (await http.post("/items")).status_code == 500

    def draws(seed: int) -> list[str | None]:
        seeded = FaultInjector(seed=seed)
        seeded.add("503", probability=0.5)
        return [seeded.draw("GET /x") for _ in range(40)]

    assert draws(3) == draws(3)
    assert 5 < draws(3).count("503") < 35


async def test_admin_endpoint_sets_and_clears_rules_and_is_never_faulted(faulty):
    app, injector, http = faulty
    injector.add("500")  # every request...
    described = await http.post(
        "/_faults", json={"rules": [{"kind": "429", "match": "GET", "count": 2}]}
    )
    assert described.status_code == 200  # ...but not the admin endpoint
    assert [r["kind"] for r in described.json()["rules"]] == ["500", "429"]
    assert (await http.post("/items")).status_code == 500
    assert (await http.delete("/_faults")).json()["rules"] == []
    assert (await http.post("/items")).status_code == 200


# -- the pytest plugin and the suites ---------------------------------------------


def test_the_pytest_plugin_is_registered_and_offers_the_suites():
    [plugin] = [ep for ep in entry_points(group="pytest11") if ep.name == "ordersync"]
    assert plugin.load() is pytest_plugin
    assert pytest_plugin.ShopConformance is conformance.ShopConformance
    assert pytest_plugin.MarketplaceConformance is conformance.MarketplaceConformance
    assert pytest_plugin.sample_order is conformance.sample_order


THIRD_PARTY_TESTS = """
import pytest

from engine.interfaces import ConnectorContext
from engine.testing.pytest_plugin import MarketplaceConformance
from tests.engine.test_conformance_fakes import FakeMarketplaceHarness
from tests.fakes import WORLDS, FakeMarketplace, FakeSettings, World


class TestThirdPartyMarketplace(MarketplaceConformance):
    @pytest.fixture
    def harness(self):
        WORLDS["default"] = World()
        return FakeMarketplaceHarness(
            WORLDS["default"], FakeMarketplace(FakeSettings(), ConnectorContext("third"))
        )


def test_state_store_fixture(state_store):
    assert state_store.get_cursor("c", "orders") is None
"""


def test_a_plugin_author_runs_the_suite_through_the_pytest_plugin(tmp_path):
    """Another project, pytest-asyncio in its default (strict) mode, one import."""
    (tmp_path / "test_mine.py").write_text(THIRD_PARTY_TESTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    suite = [n for n in dir(conformance.MarketplaceConformance) if n.startswith("test_")]
    assert f"{len(suite) + 1} passed" in result.stdout


class EverythingShop(FakeShop):
    """A shop that ignores the stock cursor and always returns every SKU."""

    async def stock_levels(self, attribute: str, cursor: str | None) -> StockPage:
        return await super().stock_levels(attribute, None)


async def test_the_stock_suite_fails_a_shop_that_always_returns_everything(world):
    suite = conformance.ShopConformance()
    honest = FakeShopHarness(world, FakeShop(FakeSettings(), ConnectorContext("conf")))
    await suite.test_stock_full_read_then_changes_only(honest)
    world.stock.clear()
    everything = FakeShopHarness(world, EverythingShop(FakeSettings(), ConnectorContext("conf")))
    with pytest.raises(AssertionError, match="a changes read returned a SKU that did not change"):
        await suite.test_stock_full_read_then_changes_only(everything)
