"""Analytics tunables, read from the environment once at import; a bad value fails loudly.
Also the one Redis connection analytics opens (the metering stream and the gateway's counters).
"""

from __future__ import annotations

import redis
from django.conf import settings

from gateway.contract import DEFAULT_METERING_PARTITIONS
from portal.env import env, env_int
from tollway.redis_url import parse_redis_url, sync_client


def _positive(name: str, default: int) -> int:
    return env_int(name, default, minimum=1)


# How many metering partitions the gateways write (part of the contract: every gateway and
# every analytics worker must agree). One consume task, one lease, one writer per partition.
METERING_PARTITIONS = env_int("METERING_PARTITIONS", DEFAULT_METERING_PARTITIONS, minimum=1, maximum=1024)
# Stream entries (gateway batches of up to GATEWAY_METERING_BATCH requests, 500 by default)
# read per XREADGROUP / XAUTOCLAIM call, i.e. per database transaction. Wide reads fold more
# requests into each rollup row, and rows are what ingest pays for (docs/performance.md:
# 100 -> 500 took one consumer from ~48,000 to ~87,000 events/s); a read holds its decoded
# requests in memory, about 0.4 KB each (~100 MB for 500 full batches).
BATCH_SIZE = _positive("ANALYTICS_BATCH_SIZE", 500)
# How long XREADGROUP blocks waiting for new entries.
BLOCK_MS = _positive("ANALYTICS_BLOCK_MS", 500)
# A partition's owner holds a lease in Redis this long and renews it before every commit;
# a dead owner's lease lapses after it and the next run takes the partition over.
LEASE_MS = _positive("ANALYTICS_LEASE_MS", 30_000)
# A pending entry idle this long belongs to a consumer presumed dead and is claimed back.
# At least the lease: by then the old owner has lost the partition (and if it still
# commits, the batch ledger counts each batch once).
CLAIM_IDLE_MS = _positive("ANALYTICS_CLAIM_IDLE_MS", 30_000)
# One consume task runs at most this long, then yields the worker to other tasks.
CONSUME_BUDGET_S = _positive("ANALYTICS_CONSUME_BUDGET_S", 20)
# Batch ids are remembered this many days (one table partition a day on PostgreSQL); a
# batch whose oldest request is older is refused (a duplicate could no longer be recognised).
DEDUPE_DAYS = _positive("ANALYTICS_DEDUPE_DAYS", 35)
MINUTE_RETENTION_HOURS = _positive("ANALYTICS_MINUTE_RETENTION_HOURS", 48)
HOUR_RETENTION_DAYS = _positive("ANALYTICS_HOUR_RETENTION_DAYS", 90)
# Committed entries stay in the stream this long (for inspection) before trimming; 0 trims
# everything acknowledged. Whatever is acknowledged and older goes: lag is what stays.
STREAM_KEEP_S = env_int("ANALYTICS_STREAM_KEEP_S", 60, minimum=0)
# Malformed batches kept in the dead-letter stream (approximately; oldest go first).
DEAD_LETTER_MAXLEN = _positive("ANALYTICS_DEAD_LETTER_MAXLEN", 10_000)
# A month is closed this long after it ends, so in-flight events still land on its invoice.
CLOSE_GRACE_S = _positive("ANALYTICS_CLOSE_GRACE_S", 3600)


def metering_redis_client() -> redis.Redis:
    """The same Redis without reply decoding: batches are MessagePack bytes, and a
    malformed one must reach the dead-letter stream byte for byte."""
    client: redis.Redis = sync_client(
        parse_redis_url(settings.REDIS_URL), decode_responses=False, socket_timeout=30, socket_connect_timeout=5
    )
    return client


def redis_client() -> redis.Redis:
    """The gateway's Redis (settings.REDIS_URL), read by ingest (the metering stream) and
    reports (the quota counters). A 30 s read timeout: XREADGROUP blocks up to BLOCK_MS.
    Any topology of REDIS_URL (tollway/redis_url.py). On a cluster each metering partition
    stream has its own hash tag, so it lives on one node: read one stream per command
    (a command naming streams of several slots is refused with CROSSSLOT)."""
    client: redis.Redis = sync_client(
        parse_redis_url(settings.REDIS_URL), decode_responses=True, socket_timeout=30, socket_connect_timeout=5
    )
    return client


# --- Monitoring (analytics/monitoring) ------------------------------------------------------
# Oldest unacknowledged metering entry older than this, on any partition: operators are
# emailed once and the dashboard shows a banner until it is back under.
METERING_LAG_ALERT_S = _positive("ANALYTICS_METERING_LAG_ALERT_S", 60)
# Bearer token that lets a Prometheus scraper read /analytics/metrics without a session;
# empty: only signed-in operators may read it.
METRICS_TOKEN = env("ANALYTICS_METRICS_TOKEN") or ""
