"""CONNECT and TRACE never reach an upstream: 405 problem+json with an Allow header naming
the methods the version accepts (gateway/edge.py: DEFAULT_ALLOWED_METHODS)."""

from __future__ import annotations

from tests.gateway.conftest import raw_request

ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def test_trace_gets_405_with_allow(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()
    data = f"TRACE /echo/v1/x HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"

    response = raw_request(gateway.port, data.encode())

    assert response.status == 405, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["type"].endswith("/method-not-allowed")
    assert response.header("Allow") == ALLOW
    assert counter.accepted == 0


def test_connect_gets_405_with_allow(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()
    data = (
        f"CONNECT 127.0.0.1:{counter.port} HTTP/1.1\r\nHost: 127.0.0.1:{counter.port}\r\n"
        f"X-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"
    )

    response = raw_request(gateway.port, data.encode())

    assert response.status == 405, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert response.header("Allow") == ALLOW
    assert counter.accepted == 0


def test_the_allowed_methods_pass(start_gateway, world):
    gateway = start_gateway()
    for method in ALLOW.split(", "):
        data = f"{method} /echo/v1/x HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"
        response = raw_request(gateway.port, data.encode())
        assert response.status == 200, (method, response.body)
