"""Quota alert tasks: one fan-out per minute, one check per application.

Names are the ones beat uses (analytics/schedule.py). A check is safe to run
twice: each email has a unique sent-row.
"""

from __future__ import annotations

from celery import shared_task

from analytics.quotas import selectors, services


@shared_task(name="analytics.quota_alerts_dispatch", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def quota_alerts_dispatch() -> int:
    ids = selectors.quota_alert_application_ids()
    for application_id in ids:
        quota_alert_check.delay(application_id)
    return len(ids)


@shared_task(name="analytics.quota_alert_check", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def quota_alert_check(application_id: int) -> int:
    return len(services.quota_alert_check(application_id=application_id))
