from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError


def validate_upstream_url(value: str) -> None:
    """Upstreams are set by operators only, but still must be plain http(s) origins:
    no credentials in the URL (they would end up in logs), no fragments, no other schemes."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        raise ValidationError("Upstream URL must use http or https.")
    if not parts.hostname:
        raise ValidationError("Upstream URL must name a host.")
    if parts.username or parts.password:
        raise ValidationError("Upstream URL must not contain credentials.")
    if parts.fragment or parts.query:
        raise ValidationError("Upstream URL must not contain a query string or fragment.")
