"""A real Celery worker killed mid-batch (SIGKILL) and restarted loses nothing
and double-counts nothing; so does a crash between the commit and the XACK."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer
from analytics.ingest.tasks import metering_consume
from analytics.models import ConsumerStat, ProcessedBatch, Rollup
from tests.analytics.conftest import (
    batch_partition,
    expected_totals,
    pending,
    random_requests,
    requires_postgres,
    rollup_totals,
    wait_until,
    write_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)

N = 60_000
# A killed worker's lease lapses after this; its entries are claimed back after CLAIM_IDLE_MS (1 s).
WORKER_ENV = {"ANALYTICS_BATCH_SIZE": "4", "ANALYTICS_LEASE_MS": "1500"}


def _counted() -> int:
    return sum(ConsumerStat.objects.values_list("events_counted", flat=True))


def _per_application(granularity: str) -> dict[int, int]:
    from django.db.models import Sum

    rows = Rollup.objects.filter(granularity=granularity).values("application_id").annotate(n=Sum("requests"))
    return {r["application_id"]: r["n"] for r in rows}


@requires_postgres
@pytest.mark.slow
def test_it_survives_a_worker_killed_mid_batch(metering_redis, start_worker):
    requests = random_requests(N, ts0=int(time.time() * 1000) - 7_200_000, seed=11, apps=20)
    batches = write_requests(metering_redis, requests, size=500)

    # Kill while a read is in flight: some committed, entries delivered but not acked.
    def mid_batch() -> bool:
        return _counted() > 0 and pending(metering_redis) > 0

    # The kill can, rarely, land in the instant between one read's XACK and the next
    # read; then nothing is in flight and the attempt proves nothing, so try again.
    for attempt in range(5):
        worker = start_worker(f"crash{attempt}", **WORKER_ENV)
        metering_consume.delay()
        wait_until(mid_batch, timeout=60, interval=0.005, message="worker never got mid-batch:\n" + worker.output())
        worker.kill()
        if pending(metering_redis) > 0:
            break
    else:
        pytest.fail("five kills in a row missed every read in flight")
    counted_at_kill = _counted()
    assert 0 < counted_at_kill < N

    restarted = start_worker("restarted", **WORKER_ENV)

    def drained() -> bool:
        if _counted() >= N and pending(metering_redis) == 0:
            return True
        for p in range(4):
            metering_consume.delay(partition=p)  # beat's job in production; a queued extra run is harmless
        time.sleep(0.5)
        return False

    wait_until(drained, timeout=90, interval=0.2, message="restarted worker never drained:\n" + restarted.output())
    want = expected_totals(requests)
    assert rollup_totals("m") == want
    assert rollup_totals("h") == want
    assert rollup_totals("d") == want
    per_app: dict[int, int] = {}
    for r in requests:
        per_app[r.application_id] = per_app.get(r.application_id, 0) + 1
    assert _per_application("d") == per_app
    assert ProcessedBatch.objects.count() == len(batches)
    assert _counted() == N


def test_it_does_not_double_count_after_a_crash_between_commit_and_ack(metering_redis, monkeypatch):
    requests = random_requests(2000, ts0=int(time.time() * 1000) - 600_000, seed=13)
    batches = write_requests(metering_redis, requests, size=50)

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("process died before XACK")

    with monkeypatch.context() as m:
        m.setattr(metering_redis, "xack", crash)
        with pytest.raises(Crash):
            consumer.consume(client=metering_redis, consumer="dead", budget_s=30, block_ms=0)
    first_read = [b for b in batches if batch_partition(b) == 0]
    assert rollup_totals("d")["requests"] == sum(len(b.requests) for b in first_read)  # it did commit
    assert pending(metering_redis) == len(first_read)

    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    time.sleep(0.01)
    report = consumer.consume(client=metering_redis, consumer="rescuer", budget_s=30, block_ms=0)
    assert report.claimed == len(first_read)
    assert report.duplicates == sum(len(b.requests) for b in first_read)
    assert rollup_totals("m") == expected_totals(requests)
    assert rollup_totals("d") == expected_totals(requests)
    assert pending(metering_redis) == 0
