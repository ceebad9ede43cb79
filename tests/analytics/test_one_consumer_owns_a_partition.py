"""Each partition has one owner at a time (a lease in Redis), so each rollup row has a
single writer; a dead owner's lease lapses and its pending entries are taken over."""

from __future__ import annotations

import threading
import time

import pytest

from analytics.ingest import consumer
from analytics.models import TrafficRollup
from gateway.contract import metering_stream
from tests.analytics.conftest import (
    batch_partition,
    expected_totals,
    pending,
    random_requests,
    rollup_totals,
    write_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_consumer_skips_an_owned_partition(metering_redis):
    write_requests(metering_redis, random_requests(200, ts0=int(time.time() * 1000) - 60_000))
    owner = consumer.Lease(metering_redis, 2, "someone-else")
    assert owner.acquire()
    report = consumer.consume(client=metering_redis, consumer="c", budget_s=10, block_ms=0)
    assert report.busy == [2]
    assert report.partitions == [0, 1, 3]
    assert metering_redis.xlen(metering_stream(2)) > 0
    owner.release()
    report = consumer.consume(client=metering_redis, consumer="c", budget_s=10, block_ms=0)
    assert report.busy == []
    assert rollup_totals("d")["requests"] == 200


def test_an_owner_that_lost_its_lease_commits_nothing_more(metering_redis):
    write_requests(metering_redis, random_requests(100, ts0=int(time.time() * 1000) - 60_000), size=10)
    lease = consumer.Lease(metering_redis, 0, "stalled", ms=50)
    assert lease.acquire()
    time.sleep(0.1)  # it stalled past its lease...
    assert consumer.Lease(metering_redis, 0, "successor").acquire()  # ...and someone took over
    consumer.ensure_group(metering_redis, metering_stream(0))
    [[_, entries]] = metering_redis.xreadgroup("analytics", "stalled", {metering_stream(0): ">"}, count=10)
    with pytest.raises(consumer.LeaseLost):
        consumer.process_entries(metering_redis, consumer.sources(0)[0], entries, consumer="stalled",
                                 partition=0, lease=lease, report=consumer.ConsumeReport())
    assert rollup_totals("d")["requests"] == 0
    assert pending(metering_redis) == len(entries)  # left for the new owner to claim


def test_a_run_that_loses_its_lease_stops_quietly(metering_redis, monkeypatch):
    write_requests(metering_redis, random_requests(100, ts0=int(time.time() * 1000) - 60_000), size=10)

    def renew_fails(self):
        return False

    monkeypatch.setattr(consumer.Lease, "renew", renew_fails)
    report = consumer.consume_partition(1, client=metering_redis, consumer="c", budget_s=10, block_ms=0)
    assert report.partitions == [1]
    assert report.reads == 0
    assert rollup_totals("d")["requests"] == 0


def test_a_dead_owners_lease_lapses_and_its_entries_are_claimed(metering_redis, monkeypatch):
    requests = random_requests(400, ts0=int(time.time() * 1000) - 60_000, seed=9)
    batches = write_requests(metering_redis, requests, size=20)
    # An owner reads partition 1 and dies (SIGKILL: no release, no ack).
    dead = consumer.Lease(metering_redis, 1, "dead", ms=200)
    assert dead.acquire()
    consumer.ensure_group(metering_redis, metering_stream(1))
    metering_redis.xreadgroup("analytics", "dead", {metering_stream(1): ">"}, count=100)
    report = consumer.consume(client=metering_redis, consumer="next", budget_s=10, block_ms=0)
    assert report.busy == [1]
    time.sleep(0.3)
    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 250)
    report = consumer.consume(client=metering_redis, consumer="next", budget_s=10, block_ms=0)
    assert report.partitions == [0, 1, 2, 3]
    assert report.claimed == sum(batch_partition(b) == 1 for b in batches)
    assert rollup_totals("d") == expected_totals(requests)
    assert pending(metering_redis) == 0


def test_concurrent_consumers_never_share_a_partition(metering_redis):
    """Four threads each try every partition for a while: at no moment do two of them
    own the same partition, and every request is counted once."""
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("threads on SQLite's in-memory test database would share one connection")
    requests = random_requests(4000, ts0=int(time.time() * 1000) - 60_000, seed=4, apps=40)
    write_requests(metering_redis, requests, size=25)
    owners: dict[int, str] = {}
    overlaps: list[int] = []
    guard = threading.Lock()
    real = consumer.process_entries

    def watched(client, source, entries, *, consumer: str, partition: int, lease, report):
        with guard:
            if owners.setdefault(partition, consumer) != consumer:
                overlaps.append(partition)
        try:
            time.sleep(0.002)
            return real(client, source, entries, consumer=consumer, partition=partition, lease=lease, report=report)
        finally:
            with guard:
                owners.pop(partition, None)

    consumer.process_entries = watched  # type: ignore[assignment]
    errors: list[BaseException] = []

    def run(name: str) -> None:
        from analytics.conf import metering_redis_client

        client = metering_redis_client()
        try:
            for _ in range(5):
                consumer.consume(client=client, consumer=name, budget_s=10, block_ms=0, batch_size=3)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        consumer.process_entries = real  # type: ignore[assignment]
    assert not errors, errors
    assert not overlaps
    consumer.consume(client=metering_redis, consumer="final", budget_s=10, block_ms=0)
    assert rollup_totals("d") == expected_totals(requests)
    # Traffic rows carry their writer's partition: one writer per row.
    assert set(TrafficRollup.objects.values_list("partition", flat=True)) <= {0, 1, 2, 3}
