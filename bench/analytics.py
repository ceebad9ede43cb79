"""Analytics benchmarks: aggregation throughput, freshness, dashboard speed.

    .venv/bin/python bench/analytics.py [--events 200000] [--freshness-s 40] [--apps 1000]

Starts its own throwaway Redis and PostgreSQL (tests/services.py), so it needs
nothing running. Writes bench/results/analytics.json.

* events_per_s: events already sitting in the stream, consumed by one process
  (XREADGROUP -> dedupe ledger -> minute/hour/day upserts -> commit -> XACK).
* freshness_p95_s: a real Celery worker and beat with the `make run` defaults
  (beat fires the consumer every 2 s, worker concurrency 2) while a producer
  XADDs background traffic; probe events are timed from XADD until the
  dashboard's rollups show them.
* dashboard_ms: 30 days of rollups for N applications; server time of the
  operator dashboard and of a developer's usage page (Django test client,
  whole request including template rendering).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services import PostgresServer, RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "analytics.json"


def setup_django(redis_url: str, database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", REDIS_URL=redis_url, DATABASE_URL=database_url,
        SECRET_KEY="bench-secret-key-not-for-production-0123456789", ALLOWED_HOSTS="testserver,127.0.0.1",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_events(n: int, *, apps: int, ts0: int, span_ms: int, seed: int = 1) -> list[Any]:
    import random

    from gateway.contract import MeteringEvent

    rng = random.Random(seed)
    statuses = [200] * 16 + [201, 304, 404, 429, 500, 502]
    out = []
    for _ in range(n):
        app = rng.randint(1, apps)
        status = rng.choice(statuses)
        out.append(MeteringEvent(
            id=uuid.uuid4().hex, ts=ts0 + rng.randrange(span_ms), api_id=1 + app % 5, api=f"api{app % 5}",
            version=rng.choice(("v1", "v2")), application_id=app, key_prefix=f"tw_k{app:07d}",
            subscription_id=app, plan_id=1 + app % 3, method="GET", status=status,
            decision="rate_limited" if status == 429 else "allowed", latency_ms=round(rng.lognormvariate(3, 0.8), 2),
            bytes_in=rng.randint(0, 2000), bytes_out=rng.randint(0, 20000),
        ))
    return out


def xadd(client: Any, events: list[Any], chunk: int = 2000) -> None:
    from gateway.contract import METERING_STREAM

    for start in range(0, len(events), chunk):
        pipe = client.pipeline(transaction=False)
        for e in events[start : start + chunk]:
            pipe.xadd(METERING_STREAM, e.to_fields())
        pipe.execute()


def bench_throughput(n: int) -> dict[str, Any]:
    from django.db.models import Sum

    from analytics import conf
    from analytics.ingest import consumer
    from analytics.models import Rollup

    client = conf.redis_client()
    now = int(time.time() * 1000)
    # A burst of current traffic: the last 60 s from 1,000 applications.
    events = make_events(n, apps=1000, ts0=now - 60_000, span_ms=60_000)
    xadd(client, events)
    started = time.perf_counter()
    report = consumer.consume(client=client, consumer="bench", budget_s=600, block_ms=0, trim=False)
    elapsed = time.perf_counter() - started
    counted = Rollup.objects.filter(granularity="d").aggregate(n=Sum("requests"))["n"]
    if report.counted != n or counted != n:
        raise RuntimeError(f"counted {report.counted} events, rollups hold {counted}, expected {n}")
    return {"events": n, "seconds": round(elapsed, 3), "events_per_s": round(n / elapsed), "batches": report.batches,
            "batch_size": conf.BATCH_SIZE}


def bench_freshness(duration_s: float, redis_url: str, database_url: str) -> dict[str, Any]:
    """Worker + beat as in the Procfile; probes timed until the rollups show them."""
    from analytics.models import Rollup
    from gateway.contract import METERING_STREAM, MeteringEvent

    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    celery = str(Path(sys.executable).parent / "celery")
    logdir = ROOT / "bench" / "results"
    procs = [
        subprocess.Popen([celery, "-A", "portal", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
                         cwd=ROOT, env=env, stdout=(logdir / "worker.log").open("wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
        subprocess.Popen([celery, "-A", "portal", "beat", "--loglevel", "WARNING", "--schedule",
                          str(logdir / "celerybeat-schedule")],
                         cwd=ROOT, env=env, stdout=(logdir / "beat.log").open("wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    from analytics.conf import redis_client

    client = redis_client()
    lags: list[float] = []
    try:
        time.sleep(6)  # worker and beat start-up
        pending: dict[str, float] = {}
        background_rate = 1000  # events/s of ordinary traffic around the probes
        deadline = time.monotonic() + duration_s
        next_probe = time.monotonic()
        while time.monotonic() < deadline or pending:
            tick = time.monotonic()
            if tick < deadline:
                xadd(client, make_events(background_rate // 10, apps=200, ts0=int(time.time() * 1000), span_ms=1,
                                         seed=int(tick * 1000)))
                if tick >= next_probe:
                    probe = f"tw_p{uuid.uuid4().hex[:9]}"
                    event = MeteringEvent(
                        id=uuid.uuid4().hex, ts=int(time.time() * 1000), api_id=1, api="api1", version="v1",
                        application_id=999_999, key_prefix=probe, subscription_id=None, plan_id=None, method="GET",
                        status=200, decision="allowed", latency_ms=5.0, bytes_in=0, bytes_out=0,
                    )
                    client.xadd(METERING_STREAM, event.to_fields())
                    pending[probe] = time.monotonic()
                    next_probe = tick + 0.5
            if pending:
                seen = set(Rollup.objects.filter(granularity="m", key_prefix__in=list(pending)).values_list(
                    "key_prefix", flat=True))
                for probe in seen:
                    lags.append(time.monotonic() - pending.pop(probe))
                if time.monotonic() > deadline + 60:
                    raise RuntimeError(f"{len(pending)} probes never became visible")
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    lags.sort()
    return {
        "probes": len(lags), "background_events_per_s": 1000,
        "freshness_p50_s": round(statistics.median(lags), 3),
        "freshness_p95_s": round(lags[int(0.95 * (len(lags) - 1))], 3),
        "freshness_max_s": round(lags[-1], 3),
    }


def seed_dashboard(apps: int) -> Any:
    """30 days of day rollups, 7 days of hour rollups (what the 24 h and 7 d views
    read) and 2 hours of minute rollups, for ``apps`` applications (two status
    classes each), written with the consumer's upsert; then the application-less
    TrafficRollup derived from them in SQL."""
    from datetime import UTC, datetime, timedelta

    from analytics.ingest import ledger
    from analytics.ingest.metering import HIST0, VECTOR_LEN
    from portal.accounts.models import Organization, User
    from portal.catalog.models import Api
    from portal.keys.models import Application

    owner = User.objects.create_user(email="bench-owner@example.test", password=None, is_staff=True)
    orgs = Organization.objects.bulk_create([Organization(name=f"Org {i}", slug=f"org-{i}") for i in range(100)])
    Application.objects.bulk_create(
        [Application(id=i, organization=orgs[i % 100], name=f"App {i}") for i in range(1, apps + 1)]
    )
    Api.objects.bulk_create([Api(id=i, slug=f"api{i}", name=f"API {i}", owner=owner) for i in range(5)])
    now = datetime.now(tz=UTC)

    def vec(n: int) -> list[Any]:
        v: list[Any] = [0] * VECTOR_LEN
        v[0] = v[1] = n
        v[2] = n // 20
        v[3], v[4], v[5] = n * 300, n * 3000, n * 20.0
        v[HIST0 + 7] = n
        return v

    day0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    minute0 = now.replace(second=0, microsecond=0)
    for gran, start, step, count in (
        ("d", day0, timedelta(days=1), 30),
        ("h", hour0, timedelta(hours=1), 7 * 24),
        ("m", minute0, timedelta(minutes=1), 120),
    ):
        for i in range(count):
            bucket_ms = int((start - step * i).timestamp() * 1000)
            cells = {}
            for app in range(1, apps + 1):
                for sc, n in ((2, 40), (5, 2)):
                    cells[(bucket_ms, app % 5, "v1", app, f"tw_k{app:07d}", 1 + app % 3, app, sc)] = vec(n)
            ledger.upsert_rollups({gran: cells})
    from django.db import connection

    from analytics.ingest.metering import METRIC_COLUMNS

    dims = "granularity, bucket, api_id, version, plan_id, status_class"
    sums = ", ".join(f"SUM({c})" for c in METRIC_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO analytics_trafficrollup ({dims}, {', '.join(METRIC_COLUMNS)}) "  # noqa: S608
            f"SELECT {dims}, {sums} FROM analytics_rollup GROUP BY {dims}"
        )
    return owner


def bench_dashboards(apps: int, rounds: int = 5) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client

    from analytics.models import Rollup
    from portal.accounts.models import Membership, Organization, User

    started = time.perf_counter()
    operator = seed_dashboard(apps)
    seed_s = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    developer = User.objects.create_user(email="bench-dev@example.test", password=None)
    Membership.objects.create(organization=Organization.objects.get(slug="org-7"), user=developer, role="owner")
    out: dict[str, Any] = {
        "applications": apps, "rollup_rows": Rollup.objects.count(), "seed_s": round(seed_s, 1),
        "loadavg_before": os.getloadavg(),
    }
    op, dev = Client(), Client()
    op.force_login(operator)
    dev.force_login(developer)
    pages = {
        "operator_24h": (op, "/analytics/?range=24h"),
        "operator_7d": (op, "/analytics/?range=7d"),
        "operator_30d": (op, "/analytics/?range=30d"),
        "developer_24h": (dev, "/analytics/usage/?application=7&range=24h"),
        "developer_30d": (dev, "/analytics/usage/?application=7&range=30d"),
    }
    for name, (client, url) in pages.items():
        timings = []
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings = timings[1:]  # first round warms caches and imports
        out[f"{name}_ms"] = round(statistics.median(timings), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--freshness-s", type=float, default=40.0)
    parser.add_argument("--apps", type=int, default=1000)
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(appendonly=False).start()
    pg = PostgresServer().start()
    try:
        setup_django(redis_server.url, pg.url)
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}}
        print("throughput ...", flush=True)
        results["throughput"] = bench_throughput(args.events)
        print(results["throughput"], flush=True)
        from django.db import connection

        connection.close()
        print("freshness ...", flush=True)
        results["freshness"] = bench_freshness(args.freshness_s, redis_server.url, pg.url)
        print(results["freshness"], flush=True)
        print("dashboards ...", flush=True)
        from analytics.models import ProcessedEvent, Rollup, TrafficRollup

        Rollup.objects.all().delete()
        TrafficRollup.objects.all().delete()
        ProcessedEvent.objects.all().delete()
        results["dashboards"] = bench_dashboards(args.apps)
        print(results["dashboards"], flush=True)
        results["machine"]["loadavg_at_end"] = os.getloadavg()
        results["events_per_s"] = results["throughput"]["events_per_s"]
        results["freshness_p95_s"] = results["freshness"]["freshness_p95_s"]
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    finally:
        from django.db import connections

        connections.close_all()
        pg.cleanup()
        redis_server.cleanup()


if __name__ == "__main__":
    main()
