"""Ingest writes: count a metering batch exactly once, and prune what retention allows.

Both services are keyword-only and run in one transaction each. Key usage is
handed to the portal through ``portal.keys.services.api_keys_mark_used``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics import conf
from analytics.ingest import ledger
from analytics.ingest.metering import DAY_MS, HOUR_MS, aggregate
from analytics.models import (
    BillingPeriod,
    ConsumerStat,
    DeadLetter,
    Granularity,
    ProcessedEvent,
    Rollup,
    TrafficRollup,
    UsageAdjustment,
)
from gateway.contract import MeteringEvent
from portal.keys.selectors import api_key_ids_by_prefix
from portal.keys.services import api_keys_mark_used

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    received: int
    counted: int
    duplicates: int
    too_old: int
    dead_letters: int
    adjustments: int


_EVENT_ID = re.compile(r"[0-9a-f]{32}")


def normalise_event_id(raw: str) -> str:
    """32 lowercase hex digits (a UUID's hex form), or ValueError."""
    value = raw.replace("-", "").lower()
    if not _EVENT_ID.fullmatch(value):
        raise ValueError(f"event id {raw!r} is not a UUID")
    return value


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


def _keys_last_seen(events: list[MeteringEvent]) -> dict[int, datetime]:
    """Key id -> its latest admitted request in the batch: the gateway never writes
    the database, so the metering stream is where the portal learns a key was used.
    A refused request is not a use."""
    latest: dict[tuple[int, str], int] = {}
    for e in events:
        if e.decision == "allowed" and e.application_id and e.key_prefix:
            pair = (e.application_id, e.key_prefix)
            latest[pair] = max(latest.get(pair, 0), e.ts)
    if not latest:
        return {}
    last_seen: dict[int, datetime] = {}
    for pair, key_ids in api_key_ids_by_prefix(pairs=latest).items():
        for key_id in key_ids:
            last_seen[key_id] = datetime.fromtimestamp(latest[pair] / 1000, tz=UTC)
    return last_seen


@transaction.atomic
def metering_batch_commit(
    *,
    events: list[MeteringEvent],
    consumer: str,
    last_stream_id: str = "",
    dead_letters: list[tuple[str, dict[str, str], str]] | None = None,
    now_ms: int | None = None,
) -> BatchResult:
    """Count a batch of events exactly once, all or nothing.

    The caller acknowledges the stream entries only after this returns: a crash
    before the commit leaves them pending (and claimed back later), a crash after
    it makes the retry find every id already in the ledger.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    oldest_ms = now_ms - conf.DEDUPE_DAYS * DAY_MS
    unique: dict[str, MeteringEvent] = {}
    too_old = 0
    for e in events:
        if e.ts < oldest_ms:
            too_old += 1
            continue
        unique.setdefault(normalise_event_id(e.id), e)
    fresh_ids = ledger.claim_event_ids([(e.ts // DAY_MS, eid) for eid, e in unique.items()])
    fresh = [e for eid, e in unique.items() if eid in fresh_ids]
    agg = aggregate(fresh)
    minute_floor = now_ms - conf.MINUTE_RETENTION_HOURS * HOUR_MS
    ledger.upsert_rollups({
        Granularity.MINUTE: agg.cells("m", min_minute_ts=minute_floor),
        Granularity.HOUR: agg.cells("h"),
        Granularity.DAY: agg.cells("d"),
    })
    ledger.upsert_rollups(
        {g: agg.traffic_cells(g, min_minute_ts=minute_floor) for g in Granularity.values}, ledger.TRAFFIC
    )

    by_month: dict[tuple[int, int, date], int] = defaultdict(int)
    for (sub_id, plan_id, day), n in agg.billable.items():
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
            [DeadLetter(stream_id=sid, fields=f, error=err) for sid, f, err in dead_letters], ignore_conflicts=True
        )
    last_seen = _keys_last_seen(fresh)
    if last_seen:
        api_keys_mark_used(last_seen=last_seen)
    duplicates = len(events) - too_old - len(fresh)
    stat, _ = ConsumerStat.objects.select_for_update().get_or_create(consumer=consumer)
    stat.batches += 1
    stat.events_counted += len(fresh)
    stat.duplicates_skipped += duplicates
    stat.too_old_skipped += too_old
    if last_stream_id:
        stat.last_stream_id = last_stream_id
    stat.last_batch_at = timezone.now()
    stat.save()
    if too_old:
        log.warning("metering: %d events older than %d days refused", too_old, conf.DEDUPE_DAYS)
    return BatchResult(
        received=len(events),
        counted=len(fresh),
        duplicates=duplicates,
        too_old=too_old,
        dead_letters=len(dead_letters or []),
        adjustments=len(adjustments),
    )


@transaction.atomic
def rollups_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Drop fine-grained rollups and old dedupe ids past their retention.
    Day rollups are kept: invoices and long-range reports read them."""
    now = now or timezone.now()
    minute_cut = now - timedelta(hours=conf.MINUTE_RETENTION_HOURS)
    hour_cut = now - timedelta(days=conf.HOUR_RETENTION_DAYS)
    # Dedupe ids are kept a day longer than the window in which events are accepted.
    day_cut = int(now.timestamp() * 1000) // DAY_MS - conf.DEDUPE_DAYS - 1
    deleted = {
        "minute": Rollup.objects.filter(granularity=Granularity.MINUTE, bucket__lt=minute_cut)._raw_delete("default"),
        "hour": Rollup.objects.filter(granularity=Granularity.HOUR, bucket__lt=hour_cut)._raw_delete("default"),
        "traffic": TrafficRollup.objects.filter(
            Q(granularity=Granularity.MINUTE, bucket__lt=minute_cut)
            | Q(granularity=Granularity.HOUR, bucket__lt=hour_cut)
        )._raw_delete("default"),
        "event_ids": ProcessedEvent.objects.filter(day__lt=day_cut)._raw_delete("default"),
    }
    return deleted
