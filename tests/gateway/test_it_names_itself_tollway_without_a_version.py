"""Every response the gateway generates says ``Server: Tollway`` (GATEWAY_SERVER_HEADER;
``none`` leaves it out), never Python's or aiohttp's version. A proxied response keeps
the upstream's own Server header."""

from __future__ import annotations

from tests.gateway.conftest import raw_exchange, raw_request


def requests(port: int, key: str) -> dict[str, bytes]:
    return {
        "proxied": f"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n".encode(),
        "refused": b"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        "unknown api": b"GET /nope/v1/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        "health": b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        "malformed": b"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "bad version": b"GET /echo/v1/ HTTP/2.0\r\nHost: gw\r\n\r\n",
    }


def test_every_gateway_response_says_tollway(start_gateway, world):
    gateway = start_gateway()
    for name, data in requests(gateway.port, world.alice_key).items():
        if name == "proxied":
            continue
        response = raw_request(gateway.port, data)
        assert response.headers.get("server") == ["Tollway"], (name, response.headers)


def test_a_proxied_response_keeps_the_upstreams_server_header(start_gateway, world):
    gateway = start_gateway()

    response = raw_request(gateway.port, requests(gateway.port, world.alice_key)["proxied"])

    assert response.status == 200
    # The echo upstream is aiohttp: "Python/3.x aiohttp/3.y" is its header, passed through.
    assert response.headers.get("server", [""])[0].startswith("Python/")
    assert len(response.headers["server"]) == 1


def test_the_name_is_configurable_and_can_be_left_out(start_gateway, world):
    named = start_gateway(GATEWAY_SERVER_HEADER="Edge")
    silent = start_gateway(GATEWAY_SERVER_HEADER="none")
    for name, data in requests(named.port, world.alice_key).items():
        if name == "proxied":
            continue
        assert raw_request(named.port, data).headers.get("server") == ["Edge"], name
        received, _ = raw_exchange(silent.port, data)
        assert b"\r\nserver:" not in received.lower(), (name, received[:300])
        assert b"aiohttp" not in received.lower()
