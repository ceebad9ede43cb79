"""Turns announced events (portal/core/changes.py: event_occurred) into outbox rows,
inside the announcing transaction."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from portal.core import changes
from portal.webhooks import services


@receiver(changes.event_occurred, dispatch_uid="tollway_webhook_events")
def event_occurred(sender: object, event_type: str, subject: object, details: dict[str, Any], **kwargs: Any) -> None:
    services.webhook_event_emit(event_type=event_type, subject=subject, **details)
