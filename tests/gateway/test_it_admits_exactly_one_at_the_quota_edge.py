"""Quota edge: with one request left and 50 sent at once, exactly one is admitted; the
rest get the quota problem type and a Retry-After pointing at the next UTC midnight."""

from __future__ import annotations

import json
import time

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, fire, grant


def test_it_admits_exactly_one_when_one_is_left(start_gateway, publish, world, upstream):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(5101, quota_per_day=10)})
    gateway = start_gateway(workers=2)
    headers = {"X-API-Key": world.alice_key}
    for _ in range(9):
        assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    upstream.reset()

    results = fire([("GET", f"{gateway.url}/echo/v1/", headers)] * 50)

    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 1
    assert statuses.count(429) == 49
    assert upstream.served() == 1
    rejected = [(h, body) for status, h, body in results if status == 429]
    to_midnight = 86400 - int(time.time()) % 86400
    for headers_out, body in rejected:
        assert json.loads(body)["type"].endswith("/quota-exceeded")
        assert abs(int(headers_out["Retry-After"]) - to_midnight) <= 5
