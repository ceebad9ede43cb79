"""A malformed stream entry is kept aside and acknowledged; it never wedges the group."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer
from analytics.models import DeadLetter
from gateway.contract import METERING_GROUP, METERING_STREAM
from tests.analytics.conftest import make_event, rollup_totals, xadd_events

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_sets_bad_entries_aside_and_counts_the_rest(metering_redis):
    good = [make_event(ts=int(time.time() * 1000) - 1000) for _ in range(5)]
    xadd_events(metering_redis, good[:2])
    metering_redis.xadd(METERING_STREAM, {"id": "not-a-uuid", "ts": "1", "status": "200"})
    metering_redis.xadd(METERING_STREAM, {"id": "ab" * 16, "ts": "soon", "status": "200"})
    xadd_events(metering_redis, good[2:])
    report = consumer.consume(client=metering_redis, consumer="c", budget_s=10, block_ms=0)
    assert report.counted == 5
    assert report.dead_letters == 2
    assert rollup_totals("d")["requests"] == 5
    assert sorted(d.fields["id"] for d in DeadLetter.objects.all()) == ["ab" * 16, "not-a-uuid"]
    assert metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] == 0
