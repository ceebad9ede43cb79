"""An absolute-form target (RFC 9112 §3.2.2) is accepted when its authority names this
gateway: the request's Host header, or one of GATEWAY_PUBLIC_HOSTS (default: the listening
GATEWAY_HOST:GATEWAY_PORT). Naming any other host gets 400: the gateway is no forward proxy."""

from __future__ import annotations

from tests.gateway.conftest import raw_request


def request(target: str, host: str | None, key: str) -> bytes:
    host_line = f"Host: {host}\r\n" if host is not None else ""
    return f"GET {target} HTTP/1.1\r\n{host_line}X-API-Key: {key}\r\nConnection: close\r\n\r\n".encode()


def test_it_routes_an_absolute_target_naming_its_listening_address(start_gateway, world):
    gateway = start_gateway()
    target = f"http://127.0.0.1:{gateway.port}/echo/v1/a?x=1"

    response = raw_request(gateway.port, request(target, "elsewhere.example", world.alice_key))

    assert response.status == 200, response.body
    seen = response.json()
    assert seen["raw_path"] == "/a"
    assert seen["query"] == "x=1"
    # RFC 9112 §3.2.2: the target's authority replaces Host.
    assert ["X-Forwarded-Host", f"127.0.0.1:{gateway.port}"] in seen["headers"]


def test_it_routes_an_absolute_target_that_matches_the_host_header(start_gateway, world):
    gateway = start_gateway()

    response = raw_request(gateway.port, request("http://API.example:80/echo/v1/b", "api.example", world.alice_key))

    assert response.status == 200, response.body
    assert response.json()["raw_path"] == "/b"


def test_it_routes_an_absolute_target_naming_a_configured_public_host(start_gateway, world):
    gateway = start_gateway(GATEWAY_PUBLIC_HOSTS="api.example.com:443, gw.internal:8080")

    response = raw_request(gateway.port, request("https://api.example.com/echo/v1/c", None, world.alice_key))
    assert response.status == 400  # HTTP/1.1 without Host is refused by the parser anyway
    response = raw_request(gateway.port, request("https://api.example.com/echo/v1/c", "x", world.alice_key))

    assert response.status == 200, response.body
    assert response.json()["raw_path"] == "/c"


def test_an_absolute_target_naming_another_host_gets_400(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()

    for target in (
        "http://evil.example/echo/v1/a",
        f"http://127.0.0.1:{gateway.port + 1}/echo/v1/a",
        f"ftp://127.0.0.1:{gateway.port}/echo/v1/a",
        f"http://user@127.0.0.1:{gateway.port}/echo/v1/a",
    ):
        response = raw_request(gateway.port, request(target, f"127.0.0.1:{gateway.port}", world.alice_key))
        assert response.status == 400, (target, response.body)
        assert response.header("Content-Type") == "application/problem+json"
    assert counter.accepted == 0
