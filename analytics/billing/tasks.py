"""Billing's Celery tasks: close due months, keep the current drafts live.

Each takes plain ids (or an ISO month), calls one service or fans out one task per
organization, and is safe to run twice. Names are the ones beat uses (analytics/schedule.py).
"""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.utils import timezone

from analytics.billing import services
from analytics.billing.rules import month_start
from portal.plans.selectors import subscriber_organization_ids


@shared_task(name="analytics.billing_close_due", acks_late=True, ignore_result=True, soft_time_limit=240,
             time_limit=300)
def billing_close_due() -> list[str]:
    return [m.isoformat() for m in services.billing_close_due()]


@shared_task(name="analytics.billing_period_close", acks_late=True, ignore_result=True, soft_time_limit=240,
             time_limit=300)
def billing_period_close(month_iso: str) -> int:
    return len(services.billing_period_close(month=date.fromisoformat(month_iso)))


@shared_task(name="analytics.invoice_refresh", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def invoice_refresh(organization_id: int, month_iso: str) -> int:
    return len(services.invoice_refresh(organization_id=organization_id, month=date.fromisoformat(month_iso)))


@shared_task(name="analytics.invoices_refresh_dispatch", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def invoices_refresh_dispatch() -> int:
    """Keep every organization's current draft (and so the reconciliation view's
    invoice figures) live even when nobody opens the invoices page."""
    month = month_start(timezone.now()).isoformat()
    org_ids = subscriber_organization_ids()
    for org_id in org_ids:
        invoice_refresh.delay(org_id, month)
    return len(org_ids)
