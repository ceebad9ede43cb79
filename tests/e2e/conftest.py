"""The whole stack, from the components `make run` starts, on free 127.0.0.1 ports.

* Redis of the stack's own (AOF on, as in the Procfile), so a test can kill it;
  optionally a second Redis as the Celery broker, so a test can take the broker
  away alone. Otherwise the broker is the same Redis, as in `make run`.
* The portal: this test process (services, pytest-django's live_server for pages)
  pointed at the stack's Redis; its database is the suite's PostgreSQL.
* The gateway: ``python -m gateway`` with two workers and the portal's key hash secret.
* A real ``celery -A portal worker -B`` (beat embedded: it drains the metering stream
  every 2 s and flushes the publish outbox every 5 s, as in `make run`).
* The echo upstream (``python -m gateway.echo``), whose own count of served requests
  is the ground truth the billing is held to.

These tests need PostgreSQL: the worker is another process and cannot see SQLite's
in-memory test database. `make test` runs them (TOLLWAY_TEST_DB=postgres); the SQLite
run only collects tests/portal. Run alone without PostgreSQL, they are skipped with that reason.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.policies.metering.journal import journal_content

# Pages are driven by Chromium as in tests/browser (same launch flags, no download).
from tests.browser.conftest import (  # noqa: F401  (fixtures and the report hook, re-exported)
    _fast_password_hashing,
    browser,
    browsing,
    pytest_runtest_makereport,
)
from tests.gateway.conftest import Echo, GatewayProcess, start_echo
from tests.services import RedisServer
from tests.services import requires_postgres as requires_postgres_because

ROOT = Path(__file__).resolve().parents[2]
# One INFO line per request would bury a failure's report under the load's thousands.
logging.getLogger("httpx").setLevel(logging.WARNING)

requires_postgres = requires_postgres_because(
    "end-to-end: a Celery worker subprocess needs PostgreSQL (make test runs TOLLWAY_TEST_DB=postgres); "
    "it cannot share SQLite's in-memory test database"
)


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, message: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message() if callable(message) else message}")
        time.sleep(interval)


def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class CeleryWorker:
    """``celery -A portal worker -B`` in its own process group (so kill -9 takes the
    pool child and the embedded beat with it, like a crashed host process)."""

    def __init__(self, tmp: Path, name: str, *, redis_url: str, broker_url: str) -> None:
        self.log_path = tmp / f"celery-{name}.log"
        self._log = self.log_path.open("ab")
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            # A killed consumer's lease lapses and its pending entries are claimed back after ~1 s, not 30 s.
            "ANALYTICS_CLAIM_IDLE_MS": "1000",
            "ANALYTICS_LEASE_MS": "1500",
            "ANALYTICS_CONSUME_BUDGET_S": "5",
        }
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"), "-A", "portal", "worker", "-B", "-Q", "celery,metering",
                "--schedule", str(tmp / f"beat-{name}"), "--loglevel", "INFO", "--concurrency", "1",
                "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"{name}@%h",
            ],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    ended_on_purpose = False

    def kill(self) -> None:
        self.ended_on_purpose = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.ended_on_purpose = True
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def worker_pids(gateway: GatewayProcess) -> list[int]:
    """The gateway master's worker processes (its children, minus multiprocessing's helpers)."""
    assert gateway.proc is not None
    master = gateway.proc.pid
    pids = []
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    for pid in map(int, children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.append(pid)
    return sorted(pids)


@dataclass
class Stack:
    tmp: Path
    redis: RedisServer
    broker: RedisServer | None
    echo: Echo
    gateways: list[GatewayProcess] = field(default_factory=list)
    workers: list[CeleryWorker] = field(default_factory=list)
    unexpected_worker_exits: list[str] = field(default_factory=list)
    _supervisor: threading.Thread | None = None
    _supervisor_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def broker_url(self) -> str:
        return (self.broker or self.redis).url

    @property
    def gateway(self) -> GatewayProcess:
        return self.gateways[0]

    def start_gateway(self, *, workers: int = 2, wait: str = "ready", port: int | None = None,
                      **env: str) -> GatewayProcess:
        settings = {
            "GATEWAY_KEY_HASH_SECRET": os.environ["TOLLWAY_KEY_HASH_SECRET"],
            # Worker 0's snapshot is fresh within 0.2 s, so a restart during an outage has it.
            "GATEWAY_SNAPSHOT_INTERVAL_S": "0.2",
            **env,
        }
        gateway = GatewayProcess(redis_url=self.redis.url, tmp=self.tmp, workers=workers, env=settings)
        if port is not None:
            gateway.port = port
        self.gateways.append(gateway)
        return gateway.start(wait=wait)

    def supervise_workers(self) -> None:
        """Restart a Celery worker that exits on its own, as systemd's Restart=always
        would in production. Needed: with kombu 5.x a worker sometimes dies when the
        Redis broker vanishes under it ("Unrecoverable error: AttributeError:
        'NoneType' object has no attribute 'hostname'" in restore_unacked). Every
        such exit is recorded in ``unexpected_worker_exits`` and printed."""
        def run() -> None:
            while not self._supervisor_stop.wait(0.5):
                worker = self.workers[-1] if self.workers else None
                if worker is not None and not worker.ended_on_purpose and worker.proc.poll() is not None:
                    worker.ended_on_purpose = True
                    tail = worker.output()[-1500:]
                    self.unexpected_worker_exits.append(tail)
                    print(f"celery worker exited by itself (code {worker.proc.returncode}); restarting:\n{tail}")
                    self.start_worker()

        self._supervisor = threading.Thread(target=run, daemon=True)
        self._supervisor.start()

    def stop_supervising(self) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def start_worker(self, name: str = "w1") -> CeleryWorker:
        worker = CeleryWorker(self.tmp, f"{name}-{len(self.workers)}", redis_url=self.redis.url,
                              broker_url=self.broker_url)
        self.workers.append(worker)
        return worker

    def restart_redis(self, server: RedisServer | None = None) -> None:
        """Same port, same directory: the AOF is replayed."""
        server = server or self.redis
        server.proc = None
        server.start()

    def call(self, key: str, path: str = "/echo/v1/hello", **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.gateway.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                         **kwargs)

    def logs(self) -> str:
        return "\n".join([*(g.log() for g in self.gateways), *(w.output() for w in self.workers)])


@pytest.fixture
def make_stack(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    from portal.gateway_state import publish

    stacks: list[Stack] = []

    def make(*, separate_broker: bool = False, worker: bool = True) -> Stack:
        redis_server = RedisServer().start()
        broker = RedisServer().start() if separate_broker else None
        stack = Stack(tmp=tmp_path, redis=redis_server, broker=broker, echo=start_echo())
        stacks.append(stack)
        # The portal in this process (services, live_server) publishes to the stack's Redis.
        settings.REDIS_URL = redis_server.url
        publish.redis_client.cache_clear()
        if worker:
            stack.start_worker()
            stack.supervise_workers()
        return stack

    yield make
    for stack in stacks:
        stack.stop_supervising()
        for gateway in stack.gateways:
            gateway.stop()
        for w in stack.workers:
            w.stop()
        stack.echo.proc.terminate()
        stack.echo.proc.wait(timeout=10)
        for server in (stack.redis, stack.broker):
            if server is not None:
                server.cleanup()
    publish.redis_client.cache_clear()


@dataclass
class Cast:
    """What the portal holds for a journey: an operator, an API published on the
    stack's upstream, a plan, and alice's subscribed application with a key."""

    olivia: Any
    alice: Any
    acme: Any
    api: Any
    v1: Any
    plan: Any
    app: Any
    subscription: Any
    key: str


def publish_cast(stack: Stack, *, plan_fields: dict[str, Any] | None = None,
                 redis_failure_mode: str = "fail_closed") -> Cast:
    """Build the cast through the portal's services: every write is published after
    commit, exactly as in production."""
    from portal.accounts.models import Membership, Organization, Role, User
    from portal.catalog import services as catalog
    from portal.keys import services as keys
    from portal.plans import services as plans

    olivia = User.objects.create_user(email="olivia@tollway.test", password="x" * 20, is_staff=True,
                                      email_verified=True)
    alice = User.objects.create_user(email="alice@acme.test", password="x" * 20, email_verified=True)
    acme = Organization.objects.create(name="Acme", slug="acme")
    Membership.objects.create(organization=acme, user=alice, role=Role.OWNER)
    api = catalog.api_create(actor=olivia, slug="echo", name="Echo", summary="Echoes requests")
    v1 = catalog.version_create(api=api, label="v1", upstreams=[{"url": stack.echo.url, "weight": 1}], actor=olivia,
                                redis_failure_mode=redis_failure_mode)
    catalog.version_transition(version=v1, to_state="published", actor=olivia)
    plan = plans.plan_create(actor=olivia, api=api, slug="free", name="Free", **(plan_fields or {}))
    app = keys.application_create(organization=acme, name="Acme Shop", actor=alice)
    subscription = plans.subscription_create(application=app, plan=plan, actor=alice)
    issued = keys.api_key_issue(application=app, label="load", actor=alice)
    return Cast(olivia=olivia, alice=alice, acme=acme, api=api, v1=v1, plan=plan, app=app,
                subscription=subscription, key=issued.secret)


def admitted_total(subscription_id: int) -> int:
    from django.db.models import Sum

    from analytics.models import Rollup

    return int(Rollup.objects.filter(granularity="d", subscription_id=subscription_id)
               .aggregate(n=Sum("admitted"))["n"] or 0)


def billed_requests(organization_id: int) -> int:
    """Requests on the organization's draft invoice for this month (recomputed now)."""
    from django.db.models import Sum
    from django.utils import timezone

    from analytics.billing import rules, services
    from analytics.models import InvoiceLine

    month = rules.month_start(timezone.now())
    services.invoice_refresh(organization_id=organization_id, month=month)
    return int(InvoiceLine.objects.filter(invoice__organization_id=organization_id, invoice__month=month)
               .aggregate(n=Sum("used_requests"))["n"] or 0)


def stream_drained(redis_url: str) -> bool:
    """Every metering batch in every partition stream (and the legacy stream) has been read
    and committed (acked)."""
    import redis

    from gateway.contract import DEFAULT_METERING_PARTITIONS, METERING_GROUP, METERING_STREAM, metering_stream

    def sid(stream_id: bytes) -> tuple[int, int]:
        ms, _, seq = stream_id.decode().partition("-")
        return int(ms), int(seq or 0)

    streams = [METERING_STREAM, *(metering_stream(p) for p in range(DEFAULT_METERING_PARTITIONS))]
    # Not decoding replies: a batch's body is MessagePack.
    client = redis.Redis.from_url(redis_url)
    try:
        for stream in streams:
            try:
                if not client.exists(stream):
                    continue  # nothing was ever written there
                groups = {g["name"].decode(): g for g in client.xinfo_groups(stream)}
                newest = client.xrevrange(stream, count=1)
            except redis.RedisError:
                return False
            group = groups.get(METERING_GROUP)
            if group is None or int(group["pending"]) != 0:
                return False
            # Not XINFO's "lag": Redis reports it as nil (unknown) after trims and restarts,
            # which once let this check pass with thousands of entries still unread.
            if newest and sid(group["last-delivered-id"]) < sid(newest[0][0]):
                return False
        return True
    finally:
        client.close()


def wait_drained(stack: Stack, timeout: float = 60) -> None:
    """Wait until the gateway has no metering left on disk and analytics has committed the stream."""
    def done() -> bool:
        spill = stack.tmp / "spill"
        # A journal is a preallocated file: it holds nothing when it reads as NUL from its start.
        on_disk = spill.exists() and any(
            journal_content(p.read_bytes()) if p.name.startswith("journal-") else p.stat().st_size
            for p in spill.glob("*.jsonl")
        )
        return not on_disk and stream_drained(stack.redis.url)

    # The gateway flushes its buffer every 0.2 s; give the last requests' events time to reach the stream.
    time.sleep(0.5)
    wait_for(done, timeout=timeout, interval=0.3, message=lambda: f"metering never drained:\n{stack.logs()}")


class Load:
    """Keep-alive GET load from a few threads until stopped. Counts every outcome;
    a transport error (connection reset by a killed worker) is counted, not raised."""

    def __init__(self, url: str, key: str, *, threads: int = 4) -> None:
        self.url = url
        self.key = key
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []
        self.samples: list[str] = []  # the first few non-200 answers, for the failure report
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url, headers=headers)
                    status = str(response.status_code)
                    if response.status_code != 200 and len(self.samples) < 20:
                        self.samples.append(f"{time.monotonic():.2f} {status} {response.text[:300]}")
                except httpx.TransportError as exc:
                    status = "transport"
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.01)
                with self._lock:
                    self.outcomes[status] += 1

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.outcomes)

    def stop(self) -> Counter[str]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=20)
        return self.snapshot()
