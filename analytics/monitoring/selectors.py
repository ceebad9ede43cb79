"""Monitoring reads: what the operators' dashboard and the metrics endpoint show."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import redis
from django.core.cache import cache

from analytics import conf
from analytics.ingest.selectors import MeteringLag, metering_lag
from analytics.models import OperatorAlert
from analytics.monitoring.services import LAG_SNAPSHOT_KEY
from gateway import contract

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


@dataclass(frozen=True)
class TargetHealthRow:
    node: str
    route: str  # "api/version"
    target: str
    healthy: bool
    reason: str


@dataclass(frozen=True)
class UpstreamHealthStatus:
    rows: list[TargetHealthRow]
    error: str = ""

    @property
    def unhealthy(self) -> int:
        return sum(1 for r in self.rows if not r.healthy)


def upstream_health(*, client: redis.Redis | None = None) -> UpstreamHealthStatus:
    """Each live gateway node's view of the upstream targets of versions with an
    upstream_health policy (gateway/upstream_health.py publishes it with an expiry, so
    a node that died drops out). Unhealthy first. A page must render when Redis is down."""
    own = client is None
    client = client or conf.redis_client()
    rows: list[TargetHealthRow] = []
    try:
        nodes = sorted(str(n) for n in client.zrange(contract.FLEET_NODES_KEY, 0, -1))
        for node in nodes:
            for name, raw in client.hgetall(contract.health_key(node)).items():
                route, _, target = str(name).partition(" ")
                try:
                    value = json.loads(raw)
                    rows.append(TargetHealthRow(node, route, target, bool(value["healthy"]), str(value["reason"])))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("upstream health of node %s: ignoring malformed field %r: %s", node, name, exc)
    except redis.RedisError as exc:
        log.warning("upstream health: Redis did not answer: %s", exc)
        return UpstreamHealthStatus(rows=[], error=f"Redis did not answer ({type(exc).__name__}).")
    finally:
        if own:
            client.close()
    rows.sort(key=lambda r: (r.healthy, r.route, r.target, r.node))
    return UpstreamHealthStatus(rows=rows)
