"""Analytics fixtures: metered requests written as the gateway writes them, in
batches (contract.encode_batch) on the partition streams."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.contract import (
    METERING_BATCH_FIELD,
    METERING_BATCH_VERSION,
    OUTCOME_UNKNOWN,
    MeteredRequest,
    MeteringBatch,
    encode_batch,
    metering_partition,
    metering_stream,
)
from tests.services import requires_postgres as requires_postgres_because

REPO = Path(__file__).resolve().parents[2]


def make_request(
    *,
    ts: int,
    api_id: int = 1,
    version: str = "v1",
    application_id: int = 1,
    key_prefix: str = "tw_abcdefgh",
    subscription_id: int = 1,
    plan_id: int = 1,
    status: int = 200,
    decision: str = "allowed",
    latency_ms: float = 12.5,
    bytes_in: int = 100,
    bytes_out: int = 400,
    api: str = "echo",
    method: str = "GET",
    endpoint: str = "/anything",
    outcome: str = "",
) -> MeteredRequest:
    return MeteredRequest(
        ts=ts, api_id=api_id, api=api, version=version, application_id=application_id, key_prefix=key_prefix,
        subscription_id=subscription_id, plan_id=plan_id, method=method, status=status, decision=decision,
        latency_ms=latency_ms, bytes_in=bytes_in, bytes_out=bytes_out, endpoint=endpoint, outcome=outcome,
    )


def random_requests(
    n: int, *, ts0: int, seed: int = 7, apps: int = 5, span_ms: int = 3_600_000
) -> list[MeteredRequest]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        app = rng.randint(1, apps)
        status = rng.choice([200, 200, 200, 201, 304, 404, 429, 500, 502, 0])
        out.append(
            make_request(
                ts=ts0 + rng.randrange(span_ms), application_id=app, subscription_id=app, plan_id=1 + app % 2,
                api_id=1 + app % 3, version=rng.choice(["v1", "v2"]), key_prefix=f"tw_key{app:05d}",
                status=status, decision="rate_limited" if status == 429 else "allowed",
                latency_ms=rng.lognormvariate(3, 1), bytes_in=rng.randint(0, 2000), bytes_out=rng.randint(0, 9000),
                endpoint=rng.choice(["/items", "/items/{id}", "/orders"]),
                outcome=OUTCOME_UNKNOWN if status == 0 else "",
            )
        )
    return out


_batch_seq = itertools.count()


def make_batches(
    requests: list[MeteredRequest], *, size: int = 100, partitions: int | None = None
) -> list[MeteringBatch]:
    """The gateway's way: each batch holds requests of one partition, with an id unique
    across the fleet (here: this test process and a sequence)."""
    from analytics import conf

    partitions = partitions or conf.METERING_PARTITIONS
    by_partition: dict[int, list[MeteredRequest]] = {}
    for r in requests:
        by_partition.setdefault(metering_partition(r.subscription_id, partitions), []).append(r)
    node = uuid.uuid4().hex[:8]
    batches = []
    for chunk_source in by_partition.values():
        for start in range(0, len(chunk_source), size):
            batches.append(MeteringBatch(
                v=METERING_BATCH_VERSION, id=f"test-{node}:1:0:{next(_batch_seq)}",
                requests=chunk_source[start : start + size],
            ))
    return batches


def batch_partition(batch: MeteringBatch, partitions: int | None = None) -> int:
    from analytics import conf

    return metering_partition(batch.requests[0].subscription_id if batch.requests else 0,
                              partitions or conf.METERING_PARTITIONS)


def xadd_batches(client: Any, batches: list[MeteringBatch]) -> None:
    """One stream entry per batch, on its partition's stream, pipelined."""
    pipe = client.pipeline(transaction=False)
    for batch in batches:
        pipe.xadd(metering_stream(batch_partition(batch)), {METERING_BATCH_FIELD: encode_batch(batch)})
    pipe.execute()


def write_requests(client: Any, requests: list[MeteredRequest], *, size: int = 100) -> list[MeteringBatch]:
    batches = make_batches(requests, size=size)
    xadd_batches(client, batches)
    return batches


def expected_totals(requests: list[MeteredRequest]) -> dict[str, int]:
    return {
        "requests": len(requests),
        "admitted": sum(r.decision == "allowed" or r.outcome == OUTCOME_UNKNOWN for r in requests),
        "errors": sum(r.status >= 400 for r in requests),
        "bytes_in": sum(r.bytes_in for r in requests),
        "bytes_out": sum(r.bytes_out for r in requests),
    }


def pending(client: Any) -> int:
    """Entries delivered and not acknowledged, over every partition stream."""
    from analytics import conf
    from gateway.contract import METERING_GROUP

    total = 0
    for p in range(conf.METERING_PARTITIONS):
        stream = metering_stream(p)
        if client.exists(stream) and client.xinfo_groups(stream):
            total += client.xpending(stream, METERING_GROUP)["pending"]
    return total


def rollup_totals(granularity: str, *, traffic: bool = False) -> dict[str, int]:
    from django.db.models import Sum

    from analytics.models import Rollup, TrafficRollup

    model = TrafficRollup if traffic else Rollup
    agg = model.objects.filter(granularity=granularity).aggregate(
        requests=Sum("requests"), admitted=Sum("admitted"), errors=Sum("errors"),
        bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"),
    )
    return {k: int(v or 0) for k, v in agg.items()}


def rollup_snapshot() -> list[tuple[Any, ...]]:
    from analytics.ingest.metering import METRIC_COLUMNS
    from analytics.models import Rollup

    cols = ["granularity", "bucket", "api_id", "version", "application_id", "key_prefix", "plan_id",
            "subscription_id", "endpoint", "status", "status_class", *METRIC_COLUMNS]
    return sorted(Rollup.objects.values_list(*cols))


@pytest.fixture
def metering_redis(redis_client: Any) -> Iterator[Any]:
    """A bytes client (batches are MessagePack) on the suite's Redis, emptied first."""
    import redis

    from analytics.conf import metering_redis_client

    client: redis.Redis = metering_redis_client()
    yield client
    client.close()


# --- a real Celery worker against the test database -----------------------------------------

requires_postgres = requires_postgres_because(
    "needs PostgreSQL (make test runs it): a worker subprocess cannot share SQLite's in-memory test database"
)


def test_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class Worker:
    """``celery -A portal worker`` as a child process in its own process group."""

    def __init__(self, tmp_path: Path, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            "DATABASE_CONN_MAX_AGE": "0",
            "ANALYTICS_CLAIM_IDLE_MS": "1000",
            **(extra_env or {}),
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"), "-A", "portal", "worker", "--loglevel", "INFO",
                "-Q", "celery,metering",
                "--concurrency", "1", "--without-heartbeat", "--without-mingle", "--without-gossip",
                "-n", f"{name}@%h",
            ],
            cwd=str(REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole process group: the pool child dies mid-work, like a crash."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start(name: str, **extra_env: str) -> Worker:
        worker = Worker(tmp_path, name, extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.05, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def commit_requests(requests: list[MeteredRequest], *, consumer: str = "test", now_ms: int | None = None,
                    partition: int = 0) -> Any:
    """Straight into the ingest service, as one gateway batch (no Redis)."""
    from analytics.ingest import services

    batch = MeteringBatch(v=METERING_BATCH_VERSION, id=f"direct-{uuid.uuid4().hex}", requests=requests)
    return services.metering_batch_commit(batches=[batch], consumer=consumer, now_ms=now_ms, partition=partition)
