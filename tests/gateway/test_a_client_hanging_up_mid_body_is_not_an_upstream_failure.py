"""A client that hangs up while its body is being relayed is the client's doing: it must
not count against the upstream's circuit breaker (before, five such clients opened the
breaker and every caller got 502 for the cooldown), and it is not an error to log with a
traceback. The gateway counts it as a 499, as nginx does."""

from __future__ import annotations

import re
import socket
import struct
import time

import httpx


def hang_up_mid_body(port: int, key: str) -> None:
    head = (
        f"POST /echo/v1/upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head + b"x" * 20_000)
    time.sleep(0.2)  # the gateway has the request admitted and its body on the way upstream
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST: the connection is lost, 80,000 bytes short


def test_clients_hanging_up_mid_body_leave_the_upstream_in_rotation(start_gateway, world, upstream):
    gateway = start_gateway(GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_COOLDOWN_S="30")
    for _ in range(5):
        hang_up_mid_body(gateway.port, world.alice_key)
    time.sleep(0.3)

    response = httpx.post(
        f"{gateway.url}/echo/v1/upload", headers={"X-API-Key": world.alice_key}, content=b"y" * 1000, timeout=5
    )

    assert response.status_code == 200, response.text
    metrics = httpx.get(f"{gateway.url}/_tollway/metrics").text
    assert not re.search(r'tollway_gateway_upstream_errors_total\{kind="[a-z_]+"\} [1-9]', metrics), [
        line for line in metrics.splitlines() if "upstream_errors" in line
    ]
    assert re.search(r'tollway_gateway_requests_total\{[^}]*status="499"[^}]*\} 5\.0', metrics), [
        line for line in metrics.splitlines() if "499" in line
    ]
    log = gateway.log()
    assert "Traceback" not in log, log
    assert "rror handling request" not in log, log
