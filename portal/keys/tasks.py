"""Thin, retry-safe tasks that keep the gateway's copy of the state current."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from portal.keys import publish, services

# Keys whose expiry or grace ended within this window are republished; the window
# overlaps the beat interval so a late or skipped beat does not miss any.
LAPSE_WINDOW = dt.timedelta(minutes=5)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5, time_limit=120, soft_time_limit=100)
def publish_outbox_flush() -> int:
    return publish.outbox_flush()


@shared_task(time_limit=120, soft_time_limit=100)
def keys_republish_lapsed() -> int:
    now = timezone.now()
    return services.api_keys_republish_lapsed(since=now - LAPSE_WINDOW, until=now)
