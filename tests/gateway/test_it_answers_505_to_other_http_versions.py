"""Only HTTP/1.0 and HTTP/1.1 are spoken on the gateway's port. Any other version gets 505
(answered in HTTP/1.x, with the connection closed) and never reaches the upstream."""

from __future__ import annotations

import re

import pytest

from tests.gateway.conftest import raw_exchange, raw_request


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/2.1"])
def test_other_versions_get_505(start_gateway, publish, world, counter, version):
    publish.route(counter.url)
    gateway = start_gateway()
    data = f"GET /echo/v1/ {version}\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\n\r\n".encode()

    received, closed = raw_exchange(gateway.port, data)

    assert re.match(rb"HTTP/1\.[01] 505 ", received), received[:200]
    response = raw_request(gateway.port, data)
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["type"].endswith("/http-version-not-supported")
    assert closed
    assert counter.accepted == 0


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_http_1_0_and_1_1_are_served(start_gateway, world, version):
    gateway = start_gateway()
    data = f"GET /echo/v1/ {version}\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"

    response = raw_request(gateway.port, data.encode())

    assert response.status_line.startswith(f"{version} 200"), response.status_line
