"""The api_key query parameter is a credential only where the version allows it (off by default)."""

from __future__ import annotations

import httpx


def test_query_key_is_ignored_by_default(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", params={"api_key": world.alice_key})
    assert r.status_code == 401
    assert r.json()["type"].endswith("/credential-required")
    assert upstream.served() == 0


def test_query_key_works_where_allowed(start_gateway, publish, world, upstream):
    publish.route(upstream.url, allow_query_key=True)
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/", params={"api_key": world.alice_key}).status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/", params={"api_key": world.charlie_key}).status_code == 401
