"""No forwarding header is ever sent empty: HTTP/1.0 without Host gets no X-Forwarded-Host
at all (it used to get an empty one); every header the upstream receives has a value."""

from __future__ import annotations

from tests.gateway.conftest import raw_request


def test_http_1_0_without_host_forwards_no_empty_header(start_gateway, world):
    gateway = start_gateway()
    data = f"GET /echo/v1/ HTTP/1.0\r\nX-API-Key: {world.alice_key}\r\n\r\n".encode()

    response = raw_request(gateway.port, data)

    assert response.status == 200, response.body
    seen = {name.lower(): value for name, value in response.json()["headers"]}
    assert "x-forwarded-host" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert all(value for value in seen.values()), seen


def test_a_trusted_proxy_without_host_forwards_no_empty_header(start_gateway, world):
    gateway = start_gateway(GATEWAY_TRUSTED_PROXIES="127.0.0.0/8")
    data = f"GET /echo/v1/ HTTP/1.0\r\nX-API-Key: {world.alice_key}\r\nForwarded: \r\n\r\n".encode()

    response = raw_request(gateway.port, data)

    assert response.status == 200, response.body
    seen = {name.lower(): value for name, value in response.json()["headers"]}
    assert "x-forwarded-host" not in seen
    assert "forwarded" not in seen
    assert all(value for value in seen.values()), seen
