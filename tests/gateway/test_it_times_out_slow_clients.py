"""Slowloris: a request head that trickles in is cut off after the header timeout, and an
idle keep-alive connection after the idle timeout."""

from __future__ import annotations

import socket
import time


def test_a_trickling_request_head_is_cut_off(start_gateway, world):
    gateway = start_gateway(GATEWAY_HEADER_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /echo/v1/ HTTP/1.1\r\nHost: gw\r\n")
        started = time.monotonic()
        closed = False
        try:
            for _ in range(40):
                sock.sendall(b"X-Drip: 1\r\n")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            sock.settimeout(2)
            closed = sock.recv(1024) == b""
        assert closed
        assert time.monotonic() - started < 3.5


def test_an_idle_connection_is_closed(start_gateway, world):
    gateway = start_gateway(GATEWAY_IDLE_TIMEOUT_S="0.5")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /_tollway/health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.settimeout(3)
        assert sock.recv(1024) == b""
