"""OAuth2 access tokens (django-oauth-toolkit) as the gateway sees them."""

from __future__ import annotations

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from gateway import contract


def token_record_for(access_token_id: int) -> tuple[str, contract.TokenRecord, int] | None:
    """(token hash, record, seconds to live) for a token issued to a Tollway application's
    client, or None when the token is gone or belongs to no Tollway application."""
    token = (
        get_access_token_model()
        .objects.select_related("application__tollway_application")
        .filter(pk=access_token_id)
        .first()
    )
    if token is None or token.application is None:
        return None
    tollway_app = getattr(token.application, "tollway_application", None)
    if tollway_app is None:
        return None
    ttl = int((token.expires - timezone.now()).total_seconds())
    record = contract.TokenRecord(
        application_id=tollway_app.pk,
        client_id=token.application.client_id,
        scope=token.scope,
        expires_at=token.expires.isoformat(),
    )
    return token.token_checksum, record, ttl
