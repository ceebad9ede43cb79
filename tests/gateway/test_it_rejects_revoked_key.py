"""Keys: charlie's revoked key, a missing or malformed one, an expired one and a rotated
key past its grace period get 401; a rotated key inside its grace period works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.gateway.conftest import ALICE_APP, make_key


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def test_it_rejects_revoked_key(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.charlie_key})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/invalid-credential")
    assert "WWW-Authenticate" in r.headers
    assert upstream.served() == 0


def test_it_rejects_missing_credential(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/")
    assert r.status_code == 401
    assert r.json()["type"].endswith("/credential-required")


def test_it_rejects_malformed_and_unknown_keys(start_gateway, world):
    gateway = start_gateway()
    for key in ("nonsense", world.alice_key[:-1] + ("A" if world.alice_key[-1] != "A" else "B"), make_key()):
        r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": key})
        assert r.status_code == 401, key
        assert r.json()["type"].endswith("/invalid-credential")


def test_it_rejects_expired_key(start_gateway, publish, world):
    expired = publish.key(ALICE_APP, key_id=9, expires_at=iso(-timedelta(minutes=1)))
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": expired}).status_code == 401


def test_it_accepts_rotated_key_during_grace_only(start_gateway, publish, world):
    rotating = publish.key(ALICE_APP, key_id=10, grace_until=iso(timedelta(hours=1)))
    rotated_out = publish.key(ALICE_APP, key_id=11, grace_until=iso(-timedelta(seconds=1)))
    gateway = start_gateway()
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": rotating}).status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": rotated_out}).status_code == 401


def test_it_accepts_key_as_bearer(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": f"Bearer {world.alice_key}"})
    assert r.status_code == 200
