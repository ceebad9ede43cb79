"""/analytics/metrics: Prometheus gauges of the metering lag per partition, the dead letters
and the alerts, as the periodic check last measured them. Operators, or a scraper with the
metrics token; nobody else."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from analytics import conf
from analytics.ingest.lag import DEAD_LETTER_STREAM
from analytics.monitoring import tasks
from gateway.contract import METERING_BATCH_FIELD, metering_stream

URL = "/analytics/metrics"


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


@pytest.fixture
def measured(metering_redis, redis_client):
    now = int(time.time() * 1000)
    redis_client.xadd(metering_stream(2), {METERING_BATCH_FIELD: b"\x93"}, id=f"{now - 90_000}-0")
    redis_client.xadd(metering_stream(2), {METERING_BATCH_FIELD: b"\x93"}, id=f"{now - 30_000}-0")
    redis_client.xadd(DEAD_LETTER_STREAM, {"b": b"\xc1", "error": "bad encoding"})
    tasks.metering_lag_check()  # what beat runs every 15 s


@pytest.mark.django_db
def test_it_shows_operators_the_lag_per_partition(measured, olivia, client):
    client.force_login(olivia)

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = _samples(response.content)
    assert samples[("tollway_analytics_metering_stream_length", (("partition", "2"),))] == 2
    assert samples[("tollway_analytics_metering_stream_length", (("partition", "0"),))] == 0
    assert samples[("tollway_analytics_metering_stream_length", (("partition", "legacy"),))] == 0
    assert 90 <= samples[("tollway_analytics_metering_oldest_unacked_age_seconds", (("partition", "2"),))] < 120
    assert samples[("tollway_analytics_metering_oldest_unacked_age_seconds", (("partition", "1"),))] == 0
    assert 90 <= samples[("tollway_analytics_metering_lag_seconds", ())] < 120
    assert samples[("tollway_analytics_metering_dead_letters", ())] == 1
    assert samples[("tollway_analytics_alert_raised", (("alert", "metering_lag"),))] == 1
    assert samples[("tollway_analytics_alert_raised", (("alert", "metering_dead_letters"),))] == 1
    assert samples[("tollway_analytics_alert_incidents_total", (("alert", "metering_lag"),))] == 1
    assert abs(samples[("tollway_analytics_metering_lag_measured_timestamp_seconds", ())] - time.time()) < 60
    partitions = {labels for name, labels in samples if name == "tollway_analytics_metering_stream_length"}
    assert len(partitions) == conf.METERING_PARTITIONS + 1


@pytest.mark.django_db
def test_a_scraper_with_the_token_may_read_it(measured, monkeypatch):
    monkeypatch.setattr(conf, "METRICS_TOKEN", "scrape-token-0123456789")
    scraper = Client()

    assert scraper.get(URL, HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 200
    refused = scraper.get(URL, HTTP_AUTHORIZATION="Bearer wrong")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "not_authenticated"


@pytest.mark.django_db
def test_it_is_closed_to_anonymous_callers_and_developers(measured, alice, client):
    anonymous = client.get(URL)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")

    client.force_login(alice)
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_an_empty_token_setting_lets_no_scraper_in(measured, monkeypatch):
    monkeypatch.setattr(conf, "METRICS_TOKEN", "")

    assert Client().get(URL, HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_without_a_recent_measurement_it_shows_no_lag_figures(redis_client, olivia, client):
    client.force_login(olivia)

    samples = _samples(client.get(URL).content)

    assert not [name for name, _ in samples if name.startswith("tollway_analytics_metering_")]
