"""What makes the gateway's copy change: the domain's change signals and OAuth token saves.

Each receiver only writes outbox rows (publish.py's ``*_later``); they run inside the
sender's transaction, so the rows commit or roll back with the change.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.models import get_access_token_model

from portal.core import changes
from portal.gateway_state import publish

AccessToken = get_access_token_model()
# Signal receivers keep Any for **kwargs (Django may add arguments); instance is an
# oauth2_provider AccessToken, a library that ships no types.


@receiver(changes.route_changed, dispatch_uid="tollway_publish_routes")
def route_changed(sender: object, refs: list[int], **kwargs: Any) -> None:
    publish.publish_route_later(refs)


@receiver(changes.application_changed, dispatch_uid="tollway_publish_applications")
def application_changed(sender: object, refs: list[int], **kwargs: Any) -> None:
    publish.publish_application_later(refs)


@receiver(changes.key_changed, dispatch_uid="tollway_publish_keys")
def key_changed(sender: object, refs: list[str], **kwargs: Any) -> None:
    publish.publish_key_later(refs)


@receiver(changes.plan_changed, dispatch_uid="tollway_publish_plans")
def plan_changed(sender: object, refs: list[int], **kwargs: Any) -> None:
    publish.publish_plan_later(refs)


@receiver(post_save, sender=AccessToken, dispatch_uid="tollway_publish_access_token")
def access_token_saved(sender: object, instance: Any, **kwargs: Any) -> None:
    if instance.application_id and hasattr(instance.application, "tollway_application"):
        publish.publish_token_later([instance.pk])


@receiver(post_delete, sender=AccessToken, dispatch_uid="tollway_unpublish_access_token")
def access_token_deleted(sender: object, instance: Any, **kwargs: Any) -> None:
    # Revocation deletes the row; the outbox carries the checksum so the gateway's
    # copy is removed even if Redis is down right now.
    if instance.token_checksum:
        publish.unpublish_token_later([instance.token_checksum])
