"""Upstream failures: unreachable gives 502, a silent upstream 504 after the version's read
timeout; idempotent methods are retried on the next target, others are not; each target
has a circuit breaker; targets are balanced by weight."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx

from gateway import contract
from tests.gateway.conftest import RawUpstream, start_echo
from tests.services import free_port


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused


class Silent(RawUpstream):
    """Accepts connections, reads, never answers."""

    def __init__(self) -> None:
        self.conns: list[socket.socket] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        self.conns.append(conn)

    def close(self) -> None:
        for c in self.conns:
            c.close()
        super().close()


def test_unreachable_upstream_gives_502(start_gateway, publish, world):
    publish.route(dead_url())
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 502
    assert r.json()["type"].endswith("/upstream-unreachable")


def test_silent_upstream_gives_504_after_read_timeout(start_gateway, publish, world):
    silent = Silent()
    try:
        publish.route(f"http://127.0.0.1:{silent.port}", read_timeout_s=0.5, total_timeout_s=5.0)
        gateway = start_gateway()
        started = time.monotonic()
        r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}, timeout=10)
        assert r.status_code == 504
        assert r.json()["type"].endswith("/upstream-timeout")
        assert 0.4 < time.monotonic() - started < 4.0
    finally:
        silent.close()


def test_total_timeout_gives_504(start_gateway, publish, world):
    silent = Silent()
    try:
        publish.route(f"http://127.0.0.1:{silent.port}", read_timeout_s=30.0, total_timeout_s=0.5)
        gateway = start_gateway()
        r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}, timeout=10)
        assert r.status_code == 504
    finally:
        silent.close()


def test_idempotent_methods_are_retried_on_the_next_target(start_gateway, publish, world, upstream):
    upstreams = (contract.Upstream(url=dead_url()), contract.Upstream(url=upstream.url))
    publish.route(upstream.url, upstreams=upstreams)
    gateway = start_gateway(GATEWAY_BREAKER_FAILURES="1000")
    headers = {"X-API-Key": world.alice_key}

    gets = [httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code for _ in range(6)]
    posts = [httpx.post(f"{gateway.url}/echo/v1/", headers=headers, content=b"x").status_code for _ in range(6)]

    assert gets == [200] * 6  # half of them first tried the dead target
    assert sorted(posts) == [200] * 3 + [502] * 3  # never retried: a POST may not be sent twice
    assert upstream.served() == 9


def test_circuit_breaker_takes_a_failing_target_out(start_gateway, publish, world, upstream):
    upstreams = (contract.Upstream(url=dead_url()), contract.Upstream(url=upstream.url))
    publish.route(upstream.url, upstreams=upstreams)
    gateway = start_gateway(GATEWAY_BREAKER_FAILURES="3", GATEWAY_BREAKER_COOLDOWN_S="60")
    headers = {"X-API-Key": world.alice_key}

    posts = [httpx.post(f"{gateway.url}/echo/v1/", headers=headers, content=b"x").status_code for _ in range(20)]

    assert posts.count(502) == 3  # then the breaker opened and the dead target was skipped
    assert posts[-10:] == [200] * 10


def test_all_targets_open_gives_502_with_retry_after(start_gateway, publish, world):
    publish.route(dead_url())
    gateway = start_gateway(GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_COOLDOWN_S="30")
    headers = {"X-API-Key": world.alice_key}
    for _ in range(2):
        assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 502
    r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    assert r.status_code == 502
    assert r.json()["type"].endswith("/upstream-unavailable")
    assert r.headers["Retry-After"] == "30"


def test_targets_are_balanced_by_weight(start_gateway, publish, world, upstream):
    second = start_echo()
    try:
        upstreams = (contract.Upstream(url=upstream.url, weight=3), contract.Upstream(url=second.url, weight=1))
        publish.route(upstream.url, upstreams=upstreams)
        gateway = start_gateway()
        with httpx.Client() as client:
            for _ in range(40):
                assert client.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}).status_code == 200
        assert (upstream.served(), second.served()) == (30, 10)
    finally:
        second.proc.terminate()
        second.proc.wait(timeout=10)


class FullBacklog:
    """A listener whose accept queue is full: new connections hang in SYN, so connecting
    to it times out (what an overloaded or black-holed upstream looks like)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.3)
            with contextlib.suppress(OSError):
                filler.connect(("127.0.0.1", self.port))
            self.fillers.append(filler)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


def test_connect_timeout_gives_504(start_gateway, publish, world):
    backlog = FullBacklog()
    try:
        publish.route(f"http://127.0.0.1:{backlog.port}", connect_timeout_s=0.3)
        gateway = start_gateway()
        started = time.monotonic()
        r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}, timeout=10)
        assert r.status_code == 504
        assert r.json()["type"].endswith("/upstream-timeout")
        assert time.monotonic() - started < 4.0
    finally:
        backlog.close()


def test_connect_timeout_is_retried_on_the_next_target(start_gateway, publish, world, upstream):
    backlog = FullBacklog()
    try:
        upstreams = (contract.Upstream(url=f"http://127.0.0.1:{backlog.port}"), contract.Upstream(url=upstream.url))
        publish.route(upstream.url, upstreams=upstreams, connect_timeout_s=0.3)
        gateway = start_gateway(GATEWAY_BREAKER_FAILURES="1000")
        statuses = [httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key},
                              timeout=10).status_code for _ in range(2)]
        assert statuses == [200, 200]  # the first went to the hanging target, then on to echo
        assert upstream.served() == 2
    finally:
        backlog.close()
