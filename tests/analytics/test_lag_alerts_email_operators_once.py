"""Metering lag over the threshold, or a dead-lettered batch, emails the operators once per
incident and shows a banner on their dashboard until it clears; then the alert re-arms."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from analytics import conf
from analytics.ingest.lag import DEAD_LETTER_STREAM
from analytics.models import OperatorAlert
from analytics.monitoring import services, tasks
from gateway.contract import METERING_BATCH_FIELD, METERING_GROUP, metering_stream


def _now_ms() -> int:
    return int(time.time() * 1000)


def _entry_aged(client, partition: int, age_s: float) -> str:
    return client.xadd(metering_stream(partition), {METERING_BATCH_FIELD: b"\x93..."},
                       id=f"{_now_ms() - int(age_s * 1000)}-0")


def _consume_everything(client, partition: int) -> None:
    stream = metering_stream(partition)
    client.xgroup_create(stream, METERING_GROUP, id="0", mkstream=True)
    entries = client.xreadgroup(METERING_GROUP, "test", {stream: ">"}, count=1000)[0][1]
    client.xack(stream, METERING_GROUP, *[sid for sid, _ in entries])


def _banner(client) -> str:
    page = client.get("/analytics/").content.decode()
    return page


@pytest.mark.django_db
def test_it_emails_once_per_incident_and_rearms(metering_redis, redis_client, olivia, alice, mailoutbox, client):
    client.force_login(olivia)
    _entry_aged(redis_client, 1, conf.METERING_LAG_ALERT_S + 60)

    services.metering_lag_check()
    services.metering_lag_check()  # still behind: no second email

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["olivia@tollway.test"]  # operators only, not alice
    assert "Metering lag" in mailoutbox[0].subject
    assert "partition 1" in mailoutbox[0].body
    assert 'id="alert-metering_lag"' in _banner(client)

    _consume_everything(redis_client, 1)
    services.metering_lag_check()

    assert 'id="alert-metering_lag"' not in _banner(client)
    assert len(mailoutbox) == 1

    _entry_aged(redis_client, 2, conf.METERING_LAG_ALERT_S + 5)  # a new incident
    services.metering_lag_check()

    assert len(mailoutbox) == 2
    alert = OperatorAlert.objects.get(name=services.METERING_LAG)
    assert alert.incidents == 2
    assert alert.raised_at is not None


@pytest.mark.django_db
def test_lag_under_the_threshold_raises_nothing(metering_redis, redis_client, olivia, mailoutbox, monkeypatch):
    monkeypatch.setattr(conf, "METERING_LAG_ALERT_S", 300)
    _entry_aged(redis_client, 0, 200)

    lag = services.metering_lag_check()

    assert lag.worst_age_s >= 200
    assert mailoutbox == []
    assert not OperatorAlert.objects.filter(raised_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_dead_lettered_batch_alerts_until_the_stream_is_cleared(metering_redis, redis_client, olivia, mailoutbox,
                                                                  client):
    client.force_login(olivia)
    redis_client.xadd(DEAD_LETTER_STREAM, {"b": b"\xc1", "error": "bad encoding"})

    services.metering_lag_check()
    services.metering_lag_check()

    assert [m.subject for m in mailoutbox] == ["[Tollway] Dead-lettered metering batches"]
    page = _banner(client)
    assert 'id="alert-metering_dead_letters"' in page
    assert '<strong id="metering-dead-letters">1</strong>' in page

    redis_client.delete(DEAD_LETTER_STREAM)  # an operator looked at it and cleared it
    services.metering_lag_check()

    assert 'id="alert-metering_dead_letters"' not in _banner(client)


@pytest.mark.django_db
def test_the_dashboard_shows_lag_per_partition(metering_redis, redis_client, olivia, client):
    client.force_login(olivia)
    _entry_aged(redis_client, 3, 42)

    page = _banner(client)

    assert 'id="metering-lag-table"' in page
    assert '<strong id="metering-lag-worst">4' in page  # 42 s and a little, on partition 3
    assert "on partition 3" in page


@pytest.mark.django_db
def test_the_dashboard_and_the_task_survive_redis_being_down(olivia, client):
    client.force_login(olivia)
    with override_settings(REDIS_URL="redis://127.0.0.1:9/0"):  # nothing listens on the discard port
        response = client.get("/analytics/")
        assert tasks.metering_lag_check() is None

    assert response.status_code == 200
    assert 'id="metering-lag-unknown"' in response.content.decode()


@pytest.mark.django_db
def test_an_incident_is_also_a_webhook_event_for_operators(metering_redis, redis_client, olivia, mailoutbox):
    from portal.webhooks import services as webhooks
    from portal.webhooks.models import WebhookDelivery, WebhookEvent

    endpoint = webhooks.webhook_endpoint_create(
        organization=None, url="http://127.0.0.1:9/ops", event_types=["metering.lag_exceeded"], actor=olivia
    ).endpoint
    _entry_aged(redis_client, 3, conf.METERING_LAG_ALERT_S + 30)

    services.metering_lag_check()
    services.metering_lag_check()  # the same incident: no second event

    [event] = WebhookEvent.objects.filter(event_type="metering.lag_exceeded")
    assert event.organization_id is None
    assert event.data["partition"] == "3"
    assert event.data["threshold_seconds"] == conf.METERING_LAG_ALERT_S
    assert event.data["lag_seconds"] >= conf.METERING_LAG_ALERT_S + 30
    assert list(WebhookDelivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == [endpoint.pk]
