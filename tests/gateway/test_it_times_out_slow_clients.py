"""Slowloris: a request head that trickles in is cut off after the header timeout, and an
idle keep-alive connection after the idle timeout."""

from __future__ import annotations

import socket
import time


def dripped_until_closed(sock: socket.socket) -> bool:
    """Send one header line every 0.1 s for up to 4 s; True once the gateway has closed."""
    try:
        for _ in range(40):
            time.sleep(0.1)
            sock.sendall(b"X-Drip: 1\r\n")
    except (BrokenPipeError, ConnectionResetError):
        return True
    sock.settimeout(2)
    return sock.recv(1024) == b""


def test_a_trickling_request_head_is_cut_off(start_gateway, world):
    gateway = start_gateway(GATEWAY_HEADER_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\n")
        started = time.monotonic()
        assert dripped_until_closed(sock)
        assert time.monotonic() - started < 3.5


def test_an_idle_connection_is_closed(start_gateway, world):
    gateway = start_gateway(GATEWAY_IDLE_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.settimeout(3)
        assert sock.recv(1024) == b""


def test_the_head_timeout_is_per_head_on_a_keep_alive_connection(start_gateway, world):
    """The head timer is armed once per connection (app.py): prompt heads keep a connection
    alive well past the header timeout, and a later head that trickles is still cut off
    within the timeout of its own first byte."""
    gateway = start_gateway(GATEWAY_HEADER_TIMEOUT_S="0.5", GATEWAY_IDLE_TIMEOUT_S="10")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        first = time.monotonic()
        while time.monotonic() - first < 1.6:  # several header timeouts of prompt requests
            sock.sendall(b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.12)
        sock.sendall(b"GET /_tollway/health HTTP/1.1\r\n")
        started = time.monotonic()
        assert dripped_until_closed(sock)
        assert 0.4 < time.monotonic() - started < 1.6
