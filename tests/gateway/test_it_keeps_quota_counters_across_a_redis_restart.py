"""Quota counters survive a Redis restart: Redis runs with AOF (appendonly yes, fsync every
second), as in the Procfile, and the counters live in Redis."""

from __future__ import annotations

import time

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant, restart_redis


def test_quota_used_before_the_restart_still_counts(start_gateway, stage):
    stage.publish.application(ALICE_APP, {ECHO_API_ID: grant(9301, quota_per_day=5)})
    gateway = start_gateway(redis_url=stage.redis.url)
    headers = {"X-API-Key": stage.world.alice_key}
    assert [httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code for _ in range(3)] == [200] * 3

    stage.redis.stop()  # SIGTERM: Redis flushes its AOF and exits
    restart_redis(stage.redis)
    time.sleep(0.3)  # past the gateway's Redis back-off (0.1 s), so the next call reconnects
    statuses = [httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
