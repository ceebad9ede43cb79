"""ISO 8601 timestamps from the contract, parsed once and compared as epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache


@lru_cache(maxsize=65536)
def epoch(value: str) -> float:
    """Seconds since the epoch; a timestamp without zone is taken as UTC (the contract says UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def http_date(value: str) -> str:
    """RFC 9110 IMF-fixdate, as the Sunset header wants."""
    return format_datetime(datetime.fromtimestamp(epoch(value), tz=UTC), usegmt=True)
