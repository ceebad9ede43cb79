"""Lifecycle: a deprecated v1 carries Deprecation, Sunset and a successor Link on every
response; once retired it is 410 Gone; a draft is 404 with its own problem type."""

from __future__ import annotations

import time

import httpx


def test_deprecated_version_carries_the_headers(start_gateway, publish, world, upstream):
    publish.route(upstream.url, state="deprecated", deprecated_at="2026-01-01T00:00:00+00:00",
                  sunset_at="2027-06-30T00:00:00+00:00", successor_version="v2")
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200
    assert r.headers["Deprecation"] == "@1767225600"
    assert r.headers["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert r.headers["Link"] == '</echo/v2/>; rel="successor-version"'
    # Refusals say it too: a client learns of the deprecation even when it is being turned away.
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.charlie_key})
    assert r.status_code == 401
    assert r.headers["Deprecation"] == "@1767225600"


def test_published_version_has_no_deprecation_headers(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200
    assert "Deprecation" not in r.headers
    assert "Sunset" not in r.headers


def test_retired_version_is_gone(start_gateway, publish, world, upstream):
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    upstream.reset()
    publish.route(upstream.url, state="retired", successor_version="v2")
    deadline = time.monotonic() + 1.0
    r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    while r.status_code != 410 and time.monotonic() < deadline:
        time.sleep(0.02)
        r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    assert r.status_code == 410
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/version-retired")
    assert upstream.served() == 0


def test_draft_version_is_not_found(start_gateway, publish, world, upstream):
    publish.route(upstream.url, version="v3", state="draft")
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v3/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 404
    assert r.json()["type"].endswith("/version-not-published")
    assert upstream.served() == 0
