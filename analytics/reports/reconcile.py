"""Reconciliation of the gateway's quota counters against the rollups.

The gateway counts every admitted request in a per-subscription, per-UTC-day
counter (gateway/policies/rate_limit/limiter.lua: ``<prefix>:q:d:<epoch day>``,
kept until the end of the following day). This snapshots that counter for today
and yesterday beside the rollups' admitted count. A subscription whose plan has
no limit at all is not counted by the gateway; its gateway figure stays empty.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import redis

from analytics.conf import redis_client
from analytics.reports import services
from gateway import contract
from portal.plans.selectors import subscription_ids_not_pending
from tollway.redis_url import REDIS_ERRORS

log = logging.getLogger(__name__)


def gateway_day_counter_key(subscription_id: int, day: date) -> str:
    return contract.quota_day_counter_key(subscription_id, (day - date(1970, 1, 1)).days)


def read_gateway_day_counts(client: redis.Redis, subscription_ids: list[int], day: date) -> dict[int, int | None]:
    if not subscription_ids:
        return {}
    keys = [gateway_day_counter_key(s, day) for s in subscription_ids]
    # Each subscription's counters carry their own hash tag: on a cluster one MGET would
    # cross slots, so RedisCluster's per-slot form is used there.
    values = client.mget_nonatomic(keys) if isinstance(client, redis.RedisCluster) else client.mget(keys)
    return {s: (int(v) if v is not None else None) for s, v in zip(subscription_ids, values, strict=True)}


def reconcile_recent_days(*, client: redis.Redis | None = None, now: datetime | None = None) -> int:
    """Snapshot today and yesterday. If Redis is down the snapshot is skipped
    (logged) and the previous one stays; the view then shows it as stale."""
    now = now or datetime.now(tz=UTC)
    client = client or redis_client()
    sub_ids = subscription_ids_not_pending()
    rows = 0
    for day in (now.date() - timedelta(days=1), now.date()):
        try:
            counts = read_gateway_day_counts(client, sub_ids, day)
        except REDIS_ERRORS as exc:
            log.warning("reconcile: gateway counters unreadable (%s); keeping the last snapshot", exc)
            return rows
        rows += services.reconciliation_record(day=day, gateway_counts=counts)
    return rows
