"""A valid credential whose application has no active subscription to the API, or a
suspended one, gets 403."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant


def test_it_rejects_application_without_subscription(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.bob_key})
    assert r.status_code == 403
    assert r.json()["type"].endswith("/not-subscribed")
    assert upstream.served() == 0
    # bob is fine on the API he subscribed to
    assert httpx.get(f"{gateway.url}/other/v1/", headers={"X-API-Key": world.bob_key}).status_code == 200


def test_it_rejects_suspended_subscription(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(9001, status="suspended")})
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 403
    assert r.json()["type"].endswith("/subscription-suspended")


def test_it_rejects_pending_subscription(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(9002, status="pending")})
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}).status_code == 403
