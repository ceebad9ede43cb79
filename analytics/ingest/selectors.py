"""Ingest reads: how far behind the metering consumers are.

``metering_lag`` is what gauges, dashboards and alerts read: per partition stream
(and the legacy stream), its length and the age of its oldest unacknowledged entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from analytics import conf
from analytics.ingest.consumer import DEAD_LETTER_STREAM
from gateway.contract import METERING_GROUP, METERING_STREAM, metering_stream


@dataclass(frozen=True)
class PartitionLag:
    partition: int | None  # None: the legacy per-request stream
    stream: str
    length: int  # entries in the stream (acknowledged ones not trimmed yet included)
    pending: int  # delivered to a consumer, not acknowledged
    oldest_unacked_age_s: float | None  # None when every entry is acknowledged


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _age_s(stream_id: Any, now_ms: int) -> float:
    return max(0.0, (now_ms - int(_text(stream_id).partition("-")[0])) / 1000)


def stream_lag(client: redis.Redis, stream: str, partition: int | None, *, now_ms: int | None = None) -> PartitionLag:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    length = int(client.xlen(stream))
    if not length:
        return PartitionLag(partition, stream, 0, 0, None)
    try:
        groups = {_text(g["name"]): g for g in client.xinfo_groups(stream)}
    except redis.ResponseError:
        groups = {}
    group = groups.get(METERING_GROUP)
    if group is None:  # no consumer has read it yet: every entry is unacknowledged
        first = client.xrange(stream, count=1)
        return PartitionLag(partition, stream, length, 0, _age_s(first[0][0], now_ms) if first else None)
    pending = client.xpending(stream, METERING_GROUP)
    if pending["pending"]:
        # Pending entries were delivered before any undelivered one: the oldest is among them.
        return PartitionLag(partition, stream, length, int(pending["pending"]), _age_s(pending["min"], now_ms))
    after = client.xrange(stream, min="(" + _text(group["last-delivered-id"]), count=1)
    return PartitionLag(partition, stream, length, 0, _age_s(after[0][0], now_ms) if after else None)


def metering_lag(*, client: redis.Redis | None = None, now_ms: int | None = None) -> list[PartitionLag]:
    """Every partition's lag, then the legacy stream's."""
    client = client or conf.metering_redis_client()
    out = [stream_lag(client, metering_stream(p), p, now_ms=now_ms) for p in range(conf.METERING_PARTITIONS)]
    out.append(stream_lag(client, METERING_STREAM, None, now_ms=now_ms))
    return out


def dead_letter_count(*, client: redis.Redis | None = None) -> int:
    """Entries in the dead-letter stream (capped at ANALYTICS_DEAD_LETTER_MAXLEN)."""
    client = client or conf.metering_redis_client()
    return int(client.xlen(DEAD_LETTER_STREAM))
