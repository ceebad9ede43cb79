"""Monitoring reads: what the operators' dashboard and the metrics endpoint show."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from django.core.cache import cache

from analytics import conf
from analytics.ingest.selectors import MeteringLag, metering_lag
from analytics.models import OperatorAlert
from analytics.monitoring.services import LAG_SNAPSHOT_KEY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeteringStatus:
    """The dashboard's metering panel: measured live (None when Redis did not answer)."""

    lag: MeteringLag | None
    threshold_s: int
    alerts: list[OperatorAlert] = field(default_factory=list)
    error: str = ""


def operator_alerts() -> list[OperatorAlert]:
    """Every alert row, by name (an alert never checked has no row yet)."""
    return list(OperatorAlert.objects.order_by("name"))


def operator_alerts_raised() -> list[OperatorAlert]:
    """The open incidents, oldest first: the dashboard's banner."""
    return list(OperatorAlert.objects.filter(raised_at__isnull=False).order_by("raised_at", "name"))


def metering_lag_snapshot() -> MeteringLag | None:
    """The periodic check's latest measurement, or None if there was none recently."""
    data = cache.get(LAG_SNAPSHOT_KEY)
    return MeteringLag.from_dict(data) if isinstance(data, dict) else None


def metering_status(*, client: redis.Redis | None = None) -> MeteringStatus:
    """Live lag for the dashboard: a page must render even when Redis is down."""
    alerts = operator_alerts_raised()
    try:
        lag = metering_lag(client=client)
    except redis.RedisError as exc:
        log.warning("metering lag: Redis did not answer: %s", exc)
        return MeteringStatus(lag=None, threshold_s=conf.METERING_LAG_ALERT_S, alerts=alerts,
                              error=f"Redis did not answer ({type(exc).__name__}).")
    return MeteringStatus(lag=lag, threshold_s=conf.METERING_LAG_ALERT_S, alerts=alerts)
