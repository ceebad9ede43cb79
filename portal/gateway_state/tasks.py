"""Thin, retry-safe tasks that keep the gateway's copy of the state current."""

from __future__ import annotations

from celery import shared_task

from portal.gateway_state import publish


# Named by its old home (portal.keys.tasks): queued messages and beat schedules refer to it by name.
@shared_task(
    name="portal.keys.tasks.publish_outbox_flush",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    time_limit=120,
    soft_time_limit=100,
)
def publish_outbox_flush() -> int:
    return publish.outbox_flush()
