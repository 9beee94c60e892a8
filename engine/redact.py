"""Keep secrets out of logs, errors and stored messages."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from pydantic import SecretStr

_SECRET_QUERY = re.compile(
    r"(?i)((?:access_token|refresh_token|client_secret|consumer_secret|consumer_key|"
    r"token|password|secret|signature|oauth_signature)=)[^&\s\"']+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/|=-]+")


class Redactor:
    """Replaces known secret values and secret-looking query parameters."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *values: str | SecretStr | None) -> None:
        for value in values:
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw and len(raw) >= 4 and raw not in self._values:
                self._values.add(raw)
                self._pattern = None

    def __call__(self, text: str) -> str:
        if self._values:
            if self._pattern is None:  # one pass for every secret, longest first
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            text = self._pattern.sub("***", text)
        text = _SECRET_QUERY.sub(r"\1***", text)
        return _BEARER.sub(r"\1***", text)


GLOBAL_REDACTOR = Redactor()
"""Every secret loaded from config is added here; the log filter uses it."""


class RedactingFilter(logging.Filter):
    """Log filter that scrubs secrets from the final message and arguments."""

    def __init__(self, redactor: Redactor = GLOBAL_REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
