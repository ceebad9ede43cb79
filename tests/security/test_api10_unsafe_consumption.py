"""API10 Unsafe consumption of APIs: the gateway consumes upstream responses with limits.
A response bigger than GATEWAY_MAX_RESPONSE_BYTES is refused (declared) or cut off
(undeclared), and a slow upstream cannot hold a client past the version's total timeout."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

LIMIT = 1024 * 1024


class Responder:
    """An upstream that answers every connection with ``size`` bytes, declared with
    Content-Length or sent chunked, optionally one small piece every ``drip`` seconds."""

    def __init__(self, size: int, *, chunked: bool = False, drip: float = 0.0) -> None:
        self.size, self.chunked, self.drip = size, chunked, drip
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                framing = b"Transfer-Encoding: chunked" if self.chunked else b"Content-Length: %d" % self.size
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + framing
                             + b"\r\nConnection: close\r\n\r\n")
                piece = 16 if self.drip else 64 * 1024
                sent = 0
                while sent < self.size:
                    chunk = b"d" * min(piece, self.size - sent)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk)
                    sent += len(chunk)
                    if self.drip:
                        time.sleep(self.drip)
                if self.chunked:
                    conn.sendall(b"0\r\n\r\n")
        except OSError:
            return  # the gateway hung up on us: that is the point of some tests

    def close(self) -> None:
        self.running = False
        self.sock.close()


@pytest.fixture
def responder_factory():
    made: list[Responder] = []

    def make(size: int, **kwargs) -> Responder:
        made.append(Responder(size, **kwargs))
        return made[-1]

    yield make
    for responder in made:
        responder.close()


def test_a_declared_oversized_response_gets_502_before_any_byte(start_gateway, gw_publish, gw_world,
                                                                 responder_factory):
    big = responder_factory(2 * LIMIT)
    gw_publish.route(big.url)
    gateway = start_gateway(GATEWAY_MAX_RESPONSE_BYTES=str(LIMIT))

    r = httpx.get(f"{gateway.url}/echo/v1/big", headers={"X-API-Key": gw_world.alice_key}, timeout=10)

    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/upstream-response-too-large")
    assert len(r.content) < 1000


def test_an_undeclared_oversized_response_is_cut_off(start_gateway, gw_publish, gw_world, responder_factory):
    big = responder_factory(4 * LIMIT, chunked=True)
    gw_publish.route(big.url)
    gateway = start_gateway(GATEWAY_MAX_RESPONSE_BYTES=str(LIMIT))

    received = 0
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(  # noqa: PT012
        "GET", f"{gateway.url}/echo/v1/big", headers={"X-API-Key": gw_world.alice_key}, timeout=10
    ) as r:
        assert r.status_code == 200  # too late for anything else: the status went out first
        for chunk in r.iter_raw():
            received += len(chunk)

    assert received <= LIMIT + 64 * 1024, received  # at most one chunk past the limit got through


def test_a_response_within_the_limit_passes_whole(start_gateway, gw_publish, gw_world, responder_factory):
    declared = responder_factory(LIMIT)
    chunked = responder_factory(LIMIT, chunked=True)
    gw_publish.route(declared.url)
    gw_publish.route(chunked.url, version="v2")
    gateway = start_gateway(GATEWAY_MAX_RESPONSE_BYTES=str(LIMIT))
    headers = {"X-API-Key": gw_world.alice_key}

    for version in ("v1", "v2"):
        r = httpx.get(f"{gateway.url}/echo/{version}/ok", headers=headers, timeout=10)
        assert r.status_code == 200, (version, r.text[:200])
        assert len(r.content) == LIMIT


def test_a_trickling_upstream_is_cut_off_at_the_total_timeout(start_gateway, gw_publish, gw_world,
                                                             responder_factory):
    # 16 bytes every 0.1 s never trips the read timeout; only the total timeout ends it.
    slow = responder_factory(LIMIT, chunked=True, drip=0.1)
    gw_publish.route(slow.url, read_timeout_s=1.0, total_timeout_s=1.5)
    gateway = start_gateway()

    started = time.monotonic()
    received = 0
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(  # noqa: PT012
        "GET", f"{gateway.url}/echo/v1/slow", headers={"X-API-Key": gw_world.alice_key}, timeout=10
    ) as r:
        for chunk in r.iter_raw():
            received += len(chunk)
    elapsed = time.monotonic() - started

    assert elapsed < 4.0, f"the gateway relayed a trickling upstream for {elapsed:.1f}s"
    assert received < LIMIT


def test_the_default_limit_is_on():
    from gateway.config import DEFAULT_MAX_RESPONSE_BYTES, load_config

    assert load_config({"DEBUG": "1"}).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES > 0
