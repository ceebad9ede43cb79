"""Publish OAuth2 access tokens to the gateway as django-oauth-toolkit issues and revokes them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.models import get_access_token_model

from portal.keys import publish

AccessToken = get_access_token_model()


@receiver(post_save, sender=AccessToken, dispatch_uid="tollway_publish_access_token")
def access_token_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.application_id and hasattr(instance.application, "tollway_application"):
        publish.publish_token_later([instance.pk])


@receiver(post_delete, sender=AccessToken, dispatch_uid="tollway_unpublish_access_token")
def access_token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Revocation deletes the row; the outbox carries the checksum so the gateway's
    # copy is removed even if Redis is down right now.
    if instance.token_checksum:
        publish.unpublish_token_later([instance.token_checksum])
