"""Limits: headers over 60 KiB get 431 and bodies over the version's limit get 413,
before any connection to the upstream is made."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import raw_exchange


def test_many_headers_over_60_kib_get_431(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, **{f"X-Filler-{i}": "f" * 4000 for i in range(16)}}  # ~64 KiB
    r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    assert r.status_code == 431
    assert r.headers["content-type"] == "application/problem+json"
    assert counter.accepted == 0


def test_one_huge_header_gets_431(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()
    data = (b"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode()
            + b"\r\nX-Huge: " + b"h" * (70 * 1024) + b"\r\n\r\n")
    received, closed = raw_exchange(gateway.port, data)
    assert b" 431 " in received.split(b"\r\n", 1)[0]
    assert closed
    assert counter.accepted == 0


def test_headers_just_under_the_limit_pass(start_gateway, world):
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, **{f"X-Filler-{i}": "f" * 4000 for i in range(14)}}  # ~56 KiB
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200


def test_declared_body_over_the_limit_gets_413(start_gateway, publish, world, counter):
    publish.route(counter.url, max_body_bytes=1000)
    gateway = start_gateway()
    data = (b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode()
            + b"\r\nContent-Length: 5000\r\n\r\n" + b"b" * 5000)
    received, closed = raw_exchange(gateway.port, data)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert closed
    assert counter.accepted == 0


def test_chunked_body_over_the_limit_is_cut_off_with_413(start_gateway, publish, world, upstream):
    publish.route(upstream.url, max_body_bytes=1000)
    gateway = start_gateway()

    def body():
        for _ in range(10):
            yield b"c" * 500

    r = httpx.post(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}, content=body())
    assert r.status_code == 413
    assert upstream.served() == 0
