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
    consume = [e for e in schedule.values() if e["task"] == "analytics.metering_consume"]
    assert all(e["schedule"] <= 5 for e in consume)


def test_each_partition_is_consumed_on_its_own_queue_never_the_outbox_one(redis_client):
    from analytics import conf
    from analytics.ingest.tasks import metering_consume
    from portal.gateway_state.tasks import publish_outbox_flush

    app.loader.import_default_modules()
    consume = [e for e in app.conf.beat_schedule.values() if e["task"] == "analytics.metering_consume"]
    assert sorted(e["kwargs"]["partition"] for e in consume) == list(range(conf.METERING_PARTITIONS))
    assert all(e["options"]["queue"] == "metering" for e in consume)
    assert "analytics.processed_batches_prepare" in {e["task"] for e in app.conf.beat_schedule.values()}
    # What the broker (the suite's Redis) receives: consumers on "metering", the outbox flush elsewhere.
    metering_consume.apply_async(kwargs={"partition": 0})
    publish_outbox_flush.delay()
    assert redis_client.llen("metering") == 1
    assert redis_client.llen("celery") == 1
