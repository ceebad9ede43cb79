from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from portal.accounts.selectors import is_finance


def portal(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "GATEWAY_PUBLIC_URL": settings.GATEWAY_PUBLIC_URL,
        # Lazy: only pages that render the header pay for the group lookup.
        "is_finance": (lambda: bool(user and user.is_authenticated and is_finance(user))),
    }
