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


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, as a browser sends it in Origin."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{host}{port}"
