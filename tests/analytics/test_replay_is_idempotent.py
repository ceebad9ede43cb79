"""Replaying the same batches leaves the rollups unchanged: dedupe is by batch id."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer
from analytics.models import ConsumerStat, ProcessedBatch
from gateway.contract import METERING_GROUP, metering_stream
from tests.analytics.conftest import (
    expected_totals,
    make_batches,
    random_requests,
    rollup_snapshot,
    rollup_totals,
    write_requests,
    xadd_batches,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_counts_batches_replayed_three_times_once(metering_redis):
    requests = random_requests(3000, ts0=int(time.time() * 1000) - 3_600_000)
    batches = write_requests(metering_redis, requests)
    first = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
    assert first.counted == 3000
    after_first = rollup_snapshot()
    assert rollup_totals("m") == rollup_totals("h") == rollup_totals("d") == expected_totals(requests)
    for granularity in "mhd":  # the dashboard's application-less copy agrees
        assert rollup_totals(granularity, traffic=True) == expected_totals(requests)

    # The gateway replays its journal: the very same batches arrive three more times.
    for _ in range(3):
        xadd_batches(metering_redis, batches)
        report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
        assert report.counted == 0
        assert report.duplicates == 3000
        assert rollup_snapshot() == after_first
        assert rollup_totals("d", traffic=True) == expected_totals(requests)
    assert ProcessedBatch.objects.count() == len(batches)
    assert ConsumerStat.objects.get(consumer="c1").duplicates_skipped == 9000


def test_it_counts_redelivered_entries_once(metering_redis):
    """Rewinding the groups re-delivers the same stream entries (same stream ids)."""
    requests = random_requests(500, ts0=int(time.time() * 1000) - 600_000, seed=3)
    batches = write_requests(metering_redis, requests, size=50)
    consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0, trim=False)
    before = rollup_snapshot()
    for _ in range(3):
        for p in {consumer_partition for consumer_partition in range(4)}:
            metering_redis.xgroup_setid(metering_stream(p), METERING_GROUP, id="0")
        report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0, trim=False)
        assert report.received == 500
        assert report.batches == len(batches)
        assert report.counted == 0
    assert rollup_snapshot() == before
    assert rollup_totals("d") == expected_totals(requests)


def test_it_counts_a_batch_twice_in_one_read_once(metering_redis):
    requests = random_requests(50, ts0=int(time.time() * 1000) - 60_000, seed=5)
    batches = make_batches(requests, size=10)
    xadd_batches(metering_redis, batches + batches[:2])
    report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
    assert report.counted == 50
    assert rollup_totals("m") == expected_totals(requests)
