"""metering_lag: per partition, the stream's length and the age of its oldest
unacknowledged entry (what the gauges and the dashboard's lag alert read)."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer, selectors
from gateway.contract import METERING_GROUP, metering_stream
from tests.analytics.conftest import make_batches, make_request, xadd_batches

pytestmark = pytest.mark.django_db(transaction=True)


def _lag(client, partition, now_ms):
    streams = selectors.metering_lag(client=client, now_ms=now_ms).streams
    return next(s for s in streams if s.partition == str(partition))


def test_it_reports_length_and_the_oldest_unacknowledged_age(metering_redis):
    now = int(time.time() * 1000)
    assert _lag(metering_redis, 1, now).age_s == 0  # nothing written yet
    xadd_batches(metering_redis, make_batches([make_request(ts=now, subscription_id=1) for _ in range(30)], size=10))
    later = int(time.time() * 1000) + 5000
    unread = _lag(metering_redis, 1, later)
    assert unread.length == 3
    assert unread.pending == 0
    assert 5 <= unread.age_s < 7  # no group yet: every entry is unacknowledged

    consumer.ensure_group(metering_redis, metering_stream(1))
    metering_redis.xreadgroup(METERING_GROUP, "stalled", {metering_stream(1): ">"}, count=1)
    stalled = _lag(metering_redis, 1, later)
    assert (stalled.length, stalled.pending) == (3, 1)
    assert 5 <= stalled.age_s < 7

    consumer.consume_partition(1, client=metering_redis, consumer="live", budget_s=10, block_ms=0, trim=False)
    still = _lag(metering_redis, 1, later)
    assert still.pending == 1  # the stalled read is still unacknowledged
    metering_redis.xack(metering_stream(1), METERING_GROUP, *[
        e["message_id"] for e in metering_redis.xpending_range(metering_stream(1), METERING_GROUP, "-", "+", 10)])
    done = _lag(metering_redis, 1, later)
    assert (done.length, done.pending, done.age_s) == (3, 0, 0)
    legacy = selectors.metering_lag(client=metering_redis).streams[-1]
    assert legacy.partition == "legacy"
    assert legacy.length == 0
