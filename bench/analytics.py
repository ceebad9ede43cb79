"""Analytics benchmarks: ingest throughput, freshness, Redis cost, dashboard speed.

    .venv/bin/python bench/analytics.py [--batches 500] [--freshness-s 40] [--rate 10000] [--apps 1000]
                                        [--profile] [--skip-dashboards]

Starts its own throwaway Redis and PostgreSQL (tests/services.py), so it needs
nothing running. Writes bench/results/analytics.json.

* events_per_s: one partition pre-filled with ``--batches`` gateway batches of 200-1000
  requests each (contract.encode_batch, one stream entry per batch), drained by one
  consumer process end to end: XREADGROUP -> decode -> batch-id ledger -> aggregation ->
  minute/hour/day upserts of Rollup and TrafficRollup -> commit -> XACK.
* events_per_s_2_consumers: the same on two partitions, drained by two consumer
  processes at once (wall time from the first start to the last finish).
* redis_bytes_per_pending_event: MEMORY USAGE of the pre-filled stream / its requests.
* freshness_p95_s: a Celery worker per queue as operations.md recommends (``-Q metering``
  with one process per partition, ``-Q celery``) and beat, while a producer writes
  ``--rate`` requests/s of background traffic in batches over every partition; probe
  requests are timed from XADD until the dashboard's minute rollups show them.
* dashboard_ms: 30 days of rollups for N applications; server time of the
  operator dashboard and of a developer's usage page (Django test client,
  whole request including template rendering).
* --profile: the single-consumer drain under cProfile, the top of it printed
  (profiling slows it: the figure of a profiled run is not the benchmark's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
STATUSES = [200] * 16 + [201, 304, 404, 429, 500, 502]
ENDPOINTS = ["/items", "/items/{id}", "/orders", "/orders/{id}", "/search"]


def setup_django(redis_url: str, database_url: str, *, migrate: bool = True) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings", DEBUG="1", REDIS_URL=redis_url, DATABASE_URL=database_url,
        SECRET_KEY="bench-secret-key-not-for-production-0123456789", ALLOWED_HOSTS="testserver,127.0.0.1",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


# Traffic shape. By default applications' traffic follows a Zipf law (s = 1.1: a few
# big callers, a long tail) and endpoints are skewed too, as API traffic is; --uniform
# spreads it evenly over every application, endpoint and status (the worst case: nearly
# every request is a rollup row of its own).
UNIFORM = False
ENDPOINT_WEIGHTS = [50, 25, 12, 8, 5]


def make_batches(partition: int, count: int, *, apps: int, partitions: int, ts0: int, seed: int,
                 sizes: tuple[int, int] = (200, 1000), span_ms: int = 1000) -> list[Any]:
    """Gateway-like batches for one partition: each a worker's flush, requests within
    ``span_ms`` of each other, from subscriptions that hash to the partition."""
    from gateway.contract import METERING_BATCH_VERSION, MeteredRequest, MeteringBatch

    rng = random.Random(seed)
    subs = [s for s in range(1, apps * partitions + 1) if s % partitions == partition][:apps]
    app_weights = None if UNIFORM else [1 / (rank ** 1.1) for rank in range(1, len(subs) + 1)]
    endpoint_weights = None if UNIFORM else ENDPOINT_WEIGHTS
    node = uuid.uuid4().hex[:8]
    out = []
    for seq in range(count):
        t = ts0 + seq * span_ms // 4
        requests = []
        size = rng.randint(*sizes)
        picks = rng.choices(subs, weights=app_weights, k=size)
        endpoints = rng.choices(ENDPOINTS, weights=endpoint_weights, k=size)
        for sub, endpoint in zip(picks, endpoints, strict=True):
            status = rng.choice(STATUSES)
            requests.append(MeteredRequest(
                ts=t + rng.randrange(span_ms), api_id=1 + sub % 5, api=f"api{sub % 5}",
                version=rng.choice(("v1", "v2")),
                application_id=sub, key_prefix=f"tw_k{sub:07d}", subscription_id=sub, plan_id=1 + sub % 3,
                method="GET", status=status, decision="rate_limited" if status == 429 else "allowed",
                latency_ms=round(rng.lognormvariate(3, 0.8), 2), bytes_in=rng.randint(0, 2000),
                bytes_out=rng.randint(0, 20000), endpoint=endpoint,
            ))
        out.append(MeteringBatch(v=METERING_BATCH_VERSION, id=f"bench-{node}:{partition}:0:{seq}", requests=requests))
    return out


def xadd_batches(client: Any, partition: int, batches: list[Any], chunk: int = 100) -> None:
    from gateway.contract import METERING_BATCH_FIELD, encode_batch, metering_stream

    stream = metering_stream(partition)
    for start in range(0, len(batches), chunk):
        pipe = client.pipeline(transaction=False)
        for b in batches[start : start + chunk]:
            pipe.xadd(stream, {METERING_BATCH_FIELD: encode_batch(b)})
        pipe.execute()


def prefill(partition: int, n_batches: int, *, apps: int, seed: int) -> int:
    from analytics import conf

    batches = make_batches(partition, n_batches, apps=apps, partitions=conf.METERING_PARTITIONS,
                           ts0=int(time.time() * 1000) - 120_000, seed=seed)
    xadd_batches(conf.metering_redis_client(), partition, batches)
    return sum(len(b.requests) for b in batches)


def consume_one(partition: int) -> dict[str, Any]:
    """Drain one partition in this process; what a consumer process does, timed."""
    from analytics.ingest import consumer

    started = time.time()
    report = consumer.consume_partition(partition, consumer=f"bench-{partition}", budget_s=600, block_ms=0,
                                        trim=False)
    return {"partition": partition, "started": started, "ended": time.time(), "counted": report.counted,
            "reads": report.reads}


def bench_throughput(n_batches: int, apps: int, profile: bool) -> dict[str, Any]:
    from django.db.models import Sum

    from analytics import conf
    from analytics.models import Rollup
    from gateway.contract import metering_stream

    n = prefill(0, n_batches, apps=apps, seed=1)
    client = conf.metering_redis_client()
    stream_bytes = int(client.memory_usage(metering_stream(0), samples=0) or 0)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    result = consume_one(0)
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    elapsed = result["ended"] - result["started"]
    counted = Rollup.objects.filter(granularity="d").aggregate(n=Sum("requests"))["n"]
    if result["counted"] != n or counted != n:
        raise RuntimeError(f"counted {result['counted']} requests, rollups hold {counted}, expected {n}")
    return {"batches": n_batches, "events": n, "seconds": round(elapsed, 3), "events_per_s": round(n / elapsed),
            "reads": result["reads"], "entries_per_read": conf.BATCH_SIZE,
            "redis_bytes_per_pending_event": round(stream_bytes / n, 1), "stream_bytes": stream_bytes}


def bench_two_consumers(n_batches: int, apps: int, redis_url: str, database_url: str) -> dict[str, Any]:
    """Two consumer processes, partitions 1 and 2, at the same time."""
    n = prefill(1, n_batches, apps=apps, seed=2) + prefill(2, n_batches, apps=apps, seed=3)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    procs = [
        subprocess.Popen([sys.executable, __file__, "--consume-partition", str(p)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, text=True)
        for p in (1, 2)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode:
            raise RuntimeError(f"consumer exited {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    counted = sum(r["counted"] for r in results)
    if counted != n:
        raise RuntimeError(f"two consumers counted {counted}, expected {n}")
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {"events": n, "seconds": round(wall, 3), "events_per_s_2_consumers": round(n / wall),
            "per_consumer_s": [round(r["ended"] - r["started"], 3) for r in results]}


def bench_freshness(duration_s: float, rate: int, redis_url: str, database_url: str) -> dict[str, Any]:
    """Workers + beat; background traffic in batches; probes timed until the rollups show them."""
    import msgspec

    from analytics import conf
    from analytics.models import Rollup
    from gateway.contract import METERING_BATCH_VERSION, MeteringBatch

    partitions = conf.METERING_PARTITIONS
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    celery = str(Path(sys.executable).parent / "celery")
    logdir = ROOT / "bench" / "results"

    def start(args: list[str], log: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([celery, "-A", "portal", *args], cwd=ROOT, env=env,
                                stdout=(logdir / log).open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    procs = [
        start(["worker", "-Q", "metering", "-n", "metering@%h", "--loglevel", "WARNING", "--concurrency",
               str(partitions)], "worker-metering.log"),
        start(["worker", "-Q", "celery", "--loglevel", "WARNING", "--concurrency", "2"], "worker.log"),
        start(["beat", "--loglevel", "WARNING", "--schedule", str(logdir / "celerybeat-schedule")], "beat.log"),
    ]
    client = conf.metering_redis_client()
    lags: list[float] = []
    tick_s = 0.1
    try:
        time.sleep(6)  # workers and beat start-up
        pending: dict[str, float] = {}
        deadline = time.monotonic() + duration_s
        next_probe = time.monotonic()
        seq = 0
        while time.monotonic() < deadline or pending:
            tick = time.monotonic()
            if tick < deadline:
                # One batch per partition per tick: rate requests/s in all.
                per_batch = max(1, int(rate * tick_s / partitions))
                for p in range(partitions):
                    seq += 1
                    xadd_batches(client, p, make_batches(p, 1, apps=200, partitions=partitions,
                                                         ts0=int(time.time() * 1000), seed=seq,
                                                         sizes=(per_batch, per_batch), span_ms=100))
                if tick >= next_probe:
                    probe = f"tw_p{uuid.uuid4().hex[:9]}"
                    [template] = make_batches(0, 1, apps=1, partitions=partitions, ts0=int(time.time() * 1000),
                                              seed=seq, sizes=(1, 1), span_ms=1)
                    request = msgspec.structs.replace(template.requests[0], key_prefix=probe)
                    xadd_batches(client, 0, [MeteringBatch(v=METERING_BATCH_VERSION, id=f"probe-{probe}",
                                                           requests=[request])])
                    pending[probe] = time.monotonic()
                    next_probe = tick + 0.5
            if pending:
                seen = set(Rollup.objects.filter(granularity="m", key_prefix__in=list(pending)).values_list(
                    "key_prefix", flat=True))
                for probe in seen:
                    lags.append(time.monotonic() - pending.pop(probe))
                if time.monotonic() > deadline + 60:
                    raise RuntimeError(f"{len(pending)} probes never became visible")
            time.sleep(max(0.0, tick_s - (time.monotonic() - tick)))
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
        "probes": len(lags), "background_events_per_s": rate, "partitions": partitions,
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
                    cells[(bucket_ms, app % 5, "v1", app, f"tw_k{app:07d}", 1 + app % 3, app, "/items",
                           sc * 100, sc)] = vec(n)
            ledger.upsert_rollups({gran: cells})
    from django.db import connection

    from analytics.ingest.metering import METRIC_COLUMNS

    dims = "granularity, bucket, api_id, version, plan_id, endpoint, status, status_class"
    sums = ", ".join(f"SUM({c})" for c in METRIC_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO analytics_trafficrollup (partition, {dims}, {', '.join(METRIC_COLUMNS)}) "  # noqa: S608
            f"SELECT 0, {dims}, {sums} FROM analytics_rollup GROUP BY {dims}"
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
    parser.add_argument("--batches", type=int, default=500, help="gateway batches per pre-filled partition")
    parser.add_argument("--freshness-s", type=float, default=40.0)
    parser.add_argument("--rate", type=int, default=10_000, help="background requests/s during the freshness run")
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="profile the single consumer (pyinstrument)")
    parser.add_argument("--skip-dashboards", action="store_true")
    parser.add_argument("--uniform", action="store_true", help="traffic spread evenly: the worst case")
    parser.add_argument("--consume-partition", type=int, help=argparse.SUPPRESS)  # a child consumer process
    args = parser.parse_args()
    global UNIFORM
    UNIFORM = args.uniform
    if args.consume_partition is not None:
        setup_django(os.environ["REDIS_URL"], os.environ["DATABASE_URL"], migrate=False)
        print(json.dumps(consume_one(args.consume_partition)), flush=True)
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(appendonly=False).start()
    pg = PostgresServer().start()
    try:
        setup_django(redis_server.url, pg.url)
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
                                   "traffic": "uniform" if UNIFORM else "zipf"}
        print("throughput, one consumer ...", flush=True)
        results["throughput"] = bench_throughput(args.batches, args.apps, args.profile)
        print(results["throughput"], flush=True)
        from django.db import connection

        connection.close()
        print("throughput, two consumers ...", flush=True)
        results["throughput_2_consumers"] = bench_two_consumers(args.batches, args.apps, redis_server.url, pg.url)
        print(results["throughput_2_consumers"], flush=True)
        print("freshness ...", flush=True)
        results["freshness"] = bench_freshness(args.freshness_s, args.rate, redis_server.url, pg.url)
        print(results["freshness"], flush=True)
        if not args.skip_dashboards:
            print("dashboards ...", flush=True)
            from analytics.models import ProcessedBatch, Rollup, TrafficRollup

            Rollup.objects.all().delete()
            TrafficRollup.objects.all().delete()
            ProcessedBatch.objects.all().delete()
            results["dashboards"] = bench_dashboards(args.apps)
            print(results["dashboards"], flush=True)
        results["machine"]["loadavg_at_end"] = os.getloadavg()
        results["events_per_s"] = results["throughput"]["events_per_s"]
        results["events_per_s_2_consumers"] = results["throughput_2_consumers"]["events_per_s_2_consumers"]
        results["redis_bytes_per_pending_event"] = results["throughput"]["redis_bytes_per_pending_event"]
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
