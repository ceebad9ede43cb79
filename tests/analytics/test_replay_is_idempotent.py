"""Replaying the same batch leaves the rollups unchanged."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer
from analytics.models import ConsumerStat, ProcessedEvent
from gateway.contract import METERING_GROUP, METERING_STREAM
from tests.analytics.conftest import expected_totals, random_events, rollup_snapshot, rollup_totals, xadd_events

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_counts_a_batch_replayed_three_times_once(metering_redis):
    events = random_events(3000, ts0=int(time.time() * 1000) - 3_600_000)
    xadd_events(metering_redis, events)
    first = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
    assert first.counted == 3000
    after_first = rollup_snapshot()
    assert rollup_totals("m") == rollup_totals("h") == rollup_totals("d") == expected_totals(events)
    for granularity in "mhd":  # the dashboard's application-less copy agrees
        assert rollup_totals(granularity, traffic=True) == expected_totals(events)

    # The gateway retries: the very same events arrive three more times.
    for _ in range(3):
        xadd_events(metering_redis, events)
        report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
        assert report.counted == 0
        assert report.duplicates == 3000
        assert rollup_snapshot() == after_first
        assert rollup_totals("d", traffic=True) == expected_totals(events)
    assert ProcessedEvent.objects.count() == 3000
    assert ConsumerStat.objects.get(consumer="c1").duplicates_skipped == 9000


def test_it_counts_redelivered_entries_once(metering_redis):
    """Rewinding the group re-delivers the same stream entries (same stream ids)."""
    events = random_events(500, ts0=int(time.time() * 1000) - 600_000, seed=3)
    xadd_events(metering_redis, events)
    consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0, trim=False)
    before = rollup_snapshot()
    for _ in range(3):
        metering_redis.xgroup_setid(METERING_STREAM, METERING_GROUP, id="0")
        report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0, trim=False)
        assert report.received == 500
        assert report.counted == 0
    assert rollup_snapshot() == before
    assert rollup_totals("d") == expected_totals(events)


def test_it_counts_duplicates_inside_one_batch_once(metering_redis):
    events = random_events(50, ts0=int(time.time() * 1000) - 60_000, seed=5)
    xadd_events(metering_redis, events + events[:10])
    report = consumer.consume(client=metering_redis, consumer="c1", budget_s=30, block_ms=0)
    assert report.counted == 50
    assert rollup_totals("m") == expected_totals(events)
