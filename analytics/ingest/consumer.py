"""The metering consumer: partition streams in, committed rollups out.

The gateways write METERING_PARTITIONS streams (``contract.metering_stream(p)``), one
entry per batch of requests, partitioned by subscription. Each partition has one
owner at a time: the consumer holding its lease (``SET NX PX``, renewed before every
commit). So every rollup row that carries a subscription has a single writer, and
the traffic rollups carry the partition as a dimension for the same reason.
Partition 0's owner also drains the legacy per-request stream (gateways from before
batches, during a rolling upgrade), each entry as a one-request batch.

Order of operations per read, and why it is exactly-once:

1. XAUTOCLAIM entries idle longer than CLAIM_IDLE_MS (their consumer died; the lease
   had lapsed before that), then XREADGROUP new ones. Either way the entries sit in
   the group's pending list until acknowledged.
2. ``services.metering_batch_commit`` inserts the batch ids into the ledger and adds
   only the new batches to the rollups, in one transaction.
3. XACK, only after the commit. A crash before 3 leaves the entries pending: they
   are claimed back and re-run, and the ledger turns them into no-ops.
4. XTRIM MINID strictly below the oldest pending entry and the group's last-delivered
   id, so only acknowledged (hence committed) entries are ever removed.

A malformed entry (``contract.MeteringDecodeError``) is copied, raw bytes and error,
to DEAD_LETTER_STREAM and to a DeadLetter row, counted, and acknowledged with its
read: it never blocks its partition.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from analytics import conf
from analytics.ingest import services
from gateway.contract import (
    METERING_BATCH_FIELD,
    METERING_GROUP,
    METERING_STREAM,
    PREFIX,
    MeteringBatch,
    MeteringDecodeError,
    MeteringEvent,
    decode_batch,
    encode_batch,
    legacy_batch,
    metering_stream,
)

log = logging.getLogger(__name__)

# Malformed batches, raw bytes and error, for operators to inspect (capped at
# ANALYTICS_DEAD_LETTER_MAXLEN). Fields: stream, id, raw, error.
DEAD_LETTER_STREAM = f"{PREFIX}:metering:dead"


def consumer_name() -> str:
    """Stable for the life of a process, unique across processes: a dead
    process's pending entries are then recognisably idle."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- sources: a partition stream, or the legacy per-request stream -----------------------------

Parsed = tuple[list[MeteringBatch], list[services.DeadEntry], list[Any]]


@dataclass(frozen=True)
class Source:
    stream: str
    tag: str  # short name in dead letters: "m<p>" or "legacy"
    parse: Callable[[str, str, list[Any]], Parsed]


def _dead(tag: str, stream: str, stream_id: str, raw: bytes, error: str) -> services.DeadEntry:
    return services.DeadEntry(
        stream_id=f"{tag}/{stream_id}",
        fields={"stream": stream, "raw_b64": base64.b64encode(raw).decode(), "bytes": str(len(raw))},
        error=error,
    )


def parse_batch_entries(tag: str, stream: str, entries: list[Any]) -> Parsed:
    """(batches, dead letters, every stream id). An entry trimmed while pending comes
    back from XAUTOCLAIM as None or with no fields; it only needs acknowledging."""
    batches: list[MeteringBatch] = []
    dead: list[services.DeadEntry] = []
    ids: list[Any] = []
    for entry in entries:
        if not entry:
            continue
        stream_id, fields = entry
        ids.append(stream_id)
        if not fields:
            continue
        raw = fields.get(METERING_BATCH_FIELD.encode()) or fields.get(METERING_BATCH_FIELD)
        try:
            if not isinstance(raw, bytes):
                raise MeteringDecodeError(f"no bytes in field {METERING_BATCH_FIELD!r}")
            batches.append(decode_batch(raw))
        except MeteringDecodeError as exc:
            raw_bytes = raw if isinstance(raw, bytes) else json.dumps(_fields_text(fields)).encode()
            dead.append(_dead(tag, stream, _text(stream_id), raw_bytes, str(exc)))
    return batches, dead, ids


_EVENT_ID = re.compile(r"[0-9a-f]{32}")


def _fields_text(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def parse_legacy_entries(tag: str, stream: str, entries: list[Any]) -> Parsed:
    """Entries of the legacy stream, each a one-request batch deduplicated by its event id."""
    batches: list[MeteringBatch] = []
    dead: list[services.DeadEntry] = []
    ids: list[Any] = []
    for entry in entries:
        if not entry:
            continue
        stream_id, fields = entry
        ids.append(stream_id)
        if not fields:
            continue
        sid = _text(stream_id)
        try:
            text = _fields_text(fields)
        except UnicodeDecodeError as exc:
            dead.append(services.DeadEntry(f"{tag}/{sid}", {"raw": repr(fields)}, f"UnicodeDecodeError: {exc}"))
            continue
        try:
            event = MeteringEvent.from_fields(text)
            if not _EVENT_ID.fullmatch(event.id.replace("-", "").lower()):
                raise MeteringDecodeError(f"event id {event.id!r} is not a UUID")
            # Through the batch decoder, for the same checks of impossible values.
            batches.append(decode_batch(encode_batch(legacy_batch(sid, event))))
        except (KeyError, ValueError, TypeError) as exc:  # MeteringDecodeError is a ValueError
            dead.append(services.DeadEntry(f"{tag}/{sid}", text, f"{type(exc).__name__}: {exc}"))
    return batches, dead, ids


def sources(partition: int) -> list[Source]:
    out = [Source(metering_stream(partition), f"m{partition}", parse_batch_entries)]
    if partition == 0:
        out.append(Source(METERING_STREAM, "legacy", parse_legacy_entries))
    return out


def ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        # From id 0: entries the gateway wrote before analytics first ran count too.
        client.xgroup_create(stream, METERING_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# --- the lease: one owner per partition ------------------------------------------------------

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lease_key(partition: int) -> str:
    # Under the partition's hash tag, beside its stream.
    return f"{metering_stream(partition)}:lease"


class LeaseLost(Exception):
    """Another consumer owns the partition now; stop before committing anything more."""


class Lease:
    """``SET key token NX PX ms``; renewed and released only by the holder of the token."""

    def __init__(self, client: redis.Redis, partition: int, owner: str, ms: int | None = None) -> None:
        self.client = client
        self.key = lease_key(partition)
        self.token = f"{owner}:{uuid.uuid4().hex}"
        self.ms = ms or conf.LEASE_MS

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)


# --- one read: commit, dead letters, ack --------------------------------------------------------


@dataclass
class ConsumeReport:
    reads: int = 0  # database transactions
    batches: int = 0  # gateway batches read (duplicates included)
    received: int = 0  # requests read
    counted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    claimed: int = 0  # stream entries taken over from a dead consumer
    trimmed: int = 0
    partitions: list[int] = field(default_factory=list)  # owned during the run
    busy: list[int] = field(default_factory=list)  # another consumer held the lease

    def add(self, other: ConsumeReport) -> None:
        for name in ("reads", "batches", "received", "counted", "duplicates", "dead_letters", "claimed", "trimmed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.partitions += other.partitions
        self.busy += other.busy


def process_entries(
    client: redis.Redis, source: Source, entries: list[Any], *, consumer: str, partition: int,
    lease: Lease | None, report: ConsumeReport,
) -> None:
    batches, dead, ids = source.parse(source.tag, source.stream, entries)
    if not ids:
        return
    # Checked just before the commit: an owner that stalled past its lease stops here
    # (and if it slipped through anyway, the ledger still counts each batch once).
    if lease is not None and not lease.renew():
        raise LeaseLost(f"lease on partition {partition} lost")
    # The cyclic collector would otherwise run dozens of times over the read's hundreds
    # of thousands of fresh lists and tuples (none of them cyclic); it runs once after.
    gc.disable()
    try:
        result = services.metering_batch_commit(
            batches=batches, dead_letters=dead, consumer=consumer, partition=partition,
            last_stream_id=_text(ids[-1]),
        )
    finally:
        gc.enable()
    if dead:
        pipe = client.pipeline(transaction=False)
        for d in dead:
            log.warning("metering: dead letter %s: %s", d.stream_id, d.error)
            raw = base64.b64decode(d.fields["raw_b64"]) if "raw_b64" in d.fields else json.dumps(d.fields).encode()
            pipe.xadd(
                DEAD_LETTER_STREAM,
                {"stream": source.stream, "id": d.stream_id.partition("/")[2], "raw": raw, "error": d.error},
                maxlen=conf.DEAD_LETTER_MAXLEN, approximate=True,
            )
        pipe.execute()
    # Only now, after the commit: see the module docstring.
    client.xack(source.stream, METERING_GROUP, *ids)
    report.reads += 1
    report.batches += result.batches
    report.received += result.received
    report.counted += result.counted
    report.duplicates += result.duplicates
    report.dead_letters += result.dead_letters


def claim_stale(
    client: redis.Redis, source: Source, *, consumer: str, partition: int, lease: Lease | None,
    report: ConsumeReport, batch_size: int,
) -> None:
    """Take over entries that a dead consumer left pending, a read at a time."""
    cursor: str | bytes = "0-0"
    while True:
        cursor, entries, _deleted = client.xautoclaim(
            source.stream, METERING_GROUP, consumer, min_idle_time=conf.CLAIM_IDLE_MS, start_id=cursor,
            count=batch_size,
        )
        if entries:
            report.claimed += len(entries)
            process_entries(client, source, entries, consumer=consumer, partition=partition, lease=lease,
                            report=report)
        if _text(cursor) == "0-0":
            return


def _sid(stream_id: str | bytes) -> tuple[int, int]:
    ms, _, seq = _text(stream_id).partition("-")
    return int(ms), int(seq or 0)


def trim_committed(client: redis.Redis, stream: str = METERING_STREAM, *, keep_s: int | None = None) -> int:
    """Remove entries that are acknowledged and older than the keep window: XTRIM
    MINID cuts strictly below the smallest of the oldest pending entry, the group's
    last-delivered id and now - keep_s, so no unacknowledged entry ever goes."""
    keep_s = conf.STREAM_KEEP_S if keep_s is None else keep_s
    try:
        groups = {_text(g["name"]): g for g in client.xinfo_groups(stream)}
    except redis.ResponseError:  # no such stream
        return 0
    group = groups.get(METERING_GROUP)
    if group is None:
        return 0
    # Read last-delivered before the pending summary: an entry delivered in
    # between is newer than this id, so it is never below the cut.
    last_delivered = group["last-delivered-id"]
    pending = client.xpending(stream, METERING_GROUP)
    candidates = [_sid(last_delivered), (int(time.time() * 1000) - keep_s * 1000, 0)]
    if pending["pending"]:
        candidates.append(_sid(pending["min"]))
    cut = min(candidates)
    if cut <= (0, 0):
        return 0
    return int(client.xtrim(stream, minid=f"{cut[0]}-{cut[1]}", approximate=False))


# --- the loop -------------------------------------------------------------------------------------


def consume_partition(
    partition: int,
    *,
    client: redis.Redis | None = None,
    consumer: str | None = None,
    budget_s: float | None = None,
    batch_size: int | None = None,
    block_ms: int | None = None,
    trim: bool = True,
) -> ConsumeReport:
    """Own one partition (if its lease is free) and drain it until it is empty or the
    time budget is spent; then trim what was acknowledged and give the lease back."""
    client = client or conf.metering_redis_client()
    consumer = consumer or consumer_name()
    budget_s = conf.CONSUME_BUDGET_S if budget_s is None else budget_s
    batch_size = batch_size or conf.BATCH_SIZE
    block_ms = conf.BLOCK_MS if block_ms is None else block_ms
    report = ConsumeReport()
    lease = Lease(client, partition, consumer)
    if not lease.acquire():
        report.busy.append(partition)
        return report
    report.partitions.append(partition)
    deadline = time.monotonic() + budget_s
    feeds = sources(partition)
    try:
        for source in feeds:
            ensure_group(client, source.stream)
            claim_stale(client, source, consumer=consumer, partition=partition, lease=lease, report=report,
                        batch_size=batch_size)
        while time.monotonic() < deadline:
            got = 0
            for index, source in enumerate(feeds):
                # Only the partition's own stream blocks (the legacy stream is read in passing).
                block = block_ms if index == 0 and block_ms else None
                response = client.xreadgroup(
                    METERING_GROUP, consumer, {source.stream: ">"}, count=batch_size, block=block
                )
                # The client speaks RESP2, which answers [[stream, entries]]; the dict forms are RESP3's.
                entries = cast(list[list[Any]], response)[0][1] if response else []
                if entries:
                    got += len(entries)
                    process_entries(client, source, entries, consumer=consumer, partition=partition, lease=lease,
                                    report=report)
            if not got:
                break
        if trim:
            for source in feeds:
                report.trimmed += trim_committed(client, source.stream)
    except LeaseLost:
        # This run stalled past its lease and another owns the partition now; what it
        # read stays pending for the new owner. Expected now and then, not an error.
        log.warning("metering: lease on partition %d lost mid-run; stopping", partition)
    finally:
        lease.release()
    return report


def consume(
    *,
    partitions: list[int] | None = None,
    client: redis.Redis | None = None,
    consumer: str | None = None,
    budget_s: float | None = None,
    batch_size: int | None = None,
    block_ms: int | None = None,
    trim: bool = True,
) -> ConsumeReport:
    """Drain the given partitions (default: all) in turn, within one time budget;
    a partition whose lease another consumer holds is skipped."""
    client = client or conf.metering_redis_client()
    budget_s = conf.CONSUME_BUDGET_S if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    report = ConsumeReport()
    for partition in range(conf.METERING_PARTITIONS) if partitions is None else partitions:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        report.add(consume_partition(
            partition, client=client, consumer=consumer, budget_s=remaining, batch_size=batch_size,
            block_ms=block_ms, trim=trim,
        ))
    return report
