"""OAuth2: a client-credentials token published by the portal is accepted without asking
the portal; revoked, expired, deleted or unknown tokens get 401."""

from __future__ import annotations

import time

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, BOB_APP


def test_it_accepts_a_published_token(start_gateway, publish, world):
    publish.token(ALICE_APP, "AbCdEfGhIjKlMnOpQrStUvWxYz0123")
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": "Bearer AbCdEfGhIjKlMnOpQrStUvWxYz0123"})
    assert r.status_code == 200
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert seen["x-tollway-application"] == str(ALICE_APP)
    assert "authorization" not in seen


def test_it_rejects_revoked_expired_and_unknown_tokens(start_gateway, publish, world):
    publish.token(ALICE_APP, "revokedTokenValue0123456789", revoked=True)
    publish.token(ALICE_APP, "expiredTokenValue0123456789", expires_in=1)
    gateway = start_gateway()
    time.sleep(1.1)
    for token in ("revokedTokenValue0123456789", "expiredTokenValue0123456789", "neverIssuedToken0123456789"):
        r = httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token


def test_a_deleted_token_stops_working_within_a_second(start_gateway, publish, redis_client, world):
    token = "deletedTokenValue0123456789"
    publish.token(ALICE_APP, token)
    gateway = start_gateway()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    digest = contract.token_hash(token)
    redis_client.delete(contract.token_key(digest))
    publish._announce("token", digest)
    deadline = time.monotonic() + 1.0
    while httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_token_of_an_unsubscribed_application_gets_403(start_gateway, publish, world):
    publish.token(BOB_APP, "bobsTokenValue0123456789ab")
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": "Bearer bobsTokenValue0123456789ab"})
    assert r.status_code == 403
