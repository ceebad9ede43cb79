"""Analytics tunables, read from the environment once at import; a bad value fails loudly.
Also the one Redis connection analytics opens (the metering stream and the gateway's counters).
"""

from __future__ import annotations

import redis
from django.conf import settings

from gateway.contract import DEFAULT_METERING_PARTITIONS
from portal.env import env, env_int


def _positive(name: str, default: int) -> int:
    return env_int(name, default, minimum=1)


# Stream entries read per XREADGROUP / XAUTOCLAIM call, i.e. per database transaction.
BATCH_SIZE = _positive("ANALYTICS_BATCH_SIZE", 10000)
# How long XREADGROUP blocks waiting for new entries.
BLOCK_MS = _positive("ANALYTICS_BLOCK_MS", 500)
# A pending entry idle this long belongs to a consumer presumed dead and is claimed back.
# Longer than a batch ever takes, so a live consumer's batch is rarely taken over
# (and when it is, the dedupe ledger still counts each event once).
CLAIM_IDLE_MS = _positive("ANALYTICS_CLAIM_IDLE_MS", 60_000)
# One consume task runs at most this long, then yields the worker to other tasks.
CONSUME_BUDGET_S = _positive("ANALYTICS_CONSUME_BUDGET_S", 20)
# Event ids are remembered this many days; older events are refused (their
# duplicates could no longer be recognised).
DEDUPE_DAYS = _positive("ANALYTICS_DEDUPE_DAYS", 35)
MINUTE_RETENTION_HOURS = _positive("ANALYTICS_MINUTE_RETENTION_HOURS", 48)
HOUR_RETENTION_DAYS = _positive("ANALYTICS_HOUR_RETENTION_DAYS", 90)
# Committed entries stay in the stream this long (for inspection and replay) before trimming.
STREAM_KEEP_S = _positive("ANALYTICS_STREAM_KEEP_S", 3600)
# A month is closed this long after it ends, so in-flight events still land on its invoice.
CLOSE_GRACE_S = _positive("ANALYTICS_CLOSE_GRACE_S", 3600)


def redis_client() -> redis.Redis:
    """The gateway's Redis (settings.REDIS_URL), read by ingest (the metering stream) and
    reports (the quota counters). A 30 s read timeout: XREADGROUP blocks up to BLOCK_MS."""
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=30, socket_connect_timeout=5)


# --- Monitoring (analytics/monitoring) ------------------------------------------------------
# Same setting, same rule as the consumer's: how many metering partitions there are to watch.
METERING_PARTITIONS = env_int("METERING_PARTITIONS", DEFAULT_METERING_PARTITIONS, minimum=1, maximum=1024)
# Oldest unacknowledged metering entry older than this, on any partition: operators are
# emailed once and the dashboard shows a banner until it is back under.
METERING_LAG_ALERT_S = _positive("ANALYTICS_METERING_LAG_ALERT_S", 60)
# Bearer token that lets a Prometheus scraper read /analytics/metrics without a session;
# empty: only signed-in operators may read it.
METRICS_TOKEN = env("ANALYTICS_METRICS_TOKEN") or ""
