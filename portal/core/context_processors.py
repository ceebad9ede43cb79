from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    return {"GATEWAY_PUBLIC_URL": settings.GATEWAY_PUBLIC_URL}
