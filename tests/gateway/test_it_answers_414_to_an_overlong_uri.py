"""A request-target over GATEWAY_MAX_URI_BYTES (default 8 KiB) gets 414, not 431; a header
line over the header budget still gets 431. Neither reaches the upstream."""

from __future__ import annotations

import re

from tests.gateway.conftest import raw_exchange, raw_request


def test_a_100_kb_uri_gets_414(start_gateway, publish, world, counter):
    publish.route(counter.url)
    gateway = start_gateway()
    target = "/echo/v1/" + "a" * 100 * 1024
    data = f"GET {target} HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\n\r\n".encode()

    received, closed = raw_exchange(gateway.port, data)

    assert re.match(rb"HTTP/1\.[01] 414 ", received), received[:200]
    assert b"/uri-too-long" in received
    assert closed
    assert counter.accepted == 0


def test_the_uri_limit_is_configurable(start_gateway, world):
    gateway = start_gateway(GATEWAY_MAX_URI_BYTES="1024")
    head = f"Host: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"

    fits = raw_request(gateway.port, f"GET /echo/v1/{'b' * 900} HTTP/1.1\r\n{head}".encode())
    too_long = raw_request(gateway.port, f"GET /echo/v1/{'b' * 1100} HTTP/1.1\r\n{head}".encode())

    assert fits.status == 200
    assert too_long.status == 414


def test_an_overlong_header_line_still_gets_431(start_gateway, world, upstream):
    gateway = start_gateway()
    data = f"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-Big: {'c' * 70 * 1024}\r\n\r\n".encode()

    received, _ = raw_exchange(gateway.port, data)

    assert re.match(rb"HTTP/1\.[01] 431 ", received), received[:200]
    assert upstream.served() == 0
