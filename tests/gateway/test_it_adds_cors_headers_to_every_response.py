"""On a version with CORS, every response to an allowed origin, proxied or refused
(401, 403, 429 problem documents included), carries Access-Control-Allow-Origin (the
request's origin, never ``*``) and Access-Control-Expose-Headers, so that a browser
script can read the status, the problem and the RateLimit headers. Every response says
``Vary: Origin``. A disallowed origin gets no Access-Control-Allow-Origin."""

from __future__ import annotations

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant

PORTAL = "http://portal.test:8000"
CORS = contract.CorsPolicy(allowed_origins=(PORTAL,))


def exposed(r: httpx.Response) -> set[str]:
    return {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}


def assert_cors(r: httpx.Response, origin: str = PORTAL) -> None:
    assert r.headers.get_list("Access-Control-Allow-Origin") == [origin]
    assert "Origin" in r.headers.get_list("Vary")
    assert {"RateLimit", "RateLimit-Policy", "Retry-After", "X-RateLimit-Remaining", "X-Request-ID"} <= exposed(r)


def test_a_proxied_200_carries_allow_origin_and_exposes_the_rate_limit_headers(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8901, rate_per_minute=10)})
    gateway = start_gateway()

    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key, "Origin": PORTAL})

    assert r.status_code == 200
    assert_cors(r)
    assert "RateLimit" in r.headers


def test_401_403_and_429_problems_carry_allow_origin(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8902, rate_per_minute=1)})
    gateway = start_gateway()
    url = f"{gateway.url}/echo/v1/"

    missing = httpx.get(url, headers={"Origin": PORTAL})
    revoked = httpx.get(url, headers={"Origin": PORTAL, "X-API-Key": world.charlie_key})
    not_subscribed = httpx.get(url, headers={"Origin": PORTAL, "X-API-Key": world.bob_key})
    httpx.get(url, headers={"Origin": PORTAL, "X-API-Key": world.alice_key})
    limited = httpx.get(url, headers={"Origin": PORTAL, "X-API-Key": world.alice_key})

    assert (missing.status_code, revoked.status_code, not_subscribed.status_code, limited.status_code) == (
        401, 401, 403, 429,
    )
    for r in (missing, revoked, not_subscribed, limited):
        assert r.headers["Content-Type"] == "application/problem+json"
        assert_cors(r)
    assert "Retry-After" in limited.headers


def test_a_disallowed_origin_gets_vary_but_no_allow_origin(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key, "Origin": "https://evil.example"})
    assert r.status_code == 200  # CORS is the browser's to enforce; the gateway only withholds the grant
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Expose-Headers" not in r.headers
    assert "Origin" in r.headers.get_list("Vary")


def test_with_credentials_the_origin_is_echoed_never_a_wildcard(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=contract.CorsPolicy(allowed_origins=(PORTAL,), allow_credentials=True))
    publish.route(upstream.url, version="v2", cors=contract.CorsPolicy(allowed_origins=("*",)))
    publish.route(upstream.url, version="v3", cors=contract.CorsPolicy(allowed_origins=("*",), allow_credentials=True))
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, "Origin": PORTAL}

    r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    assert r.headers["Access-Control-Allow-Origin"] == PORTAL
    assert r.headers["Access-Control-Allow-Credentials"] == "true"

    anyone = httpx.get(f"{gateway.url}/echo/v2/", headers={**headers, "Origin": "https://any.example"})
    assert anyone.headers["Access-Control-Allow-Origin"] == "https://any.example"

    # A record that pairs * with credentials (the portal refuses to write one) grants nobody.
    refused = httpx.get(f"{gateway.url}/echo/v3/", headers={**headers, "Origin": "https://any.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_version_without_cors_adds_nothing(start_gateway, publish, world, upstream):
    gateway = start_gateway()  # the world's route has no CORS policy
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key, "Origin": PORTAL})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Origin" not in r.headers.get_list("Vary")
