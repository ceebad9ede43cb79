"""The metering stream consumer: Redis consumer group in, committed rollups out.

Order of operations per batch, and why it is exactly-once:

1. XAUTOCLAIM entries idle longer than CLAIM_IDLE_MS (their consumer died), then
   XREADGROUP new ones. Either way the entries sit in the group's pending list
   until acknowledged.
2. ``services.metering_batch_commit`` inserts each event id into the dedupe
   ledger and adds only the new ones to the rollups, in one transaction.
3. XACK, only after the commit. A crash before 3 leaves the entries pending:
   they are claimed back and re-run, and the ledger turns them into no-ops.
4. XTRIM MINID below both the oldest pending entry and the group's
   last-delivered id, so only entries whose batch committed are ever removed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from analytics import conf
from analytics.ingest import services
from gateway.contract import METERING_GROUP, METERING_STREAM, MeteringEvent

log = logging.getLogger(__name__)


def consumer_name() -> str:
    """Stable for the life of a process, unique across processes: a dead
    process's pending entries are then recognisably idle."""
    return f"{socket.gethostname()}-{os.getpid()}"


def ensure_group(client: redis.Redis) -> None:
    try:
        # From id 0: entries the gateway wrote before analytics first ran count too.
        client.xgroup_create(METERING_STREAM, METERING_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def parse_entries(entries: list[Any]) -> tuple[list[MeteringEvent], list[tuple[str, dict[str, str], str]], list[str]]:
    """(events, dead letters, all stream ids). An entry trimmed while pending
    comes back from XAUTOCLAIM as None; it only needs acknowledging."""
    events: list[MeteringEvent] = []
    dead: list[tuple[str, dict[str, str], str]] = []
    ids: list[str] = []
    for entry in entries:
        if not entry:
            continue
        stream_id, fields = entry
        if fields is None:
            ids.append(stream_id)
            continue
        ids.append(stream_id)
        try:
            event = MeteringEvent.from_fields(fields)
            services.normalise_event_id(event.id)
        except (KeyError, ValueError, TypeError) as exc:
            dead.append((stream_id, dict(fields), f"{type(exc).__name__}: {exc}"))
            continue
        events.append(event)
    return events, dead, ids


@dataclass
class ConsumeReport:
    batches: int = 0
    received: int = 0
    counted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    claimed: int = 0
    trimmed: int = 0


def process_entries(client: redis.Redis, entries: list[Any], *, consumer: str, report: ConsumeReport) -> None:
    events, dead, ids = parse_entries(entries)
    if not ids:
        return
    result = services.metering_batch_commit(
        events=events, dead_letters=dead, consumer=consumer, last_stream_id=ids[-1]
    )
    # Only now, after the commit: see the module docstring.
    client.xack(METERING_STREAM, METERING_GROUP, *ids)
    report.batches += 1
    report.received += result.received
    report.counted += result.counted
    report.duplicates += result.duplicates
    report.dead_letters += result.dead_letters


def claim_stale(client: redis.Redis, *, consumer: str, report: ConsumeReport, batch_size: int) -> None:
    """Take over entries that a dead consumer left pending, a batch at a time."""
    cursor = "0-0"
    while True:
        cursor, entries, _deleted = client.xautoclaim(
            METERING_STREAM, METERING_GROUP, consumer, min_idle_time=conf.CLAIM_IDLE_MS,
            start_id=cursor, count=batch_size,
        )
        if entries:
            report.claimed += len(entries)
            process_entries(client, entries, consumer=consumer, report=report)
        if cursor in ("0-0", b"0-0"):
            return


def trim_committed(client: redis.Redis, *, keep_s: int | None = None) -> int:
    """Remove entries that are acknowledged and older than the keep window."""
    keep_s = conf.STREAM_KEEP_S if keep_s is None else keep_s
    groups = {g["name"]: g for g in client.xinfo_groups(METERING_STREAM)}
    group = groups.get(METERING_GROUP)
    if group is None:
        return 0
    # Read last-delivered before the pending summary: an entry delivered in
    # between is newer than this id, so it is never below the cut.
    last_delivered = group["last-delivered-id"]
    pending = client.xpending(METERING_STREAM, METERING_GROUP)
    candidates = [_sid(last_delivered), (int(time.time() * 1000) - keep_s * 1000, 0)]
    if pending["pending"]:
        candidates.append(_sid(pending["min"]))
    cut = min(candidates)
    if cut <= (0, 0):
        return 0
    return int(client.xtrim(METERING_STREAM, minid=f"{cut[0]}-{cut[1]}", approximate=False))


def _sid(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def consume(
    *,
    client: redis.Redis | None = None,
    consumer: str | None = None,
    budget_s: float | None = None,
    batch_size: int | None = None,
    block_ms: int | None = None,
    trim: bool = True,
) -> ConsumeReport:
    """Drain the stream until it is empty or the time budget is spent."""
    client = client or conf.redis_client()
    consumer = consumer or consumer_name()
    budget_s = conf.CONSUME_BUDGET_S if budget_s is None else budget_s
    batch_size = batch_size or conf.BATCH_SIZE
    block_ms = conf.BLOCK_MS if block_ms is None else block_ms
    report = ConsumeReport()
    ensure_group(client)
    deadline = time.monotonic() + budget_s
    claim_stale(client, consumer=consumer, report=report, batch_size=batch_size)
    while time.monotonic() < deadline:
        response = client.xreadgroup(
            METERING_GROUP, consumer, {METERING_STREAM: ">"}, count=batch_size, block=block_ms or None
        )
        # redis_client() speaks RESP2, which answers [[stream, entries]]; the dict forms are RESP3's.
        entries = cast(list[list[Any]], response)[0][1] if response else []
        if not entries:
            break
        process_entries(client, entries, consumer=consumer, report=report)
    if trim:
        report.trimmed = trim_committed(client)
    return report
