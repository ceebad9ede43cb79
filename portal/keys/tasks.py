"""Thin, retry-safe tasks for keys (the outbox flush lives in portal.gateway_state.tasks)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from portal.keys import services

# Keys whose expiry or grace ended within this window are republished; the window
# overlaps the beat interval so a late or skipped beat does not miss any.
LAPSE_WINDOW = dt.timedelta(minutes=5)


@shared_task(time_limit=120, soft_time_limit=100)
def keys_republish_lapsed() -> int:
    now = timezone.now()
    return services.api_keys_republish_lapsed(since=now - LAPSE_WINDOW, until=now)
