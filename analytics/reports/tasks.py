"""Reports' Celery task: snapshot the gateway's quota counters for reconciliation.

The name is the one beat uses (analytics/schedule.py). Safe to run twice: the
snapshot is an upsert per subscription and day.
"""

from __future__ import annotations

from celery import shared_task

from analytics.reports import reconcile


@shared_task(name="analytics.reconcile", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180)
def reconcile_today() -> int:
    return reconcile.reconcile_recent_days()
