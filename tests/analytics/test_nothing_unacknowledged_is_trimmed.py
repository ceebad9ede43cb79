"""Consumers trim what they acknowledged (XTRIM MINID), and never an entry that is
not acknowledged: neither one pending with a stalled consumer nor one not yet read."""

from __future__ import annotations

import random
import time

import msgspec
import pytest

from analytics.ingest import consumer
from gateway.contract import METERING_GROUP, metering_stream
from tests.analytics.conftest import (
    expected_totals,
    make_batches,
    random_requests,
    rollup_totals,
    xadd_batches,
)

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = metering_stream(0)


def _partition0(n: int, *, seed: int) -> list:
    # Subscriptions 4, 8 and 12: all in partition 0 of 4.
    return [
        msgspec.structs.replace(r, subscription_id=4 * (1 + r.subscription_id % 3))
        for r in random_requests(n, ts0=int(time.time() * 1000) - 60_000, seed=seed)
    ]


def _ids(entries) -> set[bytes]:
    return {sid for sid, _ in entries}


def test_a_stalled_consumers_entries_hold_the_trim(metering_redis, monkeypatch):
    monkeypatch.setattr(consumer.conf, "STREAM_KEEP_S", 0)
    requests = _partition0(300, seed=17)
    xadd_batches(metering_redis, make_batches(requests, size=10))
    # A consumer reads 10 entries and stalls (or dies) before committing them.
    consumer.ensure_group(metering_redis, STREAM)
    metering_redis.xreadgroup(METERING_GROUP, "stalled", {STREAM: ">"}, count=10)
    report = consumer.consume_partition(0, client=metering_redis, consumer="live", budget_s=30, block_ms=0)
    # Nothing at or after the stalled consumer's oldest pending entry may go.
    assert report.trimmed == 0
    assert metering_redis.xlen(STREAM) == 30

    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    report = consumer.consume_partition(0, client=metering_redis, consumer="live", budget_s=30, block_ms=0)
    assert report.claimed == 10
    assert report.trimmed == 29  # the last delivered entry stays: MINID cuts strictly below it
    assert rollup_totals("d") == expected_totals(requests)


def test_no_unacknowledged_entry_is_ever_trimmed(metering_redis, monkeypatch):
    """Random interleavings of writes, stalled reads and consumer runs that trim with
    no keep window: after every step every unacknowledged entry is still in the
    stream, and in the end every request is counted exactly once."""
    monkeypatch.setattr(consumer.conf, "STREAM_KEEP_S", 0)
    rng = random.Random(5)
    acked: set[bytes] = set()
    real_xack = metering_redis.xack

    def recording_xack(name, group, *ids):
        acked.update(ids)
        return real_xack(name, group, *ids)

    monkeypatch.setattr(metering_redis, "xack", recording_xack)
    written: set[bytes] = set()
    everything = []
    consumer.ensure_group(metering_redis, STREAM)
    trimmed = 0
    for step in range(40):
        action = rng.choice(["write", "write", "stall", "consume"])
        if action == "write":
            requests = _partition0(rng.randint(1, 60), seed=step)
            everything += requests
            before = _ids(metering_redis.xrange(STREAM))
            xadd_batches(metering_redis, make_batches(requests, size=rng.randint(1, 20)))
            written |= _ids(metering_redis.xrange(STREAM)) - before
        elif action == "stall":
            metering_redis.xreadgroup(METERING_GROUP, f"stalled{step}", {STREAM: ">"}, count=rng.randint(1, 5))
        else:
            trimmed += consumer.consume_partition(
                0, client=metering_redis, consumer="live", budget_s=30, block_ms=0, batch_size=rng.randint(1, 8),
            ).trimmed
        in_stream = _ids(metering_redis.xrange(STREAM))
        assert written - acked <= in_stream, f"step {step}: an unacknowledged entry was trimmed"
    assert trimmed > 0  # the test exercised trimming
    # The stalled consumers are declared dead; everything is counted exactly once.
    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    time.sleep(0.01)
    consumer.consume_partition(0, client=metering_redis, consumer="live", budget_s=30, block_ms=0)
    assert written <= acked
    assert rollup_totals("d") == expected_totals(everything)
