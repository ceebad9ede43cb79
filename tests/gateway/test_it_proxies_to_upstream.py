"""A subscribed key reaches the upstream with method, path, query and body intact."""

from __future__ import annotations

import httpx


def test_it_proxies_get_with_path_and_query(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/things/42?b=2&a=1", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["path"] == "/things/42"
    assert seen["query"] == "b=2&a=1"
    assert upstream.served() == 1


def test_it_proxies_post_body(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.post(f"{gateway.url}/echo/v1/upload", content=b"x" * 12345, headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "POST"
    assert r.json()["body_size"] == 12345


def test_it_answers_unknown_api_with_problem_json(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/nope/v1/x", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/unknown-api")
    r = httpx.get(f"{gateway.url}/echo/v9/x", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 404
    assert r.json()["type"].endswith("/unknown-version")
