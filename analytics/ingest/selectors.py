"""Ingest reads for other concerns: how far behind the metering consumers are."""

from __future__ import annotations

import redis

from analytics import conf
from analytics.ingest import lag
from analytics.ingest.consumer import DEAD_LETTER_STREAM
from analytics.ingest.lag import MeteringLag, StreamLag

__all__ = ["DEAD_LETTER_STREAM", "MeteringLag", "StreamLag", "dead_letter_count", "metering_lag"]


def metering_lag(*, client: redis.Redis | None = None, now_ms: int | None = None) -> MeteringLag:
    """Every partition's length and oldest unacknowledged age, and the dead letters, live
    from Redis. Raises redis.RedisError when Redis cannot be reached."""
    own = client is None
    client = client or conf.redis_client()
    try:
        return lag.measure(client, partitions=conf.METERING_PARTITIONS, now_ms=now_ms)
    finally:
        if own:
            client.close()


def dead_letter_count(*, client: redis.Redis | None = None) -> int:
    """Entries in the dead-letter stream (capped at ANALYTICS_DEAD_LETTER_MAXLEN)."""
    own = client is None
    client = client or conf.redis_client()
    try:
        return int(client.xlen(DEAD_LETTER_STREAM))
    finally:
        if own:
            client.close()
