"""Integration-token authentication: a bearer header, or OAuth 1.0a HMAC-SHA256 signing.

Signing follows RFC 5849 section 3.4: the base string is ``METHOD&URI&PARAMS`` where
URI is scheme, host, non-default port and the path as sent, and PARAMS are the decoded
query parameters plus the ``oauth_*`` parameters, re-encoded (RFC 3986), sorted by name
then value. The key is ``consumer_secret&token_secret``. Magento 2.4 accepts
``HMAC-SHA256`` signatures from integrations.

Because a signature covers method, URL and query, it cannot come from the engine's
``auth_headers()`` callback (no request argument); :class:`OAuth1Auth` is an
``httpx.Auth`` that signs every request, including each retry, with a fresh nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

import httpx

SIGNATURE_METHOD = "HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding: everything but unreserved characters."""
    return quote(value, safe="-._~")


def base_string_uri(scheme: str, host: str, port: int | None, raw_path: str) -> str:
    """RFC 5849 3.4.1.2: lower-case scheme and host, default port dropped, path as sent."""
    scheme = scheme.lower()
    netloc = host.lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{raw_path or '/'}"


def normalized_parameters(params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1.3.2: encode, sort by name then value, join with ``&``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def signature_base_string(
    method: str,
    uri: str,
    query: str,
    oauth_params: Mapping[str, str],
    extra_params: Iterable[tuple[str, str]] = (),
) -> str:
    """The string that gets signed.

    :param uri: from :func:`base_string_uri`.
    :param query: the raw (encoded) query string, without ``?``.
    :param oauth_params: ``oauth_*`` protocol parameters except ``oauth_signature``.
    :param extra_params: decoded form-body parameters (not used for JSON requests).
    """
    params = parse_qsl(query, keep_blank_values=True)
    params += [(k, v) for k, v in oauth_params.items() if k not in ("oauth_signature", "realm")]
    params += list(extra_params)
    parts = (method.upper(), uri, normalized_parameters(params))
    return "&".join(percent_encode(part) for part in parts)


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def authorization_header(params: Mapping[str, str]) -> str:
    body = ", ".join(f'{percent_encode(k)}="{percent_encode(v)}"' for k, v in params.items())
    return f"OAuth {body}"


def parse_authorization_header(value: str) -> dict[str, str]:
    """``OAuth k="v", ...`` → decoded dict; empty when the scheme is not OAuth."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "oauth":
        return {}
    out: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, raw = part.strip().partition("=")
        if sep:
            out[unquote(key)] = unquote(raw.strip().strip('"'))
    return out


def url_parts(url: httpx.URL) -> tuple[str, str]:
    """Base string URI and raw query of an ``httpx.URL``."""
    raw_path = url.raw_path.decode("ascii").split("?", 1)[0]
    uri = base_string_uri(url.scheme, url.host, url.port, raw_path)
    return uri, url.query.decode("ascii")


@dataclass(frozen=True)
class OAuth1Credentials:
    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str


class OAuth1Signer:
    """Builds ``Authorization: OAuth ...`` headers for one integration."""

    def __init__(
        self,
        credentials: OAuth1Credentials,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.credentials = credentials
        self.clock = clock
        self.nonce = nonce

    def protocol_params(self) -> dict[str, str]:
        return {
            "oauth_consumer_key": self.credentials.consumer_key,
            "oauth_nonce": self.nonce(),
            "oauth_signature_method": SIGNATURE_METHOD,
            "oauth_timestamp": str(int(self.clock())),
            "oauth_token": self.credentials.token,
            "oauth_version": "1.0",
        }

    def sign(self, method: str, url: httpx.URL) -> str:
        params = self.protocol_params()
        uri, query = url_parts(url)
        base = signature_base_string(method, uri, query, params)
        params["oauth_signature"] = hmac_sha256_signature(
            base, self.credentials.consumer_secret, self.credentials.token_secret
        )
        return authorization_header(params)


class OAuth1Auth(httpx.Auth):
    """Signs each outgoing request (and each retry) with :class:`OAuth1Signer`."""

    def __init__(self, signer: OAuth1Signer) -> None:
        self.signer = signer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.signer.sign(request.method, request.url)
        yield request


def bearer_headers(token: str) -> Callable[[], Awaitable[dict[str, str]]]:
    """An ``auth_headers`` callback for :class:`engine.http.ApiClient`."""

    async def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return headers
