"""Retention drops minute rollups after 48 h and hour rollups after 90 days; day
rollups stay (invoices read them); batch ids go after the acceptance window (on
PostgreSQL as whole daily partitions of the ledger)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from analytics import conf
from analytics.ingest import ledger, services
from analytics.ingest.metering import DAY_MS
from analytics.models import ConsumerStat, ProcessedBatch, Rollup
from gateway.contract import METERING_BATCH_VERSION, MeteringBatch
from tests.analytics.conftest import commit_requests, make_request

pytestmark = pytest.mark.django_db


def test_it_prunes_by_granularity_and_keeps_days():
    now_ms = int(time.time() * 1000)
    batches = [
        MeteringBatch(v=METERING_BATCH_VERSION, id=f"b{age}", requests=[make_request(ts=now_ms - age)])
        for age in (60_000, 3 * DAY_MS, 100 * DAY_MS)
    ]
    # The 100-day-old batch is outside the dedupe window: refused, never counted.
    result = services.metering_batch_commit(batches=batches, consumer="test")
    assert (result.counted, result.too_old) == (2, 1)
    assert ConsumerStat.objects.get(consumer="test").too_old_skipped == 1
    # The 3-day-old request was already past minute retention: no minute row for it.
    assert Rollup.objects.filter(granularity="m").count() == 1
    assert Rollup.objects.filter(granularity="h").count() == 2
    assert Rollup.objects.filter(granularity="d").count() == 2
    assert ProcessedBatch.objects.count() == 2

    later = timezone.now() + timedelta(days=91)
    deleted = services.rollups_prune(now=later)
    assert deleted["minute"] == 1
    assert deleted["hour"] == 2
    assert Rollup.objects.filter(granularity="d").count() == 2
    assert deleted["batch_days"] == 2  # two days' partitions (PostgreSQL) or rows (SQLite)
    assert ProcessedBatch.objects.count() == 0


def test_it_keeps_batch_ids_for_the_whole_acceptance_window():
    now_ms = int(time.time() * 1000)
    commit_requests([make_request(ts=now_ms - 1000)])
    services.rollups_prune(now=timezone.now() + timedelta(days=conf.DEDUPE_DAYS))
    assert ProcessedBatch.objects.count() == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="declarative partitioning is PostgreSQL's")
def test_the_ledger_is_partitioned_by_day_and_partitions_are_made_ahead():
    with connection.cursor() as cur:
        cur.execute("SELECT partstrat, partattrs::text FROM pg_partitioned_table "
                    "WHERE partrelid = 'analytics_processedbatch'::regclass")
        assert cur.fetchone() == ("r", "1")  # by range of the first column, day
        cur.execute("SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = 'analytics_processedbatch'::regclass AND i.indisprimary")
        assert cur.fetchone()[0] == ["batch_id", "day"]
    today = int(time.time() * 1000) // DAY_MS
    created = services.processed_batch_partitions_prepare(ahead_days=3)
    assert set(range(today - 1, today + 4)) <= ledger.batch_partition_days()
    assert services.processed_batch_partitions_prepare(ahead_days=3) == []  # idempotent
    assert created
    # A batch of a day nobody prepared gets its partition on the way in.
    commit_requests([make_request(ts=(today + 10) * DAY_MS + 5)])
    assert today + 10 in ledger.batch_partition_days()
    assert ProcessedBatch.objects.get().day == today + 10
