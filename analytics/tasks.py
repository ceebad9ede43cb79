"""Thin Celery tasks: each calls one service and is safe to run twice.

Time limits sit above the work's own budget (CONSUME_BUDGET_S for the consumer)
so that a hung call is killed rather than holding a worker forever; the killed
batch's entries stay pending and are claimed back.
"""

from __future__ import annotations

import logging
from datetime import date

from celery import shared_task

from analytics import conf, consumer, reconcile, services
from analytics.models import QuotaAlert

log = logging.getLogger(__name__)


@shared_task(
    name="analytics.metering_consume",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=conf.CONSUME_BUDGET_S + 30,
    time_limit=conf.CONSUME_BUDGET_S + 60,
)
def metering_consume() -> int:
    report = consumer.consume()
    if report.batches:
        log.info(
            "metering: %d batches, %d events, %d counted, %d duplicates, %d claimed, %d trimmed",
            report.batches, report.received, report.counted, report.duplicates, report.claimed, report.trimmed,
        )
    return report.counted


@shared_task(name="analytics.reconcile", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180)
def reconcile_today() -> int:
    return reconcile.reconcile_recent_days()


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


@shared_task(name="analytics.quota_alerts_dispatch", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def quota_alerts_dispatch() -> int:
    ids = list(QuotaAlert.objects.values_list("application_id", flat=True))
    for application_id in ids:
        quota_alert_check.delay(application_id)
    return len(ids)


@shared_task(name="analytics.quota_alert_check", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def quota_alert_check(application_id: int) -> int:
    return len(services.quota_alert_check(application_id=application_id))


@shared_task(name="analytics.rollups_prune", acks_late=True, ignore_result=True, soft_time_limit=600,
             time_limit=900)
def rollups_prune() -> dict[str, int]:
    return services.rollups_prune()


@shared_task(name="analytics.invoices_refresh_dispatch", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def invoices_refresh_dispatch() -> int:
    """Keep every organization's current draft (and so the reconciliation view's
    invoice figures) live even when nobody opens the invoices page."""
    from django.utils import timezone

    from analytics.billing import month_start
    from portal.plans.models import Subscription

    month = month_start(timezone.now()).isoformat()
    org_ids = sorted(set(Subscription.objects.values_list("application__organization_id", flat=True)))
    for org_id in org_ids:
        invoice_refresh.delay(org_id, month)
    return len(org_ids)
