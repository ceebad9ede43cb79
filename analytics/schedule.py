"""Analytics' periodic work for Celery beat, added to the portal's Celery app by
AnalyticsConfig.ready() (analytics/apps.py). Task names are stable: queued
messages and any settings override refer to them.
``expires`` drops a run that waited in the queue past its usefulness, so a busy
or stopped worker does not come back to a pile of identical tasks.
"""

from __future__ import annotations

from celery.schedules import crontab

from analytics.conf import METERING_PARTITIONS


def metering_entries(partitions: int) -> dict[str, dict[str, object]]:
    """One consume entry per partition, on the metering queue. A run whose partition is
    already owned (its lease held by a run still draining) returns at once."""
    return {
        f"analytics-metering-consume-p{p}": {
            "task": "analytics.metering_consume", "schedule": 2.0, "kwargs": {"partition": p},
            "options": {"expires": 10, "queue": "metering"},
        }
        for p in range(partitions)
    }


BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Aggregation: every partition every 2 s (each run drains its partition until empty).
    **metering_entries(METERING_PARTITIONS),
    # The batch ledger's daily partitions, created days ahead (PostgreSQL).
    "analytics-processed-batches-prepare": {
        "task": "analytics.processed_batches_prepare", "schedule": crontab(minute=20), "options": {"expires": 3000},
    },
    # Gateway quota counters against the rollups, for today and yesterday.
    "analytics-reconcile": {"task": "analytics.reconcile", "schedule": 300.0, "options": {"expires": 240}},
    # Close every month that ended more than ANALYTICS_CLOSE_GRACE_S ago (idempotent).
    "analytics-billing-close": {
        "task": "analytics.billing_close_due", "schedule": crontab(minute=15), "options": {"expires": 3000},
    },
    # The current month's draft invoices, recomputed from the rollups.
    "analytics-invoices-refresh": {
        "task": "analytics.invoices_refresh_dispatch", "schedule": 300.0, "options": {"expires": 240},
    },
    # Developers' quota threshold emails.
    "analytics-quota-alerts": {
        "task": "analytics.quota_alerts_dispatch", "schedule": 60.0, "options": {"expires": 50},
    },
    # Metering lag and dead letters: the metrics endpoint's figures, and the operators' alerts.
    "analytics-metering-lag-check": {
        "task": "analytics.metering_lag_check", "schedule": 15.0, "options": {"expires": 10},
    },
    # Retention of minute and hour rollups and of old batch ids (whole ledger partitions).
    "analytics-rollups-prune": {
        "task": "analytics.rollups_prune", "schedule": crontab(minute=40), "options": {"expires": 3000},
    },
}
