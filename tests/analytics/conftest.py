"""Analytics fixtures: metering events in the contract's exact stream format."""

from __future__ import annotations

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

from gateway.contract import METERING_STREAM, MeteringEvent

REPO = Path(__file__).resolve().parents[2]


def make_event(
    *,
    ts: int,
    api_id: int | None = 1,
    version: str = "v1",
    application_id: int | None = 1,
    key_prefix: str = "tw_abcdefgh",
    subscription_id: int | None = 1,
    plan_id: int | None = 1,
    status: int = 200,
    decision: str = "allowed",
    latency_ms: float = 12.5,
    bytes_in: int = 100,
    bytes_out: int = 400,
    api: str = "echo",
    method: str = "GET",
) -> MeteringEvent:
    return MeteringEvent(
        id=uuid.uuid4().hex, ts=ts, api_id=api_id, api=api, version=version, application_id=application_id,
        key_prefix=key_prefix, subscription_id=subscription_id, plan_id=plan_id, method=method, status=status,
        decision=decision, latency_ms=latency_ms, bytes_in=bytes_in, bytes_out=bytes_out,
    )


def random_events(n: int, *, ts0: int, seed: int = 7, apps: int = 5, span_ms: int = 3_600_000) -> list[MeteringEvent]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        app = rng.randint(1, apps)
        status = rng.choice([200, 200, 200, 201, 304, 404, 429, 500, 502])
        out.append(
            make_event(
                ts=ts0 + rng.randrange(span_ms), application_id=app, subscription_id=app, plan_id=1 + app % 2,
                api_id=1 + app % 3, version=rng.choice(["v1", "v2"]), key_prefix=f"tw_key{app:05d}",
                status=status, decision="rate_limited" if status == 429 else "allowed",
                latency_ms=rng.lognormvariate(3, 1), bytes_in=rng.randint(0, 2000), bytes_out=rng.randint(0, 9000),
            )
        )
    return out


def xadd_events(client: Any, events: list[MeteringEvent], *, chunk: int = 1000) -> None:
    """The gateway's way: pipelined XADDs in batches."""
    for start in range(0, len(events), chunk):
        pipe = client.pipeline(transaction=False)
        for e in events[start : start + chunk]:
            pipe.xadd(METERING_STREAM, e.to_fields())
        pipe.execute()


def expected_totals(events: list[MeteringEvent]) -> dict[str, int]:
    return {
        "requests": len(events),
        "admitted": sum(e.decision == "allowed" for e in events),
        "errors": sum(e.status >= 400 for e in events),
        "bytes_in": sum(e.bytes_in for e in events),
        "bytes_out": sum(e.bytes_out for e in events),
    }


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
            "subscription_id", "status_class", *METRIC_COLUMNS]
    return sorted(Rollup.objects.values_list(*cols))


@pytest.fixture
def metering_redis(redis_client: Any) -> Iterator[Any]:
    """A decode_responses client on the suite's Redis, emptied first."""
    import redis

    from analytics.conf import redis_client as make_client

    client: redis.Redis = make_client()
    yield client
    client.close()


# --- a real Celery worker against the test database -----------------------------------------

requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (make test runs it): a worker subprocess cannot share SQLite's in-memory test database",
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
