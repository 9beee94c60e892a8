"""Login with Amazon (LWA): refresh-token exchange and an access-token cache.

No SigV4: SP-API ignores signatures since 2023-10-02 and authorizes on the
``x-amz-access-token`` header alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from engine.errors import AuthError, BadResponseError, FatalAPIError
from engine.http import ApiClient, json_body
from engine.redact import Redactor

REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a cached access token is replaced."""


def lwa_error_parser(response: httpx.Response) -> tuple[str | None, str]:
    """LWA answers errors as ``{"error": "invalid_grant", "error_description": "..."}``."""
    try:
        data = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if isinstance(data, dict) and "error" in data:
        return str(data["error"]), str(data.get("error_description", ""))
    return None, str(data)[:200]


class LwaAuth:
    """Exchanges the refresh token for access tokens and caches them.

    :param clock: monotonic seconds; tests pass a fake one.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        transport: httpx.AsyncBaseTransport | None = None,
        redactor: Redactor | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.clock = clock
        self.redactor = redactor or Redactor()
        self.redactor.add(client_secret, refresh_token)
        self._http = ApiClient(
            platform="amazon",
            base_url="",
            transport=transport,
            timeout=timeout,
            error_parser=lwa_error_parser,
            redactor=self.redactor,
        )
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.exchanges = 0
        """How many token exchanges were made (for tests and metrics)."""

    async def aclose(self) -> None:
        await self._http.aclose()

    def invalidate(self) -> None:
        """Forget the cached token (after a 401/403)."""
        self._token = None
        self._expires_at = 0.0

    async def access_token(self) -> str:
        async with self._lock:
            if self._token is None or self.clock() >= self._expires_at:
                await self._exchange()
            assert self._token is not None
            return self._token

    async def headers(self) -> dict[str, str]:
        return {"x-amz-access-token": await self.access_token()}

    async def _exchange(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
            "client_id": self._client_id.get_secret_value(),
            "client_secret": self._client_secret.get_secret_value(),
        }
        try:
            response = await self._http.request(
                "POST", self.token_url, operation="lwaToken", data=form
            )
        except (AuthError, FatalAPIError) as exc:
            raise AuthError(
                f"Login with Amazon rejected the credentials ({exc.message or 'no detail'}); "
                "check lwa_client_id, lwa_client_secret and the refresh token of this region",
                platform="amazon",
                operation="lwaToken",
                status=exc.status,
                code=exc.code,
            ) from None
        data = json_body(response, platform="amazon", operation="lwaToken")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponseError(
                "LWA answer has no access_token", platform="amazon", operation="lwaToken"
            )
        expires_in = float(data.get("expires_in", 3600))
        self.redactor.add(token)
        self._token = token
        self._expires_at = self.clock() + max(0.0, expires_in - REFRESH_MARGIN)
        self.exchanges += 1
