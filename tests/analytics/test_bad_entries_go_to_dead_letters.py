"""A malformed batch is set aside (dead-letter stream with its raw bytes, a DeadLetter
row, a counter) and acknowledged; it never blocks its partition nor stops the consumer."""

from __future__ import annotations

import time

import msgspec
import pytest

from analytics.ingest import consumer, selectors
from analytics.models import ConsumerStat, DeadLetter
from gateway.contract import METERING_BATCH_FIELD, METERING_GROUP, METERING_STREAM, metering_stream
from tests.analytics.conftest import make_batches, make_request, pending, rollup_totals, xadd_batches

pytestmark = pytest.mark.django_db(transaction=True)

NAN = float("nan")
BAD = {
    b"\xc1not msgpack": "bad encoding",
    msgspec.msgpack.encode([99, "x:1:0:1", []]): "unknown batch version 99",
    msgspec.msgpack.encode([1, "x:1:0:2", [[1, 1, "a", "v1", 1, "k", 1, 1, "GET", 200, "allowed", -5.0, 0, 0]]]):
        "negative latency",
    msgspec.msgpack.encode([1, "x:1:0:3", [[1, 1, "a", "v1", 1, "k", 1, 1, "GET", 200, "allowed", NAN, 0, 0]]]):
        "non-finite latency",
}


def test_it_sets_bad_batches_aside_and_counts_the_rest(metering_redis):
    now = int(time.time() * 1000) - 1000
    good = make_batches([make_request(ts=now, subscription_id=4) for _ in range(5)], size=2)  # partition 0
    xadd_batches(metering_redis, good[:1])
    stream = metering_stream(0)
    for raw in BAD:
        metering_redis.xadd(stream, {METERING_BATCH_FIELD: raw})
    metering_redis.xadd(stream, {"wrong-field": b"1"})
    xadd_batches(metering_redis, good[1:])

    report = consumer.consume(client=metering_redis, consumer="c", budget_s=10, block_ms=0)

    assert report.counted == 5
    assert report.dead_letters == 5
    assert rollup_totals("d")["requests"] == 5
    assert pending(metering_redis) == 0
    dead = metering_redis.xrange(consumer.DEAD_LETTER_STREAM)
    assert [fields[b"raw"] for _, fields in dead[: len(BAD)]] == list(BAD)  # byte for byte
    for (_, fields), why in zip(dead, BAD.values(), strict=False):
        assert why in fields[b"error"].decode()
        assert fields[b"stream"].decode() == stream
    assert DeadLetter.objects.count() == 5
    assert ConsumerStat.objects.get(consumer="c").dead_letters == 5
    assert selectors.dead_letter_count(client=metering_redis) == 5


def test_a_bad_legacy_entry_is_set_aside_too(metering_redis):
    from gateway.contract import MeteringEvent

    event = MeteringEvent(id="ab" * 16, ts=int(time.time() * 1000), api_id=1, api="echo", version="v1",
                          application_id=1, key_prefix="tw_x", subscription_id=1, plan_id=1, method="GET",
                          status=200, decision="allowed", latency_ms=1.0, bytes_in=0, bytes_out=0)
    metering_redis.xadd(METERING_STREAM, event.to_fields())
    metering_redis.xadd(METERING_STREAM, {"id": "not-a-uuid", "ts": "1", "status": "200"})
    metering_redis.xadd(METERING_STREAM, {"id": "cd" * 16, "ts": "soon", "status": "200"})
    report = consumer.consume(client=metering_redis, consumer="c", budget_s=10, block_ms=0)
    assert (report.counted, report.dead_letters) == (1, 2)
    assert sorted(d.fields["id"] for d in DeadLetter.objects.all()) == ["cd" * 16, "not-a-uuid"]
    assert metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] == 0
