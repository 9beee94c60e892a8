"""``X-WC-Webhook-Signature``: base64(HMAC-SHA256(raw body, secret)), compared in constant time."""

from __future__ import annotations

import hmac

import pytest
from pydantic import SecretStr

from plugins.woocommerce import webhooks

BODY = b'{"id":1}'
SECRET = "whsec-test"
# Computed independently: printf '{"id":1}' | openssl dgst -sha256 -hmac whsec-test -binary | base64
KNOWN = "P8bje2Qma4HZGKzUSgob8+MrV6RL6mI2sGOGQvpxGBE="


def test_signature_matches_an_independent_computation() -> None:
    assert webhooks.sign(BODY, SECRET) == KNOWN


@pytest.mark.parametrize("secret", [SECRET, SecretStr(SECRET)])
def test_valid_signature_verifies(secret: str | SecretStr) -> None:
    assert webhooks.verify_signature(BODY, KNOWN, secret)


def test_wrong_secret_is_invalid() -> None:
    assert not webhooks.verify_signature(BODY, KNOWN, "another-secret")


def test_tampered_body_is_invalid() -> None:
    assert not webhooks.verify_signature(b'{"id":2}', KNOWN, SECRET)
    assert not webhooks.verify_signature(BODY + b" ", KNOWN, SECRET)


@pytest.mark.parametrize("signature", [None, "", "not base64 at all", KNOWN[:-4]])
def test_missing_or_garbled_signature_is_invalid(signature: str | None) -> None:
    assert not webhooks.verify_signature(BODY, signature, SECRET)


def test_empty_secret_never_verifies() -> None:
    assert not webhooks.verify_signature(BODY, webhooks.sign(BODY, ""), "")


def test_header_lookup_is_case_insensitive() -> None:
    assert webhooks.verify_request({"x-wc-webhook-signature": KNOWN}, BODY, SECRET)
    assert not webhooks.verify_request({"X-WC-Webhook-Topic": "order.updated"}, BODY, SECRET)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    assert webhooks.verify_signature(BODY, KNOWN, SECRET)
    assert calls == [(KNOWN.encode(), KNOWN.encode())]
