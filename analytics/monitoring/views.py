"""/analytics/metrics: analytics' Prometheus metrics, the gateway's /_tollway/metrics' counterpart.

The figures are the periodic check's latest measurement (analytics.metering_lag_check,
every few seconds), so every portal process answers a scrape with the same numbers,
and a scrape costs no Redis round trip. Readable by signed-in operators, or by a
scraper presenting ``Authorization: Bearer $ANALYTICS_METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics import conf
from analytics.ingest.selectors import MeteringLag
from analytics.models import OperatorAlert
from analytics.monitoring import selectors
from portal.accounts.selectors import is_operator


class MonitoringCollector(Collector):
    def __init__(self, lag: MeteringLag | None, alerts: list[OperatorAlert]) -> None:
        self.lag = lag
        self.alerts = alerts

    def collect(self) -> Iterator[Metric]:
        if self.lag is not None:
            lag = self.lag
            length = GaugeMetricFamily("tollway_analytics_metering_stream_length",
                                       "Entries in the metering stream, acknowledged or not until trimmed.",
                                       labels=["partition"])
            pending = GaugeMetricFamily("tollway_analytics_metering_pending_entries",
                                        "Entries delivered to a consumer and not yet acknowledged.",
                                        labels=["partition"])
            age = GaugeMetricFamily("tollway_analytics_metering_oldest_unacked_age_seconds",
                                    "Age of the oldest entry not yet acknowledged (0: nothing waits).",
                                    labels=["partition"])
            for s in lag.streams:
                length.add_metric([s.partition], s.length)
                pending.add_metric([s.partition], s.pending)
                age.add_metric([s.partition], s.age_s)
            yield length
            yield pending
            yield age
            yield GaugeMetricFamily("tollway_analytics_metering_lag_seconds",
                                    "The worst partition's oldest unacknowledged age.", value=lag.worst_age_s)
            yield GaugeMetricFamily("tollway_analytics_metering_dead_letters",
                                    "Malformed batches in the dead-letter stream.", value=lag.dead_letters)
            yield GaugeMetricFamily("tollway_analytics_metering_lag_measured_timestamp_seconds",
                                    "When these figures were measured (Unix time).",
                                    value=lag.measured_at_ms / 1000)
        raised = GaugeMetricFamily("tollway_analytics_alert_raised", "1 while the alert's incident is open.",
                                   labels=["alert"])
        incidents = CounterMetricFamily("tollway_analytics_alert_incidents", "Incidents opened for the alert.",
                                        labels=["alert"])
        for alert in self.alerts:
            raised.add_metric([alert.name], 1 if alert.raised_at else 0)
            incidents.add_metric([alert.name], alert.incidents)
        yield raised
        yield incidents


def _scraper_token_ok(request: HttpRequest) -> bool:
    token = conf.METRICS_TOKEN
    if not token:
        return False
    presented = request.headers.get("Authorization", "")
    return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not (_scraper_token_ok(request) or is_operator(request.user)):
        status = 403 if request.user.is_authenticated else 401
        response = JsonResponse(
            {"error": {"type": "not_allowed" if status == 403 else "not_authenticated",
                       "message": "Operators only, or a scraper with the metrics token."}},
            status=status,
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="tollway-analytics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(selectors.metering_lag_snapshot(), selectors.operator_alerts()))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
