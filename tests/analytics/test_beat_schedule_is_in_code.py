"""Beat's analytics schedule is defined in code and names real, time-limited tasks."""

from __future__ import annotations

from portal.celery import app


def test_every_analytics_job_is_scheduled_and_registered():
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    expected = {
        "analytics.metering_consume",  # aggregation
        "analytics.reconcile",  # gateway counters against rollups
        "analytics.billing_close_due",  # closing the billing period
        "analytics.quota_alerts_dispatch",  # threshold notifications
        "analytics.rollups_prune",  # retention
        "analytics.invoices_refresh_dispatch",  # live drafts
        "analytics.metering_lag_check",  # lag and dead-letter alerts, the metrics endpoint
    }
    scheduled = {entry["task"] for entry in schedule.values()}
    assert expected <= scheduled
    for name in expected:
        task = app.tasks[name]
        assert task.time_limit
        assert task.soft_time_limit
        assert task.soft_time_limit < task.time_limit
        assert task.acks_late
    consume = next(e for e in schedule.values() if e["task"] == "analytics.metering_consume")
    assert consume["schedule"] <= 5
