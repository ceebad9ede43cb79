"""Fixed-window throttle for the web forms (login, sign-up, resend verification).

The counters live in the Django cache, which is Redis, so every portal process
shares them. Rates are the same strings as REST_FRAMEWORK's DEFAULT_THROTTLE_RATES
("10/hour"), so the API and the web forms are limited alike.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_for(scope: str) -> tuple[int, int]:
    """(requests, seconds) for a scope of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]."""
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    count, period = rate.split("/")
    return int(count), PERIODS[period[0]]


def client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy
    # rewrites it, and a forgeable key would make the throttle useless.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def throttle_allows(scope: str, ident: str) -> bool:
    """Count one attempt for (scope, ident); False once the window's budget is spent."""
    limit, seconds = rate_for(scope)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    key = f"web-throttle:{scope}:{digest}"
    # add() is a no-op when the key exists, so the window starts at the first attempt.
    cache.add(key, 0, timeout=seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=seconds)
        count = 1
    return count <= limit
