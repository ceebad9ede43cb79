"""Two consumers on different partitions run side by side under load for a minute: zero
deadlocks, and no lock wait over 100 ms on rollup rows (issue 15's acceptance).

Partitions split the traffic by subscription, so each rollup row has one writer. The
test feeds both partitions with requests that share everything but the subscription
(same API, version, plan, endpoint, status and minute, and one API key), which is where
two writers would collide if any rollup row were shared.

How waits are seen: a probe samples ``pg_locks`` joined with ``pg_stat_activity`` every
10 ms. Each ungranted lock has a ``waitstart`` (PostgreSQL 14+), so one sample gives a
wait's exact age so far; the longest age seen for it is a lower bound of how long it
lasted. A wait counts as "on rollup rows" when the waiting statement names a rollup
table. A deadlock shows as an error in a consumer and in ``pg_stat_database.deadlocks``.
``test_the_probe_sees_a_rollup_row_wait`` proves the probe sees what it looks for.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import Sum

from analytics import conf
from analytics.ingest import consumer
from analytics.ingest.lag import measure
from analytics.models import Rollup
from gateway.contract import (
    METERING_BATCH_FIELD,
    METERING_BATCH_VERSION,
    MeteredRequest,
    MeteringBatch,
    encode_batch,
    metering_partition,
    metering_stream,
)
from portal.keys import services as keys
from tests.services import requires_postgres as requires_postgres_because

DURATION_S = 60  # the issue's minute under load
EVENTS_PER_S_PER_PARTITION = 2_000
BATCHES_PER_S_PER_PARTITION = 10
MAX_ROLLUP_WAIT_S = 0.100
SAMPLE_EVERY_S = 0.010
DRAIN_TIMEOUT_S = 120  # after the load stops, both partitions must catch up within this
PARTITIONS = (0, 1)

requires_postgres = requires_postgres_because(
    "row locks, pg_locks and deadlocks are PostgreSQL's; SQLite has one writer at a time"
)


@dataclass
class Wait:
    query: str
    relation: str
    longest_s: float = 0.0

    @property
    def on_rollups(self) -> bool:
        return "rollup" in self.query.lower() or "rollup" in self.relation.lower()


@dataclass
class LockWaitProbe:
    """Samples every ungranted lock of other backends, with its wait age, until stopped."""

    waits: dict[tuple[int, str], Wait] = field(default_factory=dict)
    samples: int = 0
    longest_gap_s: float = 0.0
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LockWaitProbe:
        self._thread = threading.Thread(target=self._run, name="lock-wait-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last = time.monotonic()
        try:
            with connections["default"].cursor() as cur:
                while not self._stop.is_set():
                    cur.execute(
                        "SELECT l.pid, l.waitstart::text, coalesce(l.relation::regclass::text, ''), "
                        "extract(epoch FROM clock_timestamp() - l.waitstart), coalesce(a.query, '') "
                        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE NOT l.granted AND l.pid <> pg_backend_pid() AND l.waitstart IS NOT NULL"
                    )
                    for pid, waitstart, relation, age, query in cur.fetchall():
                        wait = self.waits.setdefault((pid, waitstart), Wait(query=query, relation=relation))
                        wait.longest_s = max(wait.longest_s, float(age))
                    self.samples += 1
                    now = time.monotonic()
                    self.longest_gap_s = max(self.longest_gap_s, now - last)
                    last = now
                    self._stop.wait(SAMPLE_EVERY_S)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()

    def rollup_waits_over(self, limit_s: float) -> list[Wait]:
        return [w for w in self.waits.values() if w.on_rollups and w.longest_s >= limit_s]


def _deadlocks() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


# --- the probe itself ------------------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_probe_sees_a_rollup_row_wait():
    """Without this, a probe that saw nothing would pass the test below."""
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS probe_rollup (id int PRIMARY KEY, n int)")
        cur.execute("INSERT INTO probe_rollup VALUES (1, 0) ON CONFLICT DO NOTHING")
    locked = threading.Event()

    def holder() -> None:
        try:
            with connections["default"].cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT n FROM probe_rollup WHERE id = 1 FOR UPDATE")
                locked.set()
                time.sleep(0.3)
                cur.execute("COMMIT")
        finally:
            connections.close_all()

    def waiter() -> None:
        try:
            locked.wait(5)
            with connections["default"].cursor() as cur:
                cur.execute("UPDATE probe_rollup SET n = n + 1 WHERE id = 1")
        finally:
            connections.close_all()

    probe = LockWaitProbe().start()
    try:
        threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    finally:
        probe.stop()
        with connection.cursor() as cur:
            cur.execute("DROP TABLE probe_rollup")

    assert not probe.errors, probe.errors
    caught = probe.rollup_waits_over(MAX_ROLLUP_WAIT_S)
    assert caught, probe.waits
    assert "probe_rollup" in caught[0].query


# --- the acceptance test ---------------------------------------------------------------------


def _subscriptions_of(partition: int, partitions: int, count: int) -> list[int]:
    found = (s for s in itertools.count(1) if metering_partition(s, partitions) == partition)
    return list(itertools.islice(found, count))


@requires_postgres
@pytest.mark.slow
@pytest.mark.timeout(DURATION_S + DRAIN_TIMEOUT_S + 120)
@pytest.mark.django_db(transaction=True)
def test_two_partitions_never_wait_on_each_others_rollup_rows(metering_redis, redis_client, alice, alice_app):
    partitions = conf.METERING_PARTITIONS
    assert partitions >= 2
    # One key whose requests reach both partitions (its application subscribes twice):
    # marking it used must not make the two consumers wait on each other either.
    shared_key = keys.api_key_issue(application=alice_app, actor=alice).key
    subs = {p: _subscriptions_of(p, partitions, 3) for p in PARTITIONS}
    per_batch = EVENTS_PER_S_PER_PARTITION // BATCHES_PER_S_PER_PARTITION
    written = {p: 0 for p in PARTITIONS}
    stop = threading.Event()
    errors: list[tuple[str, BaseException]] = []
    reports: dict[int, list[Any]] = {p: [] for p in PARTITIONS}

    def request(sub: int, ts: int, n: int) -> MeteredRequest:
        status = (200, 200, 200, 404, 500)[n % 5]
        return MeteredRequest(
            ts=ts, api_id=1, api="echo", version="v1", application_id=alice_app.pk, key_prefix=shared_key.prefix,
            subscription_id=sub, plan_id=1, method="GET", status=status, decision="allowed",
            latency_ms=5.0 + n % 40, bytes_in=100, bytes_out=400, endpoint="/anything",
        )

    def gateway() -> None:
        seq = itertools.count()
        try:
            while not stop.is_set():
                tick = time.monotonic()
                ts = int(time.time() * 1000)
                for p in PARTITIONS:
                    n = next(seq)
                    batch = MeteringBatch(
                        v=METERING_BATCH_VERSION, id=f"contention:{p}:{n}",
                        requests=[request(subs[p][i % len(subs[p])], ts, i) for i in range(per_batch)],
                    )
                    redis_client.xadd(metering_stream(p), {METERING_BATCH_FIELD: encode_batch(batch)})
                    written[p] += per_batch
                stop.wait(max(0.0, 1 / BATCHES_PER_S_PER_PARTITION - (time.monotonic() - tick)))
        except BaseException as exc:
            errors.append(("gateway", exc))

    def consume(p: int, until: threading.Event) -> None:
        try:
            while not until.is_set():
                reports[p].append(consumer.consume_partition(p, consumer=f"contention-{p}", budget_s=2, block_ms=100))
        except BaseException as exc:  # a deadlock arrives here as django.db.OperationalError
            errors.append((f"consumer {p}", exc))
        finally:
            connections.close_all()

    deadlocks_before = _deadlocks()
    probe = LockWaitProbe().start()
    consumers_stop = threading.Event()
    threads = [threading.Thread(target=gateway, name="gateway")] + [
        threading.Thread(target=consume, args=(p, consumers_stop), name=f"consumer-{p}") for p in PARTITIONS
    ]
    try:
        for t in threads:
            t.start()
        load_until = time.monotonic() + DURATION_S
        while time.monotonic() < load_until and not errors:
            time.sleep(0.5)
        stop.set()
        # Let both catch up, still side by side, then stop them.
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not errors:
            lag = measure(metering_redis, partitions=partitions)
            if all(s.age_s == 0 for s in lag.streams if s.partition in {str(p) for p in PARTITIONS}):
                break
            time.sleep(0.5)
        consumers_stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        consumers_stop.set()
        probe.stop()
    time.sleep(1.5)  # backends flush their statistics (deadlock counts) within a second of exiting

    assert not errors, errors
    assert not probe.errors, probe.errors
    assert _deadlocks() == deadlocks_before
    assert probe.samples >= DURATION_S * 20, (probe.samples, probe.longest_gap_s)  # the probe kept looking
    slow = probe.rollup_waits_over(MAX_ROLLUP_WAIT_S)
    assert not slow, [(w.longest_s, w.query[:200]) for w in slow]
    # Both really worked concurrently, and what the gateway wrote is what the rollups count.
    assert all(written[p] >= DURATION_S * EVENTS_PER_S_PER_PARTITION // 2 for p in PARTITIONS), written
    assert all(any(r.batches for r in reports[p]) for p in PARTITIONS), reports
    lag = measure(metering_redis, partitions=partitions)
    assert [s.age_s for s in lag.streams if s.partition in {"0", "1"}] == [0, 0], lag
    counted = Rollup.objects.filter(granularity="d").aggregate(n=Sum("requests"))["n"] or 0
    assert counted == sum(written.values())
    other = [(w.longest_s, w.query[:120]) for w in probe.waits.values() if not w.on_rollups]
    print(f"probe: {probe.samples} samples, longest gap {probe.longest_gap_s * 1000:.0f} ms; "
          f"{len(probe.waits)} lock waits seen, longest elsewhere: {max(other, default=None)}")
