"""Expect: 100-continue is answered by the gateway once the caller is admitted, so a
refused caller never uploads its body and an admitted one is not kept waiting."""

from __future__ import annotations

from tests.gateway.conftest import raw_exchange


def head(key: str) -> bytes:
    return (b"POST /echo/v1/up HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + key.encode()
            + b"\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")


def test_admitted_caller_is_invited_to_send_the_body(start_gateway, world, upstream):
    import socket

    gateway = start_gateway()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(head(world.alice_key))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b'"body_size":5' in response.replace(b" ", b"")
    assert b"expect" not in response.lower().split(b"\r\n\r\n", 1)[1]  # not forwarded upstream
    assert upstream.served() == 1


def test_refused_caller_gets_no_invitation(start_gateway, world, upstream):
    gateway = start_gateway()
    received, closed = raw_exchange(gateway.port, head(world.charlie_key))
    assert received.startswith(b"HTTP/1.1 401 ")
    assert b"100 Continue" not in received
    assert closed
    assert upstream.served() == 0
