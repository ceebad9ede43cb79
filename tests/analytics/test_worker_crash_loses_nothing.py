"""A real Celery worker killed mid-batch (SIGKILL) and restarted loses nothing
and double-counts nothing; so does a crash between the commit and the XACK."""

from __future__ import annotations

import time

import pytest

from analytics.ingest import consumer
from analytics.ingest.tasks import metering_consume
from analytics.models import ConsumerStat, ProcessedEvent, Rollup
from gateway.contract import METERING_GROUP, METERING_STREAM
from tests.analytics.conftest import (
    expected_totals,
    random_events,
    requires_postgres,
    rollup_totals,
    wait_until,
    xadd_events,
)

pytestmark = pytest.mark.django_db(transaction=True)

N = 60_000


def _counted() -> int:
    return sum(ConsumerStat.objects.values_list("events_counted", flat=True))


def _per_application(granularity: str) -> dict[int, int]:
    from django.db.models import Sum

    rows = Rollup.objects.filter(granularity=granularity).values("application_id").annotate(n=Sum("requests"))
    return {r["application_id"]: r["n"] for r in rows}


@requires_postgres
@pytest.mark.slow
def test_it_survives_a_worker_killed_mid_batch(metering_redis, start_worker):
    events = random_events(N, ts0=int(time.time() * 1000) - 7_200_000, seed=11, apps=20)
    xadd_events(metering_redis, events, chunk=5000)
    # Kill while a batch is in flight: some batches committed, entries delivered but not acked.
    def mid_batch() -> bool:
        return _counted() > 0 and metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] > 0

    # The kill can, rarely, land in the instant between one batch's XACK and the next
    # read; then nothing is in flight and the attempt proves nothing, so try again.
    for attempt in range(5):
        worker = start_worker(f"crash{attempt}", ANALYTICS_BATCH_SIZE="2000")
        metering_consume.delay()
        wait_until(mid_batch, timeout=60, interval=0.005, message="worker never got mid-batch:\n" + worker.output())
        worker.kill()
        if metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] > 0:
            break
    else:
        pytest.fail("five kills in a row missed every batch in flight")
    counted_at_kill = _counted()
    assert 0 < counted_at_kill < N

    restarted = start_worker("restarted", ANALYTICS_BATCH_SIZE="2000")

    def drained() -> bool:
        if _counted() >= N and metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] == 0:
            return True
        metering_consume.delay()  # beat's job in production; a queued extra run is harmless
        time.sleep(0.5)
        return False

    wait_until(drained, timeout=90, interval=0.2, message="restarted worker never drained:\n" + restarted.output())
    want = expected_totals(events)
    assert rollup_totals("m") == want
    assert rollup_totals("h") == want
    assert rollup_totals("d") == want
    per_app: dict[int, int] = {}
    for e in events:
        per_app[e.application_id] = per_app.get(e.application_id, 0) + 1
    assert _per_application("d") == per_app
    assert ProcessedEvent.objects.count() == N
    assert _counted() == N


def test_it_does_not_double_count_after_a_crash_between_commit_and_ack(metering_redis, monkeypatch):
    events = random_events(2000, ts0=int(time.time() * 1000) - 600_000, seed=13)
    xadd_events(metering_redis, events)

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash("process died before XACK")

    with monkeypatch.context() as m:
        m.setattr(metering_redis, "xack", crash)
        with pytest.raises(Crash):
            consumer.consume(client=metering_redis, consumer="dead", budget_s=30, block_ms=0)
    assert rollup_totals("d")["requests"] > 0  # the first batch did commit
    assert metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] == 2000

    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    time.sleep(0.01)
    report = consumer.consume(client=metering_redis, consumer="rescuer", budget_s=30, block_ms=0)
    assert report.claimed == 2000
    assert rollup_totals("m") == expected_totals(events)
    assert rollup_totals("d") == expected_totals(events)
    assert metering_redis.xpending(METERING_STREAM, METERING_GROUP)["pending"] == 0


def test_it_trims_only_committed_entries(metering_redis, monkeypatch):
    events = random_events(300, ts0=int(time.time() * 1000) - 60_000, seed=17)
    xadd_events(metering_redis, events)
    # A consumer reads 100 entries and dies before committing them.
    metering_redis.xgroup_create(METERING_STREAM, METERING_GROUP, id="0", mkstream=True)
    metering_redis.xreadgroup(METERING_GROUP, "dead", {METERING_STREAM: ">"}, count=100)
    consumer.consume(client=metering_redis, consumer="live", budget_s=30, block_ms=0, trim=False)
    trimmed = consumer.trim_committed(metering_redis, keep_s=0)
    # Nothing at or after the dead consumer's oldest pending entry may go.
    assert trimmed == 0
    assert metering_redis.xlen(METERING_STREAM) == 300

    monkeypatch.setattr(consumer.conf, "CLAIM_IDLE_MS", 1)
    consumer.consume(client=metering_redis, consumer="live", budget_s=30, block_ms=0, trim=False)
    assert consumer.trim_committed(metering_redis, keep_s=0) == 299  # the last delivered entry stays
    assert rollup_totals("d") == expected_totals(events)
