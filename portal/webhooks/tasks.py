"""Thin, retry-safe webhook tasks: each takes ids and calls a service.

A delivery is claimed in the database before it is sent (services.webhook_delivery_attempt),
so the same id queued twice (after commit and by the beat scan) is still sent once.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from portal.webhooks import selectors, services

logger = logging.getLogger(__name__)

# Retries due within this many seconds are queued with a countdown; later ones wait for the
# beat scan (a long countdown would outlive the Redis broker's visibility timeout).
COUNTDOWN_MAX_S = 300


@shared_task(time_limit=120, soft_time_limit=100)
def webhook_deliver(delivery_id: int) -> str:
    try:
        delivery = services.webhook_delivery_attempt(delivery_id=int(delivery_id))
    except Exception:
        # Logged, not raised: the delivery stays claimed until its lease ends, then the beat scan retries it.
        logger.exception("webhook delivery %s failed unexpectedly", delivery_id)
        return "error"
    if delivery is None:
        return "not-due"
    if delivery.status == "pending" and delivery.next_attempt_at is not None:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if wait <= COUNTDOWN_MAX_S:
            webhook_deliver.apply_async((delivery.pk,), countdown=max(0.0, wait))
    return str(delivery.status)


@shared_task(time_limit=60, soft_time_limit=50)
def webhooks_dispatch_due() -> int:
    ids = selectors.delivery_ids_due()
    for delivery_id in ids:
        webhook_deliver.delay(delivery_id)
    return len(ids)


@shared_task(time_limit=120, soft_time_limit=100)
def webhooks_key_expiry_scan() -> int:
    return services.webhook_key_expiry_scan()


@shared_task(time_limit=300, soft_time_limit=240)
def webhooks_prune() -> int:
    return services.webhook_events_prune(before=timezone.now() - services.EVENT_RETENTION)
