"""Smuggling: both Content-Length and Transfer-Encoding, duplicate Content-Lengths or bad
chunking get 400 and a closed connection; the first two never reach the upstream."""

from __future__ import annotations

import re

import pytest

from tests.gateway.conftest import raw_exchange

# aiohttp answers a request it could not parse as HTTP/1.0: it cannot trust the version either.
STATUS_400 = re.compile(rb"^HTTP/1\.[01] 400 ")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] \d{3} ")
CASES = {
    "content-length-and-transfer-encoding": (
        b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
        b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/v1/smuggled HTTP/1.1\r\n\r\n"
    ),
    "duplicate-content-length": (
        b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
        b"Content-Length: 5\r\nContent-Length: 40\r\n\r\nhello"
    ),
    "obfuscated-transfer-encoding": (
        b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
        b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_answers_400_and_closes(start_gateway, publish, world, counter, case):
    publish.route(counter.url)
    gateway = start_gateway()
    data = CASES[case].replace(b"{key}", world.alice_key.encode())

    received, closed = raw_exchange(gateway.port, data)

    assert STATUS_400.match(received), received[:200]
    assert len(STATUS_LINE.findall(received)) == 1  # the smuggled request was never answered
    assert closed
    assert counter.accepted == 0


def test_bad_chunking_gets_400_and_a_closed_connection(start_gateway, world, upstream):
    gateway = start_gateway()
    data = (
        b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    )

    received, closed = raw_exchange(gateway.port, data)

    assert STATUS_400.match(received), received[:200]
    assert closed
    assert upstream.served() == 0


def test_a_well_formed_chunked_body_passes(start_gateway, world):
    gateway = start_gateway()
    data = (
        b"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    received, _ = raw_exchange(gateway.port, data)
    assert received.startswith(b"HTTP/1.1 200 "), received[:300]
    assert b'"body_size":11' in received.replace(b" ", b"")
