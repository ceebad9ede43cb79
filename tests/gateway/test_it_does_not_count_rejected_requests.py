"""Rejections don't consume quota: requests turned away by the rate limit, or for a bad
credential, leave the daily quota untouched."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, fire, grant


def day_remaining(response: httpx.Response) -> int:
    for item in response.headers["RateLimit"].split(","):
        name, *params = item.strip().split(";")
        if name == '"day"':
            return int(dict(p.split("=") for p in params)["r"])
    raise AssertionError(response.headers["RateLimit"])


def minute_remaining(response: httpx.Response) -> int:
    for item in response.headers["RateLimit"].split(","):
        name, *params = item.strip().split(";")
        if name == '"minute"':
            return int(dict(p.split("=") for p in params)["r"])
    raise AssertionError(response.headers["RateLimit"])


def test_rate_limited_requests_leave_quota_alone(start_gateway, publish, world, upstream):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5201, rate_per_minute=5, quota_per_day=1000)})
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}

    results = fire([("GET", f"{gateway.url}/echo/v1/", headers)] * 40)
    assert [s for s, _, _ in results].count(200) == 5
    assert upstream.served() == 5

    # The quota counted the five admitted requests only.
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5201, rate_per_minute=100, quota_per_day=1000)})
    r = None
    for _ in range(50):  # the new limits arrive by invalidation
        r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
        if r.status_code == 200:
            break
    assert r is not None
    assert r.status_code == 200
    assert day_remaining(r) == 1000 - 6


def test_quota_rejections_do_not_take_rate_slots(start_gateway, publish, world, redis_client):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5202, rate_per_minute=100, quota_per_day=3)})
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    responses = [httpx.get(f"{gateway.url}/echo/v1/", headers=headers) for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 3 + [429] * 7
    # The minute bucket gave 3 tokens (one may have refilled since: 100/min is one per 0.6 s).
    left = int(redis_client.hget(next(k for k in redis_client.keys("*{s:5202}*") if k.endswith(b":b")), "m"))
    assert 97 <= left // 60_000_000 <= 98
    assert minute_remaining(responses[-1]) in (97, 98)


def test_bad_credentials_do_not_touch_counters(start_gateway, publish, world, redis_client):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5203, quota_per_day=3)})
    gateway = start_gateway()
    for key in (world.charlie_key, world.bob_key, "tw_not-a-key"):
        assert httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": key}).status_code in (401, 403)
    assert redis_client.keys("*limit*") == []
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key})
    assert day_remaining(r) == 2
