"""``Authorization: Bearer twc_…``: a named automation token, accepted by the configuration
endpoints alone (they list this class; no default authentication does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from portal.declarative.services import AUTOMATION_TOKEN_PREFIX, automation_token_authenticate

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request

    from portal.accounts.models import User
    from portal.declarative.models import AutomationToken


class AutomationTokenAuthentication(BaseAuthentication):
    """request.user is the token's creator (whose operator rights it borrows, while they last);
    request.auth is the token, which the views pass on so the audit log names it."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, AutomationToken] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].decode("latin-1").lower() != self.keyword.lower():
            return None
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not secret.startswith(AUTOMATION_TOKEN_PREFIX):
            return None  # another bearer token (OAuth2): not ours to judge
        token = automation_token_authenticate(secret)
        if token is None or token.created_by is None:
            raise AuthenticationFailed("Unknown or revoked automation token.")
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class AutomationTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular
    """Describes the token in the OpenAPI schema (drf-spectacular finds it by subclassing)."""

    target_class = AutomationTokenAuthentication
    name = "automationToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A named automation token (twc_...), for /api/v1/config/* only.",
        }
