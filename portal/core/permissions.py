"""Who may call the REST API.

Session users (the browser) are checked by role only. OAuth2 bearer tokens must in
addition carry the "read" scope for safe methods and "write" for everything else,
so a read-only token handed to a dashboard script cannot change anything.
"""

from __future__ import annotations

from oauth2_provider.contrib.rest_framework import TokenHasReadWriteScope
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


# django-oauth-toolkit ships no types, so its base class is Any to mypy.
class TokenHasScopeForMethod(TokenHasReadWriteScope):  # type: ignore[misc]
    """Passes session requests through; checks read/write scope for OAuth2 tokens.
    Subclasses TokenHasReadWriteScope so drf-spectacular documents the scopes."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not hasattr(request.auth, "scope"):
            return True  # not an OAuth2 token: IsAuthenticated decides
        return bool(super().has_permission(request, view))


class IsOperator(BasePermission):
    """Operators are staff users."""

    message = "Only operators can do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
