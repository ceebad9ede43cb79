"""Metering lag: how far analytics is behind the gateways, read from Redis alone.

For each metering stream (every partition, and the legacy per-request stream that a
rolling upgrade may still feed) this reads its length, the consumer group's pending
list and last-delivered id, and from those the age of the oldest entry not yet
acknowledged:

- if the group has pending entries (delivered, not acknowledged), the oldest of them:
  pending entries are always older than undelivered ones;
- otherwise the first entry after the group's last-delivered id, not yet delivered;
- otherwise nothing is waiting: age 0.

An entry id is "<ms>-<seq>" where ms is when Redis added it, so the age is measured
on Redis's clock at write time against this process's clock now (a skew of a second
or two is within what the threshold is for). Only reads, no writes: it is safe to
run from a page, a metrics scrape or a periodic task, and on a Redis Cluster (each
command touches one stream key).

The dead-letter stream's length is read too: malformed batches that the consumer set
aside (it never blocks a partition on them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from redis.client import NEVER_DECODE

# Where the consumer puts batches it cannot read (bad encoding, unknown version, impossible values).
from analytics.ingest.consumer import DEAD_LETTER_STREAM
from gateway.contract import METERING_GROUP, METERING_STREAM, metering_stream

LEGACY = "legacy"


@dataclass(frozen=True)
class StreamLag:
    stream: str
    partition: str  # "0".."P-1", or "legacy" for contract.METERING_STREAM
    length: int  # XLEN: entries still in the stream, acknowledged or not (until trimmed)
    pending: int  # delivered to a consumer, not yet acknowledged
    oldest_unacked_ms: int  # Redis time of the oldest unacknowledged entry; 0 when none
    age_s: float  # now minus that, 0 when nothing waits


@dataclass(frozen=True)
class MeteringLag:
    measured_at_ms: int
    streams: tuple[StreamLag, ...] = field(default_factory=tuple)
    dead_letters: int = 0

    @property
    def worst_age_s(self) -> float:
        return max((s.age_s for s in self.streams), default=0.0)

    @property
    def worst(self) -> StreamLag | None:
        """The stream that is furthest behind, or None when nothing waits anywhere."""
        behind = [s for s in self.streams if s.age_s > 0]
        return max(behind, key=lambda s: s.age_s) if behind else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeteringLag:
        return cls(
            measured_at_ms=int(data["measured_at_ms"]),
            streams=tuple(StreamLag(**s) for s in data.get("streams", ())),
            dead_letters=int(data.get("dead_letters", 0)),
        )


def metering_streams(partitions: int) -> list[tuple[str, str]]:
    """(partition label, stream key) for every stream the consumers read."""
    return [(str(p), metering_stream(p)) for p in range(partitions)] + [(LEGACY, METERING_STREAM)]


def _ms(stream_id: str | bytes) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(text.partition("-")[0])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _group(reply: Any) -> dict[str, Any] | None:
    """Our group's XINFO GROUPS entry; None when the stream or the group does not exist yet."""
    if isinstance(reply, Exception) or not reply:
        return None
    for group in reply:
        info = {_text(k): v for k, v in group.items()}
        if _text(info.get("name", "")) == METERING_GROUP:
            return info
    return None


def measure(client: redis.Redis, *, partitions: int, now_ms: int | None = None) -> MeteringLag:
    """Two pipelined round trips, whatever the number of partitions. Raises redis.RedisError
    when Redis cannot be reached; a missing stream or group is simply "nothing waiting"."""
    streams = metering_streams(partitions)
    pipe = client.pipeline(transaction=False)
    for _, key in streams:
        pipe.xlen(key)
        pipe.xinfo_groups(key)
        pipe.xpending(key, METERING_GROUP)
    pipe.xlen(DEAD_LETTER_STREAM)
    replies = pipe.execute(raise_on_error=False)
    _raise_connection_errors(replies)

    # Second round: where nothing is pending, the oldest waiting entry is the first undelivered one.
    rows: list[tuple[str, str, int, int, int]] = []  # partition, stream, length, pending, oldest pending ms
    undelivered: list[tuple[int, str, str]] = []  # row index, stream, exclusive start
    for index, (label, key) in enumerate(streams):
        length_reply, groups_reply, pending_reply = replies[3 * index : 3 * index + 3]
        length = 0 if isinstance(length_reply, Exception) else int(length_reply)
        group = _group(groups_reply)
        pending = 0
        oldest = 0
        if isinstance(pending_reply, dict) and pending_reply.get("pending"):
            pending = int(pending_reply["pending"])
            oldest = _ms(pending_reply["min"])
        rows.append((label, key, length, pending, oldest))
        if not pending and length:
            # No group yet: the consumer will create it from id 0, so every entry is waiting.
            start = "-" if group is None else "(" + _text(group["last-delivered-id"])
            undelivered.append((index, key, start))
    dead_reply = replies[-1]
    dead_letters = 0 if isinstance(dead_reply, Exception) else int(dead_reply)

    if undelivered:
        pipe = client.pipeline(transaction=False)
        for _, key, start in undelivered:
            # Raw bytes: the entry's body is a MessagePack batch, which a decoding client
            # (analytics' default) would fail to read as text. Only its id is used.
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "XRANGE", key, start, "+", "COUNT", 1, **{NEVER_DECODE: True}
            )
        firsts = pipe.execute(raise_on_error=False)
        _raise_connection_errors(firsts)
        for (index, _, _), first in zip(undelivered, firsts, strict=True):
            if first and not isinstance(first, Exception):
                label, key, length, pending, _ = rows[index]
                rows[index] = (label, key, length, pending, _ms(first[0][0]))

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return MeteringLag(
        measured_at_ms=now_ms,
        streams=tuple(
            StreamLag(stream=key, partition=label, length=length, pending=pending, oldest_unacked_ms=oldest,
                      age_s=max(0, now_ms - oldest) / 1000 if oldest else 0.0)
            for label, key, length, pending, oldest in rows
        ),
        dead_letters=dead_letters,
    )


def _raise_connection_errors(replies: Sequence[Any]) -> None:
    # A "no such key" or NOGROUP reply is an answer; a dropped connection is not.
    for reply in replies:
        if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
            raise reply
