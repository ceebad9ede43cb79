"""Redis or the database failing mid-way loses nothing: the batch stays pending
and the next run (claiming it back) counts it exactly once."""

from __future__ import annotations

import time

import pytest
import redis
from django.db import DatabaseError

from analytics.ingest import consumer, services
from tests.analytics.conftest import (
    batch_partition,
    expected_totals,
    pending,
    random_requests,
    rollup_totals,
    write_requests,
)
from tests.services import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_database_failure_leaves_the_batch_pending_for_the_next_run(metering_redis, monkeypatch):
    events = random_requests(400, ts0=int(time.time() * 1000) - 60_000, seed=21)
    batches = write_requests(metering_redis, events, size=20)
    real_commit = services.metering_batch_commit

    def database_down(**kwargs):
        raise DatabaseError("connection to server lost")

    monkeypatch.setattr(services, "metering_batch_commit", database_down)
    with pytest.raises(DatabaseError):
        consumer.consume(client=metering_redis, consumer="w1", budget_s=10, block_ms=0)
    assert rollup_totals("d")["requests"] == 0
    # The first read (all of partition 0) failed: nothing committed, nothing acknowledged.
    first_read = sum(batch_partition(b) == 0 for b in batches)
    assert pending(metering_redis) == first_read > 0

    monkeypatch.setattr(services, "metering_batch_commit", real_commit)
    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    time.sleep(0.01)
    report = consumer.consume(client=metering_redis, consumer="w1", budget_s=10, block_ms=0)
    assert report.claimed == first_read
    assert report.counted == 400
    assert rollup_totals("d") == expected_totals(events)
    assert pending(metering_redis) == 0


def test_redis_going_away_fails_the_run_and_the_next_one_catches_up():
    server = RedisServer().start()  # appendonly, like `make run`: the stream survives a restart
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
        events = random_requests(300, ts0=int(time.time() * 1000) - 60_000, seed=22)
        write_requests(client, events)
        client.bgrewriteaof()
        time.sleep(0.5)
        server.stop()
        with pytest.raises(redis.ConnectionError):
            consumer.consume(client=client, consumer="w1", budget_s=5, block_ms=0)
        assert rollup_totals("d")["requests"] == 0

        restarted = RedisServer(port=server.port, workdir=server.workdir).start()
        for _ in range(100):  # Redis answers LOADING while it replays the AOF
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                time.sleep(0.05)
        report = consumer.consume(client=client, consumer="w1", budget_s=10, block_ms=0)
        assert report.counted == 300
        assert rollup_totals("d") == expected_totals(events)
        restarted.stop()
    finally:
        server.cleanup()
