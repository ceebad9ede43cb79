"""Ingest writes: count metering batches exactly once, keep the batch ledger's
partitions, and prune what retention allows.

Services are keyword-only; each write runs in one transaction. Key usage is
handed to the portal through ``portal.keys.services.api_keys_mark_used``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from analytics import conf
from analytics.ingest import ledger
from analytics.ingest.metering import DAY_MS, HOUR_MS, BatchAggregate, aggregate
from analytics.models import (
    BillingPeriod,
    ConsumerStat,
    DeadLetter,
    Granularity,
    Rollup,
    TrafficRollup,
    UsageAdjustment,
)
from gateway.contract import MeteringBatch
from portal.keys.selectors import api_key_ids_by_prefix
from portal.keys.services import api_keys_mark_used

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    batches: int  # gateway batches received (duplicates included)
    received: int  # requests received
    counted: int  # requests added to the rollups
    duplicates: int  # requests of batches already counted
    duplicate_batches: int
    too_old: int  # requests of batches refused as older than the dedupe window
    dead_letters: int
    adjustments: int


@dataclass(frozen=True)
class DeadEntry:
    """A stream entry that could not be decoded: where it was, what it held, why."""

    stream_id: str  # "<stream tag>/<entry id>", e.g. "m0/1700000000000-0" or "legacy/…"
    fields: dict[str, str]
    error: str


def _day_to_month(day: int) -> date:
    d = date(1970, 1, 1) + timedelta(days=day)
    return date(d.year, d.month, 1)


def _closed_months(months: set[date]) -> set[date]:
    """Which of ``months`` are closed, holding a shared lock on their rows until
    commit: billing_period_close takes the exclusive lock, so a month cannot be
    closed between this check and this batch's commit (PostgreSQL; SQLite runs
    one writer at a time anyway)."""
    if not months:
        return set()
    BillingPeriod.objects.bulk_create([BillingPeriod(month=m) for m in months], ignore_conflicts=True)
    table = BillingPeriod._meta.db_table
    placeholders = ", ".join(["%s"] * len(months))
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT month FROM {table} WHERE month IN ({placeholders}) AND closed_at IS NOT NULL{lock}",  # noqa: S608
            [connection.ops.adapt_datefield_value(m) for m in sorted(months)],
        )
        rows = cur.fetchall()
    return {r[0] if isinstance(r[0], date) else date.fromisoformat(r[0]) for r in rows}


def _keys_last_seen(latest: dict[tuple[int, str], int]) -> dict[int, datetime]:
    """Key id -> its latest admitted request: the gateway never writes the database, so
    the metering stream is where the portal learns a key was used."""
    if not latest:
        return {}
    last_seen: dict[int, datetime] = {}
    for pair, key_ids in api_key_ids_by_prefix(pairs=latest).items():
        for key_id in key_ids:
            last_seen[key_id] = datetime.fromtimestamp(latest[pair] / 1000, tz=UTC)
    return last_seen


def batch_day(batch: MeteringBatch) -> int:
    """The ledger day of a batch: its oldest request's UTC day. A replay carries the
    same requests, hence the same day, hence meets its first copy's ledger row."""
    return min(r.ts for r in batch.requests) // DAY_MS


@transaction.atomic
def metering_batch_commit(
    *,
    batches: Sequence[MeteringBatch],
    consumer: str,
    partition: int = 0,
    last_stream_id: str = "",
    dead_letters: Sequence[DeadEntry] = (),
    now_ms: int | None = None,
) -> BatchResult:
    """Count gateway batches exactly once, all or nothing, in one transaction of a
    few statements: the batch ids into the ledger (only the new ones count), one
    additive upsert for the minute, hour and day rollups, one for the traffic rollups.

    The caller acknowledges the stream entries only after this returns: a crash
    before the commit leaves them pending (and claimed back later), a crash after
    it makes the retry find every batch id already in the ledger.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    oldest_day = (now_ms - conf.DEDUPE_DAYS * DAY_MS) // DAY_MS
    unique: dict[str, tuple[int, MeteringBatch]] = {}
    received = too_old = 0
    for batch in batches:
        received += len(batch.requests)
        if not batch.requests:
            continue
        day = batch_day(batch)
        if day < oldest_day:
            # Its ledger day may already be dropped: a duplicate could no longer be recognised.
            too_old += len(batch.requests)
            continue
        unique.setdefault(batch.id, (day, batch))
    ledger.batch_partitions_ensure({day for day, _ in unique.values()})
    fresh_ids = ledger.claim_batch_ids(
        [ledger.BatchRow(day, bid, partition, len(b.requests)) for bid, (day, b) in unique.items()]
    )
    agg = BatchAggregate()
    for bid, (_, batch) in unique.items():
        if bid in fresh_ids:
            aggregate(batch.requests, into=agg)
    minute_floor = now_ms - conf.MINUTE_RETENTION_HOURS * HOUR_MS
    if connection.vendor == "postgresql":
        # One COPY of the minute cells; PostgreSQL folds hours, days and traffic rows.
        ledger.upsert_minute_cells(agg.minute, partition=partition, min_minute_ts=minute_floor)
    else:
        ledger.upsert_rollups({
            Granularity.MINUTE: agg.cells("m", min_minute_ts=minute_floor),
            Granularity.HOUR: agg.cells("h"),
            Granularity.DAY: agg.cells("d"),
        })
        ledger.upsert_rollups(
            {g: agg.traffic_cells(g, partition=partition, min_minute_ts=minute_floor) for g in Granularity.values},
            ledger.TRAFFIC,
        )

    by_month: dict[tuple[int, int, date], int] = defaultdict(int)
    for (sub_id, plan_id, day), n in agg.billable().items():
        by_month[(sub_id, plan_id, _day_to_month(day))] += n
    closed = _closed_months({m for _, _, m in by_month})
    adjustments = [
        UsageAdjustment(subscription_id=s, plan_id=p, usage_month=m, requests=n)
        for (s, p, m), n in by_month.items()
        if m in closed
    ]
    UsageAdjustment.objects.bulk_create(adjustments)

    if dead_letters:
        DeadLetter.objects.bulk_create(
            [DeadLetter(stream_id=d.stream_id, fields=d.fields, error=d.error) for d in dead_letters],
            ignore_conflicts=True,
        )
    last_seen = _keys_last_seen(agg.last_used)
    if last_seen:
        api_keys_mark_used(last_seen=last_seen)
    counted = agg.events
    duplicates = received - too_old - counted
    changes = {
        "batches": F("batches") + 1,
        "events_counted": F("events_counted") + counted,
        "duplicates_skipped": F("duplicates_skipped") + duplicates,
        "too_old_skipped": F("too_old_skipped") + too_old,
        "dead_letters": F("dead_letters") + len(dead_letters),
        "last_batch_at": timezone.now(),
        **({"last_stream_id": last_stream_id} if last_stream_id else {}),
    }
    # One statement in the usual case; each consumer has a row of its own, so nobody waits on it.
    if not ConsumerStat.objects.filter(consumer=consumer).update(**changes):
        ConsumerStat.objects.get_or_create(consumer=consumer)
        ConsumerStat.objects.filter(consumer=consumer).update(**changes)
    if too_old:
        log.warning("metering: %d requests in batches older than %d days refused", too_old, conf.DEDUPE_DAYS)
    return BatchResult(
        batches=len(batches),
        received=received,
        counted=counted,
        duplicates=duplicates,
        duplicate_batches=len(unique) - len(fresh_ids),
        too_old=too_old,
        dead_letters=len(dead_letters),
        adjustments=len(adjustments),
    )


def processed_batch_partitions_prepare(*, now: datetime | None = None, ahead_days: int = 3) -> list[int]:
    """Create the batch ledger's daily partitions from yesterday to ``ahead_days`` ahead
    (PostgreSQL), so that consumers find them rather than create them (creating one
    locks the table). Idempotent; returns the days created."""
    now = now or timezone.now()
    today = int(now.timestamp() * 1000) // DAY_MS
    with transaction.atomic():
        return ledger.batch_partitions_ensure(set(range(today - 1, today + ahead_days + 1)))


def rollups_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Drop fine-grained rollups and old batch ids past their retention.
    Day rollups are kept: invoices and long-range reports read them."""
    now = now or timezone.now()
    minute_cut = now - timedelta(hours=conf.MINUTE_RETENTION_HOURS)
    hour_cut = now - timedelta(days=conf.HOUR_RETENTION_DAYS)
    with transaction.atomic():
        deleted = {
            "minute": Rollup.objects.filter(granularity=Granularity.MINUTE, bucket__lt=minute_cut)._raw_delete(
                "default"
            ),
            "hour": Rollup.objects.filter(granularity=Granularity.HOUR, bucket__lt=hour_cut)._raw_delete("default"),
            "traffic": TrafficRollup.objects.filter(
                Q(granularity=Granularity.MINUTE, bucket__lt=minute_cut)
                | Q(granularity=Granularity.HOUR, bucket__lt=hour_cut)
            )._raw_delete("default"),
        }
    # Batch ids are kept a day longer than the window in which batches are accepted. In a
    # transaction of its own: dropping a partition locks the ledger, so it must be short.
    day_cut = int(now.timestamp() * 1000) // DAY_MS - conf.DEDUPE_DAYS - 1
    with transaction.atomic():
        deleted["batch_days"] = ledger.batch_partitions_drop(before_day=day_cut)
    return deleted
