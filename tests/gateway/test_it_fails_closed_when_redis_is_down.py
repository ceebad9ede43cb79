"""Redis down, fail_closed: 503 with Retry-After, decided within the Redis timeout,
for a dead Redis (connection refused) and a hung one (no answer)."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.gateway.conftest import restart_redis


def test_dead_redis_gives_503_with_retry_after(start_gateway, stage, upstream):
    gateway = start_gateway(redis_url=stage.redis.url)
    headers = {"X-API-Key": stage.world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    upstream.reset()

    stage.redis.kill()
    for _ in range(5):
        r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers, timeout=5)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert r.json()["type"].endswith("/limiter-unavailable")
    assert upstream.served() == 0

    restart_redis(stage.redis)
    deadline = time.monotonic() + 5
    while httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not recover after Redis came back"
        time.sleep(0.1)


def test_hung_redis_times_out_instead_of_hanging(start_gateway, stage, upstream):
    gateway = start_gateway(redis_url=stage.redis.url)
    headers = {"X-API-Key": stage.world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v1/", headers=headers).status_code == 200
    assert stage.redis.proc is not None
    os.kill(stage.redis.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        for _ in range(5):
            started = time.monotonic()
            r = httpx.get(f"{gateway.url}/echo/v1/", headers=headers, timeout=5)
            elapsed = time.monotonic() - started
            assert r.status_code == 503
            # The Redis timeout is 50 ms; allow the box to be busy, but nothing may hang.
            assert elapsed < 1.5
    finally:
        os.kill(stage.redis.proc.pid, signal.SIGCONT)
