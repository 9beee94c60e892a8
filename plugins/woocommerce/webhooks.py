"""Webhook authenticity: ``X-WC-Webhook-Signature`` = base64(HMAC-SHA256(raw body, secret))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"


def _secret_bytes(secret: str | SecretStr) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return raw.encode()


def sign(body: bytes, secret: str | SecretStr) -> str:
    """The signature WooCommerce sends for ``body`` (``WC_Webhook::generate_signature``)."""
    digest = hmac.new(_secret_bytes(secret), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(body: bytes, signature: str | None, secret: str | SecretStr) -> bool:
    """Whether ``signature`` is WooCommerce's signature of the raw ``body``, in constant time.

    Pass the body exactly as received (before any JSON parsing); an empty secret or a
    missing signature never verifies.
    """
    if not signature or not _secret_bytes(secret):
        return False
    expected = sign(body, secret).encode()
    return hmac.compare_digest(expected, signature.strip().encode())


def verify_request(headers: Mapping[str, str], body: bytes, secret: str | SecretStr) -> bool:
    """:func:`verify_signature` with the header looked up case-insensitively."""
    wanted = SIGNATURE_HEADER.lower()
    signature = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return verify_signature(body, signature, secret)
