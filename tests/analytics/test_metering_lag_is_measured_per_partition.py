"""Lag is read from Redis alone: per partition (and the legacy stream), the stream's length,
the pending count and the age of the oldest entry not yet acknowledged."""

from __future__ import annotations

from analytics.ingest.lag import DEAD_LETTER_STREAM, LEGACY, MeteringLag, measure
from gateway.contract import (
    METERING_BATCH_FIELD,
    METERING_BATCH_VERSION,
    METERING_GROUP,
    METERING_STREAM,
    MeteringBatch,
    encode_batch,
    metering_stream,
)

NOW = 1_800_000_000_000
PARTITIONS = 3


def _add(client, stream: str, at_ms: int, seq: int = 0) -> str:
    batch = MeteringBatch(v=METERING_BATCH_VERSION, id=f"node:1:1:{at_ms}-{seq}", requests=[])
    return client.xadd(stream, {METERING_BATCH_FIELD: encode_batch(batch)}, id=f"{at_ms}-{seq}")


def _by_partition(lag: MeteringLag) -> dict[str, tuple[int, int, float]]:
    return {s.partition: (s.length, s.pending, s.age_s) for s in lag.streams}


def test_an_empty_redis_has_no_lag(metering_redis):
    lag = measure(metering_redis, partitions=PARTITIONS, now_ms=NOW)

    assert _by_partition(lag) == {"0": (0, 0, 0.0), "1": (0, 0, 0.0), "2": (0, 0, 0.0), LEGACY: (0, 0, 0.0)}
    assert lag.worst_age_s == 0
    assert lag.worst is None
    assert lag.dead_letters == 0


def test_it_follows_the_oldest_unacknowledged_entry(metering_redis, redis_client):
    # metering_redis is analytics' own (decoding) client, which measures; the consumer's
    # part is played with a raw client, since batches are MessagePack bytes.
    stream = metering_stream(1)
    for ago_s in (30, 20, 10):
        _add(redis_client, stream, NOW - ago_s * 1000)

    # No consumer group yet: the consumer creates it from id 0, so everything waits.
    assert _by_partition(measure(metering_redis, partitions=PARTITIONS, now_ms=NOW))["1"] == (3, 0, 30.0)

    redis_client.xgroup_create(stream, METERING_GROUP, id="0")
    first = redis_client.xreadgroup(METERING_GROUP, "c1", {stream: ">"}, count=1)[0][1]
    # Delivered, not acknowledged: still the oldest.
    assert _by_partition(measure(metering_redis, partitions=PARTITIONS, now_ms=NOW))["1"] == (3, 1, 30.0)

    redis_client.xack(stream, METERING_GROUP, first[0][0])
    # Nothing pending: the first entry after the group's last-delivered id.
    assert _by_partition(measure(metering_redis, partitions=PARTITIONS, now_ms=NOW))["1"] == (3, 0, 20.0)

    rest = redis_client.xreadgroup(METERING_GROUP, "c1", {stream: ">"}, count=10)[0][1]
    assert _by_partition(measure(metering_redis, partitions=PARTITIONS, now_ms=NOW))["1"] == (3, 2, 20.0)
    redis_client.xack(stream, METERING_GROUP, *[sid for sid, _ in rest])
    # All acknowledged: no lag, though the entries stay until trimmed.
    assert _by_partition(measure(metering_redis, partitions=PARTITIONS, now_ms=NOW))["1"] == (3, 0, 0.0)


def test_the_worst_partition_and_the_legacy_stream_count(metering_redis):
    _add(metering_redis, metering_stream(0), NOW - 5_000)
    _add(metering_redis, METERING_STREAM, NOW - 90_000)  # an old gateway's per-request entry

    lag = measure(metering_redis, partitions=PARTITIONS, now_ms=NOW)

    assert lag.worst is not None
    assert lag.worst.partition == LEGACY
    assert lag.worst_age_s == 90.0
    assert _by_partition(lag)["0"] == (1, 0, 5.0)


def test_it_counts_dead_letters(metering_redis):
    for i in range(2):
        metering_redis.xadd(DEAD_LETTER_STREAM, {"b": b"\xc1 not msgpack", "error": "bad encoding"}, id=f"{NOW}-{i}")

    assert measure(metering_redis, partitions=PARTITIONS, now_ms=NOW).dead_letters == 2


def test_a_measurement_survives_the_round_trip_through_the_cache(metering_redis):
    _add(metering_redis, metering_stream(2), NOW - 7_000)
    lag = measure(metering_redis, partitions=PARTITIONS, now_ms=NOW)

    assert MeteringLag.from_dict(lag.to_dict()) == lag
