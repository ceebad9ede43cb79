"""Propagation: a key revoked in the portal is refused by every worker within 1 s, and a
quota changed in the admin applies within 1 s; a lost pub/sub message is caught by the
generation poll."""

from __future__ import annotations

import time

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, SECRET, fire, grant


def statuses_on_fresh_connections(url: str, headers: dict[str, str], n: int = 16) -> list[int]:
    # Fresh connections, so that with SO_REUSEPORT the requests land on every worker.
    return [status for status, _, _ in fire([("GET", url, headers)] * n)]


def test_revocation_reaches_every_worker_within_a_second(start_gateway, publish, world):
    gateway = start_gateway(workers=2)
    url, headers = f"{gateway.url}/echo/v1/", {"X-API-Key": world.alice_key}
    # Warm both workers' caches with the active key.
    for _ in range(3):
        assert set(statuses_on_fresh_connections(url, headers)) == {200}

    publish.revoke(world.alice_key, ALICE_APP)
    revoked_at = time.monotonic()
    while time.monotonic() - revoked_at < 1.0:
        if set(statuses_on_fresh_connections(url, headers)) == {401}:
            break
        time.sleep(0.02)
    assert time.monotonic() - revoked_at <= 1.0
    for _ in range(3):
        assert set(statuses_on_fresh_connections(url, headers)) == {401}


def test_quota_change_applies_within_a_second(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(6001, quota_per_day=1000)})
    gateway = start_gateway(workers=2)
    url, headers = f"{gateway.url}/echo/v1/", {"X-API-Key": world.alice_key}
    for _ in range(2):
        assert set(statuses_on_fresh_connections(url, headers)) == {200}  # 32 used

    publish.application(ALICE_APP, {ECHO_API_ID: grant(6001, quota_per_day=10)})
    changed_at = time.monotonic()
    while time.monotonic() - changed_at < 1.0:
        if set(statuses_on_fresh_connections(url, headers, n=8)) == {429}:
            break
        time.sleep(0.02)
    assert time.monotonic() - changed_at <= 1.0
    assert set(statuses_on_fresh_connections(url, headers)) == {429}


def test_a_lost_invalidation_is_caught_by_the_generation_poll(start_gateway, redis_client, world):
    gateway = start_gateway(workers=2, GATEWAY_GENERATION_POLL_S="0.2")
    url, headers = f"{gateway.url}/echo/v1/", {"X-API-Key": world.alice_key}
    assert set(statuses_on_fresh_connections(url, headers)) == {200}

    # Revoke the way a publisher that crashed before PUBLISH would: record and generation only.
    digest = contract.key_hash(world.alice_key, SECRET.encode())
    record = contract.KeyRecord(key_id=1, prefix=contract.key_display_prefix(world.alice_key),
                                application_id=ALICE_APP, status="revoked")
    redis_client.set(contract.key_key(digest), record.to_json())
    redis_client.incr(contract.GENERATION_KEY)

    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if set(statuses_on_fresh_connections(url, headers)) == {401}:
            break
        time.sleep(0.05)
    assert set(statuses_on_fresh_connections(url, headers)) == {401}


def test_new_route_appears_without_restart(start_gateway, publish, world, upstream):
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v2/", headers=headers).status_code == 404
    publish.route(upstream.url, version="v2")
    deadline = time.monotonic() + 1.0
    status = 0
    while time.monotonic() < deadline:
        status = httpx.get(f"{gateway.url}/echo/v2/", headers=headers).status_code
        if status == 200:
            break
        time.sleep(0.02)
    assert status == 200
