"""A browser's CORS preflight (OPTIONS with Origin and Access-Control-Request-Method)
carries no key. The gateway answers it itself: 204 for an allowed origin, 403
problem+json for any other. No key is asked for, nothing goes upstream, no quota or
rate slot is used, and metering records it as ``preflight``, which is never billed."""

from __future__ import annotations

import httpx

from gateway import contract
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant, raw_exchange, wait_until
from tests.gateway.metering import stream_requests

PORTAL = "http://portal.test:8000"
APP = "https://app.example.com"
CORS = contract.CorsPolicy(allowed_origins=(PORTAL, APP), max_age_s=120)


def preflight(url: str, origin: str, method: str = "GET", headers: str = "x-api-key") -> httpx.Response:
    return httpx.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )


def test_an_allowed_origin_gets_204_without_a_key_and_without_the_upstream(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway()

    r = preflight(f"{gateway.url}/echo/v1/things", PORTAL, "POST")

    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == PORTAL
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    allowed_headers = [h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")]
    assert "x-api-key" in allowed_headers
    assert "authorization" in allowed_headers
    assert r.headers["Access-Control-Max-Age"] == "120"
    assert "Origin" in r.headers.get_list("Vary")
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert upstream.served() == 0


def test_a_preflight_over_a_raw_socket_is_answered_and_the_connection_kept(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway()
    request = (
        b"OPTIONS /echo/v1/x HTTP/1.1\r\nHost: gw\r\nOrigin: " + APP.encode() + b"\r\n"
        b"Access-Control-Request-Method: DELETE\r\n\r\n"
    )
    received, closed = raw_exchange(gateway.port, request, timeout=1.0)
    head = received.decode("latin-1")
    assert head.startswith("HTTP/1.1 204 ")
    assert f"Access-Control-Allow-Origin: {APP}\r\n" in head
    assert not closed
    assert upstream.served() == 0


def test_a_disallowed_origin_gets_403_problem_and_no_allow_origin(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway()

    r = preflight(f"{gateway.url}/echo/v1/", "https://evil.example")

    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"].endswith("/cors-origin-not-allowed")
    assert "Access-Control-Allow-Origin" not in r.headers
    assert upstream.served() == 0


def test_preflights_use_no_quota_and_no_rate_slot(start_gateway, publish, world, upstream, redis_client):
    publish.route(upstream.url, cors=CORS)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8801, rate_per_minute=2, quota_per_day=2)})
    gateway = start_gateway()

    assert [preflight(f"{gateway.url}/echo/v1/", PORTAL).status_code for _ in range(10)] == [204] * 10
    assert redis_client.keys("*limit*") == []

    headers = {"X-API-Key": world.alice_key, "Origin": PORTAL}
    statuses = [httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert upstream.served() == 2


def test_metering_records_preflights_as_not_billable(start_gateway, publish, world, upstream, redis_client):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway(GATEWAY_METERING_FLUSH_MS="50")
    preflight(f"{gateway.url}/echo/v1/", PORTAL)
    preflight(f"{gateway.url}/echo/v1/", "https://evil.example")

    recorded = wait_until(lambda: len(stream_requests(redis_client)) == 2 and stream_requests(redis_client))
    assert recorded, stream_requests(redis_client)
    assert sorted((e.status, e.decision) for e in recorded) == [(204, "preflight"), (403, "preflight")]
    assert all(e.application_id == 0 and e.subscription_id == 0 for e in recorded)


def test_a_plain_options_request_still_needs_a_key(start_gateway, publish, world, upstream):
    publish.route(upstream.url, cors=CORS)
    gateway = start_gateway()
    # Origin but no Access-Control-Request-Method: not a preflight, an API call like any other.
    assert httpx.options(f"{gateway.url}/echo/v1/", headers={"Origin": PORTAL}).status_code == 401
    r = httpx.options(f"{gateway.url}/echo/v1/", headers={"Origin": PORTAL, "X-API-Key": world.alice_key})
    assert r.status_code == 200
    assert r.json()["method"] == "OPTIONS"
    assert upstream.served() == 1


def test_a_draft_version_stays_invisible_to_preflights(start_gateway, publish, world, upstream):
    publish.route(upstream.url, version="v3", state="draft", cors=CORS)
    gateway = start_gateway()
    r = preflight(f"{gateway.url}/echo/v3/", PORTAL)
    assert r.status_code == 404
    assert r.json()["type"].endswith("/version-not-published")
