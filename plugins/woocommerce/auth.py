"""Key authentication for ``wc/v3``: HTTP Basic over HTTPS, OAuth 1.0a over plain HTTP.

WooCommerce reads consumer keys (Basic or ``consumer_key`` query) only when the request
came over HTTPS (``is_ssl()``); over plain HTTP it accepts only OAuth 1.0a "one-legged"
signatures (``wp-api-v3_authentication.md``, "Authentication over HTTP"). The signature
follows those steps:

1. the parameters are the request's query plus the ``oauth_*`` ones (not the signature,
   not the body), each name and value percent-encoded (RFC 3986), sorted by encoded name,
   joined ``name=value`` with ``&``;
2. the base string is ``METHOD&enc(URL without query)&enc(parameters)``;
3. the key is ``consumer_secret&`` (no token), HMAC-SHA256 or HMAC-SHA1, base64.

The ``oauth_*`` parameters go in the query string, which the docs call the more reliable
place on WordPress. ``oauth_version`` is left out, as the docs advise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator, Iterable
from typing import Literal
from urllib.parse import quote

import httpx

SignatureMethod = Literal["HMAC-SHA256", "HMAC-SHA1"]
_DIGESTS = {"HMAC-SHA256": hashlib.sha256, "HMAC-SHA1": hashlib.sha1}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding (PHP's ``rawurlencode``): all but ``A-Z a-z 0-9 - . _ ~``."""
    return quote(value, safe="-._~")


def base_url(url: httpx.URL) -> str:
    """The request URL as signed: scheme, host, a non-default port and the path as sent."""
    netloc = url.host
    if url.port is not None and url.port != _DEFAULT_PORTS.get(url.scheme):
        netloc = f"{netloc}:{url.port}"
    return f"{url.scheme}://{netloc}{url.raw_path.decode('ascii').split('?', 1)[0]}"


def base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``METHOD&enc(url)&enc(sorted, encoded name=value pairs joined by &)``."""
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    joined = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join((method.upper(), percent_encode(url), percent_encode(joined)))


def signature(base: str, consumer_secret: str, method: SignatureMethod) -> str:
    key = f"{consumer_secret}&".encode()
    return base64.b64encode(hmac.new(key, base.encode(), _DIGESTS[method]).digest()).decode()


class OAuth1QueryAuth(httpx.Auth):
    """Signs every request (every retry too, with a fresh nonce and timestamp)."""

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        method: SignatureMethod = "HMAC-SHA256",
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self._key = consumer_key
        self._secret = consumer_secret
        self.method = method
        self._clock = clock
        self._nonce = nonce

    def sign(self, method: str, url: httpx.URL) -> httpx.URL:
        """``url`` with the ``oauth_*`` parameters and their signature added."""
        query = [(k, v) for k, v in url.params.multi_items() if not k.startswith("oauth_")]
        oauth = [
            ("oauth_consumer_key", self._key),
            ("oauth_nonce", self._nonce()),
            ("oauth_signature_method", self.method),
            ("oauth_timestamp", str(int(self._clock()))),
        ]
        signed = signature(
            base_string(method, base_url(url), query + oauth), self._secret, self.method
        )
        return url.copy_with(
            params=httpx.QueryParams([*query, *oauth, ("oauth_signature", signed)])
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = self.sign(request.method, request.url)
        yield request
