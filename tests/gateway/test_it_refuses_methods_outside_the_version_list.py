"""Each version has a list of allowed methods (default: GET, HEAD, POST, PUT, PATCH,
DELETE, OPTIONS). Any other method gets 405 problem+json with ``Allow`` before any
policy or upstream; TRACE and CONNECT never reach an upstream, whatever a record says."""

from __future__ import annotations

import httpx

from gateway import contract
from tests.gateway.conftest import raw_exchange


def test_a_method_outside_the_list_gets_405_with_allow(start_gateway, publish, world, upstream):
    publish.route(upstream.url, allowed_methods=("GET", "HEAD"))
    gateway = start_gateway()

    r = httpx.post(f"{gateway.url}/echo/v1/things", headers={"X-API-Key": world.alice_key}, content=b"{}")

    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"].endswith("/method-not-allowed")
    assert httpx.get(f"{gateway.url}/echo/v1/things", headers={"X-API-Key": world.alice_key}).status_code == 200
    assert upstream.served() == 1


def test_the_default_list_forwards_patch_and_delete(start_gateway, publish, world, upstream):
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    assert httpx.patch(f"{gateway.url}/echo/v1/a", headers=headers, content=b"x").json()["method"] == "PATCH"
    assert httpx.delete(f"{gateway.url}/echo/v1/a", headers=headers).json()["method"] == "DELETE"


def test_trace_never_reaches_the_upstream(start_gateway, publish, world, upstream):
    # Even a record that lists TRACE (the portal refuses to write one) does not let it through.
    publish.route(upstream.url, allowed_methods=(*contract.DEFAULT_ALLOWED_METHODS, "TRACE"))
    gateway = start_gateway()
    request = f"TRACE /echo/v1/ HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"

    received, _ = raw_exchange(gateway.port, request.encode())

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert b"\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" in head
    assert b"method-not-allowed" in body
    assert upstream.served() == 0
