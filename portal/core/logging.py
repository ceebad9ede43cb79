"""Defence in depth: scrub anything shaped like a Tollway key or an OAuth token from log lines."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"tw_[0-9A-Za-z]{38}"),
    re.compile(r"""(['"]?(?:access_token|refresh_token|client_secret|api_key)['"]?\s*[:=]\s*['"]?)[^'",&\s}]+"""),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"twc_[0-9A-Za-z]{32}"),  # automation tokens (portal.declarative)
]


def redact(text: str) -> str:
    text = _PATTERNS[0].sub("tw_[REDACTED]", text)
    text = _PATTERNS[1].sub(r"\1[REDACTED]", text)
    text = _PATTERNS[2].sub(r"\1[REDACTED]", text)
    return _PATTERNS[3].sub("twc_[REDACTED]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
