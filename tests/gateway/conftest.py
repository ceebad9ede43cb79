"""Real services for the gateway tests: a Redis of our own, the echo upstream, and
gateway processes started with ``python -m gateway`` on free loopback ports.

State is published the way the portal does it: contract records written straight
into Redis, the generation counter bumped, an Invalidation published. (Tests do
not import the portal: its publisher is contract-compatible by construction.)

People: alice's application is subscribed to the echo API, bob's to another API,
and charlie holds a revoked key. charlie must always be denied.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway import contract
from tests.services import RedisServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "gateway-test-key-hash-secret"
ECHO_API_ID = 1
OTHER_API_ID = 2


def make_key() -> str:
    random_part = "".join(secrets.choice(contract.BASE62) for _ in range(contract.KEY_RANDOM_CHARS))
    return contract.KEY_PREFIX + random_part + contract.key_checksum(random_part)


@dataclass
class Publisher:
    client: redis.Redis

    def _announce(self, kind: str, ident: str) -> None:
        generation = int(self.client.incr(contract.GENERATION_KEY))
        self.client.publish(
            contract.INVALIDATION_CHANNEL, contract.Invalidation(kind=kind, id=ident, generation=generation).to_json()
        )

    def route(self, upstream: str, *, api_slug: str = "echo", version: str = "v1", api_id: int = ECHO_API_ID,
              version_id: int | None = None, upstreams: tuple[contract.Upstream, ...] | None = None,
              **fields: Any) -> contract.RouteRecord:
        record = contract.RouteRecord(
            api_id=api_id,
            api_slug=api_slug,
            version=version,
            version_id=version_id if version_id is not None else api_id * 100 + int(version.lstrip("v") or 0),
            state=fields.pop("state", "published"),
            upstreams=upstreams or (contract.Upstream(url=upstream),),
            **fields,
        )
        field_name = contract.route_field(api_slug, version)
        self.client.hset(contract.ROUTES_KEY, field_name, record.to_json())
        self._announce("route", field_name)
        return record

    def application(self, application_id: int, grants: dict[int, contract.SubscriptionGrant],
                    name: str = "app") -> contract.ApplicationRecord:
        record = contract.ApplicationRecord(
            application_id=application_id,
            organization_id=application_id * 10,
            name=name,
            subscriptions={str(api_id): g for api_id, g in grants.items()},
        )
        self.client.set(contract.app_key(application_id), record.to_json())
        self._announce("app", str(application_id))
        return record

    def key(self, application_id: int, *, key: str | None = None, status: str = "active", key_id: int = 1,
            expires_at: str | None = None, grace_until: str | None = None) -> str:
        key = key or make_key()
        record = contract.KeyRecord(
            key_id=key_id,
            prefix=contract.key_display_prefix(key),
            application_id=application_id,
            status=status,  # type: ignore[arg-type]
            expires_at=expires_at,
            grace_until=grace_until,
        )
        digest = contract.key_hash(key, SECRET.encode())
        self.client.set(contract.key_key(digest), record.to_json())
        self._announce("key", digest)
        return key

    def revoke(self, key: str, application_id: int) -> None:
        self.key(application_id, key=key, status="revoked")

    def token(self, application_id: int, token: str, *, expires_in: int = 3600, revoked: bool = False) -> None:
        from datetime import UTC, datetime, timedelta

        record = contract.TokenRecord(
            application_id=application_id,
            client_id=f"client-{application_id}",
            scope="read",
            expires_at=(datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat(),
            revoked=revoked,
        )
        digest = contract.token_hash(token)
        self.client.set(contract.token_key(digest), record.to_json(), ex=expires_in)
        self._announce("token", digest)


def grant(subscription_id: int, *, api_id: int = ECHO_API_ID, status: str = "active", plan_slug: str = "free",
          **limits: Any) -> contract.SubscriptionGrant:
    return contract.SubscriptionGrant(
        subscription_id=subscription_id,
        api_id=api_id,
        plan_id=subscription_id * 10,
        plan_slug=plan_slug,
        status=status,  # type: ignore[arg-type]
        limits=contract.Limits(**limits),
    )


@dataclass
class Echo:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served(self) -> int:
        return int(httpx.get(f"{self.url}/_echo/stats").json()["served"])

    def reset(self) -> None:
        httpx.post(f"{self.url}/_echo/reset")


class RawUpstream:
    """A raw-socket upstream on 127.0.0.1 for the failure cases a real server will not
    produce: a thread accepts connections and hands each to ``serve``; ``close`` (or leaving
    the ``with`` block) stops it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_echo() -> Echo:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.echo", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return Echo(port=port, proc=proc)


@dataclass
class GatewayProcess:
    redis_url: str
    tmp: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "PROMETHEUS_")) and k not in ("SECRET_KEY", "TOLLWAY_KEY_HASH_SECRET")
        }
        env.update(
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_PORT=str(self.port),
            GATEWAY_WORKERS=str(self.workers),
            GATEWAY_REDIS_URL=self.redis_url,
            GATEWAY_KEY_HASH_SECRET=SECRET,
            GATEWAY_SNAPSHOT_PATH=str(self.tmp / "snapshot.json"),
            GATEWAY_SPILL_DIR=str(self.tmp / "spill"),
            GATEWAY_METRICS_DIR=str(self.tmp / f"metrics-{self.port}"),
            GATEWAY_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return env

    def start(self, *, wait: str = "ready") -> GatewayProcess:
        self.log_path = self.tmp / f"gateway-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=ROOT,
            env=self.environment(),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait == "ready":
            self.wait_ready()
        elif wait == "listening":
            wait_for_port(self.port, timeout=20)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                # With several workers each must be ready; connections land on any of them.
                if all(httpx.get(f"{self.url}/_tollway/ready", timeout=1).status_code == 200 for _ in range(8)):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"gateway on port {self.port} not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-5000:]
        except (AttributeError, OSError):
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@pytest.fixture(scope="session")
def gw_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_client(gw_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(gw_redis.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def publish(redis_client: redis.Redis) -> Publisher:
    return Publisher(redis_client)


@pytest.fixture(scope="session")
def echo() -> Iterator[Echo]:
    upstream = start_echo()
    yield upstream
    upstream.proc.terminate()
    upstream.proc.wait(timeout=10)


@pytest.fixture
def upstream(echo: Echo) -> Echo:
    echo.reset()
    return echo


@pytest.fixture
def start_gateway(gw_redis: RedisServer, tmp_path: Path) -> Iterator[Any]:
    started: list[GatewayProcess] = []

    def start(*, workers: int = 1, redis_url: str | None = None, wait: str = "ready", port: int | None = None,
              **env: str) -> GatewayProcess:
        gateway = GatewayProcess(redis_url=redis_url or gw_redis.url, tmp=tmp_path, workers=workers, env=env)
        if port is not None:
            gateway.port = port
        started.append(gateway)
        return gateway.start(wait=wait)

    yield start
    for gateway in started:
        gateway.stop()


@dataclass
class World:
    """The standard cast, published: alice may call echo v1, bob only the other API,
    charlie's key is revoked."""

    alice_key: str
    bob_key: str
    charlie_key: str
    route: contract.RouteRecord


ALICE_APP, BOB_APP, CHARLIE_APP = 101, 102, 103


@pytest.fixture
def world(publish: Publisher, upstream: Echo) -> World:
    route = publish.route(upstream.url)
    publish.route(upstream.url, api_slug="other", version="v1", api_id=OTHER_API_ID)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(1001)}, name="alice-app")
    publish.application(BOB_APP, {OTHER_API_ID: grant(1002, api_id=OTHER_API_ID)}, name="bob-app")
    publish.application(CHARLIE_APP, {ECHO_API_ID: grant(1003)}, name="charlie-app")
    alice = publish.key(ALICE_APP, key_id=1)
    bob = publish.key(BOB_APP, key_id=2)
    charlie = publish.key(CHARLIE_APP, key_id=3, status="revoked")
    return World(alice_key=alice, bob_key=bob, charlie_key=charlie, route=route)


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def _fire(requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, dict[str, str], bytes]]:
    import asyncio

    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as session:

        async def one(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            async with session.request(method, url, headers=headers) as r:
                return r.status, dict(r.headers), await r.read()

        return list(await asyncio.gather(*(one(m, u, h) for m, u, h in requests)))


def fire(requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send every request at once, each on its own connection; (status, headers, body) in order."""
    import asyncio

    return asyncio.run(_fire(requests))


def fire_timed(requests: list[tuple[str, str, dict[str, str]]]) -> tuple[list[int], float]:
    """fire(), keeping only the statuses, and the seconds from the first send to the last answer."""
    started = time.monotonic()
    results = fire(requests)
    return [status for status, _, _ in results], time.monotonic() - started


def refilled_within(limits: dict[str, int], seconds: float) -> int:
    """The most admissions a plan's buckets may add to their depth in `seconds`: the limiter's
    guarantee is at most depth + rate x t in any t seconds (docs/gateway.md, "Rate limits").
    A 100/min bucket drained at once refills one admission every 0.6 s, so a burst of
    requests that takes longer than that may rightly see one more. Quotas never refill."""
    bounds = []
    if limits.get("rate_per_second"):
        bounds.append(int(limits["rate_per_second"] * seconds))
    if limits.get("rate_per_minute"):
        bounds.append(int(limits["rate_per_minute"] * seconds / 60))
    if limits.get("quota_per_day") or limits.get("quota_per_month"):
        bounds.append(0)
    return min(bounds) if bounds else 0


@dataclass
class Stage:
    """A Redis of this test's own (to kill) with the standard cast published on it."""

    redis: RedisServer
    client: redis.Redis
    publish: Publisher
    world: World


@pytest.fixture
def stage(upstream: Echo) -> Iterator[Stage]:
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    publisher = Publisher(client)
    route = publisher.route(upstream.url)
    publisher.route(upstream.url, version="v2", redis_failure_mode="fail_open")
    publisher.route(upstream.url, api_slug="other", version="v1", api_id=OTHER_API_ID)
    limits = {"rate_per_minute": 10, "quota_per_day": 1000}
    publisher.application(ALICE_APP, {ECHO_API_ID: grant(7001, **limits)}, name="alice-app")
    publisher.application(BOB_APP, {OTHER_API_ID: grant(7002, api_id=OTHER_API_ID)}, name="bob-app")
    publisher.application(CHARLIE_APP, {ECHO_API_ID: grant(7003)}, name="charlie-app")
    world = World(
        alice_key=publisher.key(ALICE_APP, key_id=1),
        bob_key=publisher.key(BOB_APP, key_id=2),
        charlie_key=publisher.key(CHARLIE_APP, key_id=3, status="revoked"),
        route=route,
    )
    yield Stage(redis=server, client=client, publish=publisher, world=world)
    client.close()
    server.cleanup()


def restart_redis(server: RedisServer) -> None:
    """Start the same server again: same port, same directory, so its AOF is replayed.
    Returns once Redis answers (not merely listens: it refuses commands while loading)."""
    server.proc = None
    server.start()
    client = redis.Redis.from_url(server.url)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()


class ConnectionCounter:
    """A TCP listener that only counts the connections made to it: proof that the
    gateway never contacted the upstream."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def counter() -> Iterator[ConnectionCounter]:
    c = ConnectionCounter()
    yield c
    c.close()


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; read until the server closes. Returns (everything read, closed?)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True


@dataclass
class RawResponse:
    """One HTTP/1.x response as read off the socket."""

    status_line: str
    status: int
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_response(received: bytes) -> RawResponse:
    """The first response in ``received`` (Content-Length or chunked body)."""
    head, sep, rest = received.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {received[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if "content-length" in headers:
        body = rest[: int(headers["content-length"][0])]
    elif headers.get("transfer-encoding") == ["chunked"]:
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
    else:
        body = rest
    return RawResponse(status_line=status_line, status=int(status_line.split(" ")[1]), headers=headers, body=body)


def raw_request(port: int, data: bytes, timeout: float = 5.0) -> RawResponse:
    """Send exact bytes (the request should say ``Connection: close``) and parse the answer."""
    received, _ = raw_exchange(port, data, timeout=timeout)
    return parse_response(received)
