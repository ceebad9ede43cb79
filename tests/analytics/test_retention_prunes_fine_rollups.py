"""Retention drops minute rollups after 48 h and hour rollups after 90 days; day
rollups stay (invoices read them); dedupe ids go after the acceptance window."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import conf
from analytics.ingest import services
from analytics.ingest.metering import DAY_MS
from analytics.models import ConsumerStat, ProcessedEvent, Rollup
from tests.analytics.conftest import make_event

pytestmark = pytest.mark.django_db


def test_it_prunes_by_granularity_and_keeps_days():
    now_ms = int(time.time() * 1000)
    events = [make_event(ts=now_ms - age) for age in (60_000, 3 * DAY_MS, 100 * DAY_MS // 1)]
    # The 100-day-old event is outside the dedupe window: refused, never counted.
    result = services.metering_batch_commit(events=events, consumer="test")
    assert (result.counted, result.too_old) == (2, 1)
    assert ConsumerStat.objects.get(consumer="test").too_old_skipped == 1
    # The 3-day-old event was already past minute retention: no minute row for it.
    assert Rollup.objects.filter(granularity="m").count() == 1
    assert Rollup.objects.filter(granularity="h").count() == 2
    assert Rollup.objects.filter(granularity="d").count() == 2

    later = timezone.now() + timedelta(days=91)
    deleted = services.rollups_prune(now=later)
    assert deleted["minute"] == 1
    assert deleted["hour"] == 2
    assert Rollup.objects.filter(granularity="d").count() == 2
    assert deleted["event_ids"] == 2
    assert ProcessedEvent.objects.count() == 0


def test_it_keeps_dedupe_ids_for_the_whole_acceptance_window():
    now_ms = int(time.time() * 1000)
    services.metering_batch_commit(events=[make_event(ts=now_ms - 1000)], consumer="test")
    services.rollups_prune(now=timezone.now() + timedelta(days=conf.DEDUPE_DAYS))
    assert ProcessedEvent.objects.count() == 1
