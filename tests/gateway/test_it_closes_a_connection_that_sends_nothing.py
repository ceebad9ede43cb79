"""A new connection that sends nothing is closed after GATEWAY_FIRST_BYTE_TIMEOUT_S; one
that starts its request in time is served."""

from __future__ import annotations

import socket
import time


def test_a_silent_connection_is_closed(start_gateway, world):
    gateway = start_gateway(GATEWAY_FIRST_BYTE_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        started = time.monotonic()

        assert sock.recv(1024) == b""  # closed by the gateway, with nothing said

        assert time.monotonic() - started < 3


def test_a_connection_that_speaks_in_time_is_served(start_gateway, world):
    gateway = start_gateway(GATEWAY_FIRST_BYTE_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        time.sleep(0.2)
        sock.sendall(b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # past the first-byte timeout: the idle timeout (75 s) governs now
        sock.sendall(b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
