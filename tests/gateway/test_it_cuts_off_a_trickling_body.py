"""A request body must keep up GATEWAY_BODY_MIN_RATE_BPS once GATEWAY_BODY_TIMEOUT_S has
passed: a body trickling one byte at a time is cut off with 408 (or a close), and the
upstream never receives a complete request. A body at a normal pace passes."""

from __future__ import annotations

import re
import socket
import time


def test_a_trickling_body_is_cut_off(start_gateway, world, upstream):
    gateway = start_gateway(GATEWAY_BODY_TIMEOUT_S="0.5", GATEWAY_BODY_MIN_RATE_BPS="100")
    head = (
        f"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(head)
        started = time.monotonic()
        received = b""
        sock.settimeout(0.2)
        try:
            for _ in range(60):  # one byte every 0.2 s: 5 B/s, far below 100 B/s
                sock.sendall(b"x")
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                received += chunk
                if not chunk or b"\r\n\r\n" in received:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.monotonic() - started

    assert received == b"" or re.match(rb"HTTP/1\.1 408 ", received), received[:200]
    assert b"/body-too-slow" in received or received == b""
    assert elapsed < 5
    assert upstream.served() == 0


def test_a_body_at_a_normal_pace_passes(start_gateway, world):
    gateway = start_gateway(GATEWAY_BODY_TIMEOUT_S="0.5", GATEWAY_BODY_MIN_RATE_BPS="100")
    head = (
        f"POST /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\n"
        "Content-Length: 2000\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(head)
        for _ in range(10):  # 200 bytes every 0.1 s: 2 kB/s, over the minimum, for a second
            sock.sendall(b"y" * 200)
            time.sleep(0.1)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    assert received.startswith(b"HTTP/1.1 200 "), received[:300]
    assert b'"body_size":2000' in received.replace(b" ", b"")
